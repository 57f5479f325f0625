#pragma once
// Upgrader: reads the WebSocket opening handshake (RFC 6455 4.2) of each new
// connection, ws:// or wss:// alike, within a deadline, answers it, and hands
// the upgraded socket on. Lives on the broker's thread.

#include <QByteArray>
#include <QHash>
#include <QHostAddress>
#include <QObject>

class QTcpSocket;
class QTimer;

namespace Middleman {

class Upgrader : public QObject
{
    Q_OBJECT
public:
    explicit Upgrader(QObject *parent = nullptr);
    ~Upgrader() override;

    // Takes a connected socket (it becomes the upgrader's child) and waits at
    // most `deadlineMs` for a complete upgrade request.
    void take(QTcpSocket *socket, int deadlineMs);

    // Connections whose upgrade request has not arrived yet.
    qsizetype waiting() const { return m_waiting.size(); }

Q_SIGNALS:
    // The 101 response is written. The receiver takes the socket (and must
    // reparent it); `pending` holds what the peer sent after the request.
    void upgraded(QTcpSocket *socket, const QByteArray &origin, const QByteArray &pending);
    // The request was not a valid upgrade: answered with this HTTP status, and
    // the connection is closing.
    void refused(const QHostAddress &address, quint16 port, int httpStatus, const QByteArray &reason);
    // No complete request in time; the connection is closed.
    void timedOut(const QHostAddress &address, quint16 port);

private:
    void onReadyRead(QTcpSocket *socket);
    void release(QTcpSocket *socket); // forgets it: no deadline, no handlers

    QHash<QTcpSocket *, QTimer *> m_waiting; // the deadline is the socket's child
};

} // namespace Middleman
