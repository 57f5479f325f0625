#pragma once
// ConsoleConnection: the console's own service connection to the broker it hosts,
// a QWebSocket client speaking the protocol (docs/protocol.md sections 2 and 3). What it
// sends is checked with the codec first, exactly as the broker would read it, so a
// message the broker would refuse is refused here with the same reason.

#include "codec.h"
#include "message.h"

#include <QHostAddress>
#include <QObject>
#include <QSslCertificate>
#include <QUrl>
#include <QWebSocket>

namespace Middleman {

class ConsoleConnection : public QObject
{
    Q_OBJECT
public:
    enum class State { Closed, Connecting, Handshake, Ready };
    Q_ENUM(State)

    // Frames the broker sends carry one message of at most its max_message_size
    // (default 1 MiB) plus the headers it adds; larger frames close the connection.
    static constexpr qint64 kMaxIncomingFrameSize = 64 * 1024 * 1024;

    explicit ConsoleConnection(QObject *parent = nullptr);
    ~ConsoleConnection() override;

    // Opens the WebSocket and sends `serviceKey` as the first text frame; ready()
    // follows the broker's "MM OK", closed() a refusal. An earlier connection is
    // dropped without a closed() signal.
    void open(const QUrl &url, const QByteArray &serviceKey);
    // wss://: the console's broker's own certificate. The connection accepts it
    // even when the system does not trust it or it does not name the loopback
    // address: the console talks to the broker it hosts. Null: the system's trust.
    void setTrustedCertificate(const QSslCertificate &certificate) { m_trusted = certificate; }
    // Starts the close handshake; closed() follows, possibly before this returns.
    void close();

    State state() const { return m_state; }
    bool isReady() const { return m_state == State::Ready; }
    QUrl url() const { return m_url; }
    // The local end of the socket, to find this connection among the broker's peers.
    QHostAddress localAddress() const;
    quint16 localPort() const;

    // Serialises `message` and sends it in a text frame (a binary one when
    // message.binary is set). Refuses, sending nothing, when not ready or when the
    // codec would not read the bytes back as exactly one message from a peer;
    // `error` then gets the reason ("400 wildcards are not allowed in this target").
    bool send(const Message &message, QString *error = nullptr);

    // The limits send() checks against: the codec's defaults unless set (the
    // hosted broker's config.codec, say).
    void setCodecLimits(const CodecLimits &limits) { m_limits = limits; }
    CodecLimits codecLimits() const { return m_limits; }

    // Checks a frame the way the broker reads a peer's: empty when it would be
    // accepted as exactly one message, otherwise the codec's status and reason.
    static QString check(const QByteArray &wire, bool binary, const CodecLimits &limits = CodecLimits());

    // The server's URL with an any-address host (0.0.0.0, ::) replaced by the
    // loopback address of the same family, so that a client can connect to it.
    static QUrl loopbackUrl(const QUrl &serverUrl);

Q_SIGNALS:
    void ready();
    void messageReceived(const Middleman::Message &message);
    void closed(int code, const QString &reason);
    void errorText(const QString &text);
    void stateChanged(Middleman::ConsoleConnection::State state);

private:
    void setState(State state);
    void dropSocket();
    void onConnected();
    void onDisconnected();
    void onFrame(const QByteArray &data, bool binary);

    QWebSocket *m_socket = nullptr; // one per open(), so a dropped one stays silent
    QUrl m_url;
    QByteArray m_key;
    QSslCertificate m_trusted;
    CodecLimits m_limits;
    State m_state = State::Closed;
};

} // namespace Middleman
