#pragma once
// TlsServer: accepts TCP connections for wss:// and completes each TLS handshake
// within a deadline; hands encrypted sockets on and reports every handshake that
// fails (docs/protocol.md sections 1 and 7). Lives on the thread that creates it (the
// broker's).
//
// Qt's own QSslServer (and QWebSocketServer's SecureMode built on it) drops a
// peer that does not start with a TLS ClientHello, such as a plain ws:// client,
// without any signal, and keeps its handshake failures to itself; the broker
// counts and logs them, so it accepts the connections itself.

#include <QHash>
#include <QHostAddress>
#include <QSslConfiguration>
#include <QTcpServer>

#include <utility>

class QSslSocket;
class QTimer;

namespace Middleman {

class TlsServer : public QTcpServer
{
    Q_OBJECT
public:
    // `deadlineMs` bounds the TLS handshake and the WebSocket upgrade after it,
    // together; at most `maxHandshakes` handshakes run at once (more are refused
    // at once, and count as failed).
    TlsServer(const QSslConfiguration &configuration, int deadlineMs, int maxHandshakes, QObject *parent = nullptr);
    ~TlsServer() override;

    int handshakesInProgress() const { return m_handshaking; }

Q_SIGNALS:
    // The TLS handshake is done. The receiver takes the socket and gives its
    // WebSocket upgrade what is left of the deadline, `msLeft`.
    void encrypted(QSslSocket *socket, int msLeft);
    // The TLS handshake with this peer failed or took too long; the connection is gone.
    void handshakeFailed(const QHostAddress &address, quint16 port, const QString &reason);
    // As PlainServer::descriptorsLow(): accepting is paused.
    void descriptorsLow();

protected:
    void incomingConnection(qintptr descriptor) override;

private:
    using Peer = std::pair<QHostAddress, quint16>;
    struct Pending
    {
        Peer peer;
        QTimer *deadline = nullptr; // child of the socket
        bool failed = false;
    };

    void fail(QSslSocket *socket, const QString &reason);

    // Static after construction.
    const QSslConfiguration m_configuration;
    const int m_deadlineMs;
    const int m_maxHandshakes;

    QHash<QSslSocket *, Pending> m_pending; // in the handshake
    int m_handshaking = 0;
};

} // namespace Middleman
