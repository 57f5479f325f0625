#pragma once
// FuzzPeer: a WebSocket client written on a QTcpSocket (RFC 6455) that never blocks,
// for the fuzz harnesses: it sends any frame (text that is not UTF-8, raw bytes),
// answers pings and close frames, and reads every broker frame with the codec.
// Header-only, no Q_OBJECT; lives on the harness's (main) thread.

#include "../common/brokeroutput.h"
#include "../common/wsframe.h"
#include "codec.h"

#include <QByteArray>
#include <QList>
#include <QTcpSocket>
#include <QUrl>
#include <QtEndian>

#include <functional>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace Middleman::Fuzz {

class FuzzPeer
{
public:
    enum Opcode : quint8 { Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xA };

    FuzzPeer()
    {
        QObject::connect(&m_socket, &QTcpSocket::connected, &m_socket, [this] { onConnected(); });
        QObject::connect(&m_socket, &QTcpSocket::readyRead, &m_socket, [this] { onReadyRead(); });
        QObject::connect(&m_socket, &QTcpSocket::disconnected, &m_socket, [this] { disconnected = true; });
        QObject::connect(&m_socket, &QTcpSocket::errorOccurred, &m_socket, [this] { disconnected = true; });
    }
    FuzzPeer(const FuzzPeer &) = delete;
    FuzzPeer &operator=(const FuzzPeer &) = delete;
    ~FuzzPeer() { m_socket.abort(); }

    // Starts the TCP connection and the opening handshake; with a key, sends it as
    // the first frame once upgraded (docs/protocol.md §2). Wait for upgraded or accepted.
    void open(const QUrl &url, const QByteArray &key = {})
    {
        m_url = url;
        m_key = key;
        m_socket.connectToHost(url.host(), quint16(url.port(80)));
    }

    // One frame from client to server, masked (RFC 6455 5.3); any key will
    // do, the server only has to undo it.
    void sendFrame(quint8 opcode, QByteArrayView payload, bool fin = true)
    {
        m_socket.write(Testing::maskedFrame(opcode, payload, 0x1b2c3d4e, fin));
    }
    void sendText(QByteArrayView utf8) { sendFrame(Text, utf8); }
    void sendText(const QByteArray &utf8) { sendFrame(Text, utf8); } // takes QStringBuilder expressions
    void sendBinary(QByteArrayView data) { sendFrame(Binary, data); }
    void sendBinary(const QByteArray &data) { sendFrame(Binary, data); }
    // Bytes as they are, after the upgrade (the frame layer itself).
    void sendRaw(QByteArrayView bytes) { m_socket.write(bytes.data(), bytes.size()); }

    // Drops the connection without a close handshake.
    void abort() { m_socket.abort(); }
    // Sends what is buffered, then closes the TCP connection.
    void finish() { m_socket.disconnectFromHost(); }
    QTcpSocket &socket() { return m_socket; }
    quint16 localPort() const { return m_socket.localPort(); }

    bool failed() const { return disconnected || closeReceived || !protocolErrors.isEmpty(); }

    bool upgraded = false;
    bool accepted = false;          // "MM OK" received
    // Called for every protocol message received after "MM OK".
    std::function<void(const Message &)> received;
    quint64 messagesReceived = 0;
    QList<ParseError> badMessages;  // broker output the codec refused (must stay empty)
    QList<QByteArray> protocolErrors; // server frames that break RFC 6455 or the handshake
    bool closeReceived = false;
    int closeCode = -1;
    bool disconnected = false;

private:
    void onConnected()
    {
        // Small frames back to back: no Nagle delay waiting for the broker's ACKs.
        m_socket.setSocketOption(QAbstractSocket::LowDelayOption, 1);
        const QByteArray host = m_url.host().toUtf8() + ':' + QByteArray::number(m_url.port(80));
        m_socket.write("GET / HTTP/1.1\r\nHost: " + host
                       + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    }

    void onReadyRead()
    {
        m_in += m_socket.readAll();
        quickAck();
        if (!upgraded) {
            const qsizetype end = m_in.indexOf("\r\n\r\n");
            if (end < 0)
                return;
            // RFC 6455 4.2.2: the accept value for the fixed key above.
            if (!m_in.startsWith("HTTP/1.1 101") || !m_in.left(end).contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")) {
                protocolErrors.append("upgrade refused: " + m_in.left(end));
                return;
            }
            m_in.remove(0, end + 4);
            upgraded = true;
            if (!m_key.isNull())
                sendText(m_key);
        }
        while (readFrame()) {
        }
    }

    // The broker's sockets keep Nagle's algorithm: a small frame that follows another
    // waits for our ACK, which Linux delays by up to 40 ms. ACK at once instead
    // (TCP_QUICKACK does not stick, so after every read).
    void quickAck()
    {
#ifdef TCP_QUICKACK
        const int on = 1;
        ::setsockopt(int(m_socket.socketDescriptor()), IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
#endif
    }

    bool readFrame()
    {
        const std::optional<Testing::FrameHead> head = Testing::frameHead(m_in);
        if (!head)
            return false;
        if (head->masked) {
            protocolErrors.append("masked server frame"); // RFC 6455 5.1
            return false;
        }
        if (quint64(m_in.size()) < quint64(head->size) + head->length)
            return false;
        const QByteArray payload = m_in.mid(head->size, qsizetype(head->length));
        m_in.remove(0, head->size + qsizetype(head->length));
        handleFrame(head->opcode, head->fin, payload);
        return true;
    }

    void handleFrame(quint8 opcode, bool fin, const QByteArray &payload)
    {
        switch (opcode) {
        case Ping:
            sendFrame(Pong, payload);
            return;
        case Pong:
            return;
        case Close:
            if (!closeReceived) {
                closeReceived = true;
                closeCode = payload.size() >= 2 ? qFromBigEndian<quint16>(payload.constData()) : 1005;
                sendFrame(Close, payload.left(2)); // RFC 6455 5.5.1
            }
            return;
        case Text:
        case Binary:
            m_binary = opcode == Binary;
            m_fragments = payload;
            break;
        case Continuation:
            m_fragments += payload;
            break;
        default:
            protocolErrors.append("unknown opcode " + QByteArray::number(opcode));
            return;
        }
        if (fin)
            onMessage(m_fragments, m_binary);
    }

    void onMessage(const QByteArray &data, bool binary)
    {
        if (!accepted) {
            if (data == "MM OK" && !binary)
                accepted = true;
            else
                protocolErrors.append("handshake answered with " + data.left(64));
            return;
        }
        Testing::readBrokerFrame(
            data, binary,
            [this](const Message &message) {
                ++messagesReceived;
                if (received)
                    received(message);
                return true;
            },
            [this](const ParseError &error) { badMessages.append(error); });
    }

    QTcpSocket m_socket;
    QUrl m_url;
    QByteArray m_key;
    QByteArray m_in;
    QByteArray m_fragments;
    bool m_binary = false;
};

} // namespace Middleman::Fuzz
