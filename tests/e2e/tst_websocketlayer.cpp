// RFC 6455 on the wire (docs/design.md, "WebSocket layer"): the broker's own
// opening handshake (broker/net/upgrader.cpp, shared/websocket.cpp) and framing
// (broker/net/session.cpp) against hand-written clients on real loopback TCP:
// HTTP refusals, a key pipelined with the upgrade request, fragmented messages
// with control frames between the fragments, UTF-8 across fragments, protocol
// errors and their close codes, the close handshake from either side, a peer
// that drops TCP, the broker's pings, and a frame over max_frame_size.
//
// The peers are RawPeer (tests/common/rawpeer.h) where its bookkeeping is
// enough, and WirePeer below where the test must see the exact bytes or decide
// itself when to answer: the HTTP response, close payloads, when TCP ends.

#include "rawpeer.h"
#include "testpeer.h"

#include "epolldispatcher.h"

#include <QAbstractEventDispatcher>
#include <QHostAddress>
#include <QRandomGenerator>

#include <sys/socket.h>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

// RFC 6455 7.4.1 codes.
constexpr int kCloseNormal = 1000;
constexpr int kCloseProtocolError = 1002;
constexpr int kCloseNoStatus = 1005;
constexpr int kCloseAbnormal = 1006;
constexpr int kCloseInvalidPayload = 1007;
constexpr int kCloseTooBig = 1009;

// The example of RFC 6455 1.3: a key and the Sec-WebSocket-Accept it must get.
const QByteArray kSampleKey = "dGhlIHNhbXBsZSBub25jZQ==";
const QByteArray kSampleAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// An opening handshake as a browser sends it, with the parts a row changes.
QByteArray upgradeRequest(const QByteArray &method = "GET", const QByteArray &version = "13",
                          const QByteArray &key = kSampleKey)
{
    QByteArray request = method + " /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                  "Connection: Upgrade\r\n";
    if (!key.isEmpty())
        request += "Sec-WebSocket-Key: " + key + "\r\n";
    request += "Sec-WebSocket-Version: " + version + "\r\n\r\n";
    return request;
}

QByteArray closePayload(quint16 code, const QByteArray &reason = {})
{
    QByteArray payload(2, Qt::Uninitialized);
    qToBigEndian(code, payload.data());
    return payload + reason;
}

quint32 randomMask()
{
    return QRandomGenerator::global()->generate();
}

// The header of a masked client frame announcing `length` payload bytes, with
// a random masking key, and none of the payload.
QByteArray maskedHeader(quint8 opcode, quint64 length, bool fin = true)
{
    return Testing::maskedHeader(opcode, length, randomMask(), fin);
}

// `wire` cut at the given offsets into the fragments of one text message.
QList<QByteArray> cutAt(const QByteArray &wire, const QList<qsizetype> &cuts)
{
    QList<QByteArray> parts;
    qsizetype from = 0;
    for (const qsizetype cut : cuts) {
        parts.append(wire.sliced(from, cut - from));
        from = cut;
    }
    parts.append(wire.sliced(from));
    return parts;
}

// Sends a text message as these fragments: Text (FIN=0), Continuation..., the
// last with FIN=1.
void sendFragments(RawPeer &peer, const QList<QByteArray> &parts)
{
    for (qsizetype i = 0; i < parts.size(); ++i)
        peer.sendFrame(i == 0 ? RawPeer::Text : RawPeer::Continuation, parts.at(i), i == parts.size() - 1);
}

// Waits until the broker has handled everything `peer` sent before (an OPT
// round trip, docs/protocol.md §4.7), then returns the protocol messages the peer
// received meanwhile, the OPT's answer left out, and forgets them.
std::optional<QList<Message>> syncAndTake(RawPeer &peer)
{
    static int counter = 0;
    const QByteArray tag = "wl-sync-" + QByteArray::number(++counter);
    peer.sendText(serialize(msg(Command::Opt, "-", {{"ReqID", tag}})));
    QList<Message> received;
    bool synced = false;
    const bool ok = QTest::qWaitFor(
        [&] {
            while (!peer.messages.isEmpty()) {
                const RawPeer::DataMessage frame = peer.messages.takeFirst();
                for (const Message &message : brokerMessages(frame.payload, frame.binary)) {
                    if (message.command == Command::Res && message.header(HeaderName::ReqId) == tag)
                        synced = message.header(HeaderName::Status) == "200";
                    else
                        received.append(message);
                }
            }
            return synced;
        },
        5000);
    if (!ok)
        return std::nullopt;
    return received;
}

// A WebSocket client on a bare QTcpSocket that shows everything on the wire:
// the HTTP response byte for byte, then every server frame with its flags, and
// how many frames had come when the TCP connection ended. It writes only what
// the test tells it to: no pongs, no close answers, never a FIN of its own.
// No Q_OBJECT: lambdas with the socket as context.
class WirePeer
{
public:
    struct Frame
    {
        quint8 opcode = 0;
        bool fin = false;
        quint8 rsv = 0; // RSV1-3 bits as sent (0x70)
        bool masked = false;
        QByteArray payload;
    };

    WirePeer()
    {
        QObject::connect(&m_socket, &QTcpSocket::readyRead, &m_socket, [this] { onReadyRead(); });
        QObject::connect(&m_socket, &QTcpSocket::disconnected, &m_socket, [this] {
            if (m_socket.isReadable())
                onReadyRead(); // what is still buffered came before the end
            disconnected = true;
            framesBeforeDisconnect = frames.size();
        });
    }
    ~WirePeer() { m_socket.disconnect(); } // no handler runs on a half-destroyed peer
    WirePeer(const WirePeer &) = delete;
    WirePeer &operator=(const WirePeer &) = delete;

    bool connectTo(quint16 port)
    {
        m_socket.connectToHost(QHostAddress(QHostAddress::LocalHost), port);
        return QTest::qWaitFor([this] { return m_socket.state() == QAbstractSocket::ConnectedState; }, 5000);
    }

    // Everything in one send(): the bytes leave together.
    void write(const QByteArray &bytes)
    {
        m_socket.write(bytes);
        m_socket.flush();
    }
    void sendFrame(quint8 opcode, const QByteArray &payload, bool fin = true)
    {
        write(maskedFrame(opcode, payload, randomMask(), fin));
    }

    // Connects and sends the upgrade request with `after` in the same write;
    // true once the 101 response is in.
    bool open(quint16 port, const QByteArray &after = {})
    {
        if (!connectTo(port))
            return false;
        write(upgradeRequest() + after);
        return QTest::qWaitFor([this] { return headDone || disconnected; }, 5000) && upgraded;
    }

    // open() and the key; true once the first frame is exactly the text "MM OK".
    bool login(quint16 port, const QByteArray &key)
    {
        if (!open(port))
            return false;
        sendFrame(RawPeer::Text, key);
        if (!QTest::qWaitFor([this] { return !frames.isEmpty() || disconnected; }, 5000) || frames.isEmpty())
            return false;
        const Frame first = frames.takeFirst();
        return first.opcode == RawPeer::Text && first.fin && first.payload == "MM OK";
    }

    // The server's frames of one opcode.
    QList<Frame> framesOf(quint8 opcode) const
    {
        QList<Frame> out;
        for (const Frame &frame : frames) {
            if (frame.opcode == opcode)
                out.append(frame);
        }
        return out;
    }

    QTcpSocket &socket() { return m_socket; }
    quint16 localPort() const { return m_socket.localPort(); }

    QByteArray received;      // every byte from the server
    QByteArray head;          // the HTTP response head, up to and with the empty line
    bool headDone = false;
    bool upgraded = false;    // the head is a 101 with the right Sec-WebSocket-Accept
    QList<Frame> frames;      // after the 101, in order
    bool disconnected = false;
    qsizetype framesBeforeDisconnect = -1;
    QStringList problems;     // what a server must never send (RFC 6455 5.1, 5.2)

private:
    void onReadyRead()
    {
        const QByteArray bytes = m_socket.readAll();
        received += bytes;
        m_in += bytes;
        if (!headDone) {
            const qsizetype end = m_in.indexOf("\r\n\r\n");
            if (end < 0)
                return;
            headDone = true;
            head = m_in.left(end + 4);
            m_in.remove(0, end + 4);
            upgraded = head.startsWith("HTTP/1.1 101 ") && headerValue("Sec-WebSocket-Accept") == kSampleAccept;
            if (!upgraded)
                return;
        }
        if (!upgraded)
            return;
        while (readFrame()) {
        }
    }

    QByteArray headerValue(QByteArrayView name) const
    {
        for (const QByteArray &line : head.split('\n')) {
            const qsizetype colon = line.indexOf(':');
            if (colon > 0 && QByteArrayView(line).first(colon).trimmed().compare(name, Qt::CaseInsensitive) == 0)
                return line.mid(colon + 1).trimmed();
        }
        return {};
    }

    bool readFrame()
    {
        const std::optional<FrameHead> frameHeader = frameHead(m_in);
        if (!frameHeader || quint64(m_in.size()) < quint64(frameHeader->size) + frameHeader->length)
            return false;
        Frame frame;
        frame.opcode = frameHeader->opcode;
        frame.fin = frameHeader->fin;
        frame.rsv = quint8(m_in.at(0)) & 0x70;
        frame.masked = frameHeader->masked;
        frame.payload = m_in.mid(frameHeader->size, qsizetype(frameHeader->length));
        if (frame.masked)
            problems.append(QStringLiteral("masked server frame"));
        if (frame.rsv)
            problems.append(QStringLiteral("RSV bits set"));
        if (disconnected || framesBeforeDisconnect >= 0)
            problems.append(QStringLiteral("frame after the end"));
        m_in.remove(0, frameHeader->size + qsizetype(frameHeader->length));
        frames.append(frame);
        return true;
    }

    QTcpSocket m_socket;
    QByteArray m_in;
};

} // namespace

class tst_WebSocketLayer : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void cleanup();
    void upgradeRefused_data();
    void upgradeRefused();
    void keyPipelinedWithUpgrade_data();
    void keyPipelinedWithUpgrade();
    void fragmentedMessageWithPing();
    void utf8AcrossFragments_data();
    void utf8AcrossFragments();
    void protocolError_data();
    void protocolError();
    void peerCloses_data();
    void peerCloses();
    void peerDropsTcp_data();
    void peerDropsTcp();
    void brokerCloses();
    void brokerPings();
    void frameOverLimitByHeader_data();
    void frameOverLimitByHeader();
    void inputReadDirectly();

private:
    std::unique_ptr<Broker> m_broker;
};

void tst_WebSocketLayer::cleanup()
{
    m_broker.reset();
}

void tst_WebSocketLayer::upgradeRefused_data()
{
    QTest::addColumn<QByteArray>("request");
    QTest::addColumn<int>("status");
    QTest::addColumn<QByteArray>("headerLine"); // a line the response must hold; empty: none

    QTest::addRow("garbage line") << QByteArray("hello\r\n\r\n") << 400 << QByteArray();
    QTest::addRow("POST") << upgradeRequest("POST") << 405 << QByteArray("Allow: GET");
    QTest::addRow("version 8") << upgradeRequest("GET", "8") << 426 << QByteArray("Sec-WebSocket-Version: 13");
    QTest::addRow("no Sec-WebSocket-Key") << upgradeRequest("GET", "13", {}) << 400 << QByteArray();
    // Over the 16 KiB the broker reads of a request, and no empty line ever.
    QTest::addRow("20 KiB header, no end")
        << QByteArray("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + QByteArray(20 * 1024, 'a')) << 431
        << QByteArray();
}

void tst_WebSocketLayer::upgradeRefused()
{
    // An upgrade the broker will not make is answered with an HTTP error, and the
    // broker then ends the connection itself. No session is made.
    QFETCH(QByteArray, request);
    QFETCH(int, status);
    QFETCH(QByteArray, headerLine);
    m_broker = startBroker();
    const BrokerStats before = m_broker->stats();

    WirePeer peer;
    QVERIFY(peer.connectTo(m_broker->serverPort()));
    peer.write(request);
    QTRY_VERIFY(peer.disconnected);
    // The broker closed, the peer did not.
    QCOMPARE(peer.socket().error(), QAbstractSocket::RemoteHostClosedError);

    const QByteArray statusLine = "HTTP/1.1 " + QByteArray::number(status) + ' ';
    QVERIFY2(peer.received.startsWith(statusLine), peer.received.left(200).constData());
    QVERIFY2(peer.headDone, peer.received.left(200).constData());
    QVERIFY(!peer.upgraded);
    QList<QByteArray> lines;
    for (const QByteArray &line : peer.head.split('\n'))
        lines.append(line.trimmed());
    if (!headerLine.isEmpty())
        QVERIFY2(lines.contains(headerLine), peer.head.constData());
    // A whole response: the body is exactly Content-Length bytes.
    QByteArray contentLength;
    for (const QByteArray &line : lines) {
        if (line.toLower().startsWith("content-length:"))
            contentLength = line.mid(15).trimmed();
    }
    QVERIFY2(!contentLength.isEmpty(), peer.head.constData());
    QCOMPARE(peer.received.size() - peer.head.size(), contentLength.toLongLong());

    const BrokerStats after = m_broker->stats();
    QCOMPARE(after.upgradesRefused, before.upgradesRefused + 1);
    QCOMPARE(after.upgradeTimeouts, before.upgradeTimeouts);
    QCOMPARE(after.connectionsAccepted, before.connectionsAccepted);
    QVERIFY(m_broker->peers().isEmpty());
    QCOMPARE(m_broker->connectionCount(), 0);
    // The refused socket goes with its connection.
    QTRY_VERIFY(m_broker->findChildren<QAbstractSocket *>().isEmpty());
}

void tst_WebSocketLayer::keyPipelinedWithUpgrade_data()
{
    QTest::addColumn<bool>("withOpt"); // a first protocol message in the same write too
    QTest::addRow("request and key") << false;
    QTest::addRow("request, key and OPT") << true;
}

void tst_WebSocketLayer::keyPipelinedWithUpgrade()
{
    // A client may send its first frames right behind the upgrade request,
    // before the 101 has come (RFC 6455 4.1 does not forbid it): nothing of them
    // may be lost.
    QFETCH(bool, withOpt);
    m_broker = startBroker();
    WirePeer peer;
    QByteArray after = maskedFrame(RawPeer::Text, kClientKey, randomMask());
    if (withOpt)
        after += maskedFrame(RawPeer::Text, serialize(msg(Command::Opt, "-", {{"ReqID", "o1"}})), randomMask());
    QVERIFY(peer.open(m_broker->serverPort(), after));
    QVERIFY2(peer.head.startsWith("HTTP/1.1 101 Switching Protocols\r\n"), peer.head.constData());

    QTRY_COMPARE(peer.frames.size(), withOpt ? 2 : 1);
    QCOMPARE(peer.frames.at(0).opcode, quint8(RawPeer::Text));
    QVERIFY(peer.frames.at(0).fin);
    QCOMPARE(peer.frames.at(0).payload, QByteArray("MM OK"));
    if (withOpt) {
        const QList<Message> answer = brokerMessages(peer.frames.at(1).payload, false);
        QCOMPARE(answer.size(), 1);
        QCOMPARE(answer.first().command, Command::Res);
        QCOMPARE(answer.first().header(HeaderName::ReqId), QByteArray("o1"));
        QCOMPARE(answer.first().header(HeaderName::Status), QByteArray("200"));
    }
    QVERIFY2(peer.problems.isEmpty(), qPrintable(peer.problems.join(u", ")));
    QCOMPARE(m_broker->stats().handshakesCompleted, quint64(1));
    QCOMPARE(m_broker->peers().size(), 1);
    QCOMPARE(m_broker->peers().first().port, peer.localPort());
    QVERIFY(!peer.disconnected);
}

void tst_WebSocketLayer::fragmentedMessageWithPing()
{
    // A PUB in three fragments with a ping between the first two: the ping is
    // answered at once, in the middle of the message (RFC 6455 5.4, 5.5.2), and
    // the message is routed once, whole.
    m_broker = startBroker();
    RawPeer subscriber;
    RawPeer publisher;
    QVERIFY2(subscriber.connectWithKey(m_broker->serverUrl(), kServiceKey), qPrintable(subscriber.errorString()));
    QVERIFY2(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2), qPrintable(publisher.errorString()));
    QSignalSpy subscribed(m_broker.get(), &Broker::subscriptionAdded);
    subscriber.sendText(serialize(msg(Command::Sub, "frag.t")));
    QTRY_COMPARE(subscribed.size(), 1);

    const QByteArray body = "one fragment, two fragments, three fragments";
    const QByteArray wire = serialize(msg(Command::Pub, "frag.t", {{"ReqID", "f1"}}, body));
    const QList<QByteArray> parts = cutAt(wire, {wire.size() / 3, 2 * wire.size() / 3});
    QCOMPARE(parts.size(), 3);

    publisher.sendFrame(RawPeer::Text, parts.at(0), false);
    publisher.sendPing("p1");
    QTRY_COMPARE(publisher.pongs.size(), 1);
    QCOMPARE(publisher.pongs.first(), QByteArray("p1"));
    QCOMPARE(m_broker->stats().publishes, quint64(0)); // nothing routed of half a message
    publisher.sendFrame(RawPeer::Continuation, parts.at(1), false);
    publisher.sendFrame(RawPeer::Continuation, parts.at(2), true);

    // The publisher's PUB is routed before its OPT is answered, and then the
    // subscriber's OPT comes back after the delivery.
    const std::optional<QList<Message>> publisherGot = syncAndTake(publisher);
    QVERIFY(publisherGot);
    QVERIFY(publisherGot->isEmpty()); // no ERR
    const std::optional<QList<Message>> delivered = syncAndTake(subscriber);
    QVERIFY(delivered);
    QCOMPARE(delivered->size(), 1);
    const Message &pub = delivered->first();
    QCOMPARE(pub.command, Command::Pub);
    QCOMPARE(pub.target, QByteArray("frag.t"));
    QCOMPARE(pub.header(HeaderName::ReqId), QByteArray("f1"));
    QVERIFY(pub.hasHeader(HeaderName::ClientId)); // delivered to a service (docs/protocol.md §5)
    QCOMPARE(pub.body, body);
    QVERIFY(!pub.binary); // the frame type the message came in

    QCOMPARE(m_broker->stats().publishes, quint64(1));
    QCOMPARE(publisher.pongs.size(), 1);
    for (RawPeer *peer : {&subscriber, &publisher}) {
        QVERIFY(!peer->closeReceived);
        QVERIFY(!peer->disconnected);
        QVERIFY2(peer->protocolErrors.isEmpty(), qPrintable(peer->protocolErrors.join(u", ")));
    }
    QCOMPARE(m_broker->stats().protocolCloses, quint64(0));
}

void tst_WebSocketLayer::utf8AcrossFragments_data()
{
    // Where the fragments are cut, counted in bytes into the "€" (E2 82 AC).
    QTest::addColumn<QList<int>>("cutsInEuro");
    QTest::addRow("after its 1st byte") << QList<int>{1};
    QTest::addRow("after its 2nd byte") << QList<int>{2};
    QTest::addRow("one byte per fragment") << QList<int>{1, 2};
}

void tst_WebSocketLayer::utf8AcrossFragments()
{
    // RFC 6455 8.1: UTF-8 is checked on the whole message; a character may be
    // split between fragments.
    QFETCH(QList<int>, cutsInEuro);
    m_broker = startBroker();
    RawPeer subscriber;
    RawPeer publisher;
    QVERIFY2(subscriber.connectWithKey(m_broker->serverUrl(), kServiceKey), qPrintable(subscriber.errorString()));
    QVERIFY2(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2), qPrintable(publisher.errorString()));
    QSignalSpy subscribed(m_broker.get(), &Broker::subscriptionAdded);
    subscriber.sendText(serialize(msg(Command::Sub, "price")));
    QTRY_COMPARE(subscribed.size(), 1);

    const QByteArray body = "5 \xE2\x82\xAC net";
    const QByteArray wire = serialize(msg(Command::Pub, "price", {}, body));
    const qsizetype euro = wire.indexOf("\xE2\x82\xAC");
    QVERIFY(euro > 0);
    QList<qsizetype> cuts;
    for (const int cut : std::as_const(cutsInEuro))
        cuts.append(euro + cut);
    const QList<QByteArray> parts = cutAt(wire, cuts);
    QVERIFY(!QByteArrayView(parts.first()).isValidUtf8()); // the first fragment alone is not UTF-8
    sendFragments(publisher, parts);

    const std::optional<QList<Message>> publisherGot = syncAndTake(publisher);
    QVERIFY(publisherGot);
    QVERIFY(publisherGot->isEmpty());
    const std::optional<QList<Message>> delivered = syncAndTake(subscriber);
    QVERIFY(delivered);
    QCOMPARE(delivered->size(), 1);
    QCOMPARE(delivered->first().command, Command::Pub);
    QCOMPARE(delivered->first().body, body);
    QVERIFY(!delivered->first().binary);
    QVERIFY(!publisher.closeReceived);
    QCOMPARE(m_broker->stats().protocolCloses, quint64(0));
    QVERIFY(subscriber.protocolErrors.isEmpty());
}

void tst_WebSocketLayer::protocolError_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<int>("code");

    QTest::addRow("unmasked frame") << QByteArray("\x81\x05hello", 7) << kCloseProtocolError;
    QByteArray rsv1 = maskedFrame(RawPeer::Text, "PUB t\n\n.\n", randomMask());
    rsv1[0] = char(quint8(rsv1.at(0)) | 0x40);
    QTest::addRow("RSV1 set") << rsv1 << kCloseProtocolError;
    QTest::addRow("text not UTF-8") << maskedFrame(RawPeer::Text, "PUB t\n\n\xFF\xFE\n.\n", randomMask())
                                    << kCloseInvalidPayload;
    QTest::addRow("continuation without a message")
        << maskedFrame(RawPeer::Continuation, "PUB t\n\n.\n", randomMask()) << kCloseProtocolError;
    // More of RFC 6455 5.2, 5.4, 5.5, 7.4 and 8.1.
    QTest::addRow("text cut inside a character")
        << maskedFrame(RawPeer::Text, "PUB t\n\n\xE2\x82", randomMask(), false)
               + maskedFrame(RawPeer::Continuation, "\n.\n", randomMask())
        << kCloseInvalidPayload;
    QTest::addRow("new message inside a fragmented one")
        << maskedFrame(RawPeer::Text, "PUB t\n", randomMask(), false)
               + maskedFrame(RawPeer::Text, "\n.\n", randomMask())
        << kCloseProtocolError;
    QTest::addRow("unknown opcode 3") << maskedFrame(0x3, "x", randomMask()) << kCloseProtocolError;
    QTest::addRow("fragmented ping") << maskedFrame(RawPeer::Ping, "p", randomMask(), false) << kCloseProtocolError;
    QTest::addRow("ping over 125 bytes") << maskedFrame(RawPeer::Ping, QByteArray(126, 'p'), randomMask())
                                         << kCloseProtocolError;
    QTest::addRow("close with a 1-byte payload") << maskedFrame(RawPeer::Close, "\x03", randomMask())
                                                 << kCloseProtocolError;
    QTest::addRow("close code 1005 on the wire")
        << maskedFrame(RawPeer::Close, closePayload(1005), randomMask()) << kCloseProtocolError;
    QTest::addRow("close reason not UTF-8")
        << maskedFrame(RawPeer::Close, closePayload(1000, "\xC3"), randomMask()) << kCloseInvalidPayload;
}

void tst_WebSocketLayer::protocolError()
{
    // A peer that breaks RFC 6455 is closed with the code for what it broke:
    // the broker sends its close frame and then ends TCP (7.1.7), counts it and
    // reports the code.
    QFETCH(QByteArray, bytes);
    QFETCH(int, code);
    m_broker = startBroker();
    QSignalSpy left(m_broker.get(), &Broker::peerDisconnected);
    bool closeFrameBeforeEnd = false; // outlives the peer, whose end sets it
    RawPeer peer;
    QVERIFY2(peer.connectWithKey(m_broker->serverUrl(), kClientKey), qPrintable(peer.errorString()));
    const quint64 id = peerIdByPort(*m_broker, peer.localPort());
    QVERIFY(id != 0);
    QObject::connect(&peer.socket(), &QTcpSocket::disconnected, &peer.socket(),
                     [&] { closeFrameBeforeEnd = peer.closeReceived; });

    peer.socket().write(bytes);
    QVERIFY(peer.waitForCloseFrame());
    QCOMPARE(peer.closeCode, code);
    QVERIFY(!peer.closeReason.isEmpty()); // the reason says what was wrong
    QVERIFY(peer.waitForDisconnected());
    QVERIFY(closeFrameBeforeEnd);
    QTRY_VERIFY(disconnectOf(left, id).has_value());
    QCOMPARE(disconnectOf(left, id)->first, code);
    QCOMPARE(left.size(), 1);

    const BrokerStats stats = m_broker->stats();
    QCOMPARE(stats.protocolCloses, quint64(1));
    QCOMPARE(stats.disconnects, quint64(1));
    QCOMPARE(stats.messagesIn, quint64(0)); // nothing of the bad frame was read as a message
    QCOMPARE(m_broker->connectionCount(), 0);
    QVERIFY(peer.messages.isEmpty());
    QVERIFY2(peer.protocolErrors.isEmpty(), qPrintable(peer.protocolErrors.join(u", ")));
}

void tst_WebSocketLayer::peerCloses_data()
{
    QTest::addColumn<QByteArray>("payload"); // of the peer's close frame
    QTest::addColumn<int>("code");           // reported by peerDisconnected(), and echoed
    QTest::addColumn<QString>("reason");

    QTest::addRow("4000 bye") << closePayload(4000, "bye") << 4000 << QStringLiteral("bye");
    QTest::addRow("1000 without reason") << closePayload(1000) << kCloseNormal << QString();
    QTest::addRow("empty payload") << QByteArray() << kCloseNoStatus << QString();
}

void tst_WebSocketLayer::peerCloses()
{
    // The peer starts the close: the broker answers with a close frame echoing
    // the code (none when the peer sent none, RFC 6455 5.5.1), and then the
    // broker ends TCP itself (7.1.1) while the peer waits.
    QFETCH(QByteArray, payload);
    QFETCH(int, code);
    QFETCH(QString, reason);
    m_broker = startBroker();
    QSignalSpy left(m_broker.get(), &Broker::peerDisconnected);
    WirePeer peer;
    QVERIFY(peer.login(m_broker->serverPort(), kClientKey));
    const quint64 id = peerIdByPort(*m_broker, peer.localPort());
    QVERIFY(id != 0);

    peer.sendFrame(RawPeer::Close, payload);
    QTRY_VERIFY(peer.disconnected);
    // The peer never closed: the end came from the broker.
    QCOMPARE(peer.socket().error(), QAbstractSocket::RemoteHostClosedError);
    QCOMPARE(peer.frames.size(), 1);
    QCOMPARE(peer.framesBeforeDisconnect, 1);
    const WirePeer::Frame close = peer.frames.first();
    QCOMPARE(close.opcode, quint8(RawPeer::Close));
    QVERIFY(close.fin);
    if (code == kCloseNoStatus) {
        QCOMPARE(close.payload, QByteArray());
    } else {
        QVERIFY(close.payload.size() >= 2);
        QCOMPARE(int(qFromBigEndian<quint16>(close.payload.constData())), code);
        QVERIFY(QByteArrayView(close.payload).sliced(2).isValidUtf8());
    }
    QVERIFY2(peer.problems.isEmpty(), qPrintable(peer.problems.join(u", ")));

    QTRY_VERIFY(disconnectOf(left, id).has_value());
    QCOMPARE(disconnectOf(left, id)->first, code);
    QCOMPARE(disconnectOf(left, id)->second, reason);
    QCOMPARE(m_broker->stats().protocolCloses, quint64(0));
    QCOMPARE(m_broker->stats().disconnects, quint64(1));
    QCOMPARE(m_broker->connectionCount(), 0);
}

void tst_WebSocketLayer::peerDropsTcp_data()
{
    QTest::addColumn<QByteArray>("before"); // sent just before the connection goes
    QTest::addColumn<bool>("reset");        // RST (SO_LINGER 0) rather than FIN

    QTest::addRow("idle, FIN") << QByteArray() << false;
    QTest::addRow("idle, RST") << QByteArray() << true;
    QTest::addRow("inside a fragmented message, FIN")
        << maskedFrame(RawPeer::Text, "PUB t\n", randomMask(), false) << false;
    QTest::addRow("inside a frame, FIN") << maskedHeader(RawPeer::Text, 100) + "PUB" << false;
}

void tst_WebSocketLayer::peerDropsTcp()
{
    // Gone without a close frame: 1006 (RFC 6455 7.1.5), which is never sent.
    QFETCH(QByteArray, before);
    QFETCH(bool, reset);
    m_broker = startBroker();
    QSignalSpy left(m_broker.get(), &Broker::peerDisconnected);
    RawPeer peer;
    QVERIFY2(peer.connectWithKey(m_broker->serverUrl(), kServiceKey), qPrintable(peer.errorString()));
    const quint64 id = peerIdByPort(*m_broker, peer.localPort());
    QVERIFY(id != 0);

    if (!before.isEmpty()) {
        peer.socket().write(before);
        QVERIFY(peer.socket().flush());
    }
    if (reset) {
        const linger noLinger{1, 0};
        QCOMPARE(::setsockopt(int(peer.socket().socketDescriptor()), SOL_SOCKET, SO_LINGER, &noLinger,
                              sizeof noLinger),
                 0);
        peer.socket().abort();
    } else {
        peer.socket().disconnectFromHost();
    }
    QTRY_VERIFY(disconnectOf(left, id).has_value());
    QCOMPARE(disconnectOf(left, id)->first, kCloseAbnormal);
    QCOMPARE(left.size(), 1);
    QCOMPARE(m_broker->stats().disconnects, quint64(1));
    QCOMPARE(m_broker->stats().protocolCloses, quint64(0));
    QCOMPARE(m_broker->connectionCount(), 0);
    QTRY_VERIFY(m_broker->findChildren<QAbstractSocket *>().isEmpty());
}

void tst_WebSocketLayer::brokerCloses()
{
    // An operator's close: the peer gets close 1000 with the reason, the broker
    // waits for the peer's close frame, and then ends TCP itself (RFC 6455 7.1.1).
    m_broker = startBroker();
    QSignalSpy left(m_broker.get(), &Broker::peerDisconnected);
    TestPeer bystander;
    QVERIFY(bystander.connectWithKey(m_broker->serverUrl(), kServiceKey));
    WirePeer peer;
    QVERIFY(peer.login(m_broker->serverPort(), kClientKey));
    const quint64 id = peerIdByPort(*m_broker, peer.localPort());
    QVERIFY(id != 0);

    QVERIFY(m_broker->disconnectPeer(id, QStringLiteral("x")));
    QTRY_COMPARE(peer.frames.size(), 1);
    const WirePeer::Frame close = peer.frames.first();
    QCOMPARE(close.opcode, quint8(RawPeer::Close));
    QVERIFY(close.fin);
    QCOMPARE(close.payload, closePayload(kCloseNormal, "x"));

    // Several turns of the broker's loop later (a round trip on another
    // connection), the connection is still there: the broker waits for the answer.
    QVERIFY(bystander.sync());
    QVERIFY(!peer.disconnected);
    QCOMPARE(m_broker->connectionCount(), 2);
    QVERIFY(left.isEmpty());

    peer.sendFrame(RawPeer::Close, closePayload(kCloseNormal));
    QTRY_VERIFY(peer.disconnected);
    QCOMPARE(peer.socket().error(), QAbstractSocket::RemoteHostClosedError);
    QCOMPARE(peer.frames.size(), 1); // the peer's close got no second close frame
    QVERIFY2(peer.problems.isEmpty(), qPrintable(peer.problems.join(u", ")));
    QTRY_VERIFY(disconnectOf(left, id).has_value());
    QCOMPARE(disconnectOf(left, id)->first, kCloseNormal);
    QCOMPARE(disconnectOf(left, id)->second, QStringLiteral("x"));
    QCOMPARE(m_broker->connectionCount(), 1);
    QVERIFY(bystander.sync());
    QVERIFY(!bystander.closed);
}

void tst_WebSocketLayer::brokerPings()
{
    // Section 6: the broker pings an idle peer with an empty payload every
    // interval; a peer that answers stays. Without the pongs this peer would be
    // closed at the third sweep (two missed pings); tst_flowcontrol's
    // idlePeerClosed checks that close.
    BrokerConfig config = testConfig();
    config.pingIntervalMs = 250;
    config.maxMissedPings = 2;
    m_broker = startBroker(config);
    QSignalSpy left(m_broker.get(), &Broker::peerDisconnected);
    RawPeer peer; // answers every ping with a pong of the same payload
    QVERIFY2(peer.connectWithKey(m_broker->serverUrl(), kClientKey), qPrintable(peer.errorString()));

    QTRY_VERIFY_WITH_TIMEOUT(peer.pings.size() >= 4, 10000);
    for (const QByteArray &ping : std::as_const(peer.pings))
        QCOMPARE(ping, QByteArray());
    QVERIFY(!peer.closeReceived);
    QVERIFY(!peer.disconnected);
    QVERIFY(left.isEmpty());
    QCOMPARE(m_broker->stats().idleClosed, quint64(0));
    QCOMPARE(m_broker->connectionCount(), 1);
    const std::optional<QList<Message>> got = syncAndTake(peer);
    QVERIFY(got);
    QVERIFY(got->isEmpty());
    QVERIFY2(peer.protocolErrors.isEmpty(), qPrintable(peer.protocolErrors.join(u", ")));
}

void tst_WebSocketLayer::frameOverLimitByHeader_data()
{
    QTest::addColumn<QByteArray>("bytes"); // never the payload the last header announces
    QTest::addRow("1 MiB frame, 64-bit length") << maskedHeader(RawPeer::Text, 1024 * 1024);
    QTest::addRow("2000-byte frame, 16-bit length") << maskedHeader(RawPeer::Text, 2000);
    QTest::addRow("continuation over the message limit")
        << maskedFrame(RawPeer::Text, QByteArray(1000, 'a'), randomMask(), false)
               + maskedHeader(RawPeer::Continuation, 100);
}

void tst_WebSocketLayer::frameOverLimitByHeader()
{
    // Over max_frame_size the header is enough: close 1009 without waiting for
    // the payload (which never comes here).
    QFETCH(QByteArray, bytes);
    BrokerConfig config = testConfig();
    config.codec.maxMessageSize = 1024;
    config.maxFrameSize = 1024;
    m_broker = startBroker(config);
    QSignalSpy left(m_broker.get(), &Broker::peerDisconnected);
    RawPeer peer;
    QVERIFY2(peer.connectWithKey(m_broker->serverUrl(), kServiceKey), qPrintable(peer.errorString()));
    const quint64 id = peerIdByPort(*m_broker, peer.localPort());
    QVERIFY(id != 0);

    peer.socket().write(bytes);
    QVERIFY(peer.waitForCloseFrame());
    QCOMPARE(peer.closeCode, kCloseTooBig);
    QVERIFY(peer.waitForDisconnected());
    QTRY_VERIFY(disconnectOf(left, id).has_value());
    QCOMPARE(disconnectOf(left, id)->first, kCloseTooBig);
    QCOMPARE(m_broker->stats().protocolCloses, quint64(1));
    QCOMPARE(m_broker->stats().messagesIn, quint64(0));
    QVERIFY(peer.messages.isEmpty());
}

// Under the broker's event dispatcher a ws:// session takes its input itself,
// one read() per readiness (docs/design.md, "Direct reads"); with
// MIDDLEMAN_EVENT_DISPATCHER=qt (the *_qtdispatcher run) Qt's socket reads it.
// Either way every message arrives (the other tests of this suite).
void tst_WebSocketLayer::inputReadDirectly()
{
    m_broker = startBroker();
    RawPeer peer;
    QVERIFY2(peer.connectWithKey(m_broker->serverUrl(), kServiceKey), qPrintable(peer.errorString()));
    auto *epoll = qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance());
    QCOMPARE(epoll == nullptr, qEnvironmentVariable("MIDDLEMAN_EVENT_DISPATCHER") == QLatin1String("qt"));
    const quint64 before = epoll ? epoll->directReads() : 0;
    for (int i = 0; i < 3; ++i) {
        const std::optional<QList<Message>> got = syncAndTake(peer); // one OPT round trip
        QVERIFY(got);
        QVERIFY(got->isEmpty());
    }
    if (epoll)
        QVERIFY2(epoll->directReads() >= before + 3, qPrintable(QString::number(epoll->directReads() - before)));
    QCOMPARE(m_broker->stats().messagesIn, quint64(3));
}

QTEST_GUILESS_MAIN(tst_WebSocketLayer)

#include "tst_websocketlayer.moc"
