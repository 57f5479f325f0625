#pragma once
// RawPeer: a WebSocket client written by hand on a QTcpSocket (RFC 6455), for what a
// QWebSocket will not do: stop reading, leave pings unanswered, show the close
// frame's code and reason exactly as sent. Header-only; lives on the test's thread.
//
// No Q_OBJECT (the header is not run through moc): signals are connected to
// lambdas with the socket as context.

#include <QByteArray>
#include <QCryptographicHash>
#include <QList>
#include <QRandomGenerator>
#include <QString>
#include <QTcpSocket>
#include <QTest>
#include <QUrl>
#include <QtEndian>

#include "wsframe.h"

namespace Middleman::Testing {

class RawPeer
{
public:
    // RFC 6455 5.2 opcodes.
    enum Opcode : quint8 { Continuation = 0x0, Text = 0x1, Binary = 0x2, Close = 0x8, Ping = 0x9, Pong = 0xA };

    struct DataMessage
    {
        QByteArray payload;
        bool binary = false;
    };

    RawPeer()
    {
        QObject::connect(&m_socket, &QTcpSocket::readyRead, &m_socket, [this] { onReadyRead(); });
        QObject::connect(&m_socket, &QTcpSocket::disconnected, &m_socket, [this] { disconnected = true; });
    }
    RawPeer(const RawPeer &) = delete;
    RawPeer &operator=(const RawPeer &) = delete;

    // TCP connect and the client side of the opening handshake (RFC 6455 4.1):
    // true once the server answered 101 with the right Sec-WebSocket-Accept.
    bool open(const QUrl &url, int timeoutMs = 5000)
    {
        if (!sourceAddress.isNull() && !m_socket.bind(sourceAddress))
            return fail(QStringLiteral("bind: ") + m_socket.errorString());
        m_socket.connectToHost(url.host(), quint16(url.port(80)));
        if (!m_socket.waitForConnected(timeoutMs))
            return fail(QStringLiteral("connect: ") + m_socket.errorString());
        QByteArray nonce(16, Qt::Uninitialized);
        for (char &c : nonce)
            c = char(QRandomGenerator::global()->bounded(256));
        const QByteArray key = nonce.toBase64();
        m_expectedAccept =
            QCryptographicHash::hash(QByteArray(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"),
                                     QCryptographicHash::Sha1)
                .toBase64();
        const QByteArray path = url.path().isEmpty() ? QByteArray("/") : url.path().toUtf8();
        m_socket.write("GET " + path + " HTTP/1.1\r\nHost: " + url.host().toUtf8() + ':'
                       + QByteArray::number(url.port(80))
                       + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key
                       + "\r\nSec-WebSocket-Version: 13\r\n\r\n");
        if (!QTest::qWaitFor([this] { return m_upgraded || !m_error.isEmpty() || disconnected; }, timeoutMs))
            return fail(QStringLiteral("no upgrade response"));
        return m_upgraded;
    }

    // open() and the middleman handshake (docs/protocol.md §2): the key, then "MM OK".
    bool connectWithKey(const QUrl &url, const QByteArray &key, int timeoutMs = 5000)
    {
        if (!open(url, timeoutMs))
            return false;
        sendText(key);
        if (!QTest::qWaitFor([this] { return !messages.isEmpty() || closeReceived || disconnected; }, timeoutMs))
            return fail(QStringLiteral("no handshake answer"));
        if (messages.isEmpty() || messages.first().payload != "MM OK")
            return fail(QStringLiteral("handshake refused"));
        messages.removeFirst();
        return true;
    }

    QString errorString() const { return m_error; }
    QTcpSocket &socket() { return m_socket; }
    quint16 localPort() const { return m_socket.localPort(); }

    // One frame from client to server, masked as RFC 6455 5.3 requires.
    void sendFrame(quint8 opcode, const QByteArray &payload, bool fin = true)
    {
        m_socket.write(maskedFrame(opcode, payload, QRandomGenerator::global()->generate(), fin));
    }
    void sendText(const QByteArray &utf8) { sendFrame(Text, utf8); }
    void sendBinary(const QByteArray &data) { sendFrame(Binary, data); }
    void sendPing(const QByteArray &payload = {}) { sendFrame(Ping, payload); }
    void sendClose(quint16 code, const QByteArray &reason = {})
    {
        QByteArray payload(2, Qt::Uninitialized);
        qToBigEndian(code, payload.data());
        sendFrame(Close, payload + reason);
        m_closeSent = true;
    }

    // Off: pings are counted but get no pong, as from a peer that hung.
    void setAnswerPings(bool on) { m_answerPings = on; }

    // Stops taking bytes off the socket, so the kernel buffers fill and the server
    // has to queue: a slow consumer. resumeReading() takes everything in again.
    void stopReading()
    {
        m_reading = false;
        m_socket.setReadBufferSize(1);
    }
    void resumeReading()
    {
        m_reading = true;
        m_socket.setReadBufferSize(0);
        onReadyRead();
    }

    bool waitForMessages(qsizetype count, int timeoutMs = 5000)
    {
        return QTest::qWaitFor([&] { return messages.size() >= count; }, timeoutMs);
    }
    bool waitForCloseFrame(int timeoutMs = 5000)
    {
        return QTest::qWaitFor([this] { return closeReceived; }, timeoutMs);
    }
    bool waitForDisconnected(int timeoutMs = 5000)
    {
        return QTest::qWaitFor([this] { return disconnected; }, timeoutMs);
    }

    // What the server sent, in order.
    QList<DataMessage> messages; // complete text and binary messages after the upgrade
    QList<QByteArray> pings;     // payloads of the pings received
    QList<QByteArray> pongs;     // payloads of the pongs received
    // Set before open(): the local address to connect from (any 127.x.y.z
    // reaches a broker on 127.0.0.1), so that tests can play several hosts.
    QHostAddress sourceAddress;
    bool closeReceived = false;
    int closeCode = -1; // 1005 when the close frame had no code
    QString closeReason;
    bool disconnected = false;     // the TCP connection ended
    QList<QString> protocolErrors; // server frames that break RFC 6455 (must stay empty)

private:
    bool fail(const QString &why)
    {
        if (m_error.isEmpty())
            m_error = why;
        return false;
    }

    void onReadyRead()
    {
        if (!m_reading)
            return;
        m_in += m_socket.readAll();
        if (!m_upgraded && !readUpgradeResponse())
            return;
        while (readFrame()) {
        }
    }

    bool readUpgradeResponse()
    {
        const qsizetype end = m_in.indexOf("\r\n\r\n");
        if (end < 0)
            return false;
        const QList<QByteArray> lines = m_in.left(end).split('\n');
        m_in.remove(0, end + 4);
        if (!lines.first().startsWith("HTTP/1.1 101"))
            return fail(QStringLiteral("upgrade refused: ") + QString::fromUtf8(lines.first().trimmed()));
        QByteArray accept;
        for (const QByteArray &line : lines) {
            const qsizetype colon = line.indexOf(':');
            if (colon > 0 && line.left(colon).trimmed().toLower() == "sec-websocket-accept")
                accept = line.mid(colon + 1).trimmed();
        }
        if (accept != m_expectedAccept)
            return fail(QStringLiteral("wrong Sec-WebSocket-Accept"));
        m_upgraded = true;
        return true;
    }

    // Takes one whole frame off m_in; false when it is not all there yet.
    bool readFrame()
    {
        const std::optional<FrameHead> head = frameHead(m_in);
        if (!head || quint64(m_in.size()) < quint64(head->size) + head->length)
            return false;
        QByteArray payload = m_in.mid(head->size, qsizetype(head->length));
        if (head->masked) {
            protocolErrors.append(QStringLiteral("masked server frame")); // RFC 6455 5.1
            const QByteArray key = m_in.mid(head->size - 4, 4);
            for (qsizetype i = 0; i < payload.size(); ++i)
                payload[i] = char(payload.at(i) ^ key.at(i % 4));
        }
        m_in.remove(0, head->size + qsizetype(head->length));
        handleFrame(head->opcode, head->fin, payload);
        return true;
    }

    void handleFrame(quint8 opcode, bool fin, const QByteArray &payload)
    {
        switch (opcode) {
        case Ping:
            pings.append(payload);
            if (m_answerPings && !m_closeSent)
                sendFrame(Pong, payload);
            return;
        case Pong:
            pongs.append(payload);
            return;
        case Close:
            closeReceived = true;
            closeCode = payload.size() >= 2 ? qFromBigEndian<quint16>(payload.constData()) : 1005;
            closeReason = QString::fromUtf8(payload.mid(2));
            if (!m_closeSent) // RFC 6455 5.5.1: answer with a close frame
                sendClose(payload.size() >= 2 ? quint16(closeCode) : quint16(1000));
            return;
        case Text:
        case Binary:
            if (m_fragmenting)
                protocolErrors.append(QStringLiteral("new message inside a fragmented one"));
            m_fragmentBinary = opcode == Binary;
            m_fragments = payload;
            m_fragmenting = !fin;
            break;
        case Continuation:
            if (!m_fragmenting)
                protocolErrors.append(QStringLiteral("continuation without a message"));
            m_fragments += payload;
            m_fragmenting = !fin;
            break;
        default:
            protocolErrors.append(QStringLiteral("unknown opcode %1").arg(opcode));
            return;
        }
        if (fin)
            messages.append(DataMessage{m_fragments, m_fragmentBinary});
    }

    QTcpSocket m_socket;
    QByteArray m_in;
    QByteArray m_expectedAccept;
    QString m_error;
    bool m_upgraded = false;
    bool m_reading = true;
    bool m_answerPings = true;
    bool m_closeSent = false;
    bool m_fragmenting = false;
    bool m_fragmentBinary = false;
    QByteArray m_fragments;
};

} // namespace Middleman::Testing
