#include "consoleconnection.h"

#include <QStringDecoder>

#include <algorithm>
#include <utility>

namespace Middleman {

namespace {

QString reasonText(const ParseError &error)
{
    return QString::number(error.status) + QLatin1Char(' ') + QString::fromUtf8(error.reason);
}

} // namespace

ConsoleConnection::ConsoleConnection(QObject *parent)
    : QObject(parent)
{
}

ConsoleConnection::~ConsoleConnection()
{
    dropSocket();
}

void ConsoleConnection::dropSocket()
{
    if (!m_socket)
        return;
    QWebSocket *socket = std::exchange(m_socket, nullptr);
    socket->disconnect(this);
    // Qt 6.4's ~QWebSocket leaks when it still has to close the connection itself.
    socket->abort();
    // Possibly inside one of its own signals: delete it once that has returned.
    socket->deleteLater();
}

QHostAddress ConsoleConnection::localAddress() const
{
    return m_socket ? m_socket->localAddress() : QHostAddress();
}

quint16 ConsoleConnection::localPort() const
{
    return m_socket ? m_socket->localPort() : 0;
}

void ConsoleConnection::open(const QUrl &url, const QByteArray &serviceKey)
{
    dropSocket();
    setState(State::Closed);
    m_url = url;
    m_key = serviceKey;

    auto *socket = new QWebSocket(QString(), QWebSocketProtocol::VersionLatest, this);
    m_socket = socket;
    socket->setMaxAllowedIncomingFrameSize(kMaxIncomingFrameSize);
    socket->setMaxAllowedIncomingMessageSize(kMaxIncomingFrameSize);
    connect(socket, &QWebSocket::connected, this, &ConsoleConnection::onConnected);
    connect(socket, &QWebSocket::disconnected, this, &ConsoleConnection::onDisconnected);
    connect(socket, &QWebSocket::stateChanged, this, [this](QAbstractSocket::SocketState state) {
        // A connection that never came up ends here without disconnected().
        if (state == QAbstractSocket::UnconnectedState)
            onDisconnected();
    });
    connect(socket, qOverload<QAbstractSocket::SocketError>(&QWebSocket::error), this,
            [this](QAbstractSocket::SocketError error) {
                // The end of an open connection is reported by closed(), with its code.
                if (error == QAbstractSocket::RemoteHostClosedError && m_state != State::Connecting)
                    return;
                Q_EMIT errorText(m_socket->errorString());
            });
    connect(socket, &QWebSocket::sslErrors, this, [this](const QList<QSslError> &errors) {
        // Pinned: every complaint must be about exactly the broker's certificate.
        const bool pinned = !m_trusted.isNull() && !errors.isEmpty()
            && std::all_of(errors.cbegin(), errors.cend(),
                           [this](const QSslError &e) { return e.certificate() == m_trusted; });
        if (pinned && m_socket)
            m_socket->ignoreSslErrors();
    });
    connect(socket, &QWebSocket::textMessageReceived, this,
            [this](const QString &text) { onFrame(text.toUtf8(), false); });
    connect(socket, &QWebSocket::binaryMessageReceived, this,
            [this](const QByteArray &data) { onFrame(data, true); });

    setState(State::Connecting);
    socket->open(url);
}

void ConsoleConnection::close()
{
    if (m_state == State::Closed || !m_socket)
        return;
    if (m_state == State::Connecting) {
        // No WebSocket yet to close.
        dropSocket();
        setState(State::Closed);
        Q_EMIT closed(int(QWebSocketProtocol::CloseCodeNormal), QStringLiteral("closed before connecting"));
        return;
    }
    m_socket->close(QWebSocketProtocol::CloseCodeNormal, QStringLiteral("console closed"));
}

void ConsoleConnection::setState(State state)
{
    if (m_state == state)
        return;
    m_state = state;
    Q_EMIT stateChanged(state);
}

void ConsoleConnection::onConnected()
{
    if (m_state != State::Connecting)
        return;
    setState(State::Handshake);
    m_socket->sendTextMessage(QString::fromUtf8(m_key));
}

void ConsoleConnection::onDisconnected()
{
    if (m_state == State::Closed)
        return;
    // A connection that never came up has no close code: 1006, and why.
    const bool upgraded = m_state != State::Connecting;
    const int code = upgraded ? int(m_socket->closeCode()) : int(QWebSocketProtocol::CloseCodeAbnormalDisconnection);
    const QString reason = upgraded ? m_socket->closeReason() : m_socket->errorString();
    setState(State::Closed);
    Q_EMIT closed(code, reason);
}

void ConsoleConnection::onFrame(const QByteArray &data, bool binary)
{
    if (m_state == State::Handshake) {
        if (!binary && data == "MM OK") {
            setState(State::Ready);
            Q_EMIT ready();
        } else {
            Q_EMIT errorText(QStringLiteral("unexpected handshake reply from the broker"));
            m_socket->close(QWebSocketProtocol::CloseCodeProtocolError, QStringLiteral("expected MM OK"));
        }
        return;
    }
    if (m_state != State::Ready)
        return;
    CodecLimits limits;
    limits.maxMessageSize = kMaxIncomingFrameSize;
    FrameReader reader(data, limits, binary, Direction::FromBroker);
    Message message;
    ParseError error;
    for (;;) {
        const FrameReader::Item item = reader.next(message, error);
        if (item == FrameReader::Item::End)
            break;
        if (item == FrameReader::Item::Message)
            Q_EMIT messageReceived(message);
        else
            Q_EMIT errorText(QStringLiteral("unreadable message from the broker: ") + reasonText(error));
    }
}

QString ConsoleConnection::check(const QByteArray &wire, bool binary, const CodecLimits &limits)
{
    if (!binary) {
        // A text frame must be UTF-8 (docs/protocol.md §1); the WebSocket layer would close.
        QStringDecoder decoder(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
        const QString text = decoder.decode(wire); // decoding happens on conversion
        Q_UNUSED(text);
        if (decoder.hasError())
            return QStringLiteral("a text frame must be valid UTF-8; use a binary frame");
    }
    // Exactly as the broker reads a peer's frame.
    FrameReader reader(wire, limits, binary, Direction::FromPeer);
    Message parsed;
    ParseError error;
    switch (reader.next(parsed, error)) {
    case FrameReader::Item::Message:
        break;
    case FrameReader::Item::Error:
        return reasonText(error);
    case FrameReader::Item::End:
        return QStringLiteral("nothing to send");
    }
    if (reader.next(parsed, error) != FrameReader::Item::End)
        return QStringLiteral("the text makes more than one message");
    return {};
}

bool ConsoleConnection::send(const Message &message, QString *error)
{
    auto refuse = [error](const QString &why) {
        if (error)
            *error = why;
        return false;
    };
    if (m_state != State::Ready)
        return refuse(QStringLiteral("not connected to the broker"));
    const QByteArray wire = serialize(message);
    const QString why = check(wire, message.binary, m_limits);
    if (!why.isEmpty())
        return refuse(why);
    if (message.binary)
        m_socket->sendBinaryMessage(wire);
    else
        m_socket->sendTextMessage(QString::fromUtf8(wire));
    return true;
}

QUrl ConsoleConnection::loopbackUrl(const QUrl &serverUrl)
{
    const QHostAddress host(serverUrl.host());
    QUrl url = serverUrl;
    if (host == QHostAddress::AnyIPv4)
        url.setHost(QHostAddress(QHostAddress::LocalHost).toString());
    else if (host == QHostAddress::AnyIPv6)
        url.setHost(QHostAddress(QHostAddress::LocalHostIPv6).toString());
    return url;
}

} // namespace Middleman
