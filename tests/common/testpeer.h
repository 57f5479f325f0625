#pragma once
// Test helpers: a real QWebSocket peer that speaks the protocol, a raw TCP peer
// that can stop reading or ignore pings, and a broker on port 0. Header-only.

#include "broker.h"
#include "brokeroutput.h"
#include "codec.h"
#include "eventloop.h"

#include <QEventLoop>
#include <QSignalSpy>
#include <QTcpSocket>
#include <QTest>
#include <QTimer>
#include <QWebSocket>

#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include <sys/ioctl.h>

namespace Middleman::Testing {

// Like QTest::qWaitFor, but the thread runs its event loop throughout instead
// of sleeping 10 ms between rounds of events, which would add up to 20 ms to
// every round trip between two peers of the test's own.
template <typename Predicate>
bool waitWithoutSleeping(Predicate &&done, int timeoutMs)
{
    if (done())
        return true;
    QEventLoop loop;
    QTimer check;
    QObject::connect(&check, &QTimer::timeout, &loop, [&] {
        if (done())
            loop.quit();
    });
    QTimer::singleShot(timeoutMs, &loop, &QEventLoop::quit);
    check.start(1);
    loop.exec();
    return done();
}

inline const QByteArray kServiceKey = "service-secret-1";
inline const QByteArray kServiceKey2 = "service-secret-2";
inline const QByteArray kClientKey = "client-secret-1";

inline BrokerConfig testConfig()
{
    BrokerConfig config;
    config.port = 0;
    config.serviceKeys = {KeyConfig{QStringLiteral("svc"), kServiceKey},
                          KeyConfig{QStringLiteral("svc2"), kServiceKey2}};
    config.clientKeys = {KeyConfig{QStringLiteral("web"), kClientKey}};
    return config;
}

// A broker listening on 127.0.0.1 and a free port.
inline std::unique_ptr<Broker> startBroker(const BrokerConfig &config = testConfig())
{
    QString error;
    if (!config.validate(&error))
        qFatal("invalid test config: %s", qPrintable(error));
    auto broker = std::make_unique<Broker>(config);
    if (!broker->listen())
        qFatal("listen failed: %s", qPrintable(broker->errorString()));
    return broker;
}

class TestPeer : public QObject
{
    Q_OBJECT
public:
    explicit TestPeer(QObject *parent = nullptr) : QObject(parent)
    {
        connect(&socket, &QWebSocket::textMessageReceived, this, [this](const QString &text) {
            onFrame(text.toUtf8(), false);
        });
        connect(&socket, &QWebSocket::binaryMessageReceived, this,
                [this](const QByteArray &data) { onFrame(data, true); });
        connect(&socket, &QWebSocket::disconnected, this, [this] {
            closed = true;
            closeCode = int(socket.closeCode());
            closeReason = socket.closeReason();
        });
    }

    // Qt 6.4's ~QWebSocket leaks a string when it still has to close the
    // connection itself; dropping the connection first avoids that.
    ~TestPeer() override { socket.abort(); }

    // Opens the WebSocket, sends the key and waits for the exact "MM OK" frame.
    bool connectWithKey(const QUrl &url, const QByteArray &key)
    {
        socket.open(url);
        if (!QTest::qWaitFor([this] { return socket.state() == QAbstractSocket::ConnectedState || closed; }, 5000)
            || closed) {
            return false;
        }
        socket.sendTextMessage(QString::fromUtf8(key));
        return QTest::qWaitFor([this] { return !frames.isEmpty() || closed; }, 5000) && !closed
            && frames.first() == "MM OK";
    }

    void send(const QByteArray &wire) { socket.sendTextMessage(QString::fromUtf8(wire)); }
    void sendBinary(const QByteArray &wire) { socket.sendBinaryMessage(wire); }
    void send(const Message &message)
    {
        if (message.binary)
            sendBinary(serialize(message));
        else
            send(serialize(message));
    }

    // Waits until a received message satisfies `pred`; returns it (and removes
    // it from the queue) or an empty optional after the timeout.
    std::optional<Message> waitFor(const std::function<bool(const Message &)> &pred, int timeoutMs = 5000)
    {
        std::optional<Message> found;
        (void)QTest::qWaitFor(
            [&] {
                for (qsizetype i = 0; i < messages.size(); ++i) {
                    if (pred(messages.at(i))) {
                        found = messages.takeAt(i);
                        return true;
                    }
                }
                return false;
            },
            timeoutMs);
        return found;
    }
    std::optional<Message> waitFor(Command command, const QByteArray &target = {}, int timeoutMs = 5000)
    {
        return waitFor([&](const Message &m) { return m.command == command && (target.isNull() || m.target == target); },
                       timeoutMs);
    }
    bool waitForCount(qsizetype count, int timeoutMs = 5000)
    {
        return QTest::qWaitFor([&] { return messages.size() >= count; }, timeoutMs);
    }
    // Waits until the broker has handled everything this peer sent before: OPT is
    // answered by RES "-" with Status 200 in order with the rest (docs/protocol.md §4.7).
    bool sync(int timeoutMs = 5000)
    {
        static int counter = 0;
        const QByteArray tag = "sync-" + QByteArray::number(++counter);
        send(serialize(Message{Command::Opt, "-", {Header{"ReqID", tag}}, {}, false}));
        const std::optional<Message> res = waitFor(
            [&](const Message &m) { return m.command == Command::Res && m.header(HeaderName::ReqId) == tag; },
            timeoutMs);
        return res && res->header(HeaderName::Status) == "200";
    }
    bool waitForClose(int timeoutMs = 5000)
    {
        return QTest::qWaitFor([this] { return closed; }, timeoutMs);
    }

    QWebSocket socket;
    QList<QByteArray> frames;    // every frame as received
    QList<bool> frameIsBinary;
    QList<Message> messages;     // protocol messages parsed from frames after "MM OK"
    QList<ParseError> badFrames; // broker output the codec refused (must stay empty)
    // When set, messages go here instead of to `messages`: for a peer that
    // answers as it reads, or counts what it would not keep.
    std::function<void(const Message &)> onMessage;
    bool closed = false;
    int closeCode = -1;
    QString closeReason;

private:
    void onFrame(const QByteArray &data, bool binary)
    {
        frames.append(data);
        frameIsBinary.append(binary);
        if (data == "MM OK" && frames.size() == 1)
            return;
        readBrokerFrame(
            data, binary,
            [this](const Message &message) {
                if (onMessage)
                    onMessage(message);
                else
                    messages.append(message);
                return true;
            },
            [this](const ParseError &error) { badFrames.append(error); });
    }
};

// The peerDisconnected() emission for one peer, as (code, reason).
inline std::optional<std::pair<int, QString>> disconnectOf(const QSignalSpy &spy, quint64 id)
{
    for (const QList<QVariant> &args : spy) {
        if (args.at(0).toULongLong() == id)
            return std::make_pair(args.at(1).toInt(), args.at(2).toString());
    }
    return std::nullopt;
}

// The broker's id for a peer, found by the peer's local port.
inline quint64 peerIdByPort(const Broker &broker, quint16 localPort)
{
    const QList<PeerInfo> peers = broker.peers();
    for (const PeerInfo &peer : peers) {
        if (peer.port == localPort)
            return peer.id;
    }
    return 0;
}

// Builds a message in one expression: msg(Command::Pub, "a.b", {{"ReqID","1"}}, "body").
inline Message msg(Command command, const QByteArray &target, const QList<Header> &headers = {},
                   const QByteArray &body = {})
{
    Message m;
    m.command = command;
    m.target = target;
    m.headers = headers;
    m.body = body;
    return m;
}

// Pacing (docs/design.md, "Pacing"): `client` is held to one message a second
// with a burst of one, and `subscriber` is subscribed to "feed". The client's
// second message holds its input for a second; what it sends meanwhile, four
// messages of 256 KiB, waits unread in the kernel (TCP flow control sees it
// there), none of it in the broker's socket buffers; then everything arrives,
// in order. For ws:// and wss:// alike.
inline void checkHeldInputStaysInTheKernel(const Broker &broker, TestPeer &client, TestPeer &subscriber)
{
    const auto pub = [](int n, const QByteArray &body) {
        return serialize(msg(Command::Pub, "feed", {{"ReqID", QByteArray::number(n)}}, body));
    };
    client.send(pub(1, "first") + pub(2, "held"));
    QVERIFY(QTest::qWaitFor([&] { return broker.stats().inputPauses == 1; }, 5000));
    for (int n = 3; n <= 6; ++n)
        client.send(pub(n, QByteArray(256 * 1024, 'x')));
    // The broker's sockets for the client: for wss://, QSslSocket and the
    // TCP socket inside it.
    QList<QTcpSocket *> sockets;
    const QList<QTcpSocket *> all = broker.findChildren<QTcpSocket *>();
    for (QTcpSocket *socket : all) {
        if (socket->peerPort() == client.socket.localPort())
            sockets.append(socket);
    }
    QVERIFY(!sockets.isEmpty());
    const auto inKernel = [&] {
        int unread = 0;
        return ::ioctl(int(sockets.first()->socketDescriptor()), FIONREAD, &unread) == 0 ? unread : -1;
    };
    // Sampled on every turn of the loop until the hold ends (the second
    // message is routed): a socket reading on would show in its buffer.
    const quint64 id = peerIdByPort(broker, client.socket.localPort());
    qint64 mostBuffered = 0;
    int mostInKernel = 0;
    QVERIFY(QTest::qWaitFor(
        [&] {
            const std::optional<PeerInfo> info = broker.peer(id);
            if (!info || info->messagesIn > 1)
                return true;
            for (const QTcpSocket *socket : std::as_const(sockets))
                mostBuffered = qMax(mostBuffered, socket->bytesAvailable());
            mostInKernel = qMax(mostInKernel, inKernel());
            return false;
        },
        5000));
    QCOMPARE(mostBuffered, qint64(0));
    QVERIFY2(mostInKernel >= 64 * 1024, QByteArray::number(mostInKernel).constData());
    QVERIFY(subscriber.waitForCount(6, 15000));
    for (int n = 1; n <= 6; ++n)
        QCOMPARE(subscriber.messages.at(n - 1).header(HeaderName::ReqId), QByteArray::number(n));
    QVERIFY(client.sync(5000));
    QVERIFY(client.messages.isEmpty());
}

} // namespace Middleman::Testing
