// docs/protocol.md §1 (pings), §3.8 (malformed input), §4.7 (OPT), §6 (slow consumers) and
// §7 (limits): what the broker does with peers that read too slowly, stop
// answering pings, send too much or send garbage.

#include "rawpeer.h"
#include "testpeer.h"

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

// RFC 6455 7.4.1 codes the broker closes with.
constexpr int kCloseGoingAway = 1001;
constexpr int kCloseTooBig = 1009;
constexpr int kCloseTryAgainLater = 1013;

QByteArray pubWire(const QByteArray &target, const QByteArray &body)
{
    return serialize(msg(Command::Pub, target, {}, body));
}

QList<Command> commandsOf(const QList<Message> &messages)
{
    QList<Command> out;
    for (const Message &m : messages)
        out.append(m.command);
    return out;
}

} // namespace

class tst_FlowControl : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void slowConsumerClosed_data();
    void slowConsumerClosed();
    void burstToReadingPeer_data();
    void burstToReadingPeer();
    void slowServiceAnswersItsRequests();
    void messageTooLarge_data();
    void messageTooLarge();
    void frameTooLarge_data();
    void frameTooLarge();
    void subscriptionLimit();
    void idlePeerClosed();
    void answersPeerPings();
    void malformedMessages_data();
    void malformedMessages();
    void options_data();
    void options();
};

void tst_FlowControl::slowConsumerClosed_data()
{
    QTest::addColumn<bool>("batch");
    QTest::addRow("one message per frame") << false;
    QTest::addRow("batching") << true;
}

void tst_FlowControl::slowConsumerClosed()
{
    QFETCH(bool, batch);
    BrokerConfig config = testConfig();
    config.forEachRole([](RoleLimits &limits) { limits.outboundQueueBytes = 256 * 1024; });
    config.grants = {GrantConfig{Command::Esub, "feed"}};
    const auto broker = startBroker(config);

    TestPeer publisher;
    TestPeer normal;
    RawPeer slow;
    QVERIFY(publisher.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(normal.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY2(slow.connectWithKey(broker->serverUrl(), kClientKey), qPrintable(slow.errorString()));
    const quint64 slowId = peerIdByPort(*broker, slow.localPort());
    QVERIFY(slowId != 0);

    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    if (batch) {
        normal.send(msg(Command::Opt, "-", {{"Batch", "on"}}));
        slow.sendText(serialize(msg(Command::Opt, "-", {{"Batch", "on"}})));
    }
    normal.send(msg(Command::Sub, "feed"));
    slow.sendText(serialize(msg(Command::Sub, "feed")));
    QTRY_COMPARE(subscribed.size(), 2);

    QSignalSpy left(broker.get(), &Broker::peerDisconnected);
    slow.stopReading();
    // Publish until the slow peer's queue overflows. Each message waits for the
    // normal subscriber, so that one keeps up while the slow one falls behind
    // (the kernel's socket buffers take some megabytes before the broker queues).
    const QByteArray filler(64 * 1024, 'x');
    constexpr int kMaxMessages = 2000;
    int sent = 0;
    auto publish = [&] {
        publisher.send(msg(Command::Pub, "feed", {{"Seq", QByteArray::number(sent)}}, filler));
        ++sent;
        return normal.waitForCount(sent, 10000);
    };
    if (batch) {
        QVERIFY(normal.waitFor(Command::Res, "-")); // the OPT's answer
        normal.messages.clear();
    }
    while (sent < kMaxMessages && broker->stats().slowConsumersClosed == 0)
        QVERIFY(publish());
    QCOMPARE(broker->stats().slowConsumersClosed, quint64(1));
    QVERIFY(sent < kMaxMessages);
    qInfo("slow consumer closed after %d messages of %lld bytes", sent, qint64(filler.size()));
    QVERIFY(broker->stats().deliveriesDropped >= 1);
    // The others go on as before.
    for (int i = 0; i < 10; ++i)
        QVERIFY(publish());

    QCOMPARE(normal.messages.size(), qsizetype(sent));
    for (int i = 0; i < sent; ++i) {
        const Message &m = normal.messages.at(i);
        QCOMPARE(m.command, Command::Pub);
        QCOMPARE(m.header("Seq"), QByteArray::number(i));
        QCOMPARE(m.body.size(), filler.size());
    }
    QVERIFY(normal.badFrames.isEmpty());

    // Reading again, the slow peer finds an unbroken prefix of the stream and
    // then the close frame saying why.
    slow.resumeReading();
    QVERIFY(slow.waitForCloseFrame(10000));
    QCOMPARE(slow.closeCode, kCloseTryAgainLater);
    QVERIFY2(slow.closeReason.contains(QStringLiteral("slow consumer")), qPrintable(slow.closeReason));
    QList<Message> slowGot;
    for (const auto &frame : std::as_const(slow.messages)) {
        for (const Message &m : brokerMessages(frame.payload, frame.binary)) {
            if (m.command == Command::Pub)
                slowGot.append(m);
        }
    }
    QVERIFY(!slowGot.isEmpty());
    QVERIFY(slowGot.size() < sent);
    for (qsizetype i = 0; i < slowGot.size(); ++i) {
        QCOMPARE(slowGot.at(i).header("Seq"), QByteArray::number(i));
        QCOMPARE(slowGot.at(i).body.size(), filler.size());
    }
    QVERIFY(slow.protocolErrors.isEmpty());

    QTRY_VERIFY(disconnectOf(left, slowId).has_value());
    QCOMPARE(disconnectOf(left, slowId)->first, kCloseTryAgainLater);
    QCOMPARE(left.size(), 1);
    QVERIFY(!publisher.closed);
    QVERIFY(!normal.closed);
    QCOMPARE(broker->stats().slowConsumersClosed, quint64(1));
    QVERIFY(broker->subscriptionsOf(slowId).isEmpty());
}

void tst_FlowControl::burstToReadingPeer_data()
{
    QTest::addColumn<bool>("batch");
    QTest::addRow("one message per frame") << false;
    QTest::addRow("batching") << true;
}

void tst_FlowControl::burstToReadingPeer()
{
    // One turn fans out more than the outbound queue allows to a peer that
    // reads: before it judges, the broker hands the kernel what it takes, so
    // the peer is not closed as a slow consumer (docs/protocol.md §6).
    QFETCH(bool, batch);
    BrokerConfig config = testConfig();
    config.grants = {GrantConfig{Command::Esub, "feed"}};
    config.forEachRole([](RoleLimits &limits) { limits.outboundQueueBytes = 64 * 1024; });
    const auto broker = startBroker(config);
    TestPeer publisher;
    TestPeer reader;
    QVERIFY(publisher.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(reader.connectWithKey(broker->serverUrl(), kClientKey));
    if (batch)
        reader.send(msg(Command::Opt, "-", {{"Batch", "on"}}));
    reader.send(msg(Command::Sub, "feed"));
    QVERIFY(reader.sync());
    reader.messages.clear();

    // 192 KiB in one WebSocket message from the publisher: one turn.
    constexpr int kMessages = 24;
    const QByteArray body(8 * 1024, 'x');
    QByteArray oneFrame;
    for (int i = 0; i < kMessages; ++i)
        oneFrame += serialize(msg(Command::Pub, "feed", {{"Seq", QByteArray::number(i)}}, body));
    publisher.send(oneFrame);
    QVERIFY(reader.waitForCount(kMessages, 10000));
    QCOMPARE(broker->stats().slowConsumersClosed, quint64(0));
    QCOMPARE(broker->stats().deliveriesDropped, quint64(0));
    for (int i = 0; i < kMessages; ++i)
        QCOMPARE(reader.messages.at(i).header("Seq"), QByteArray::number(i));
    QVERIFY(!reader.closed);
}

void tst_FlowControl::slowServiceAnswersItsRequests()
{
    // Section 6: a slow consumer that is a service takes its pending requests
    // with it, and each requester is told so with a 503.
    BrokerConfig config = testConfig();
    config.forEachRole([](RoleLimits &limits) { limits.outboundQueueBytes = 256 * 1024; });
    // Long enough that the 503s can only come from the start of the close, not
    // from the abort at the end of the grace period.
    config.shutdownGraceMs = 60000;
    config.grants = {GrantConfig{Command::Esub, "feed"}, GrantConfig{Command::Ereq, "slow.svc"}};
    const auto broker = startBroker(config);

    TestPeer publisher; // a service, also a requester
    TestPeer normal;    // keeps up with the feed
    TestPeer client;    // a requester by the EREQ grant
    RawPeer slow;       // the responder that stops reading
    QVERIFY(publisher.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(normal.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY2(slow.connectWithKey(broker->serverUrl(), kServiceKey2), qPrintable(slow.errorString()));
    const quint64 slowId = peerIdByPort(*broker, slow.localPort());
    QVERIFY(slowId != 0);

    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    slow.sendText(serialize(msg(Command::Sub, "slow.svc")) + serialize(msg(Command::Sub, "feed")));
    normal.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 3);

    // The service receives its requests and leaves them unanswered.
    client.send(msg(Command::Req, "slow.svc", {{"ReqID", "c1"}}, "one"));
    client.send(msg(Command::Req, "slow.svc", {{"ReqID", "c2"}}, "two"));
    publisher.send(msg(Command::Req, "slow.svc", {{"ReqID", "s1"}}, "three"));
    QVERIFY(slow.waitForMessages(3));
    for (const RawPeer::DataMessage &data : std::as_const(slow.messages)) {
        Message req;
        ParseError error;
        QVERIFY(parseOne(data.payload, CodecLimits{}, &req, &error));
        QCOMPARE(req.command, Command::Req);
        QCOMPARE(req.target, QByteArray("slow.svc"));
    }
    QVERIFY(client.sync());
    QVERIFY(publisher.sync());
    QVERIFY(client.messages.isEmpty());
    QVERIFY(publisher.messages.isEmpty());

    QSignalSpy left(broker.get(), &Broker::peerDisconnected);
    slow.stopReading();
    const QByteArray filler(64 * 1024, 'x');
    constexpr int kMaxMessages = 2000;
    int sent = 0;
    while (sent < kMaxMessages && broker->stats().slowConsumersClosed == 0) {
        publisher.send(msg(Command::Pub, "feed", {}, filler));
        ++sent;
        QVERIFY(normal.waitForCount(sent, 10000));
    }
    QCOMPARE(broker->stats().slowConsumersClosed, quint64(1));

    // Each requester gets its 503, once, with its own ReqID.
    auto resFor = [](TestPeer &peer, const QByteArray &reqId) {
        return peer.waitFor(
            [&](const Message &m) { return m.command == Command::Res && m.header(HeaderName::ReqId) == reqId; },
            10000);
    };
    for (const auto &[peer, reqId] : {std::pair<TestPeer *, QByteArray>{&client, "c1"},
                                      std::pair<TestPeer *, QByteArray>{&client, "c2"},
                                      std::pair<TestPeer *, QByteArray>{&publisher, "s1"}}) {
        const std::optional<Message> res = resFor(*peer, reqId);
        QVERIFY2(res, reqId.constData());
        QCOMPARE(res->target, QByteArray("slow.svc"));
        QCOMPARE(res->header(HeaderName::Status), QByteArray("503"));
    }
    // The slow peer is still there, in its close handshake: the 503s did not wait.
    QVERIFY(!disconnectOf(left, slowId).has_value());
    slow.resumeReading();
    QTRY_VERIFY_WITH_TIMEOUT(disconnectOf(left, slowId).has_value(), 15000);
    QCOMPARE(disconnectOf(left, slowId)->first, kCloseTryAgainLater);
    QCOMPARE(broker->stats().requestsResponderGone, quint64(3));
    QVERIFY(client.sync());
    QVERIFY(publisher.sync());
    QVERIFY(client.messages.isEmpty());
    QVERIFY(publisher.messages.isEmpty());
    QVERIFY(client.badFrames.isEmpty());
    QVERIFY(publisher.badFrames.isEmpty());
    QVERIFY(!client.closed);
    QVERIFY(!publisher.closed);

    // The target has no responder now: a new request is answered 503 at once.
    client.send(msg(Command::Req, "slow.svc", {{"ReqID", "c3"}}));
    const std::optional<Message> none = resFor(client, "c3");
    QVERIFY(none);
    QCOMPARE(none->header(HeaderName::Status), QByteArray("503"));
}

void tst_FlowControl::messageTooLarge_data()
{
    QTest::addColumn<QByteArray>("tooLarge");
    const QByteArray body(2000, 'x');
    QTest::addRow("dot-stuffed body") << pubWire("t", body);
    QTest::addRow("content-length body") << QByteArray("PUB t\nContent-Length: 2000\n\n" + body + "\n.\n");
    QTest::addRow("long header") << QByteArray("PUB t\nX-Big: " + QByteArray(1500, 'h') + "\n\n.\n");
}

void tst_FlowControl::messageTooLarge()
{
    QFETCH(QByteArray, tooLarge);
    BrokerConfig config = testConfig();
    config.codec.maxMessageSize = 1024;
    config.maxFrameSize = 64 * 1024;
    const auto broker = startBroker(config);

    TestPeer peer;
    QVERIFY(peer.connectWithKey(broker->serverUrl(), kServiceKey));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    peer.send(msg(Command::Sub, "t"));
    QTRY_COMPARE(subscribed.size(), 1);

    // One accepted frame: the large message, then a small one.
    peer.send(tooLarge + pubWire("t", "small"));
    const std::optional<Message> small = peer.waitFor(Command::Pub, "t");
    QVERIFY(small);
    QCOMPARE(small->body, QByteArray("small"));
    QCOMPARE(peer.messages.size(), 1);
    const Message err = peer.messages.takeFirst();
    QCOMPARE(err.command, Command::Err);
    QCOMPARE(err.target, QByteArray("t"));
    QCOMPARE(err.header(HeaderName::Status), QByteArray("413"));
    QCOMPARE(err.header(HeaderName::Command), QByteArray("PUB"));
    QVERIFY2(err.body.contains("too large"), err.body.constData());
    QCOMPARE(broker->stats().messagesTooLarge, quint64(1));

    QVERIFY(peer.sync());
    QVERIFY(!peer.closed);
    QCOMPARE(broker->connectionCount(), 1);
}

void tst_FlowControl::frameTooLarge_data()
{
    QTest::addColumn<bool>("fragmented");
    QTest::addRow("one frame") << false;          // the frame header alone says it is too big
    QTest::addRow("fragmented message") << true;  // every frame fits, the message does not
}

void tst_FlowControl::frameTooLarge()
{
    QFETCH(bool, fragmented);
    BrokerConfig config = testConfig();
    config.codec.maxMessageSize = 16 * 1024;
    config.maxFrameSize = 64 * 1024;
    const auto broker = startBroker(config);

    TestPeer bystander;
    QVERIFY(bystander.connectWithKey(broker->serverUrl(), kServiceKey));
    QSignalSpy left(broker.get(), &Broker::peerDisconnected);
    // Many messages that are each fine, in one WebSocket message over the limit.
    QByteArray wire;
    while (wire.size() <= config.maxFrameSize)
        wire += pubWire("t", QByteArray(4000, 'x'));

    int seenCode = -1;
    QString seenReason;
    quint64 id = 0;
    if (fragmented) {
        TestPeer peer;
        QVERIFY(peer.connectWithKey(broker->serverUrl(), kServiceKey));
        id = peerIdByPort(*broker, peer.socket.localPort());
        peer.socket.setOutgoingFrameSize(16 * 1024);
        peer.send(wire);
        QVERIFY(peer.waitForClose());
        seenCode = peer.closeCode;
        seenReason = peer.closeReason;
    } else {
        RawPeer peer;
        QVERIFY2(peer.connectWithKey(broker->serverUrl(), kServiceKey), qPrintable(peer.errorString()));
        id = peerIdByPort(*broker, peer.localPort());
        peer.sendText(wire);
        QVERIFY(peer.waitForCloseFrame());
        seenCode = peer.closeCode;
        seenReason = peer.closeReason;
        QVERIFY(peer.messages.isEmpty()); // nothing of it was routed back as an ERR
    }
    QVERIFY(id != 0);
    QCOMPARE(seenCode, kCloseTooBig);
    QVERIFY(!seenReason.isEmpty());
    QTRY_VERIFY(disconnectOf(left, id).has_value());
    QCOMPARE(disconnectOf(left, id)->first, kCloseTooBig);
    QCOMPARE(broker->stats().publishes, quint64(0));
    QCOMPARE(broker->stats().protocolCloses, quint64(1));

    // Only that connection paid for it.
    QVERIFY(bystander.sync());
    QVERIFY(!bystander.closed);
    QCOMPARE(left.size(), 1);
}

void tst_FlowControl::subscriptionLimit()
{
    BrokerConfig config = testConfig();
    config.forEachRole([](RoleLimits &limits) { limits.maxSubscriptions = 3; });
    const auto broker = startBroker(config);
    TestPeer peer;
    TestPeer other;
    QVERIFY(peer.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(other.connectWithKey(broker->serverUrl(), kServiceKey));
    const quint64 id = peerIdByPort(*broker, peer.socket.localPort());

    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    for (const QByteArray &pattern : {QByteArray("a"), QByteArray("b.*"), QByteArray("c.>")})
        peer.send(msg(Command::Sub, pattern));
    peer.send(msg(Command::Sub, "d", {{"ReqID", "s4"}}));
    peer.send(msg(Command::Sub, "a")); // a repeat is no new subscription
    QVERIFY(peer.sync());
    QCOMPARE(subscribed.size(), 3);
    QCOMPARE(broker->subscriptionsOf(id).size(), 3);
    QVERIFY(!broker->subscriptionsOf(id).contains("d"));

    QCOMPARE(peer.messages.size(), 1);
    const Message err = peer.messages.takeFirst();
    QCOMPARE(err.command, Command::Err);
    QCOMPARE(err.target, QByteArray("d"));
    QCOMPARE(err.header(HeaderName::Status), QByteArray("429"));
    QCOMPARE(broker->stats().limitRefusals, quint64(1));
    QCOMPARE(err.header(HeaderName::Command), QByteArray("SUB"));
    QCOMPARE(err.header(HeaderName::ReqId), QByteArray("s4"));
    QCOMPARE(err.body, QByteArray("subscription limit reached (3)"));

    // The limit is per connection, and an UNSUB makes room.
    other.send(msg(Command::Sub, "d"));
    QTRY_COMPARE(subscribed.size(), 4);
    peer.send(msg(Command::Unsub, "a"));
    peer.send(msg(Command::Sub, "d"));
    QVERIFY(peer.sync());
    QVERIFY(!peer.waitFor(Command::Err, {}, 0));
    QCOMPARE(subscribed.size(), 5);
    QVERIFY(broker->subscriptionsOf(id).contains("d"));
    QCOMPARE(broker->subscriptionsOf(id).size(), 3);
}

void tst_FlowControl::idlePeerClosed()
{
    BrokerConfig config = testConfig();
    // Long enough that a peer which answers is not closed on a loaded machine:
    // only one stalled for two whole intervals would be.
    config.pingIntervalMs = 400;
    config.maxMissedPings = 2;
    const auto broker = startBroker(config);
    QSignalSpy left(broker.get(), &Broker::peerDisconnected);

    TestPeer answering; // QWebSocket answers pings by itself
    RawPeer responsive;
    RawPeer silent;
    silent.setAnswerPings(false);
    QVERIFY(answering.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY2(responsive.connectWithKey(broker->serverUrl(), kClientKey), qPrintable(responsive.errorString()));
    QVERIFY2(silent.connectWithKey(broker->serverUrl(), kClientKey), qPrintable(silent.errorString()));
    const quint64 silentId = peerIdByPort(*broker, silent.localPort());

    QVERIFY(silent.waitForCloseFrame(10000));
    QCOMPARE(silent.pings.size(), qsizetype(config.maxMissedPings));
    QCOMPARE(silent.closeCode, kCloseGoingAway);
    QVERIFY2(silent.closeReason.contains(QStringLiteral("ping")), qPrintable(silent.closeReason));
    QTRY_VERIFY(disconnectOf(left, silentId).has_value());
    QCOMPARE(disconnectOf(left, silentId)->first, kCloseGoingAway);
    QCOMPARE(broker->stats().idleClosed, quint64(1));

    // Several ping intervals later the peers that answer are still there.
    const qsizetype seen = responsive.pings.size();
    QTRY_VERIFY_WITH_TIMEOUT(responsive.pings.size() >= seen + 3, 10000);
    QCOMPARE(left.size(), 1);
    QCOMPARE(broker->stats().idleClosed, quint64(1));
    QVERIFY(!responsive.closeReceived);
    QVERIFY(!answering.closed);
    QVERIFY(answering.sync());
    QCOMPARE(broker->connectionCount(), 2);
}

void tst_FlowControl::answersPeerPings()
{
    // Section 1: the broker answers WebSocket pings.
    const auto broker = startBroker();
    RawPeer peer;
    QVERIFY2(peer.connectWithKey(broker->serverUrl(), kClientKey), qPrintable(peer.errorString()));
    peer.sendPing("are you there");
    QTRY_COMPARE(peer.pongs.size(), 1);
    QCOMPARE(peer.pongs.first(), QByteArray("are you there"));
    QVERIFY(peer.protocolErrors.isEmpty());
}

void tst_FlowControl::malformedMessages_data()
{
    QTest::addColumn<QByteArray>("bad");
    QTest::addColumn<QByteArray>("errTarget");
    QTest::addColumn<QByteArray>("command"); // Command header, empty when unrecognised
    QTest::addColumn<QByteArray>("reqId");
    QTest::addColumn<QByteArray>("reason");  // part of the ERR body
    QTest::addColumn<bool>("framingKept");   // are later messages in the frame read?

    const QByteArray none;
    QTest::addRow("unknown command") << QByteArray("FOO ok\n\nbody\n.\n") << QByteArray("-") << none << none
                                     << QByteArray("unknown command 'FOO'") << true;
    QTest::addRow("header without colon") << QByteArray("PUB ok\nNoColonHere\n\nbody\n.\n") << QByteArray("ok")
                                          << QByteArray("PUB") << none << QByteArray("malformed header line")
                                          << true;
    QTest::addRow("space in header name") << QByteArray("PUB ok\nBad Name: v\n\n.\n") << QByteArray("ok")
                                          << QByteArray("PUB") << none << QByteArray("invalid header name") << true;
    QTest::addRow("wildcard in PUB target") << QByteArray("PUB ok.*\n\nbody\n.\n") << QByteArray("ok.*")
                                            << QByteArray("PUB") << none << QByteArray("wildcards are not allowed")
                                            << true;
    QTest::addRow("wildcard in REQ target") << QByteArray("REQ svc.>\nReqID: 7\n\n.\n") << QByteArray("svc.>")
                                            << QByteArray("REQ") << QByteArray("7")
                                            << QByteArray("wildcards are not allowed") << true;
    QTest::addRow("missing target") << QByteArray("PUB\n\nbody\n.\n") << QByteArray("-") << QByteArray("PUB")
                                    << none << QByteArray("missing target") << true;
    QTest::addRow("empty token") << QByteArray("PUB a..b\n\n.\n") << QByteArray("a..b") << QByteArray("PUB")
                                 << none << QByteArray("empty token") << true;
    QTest::addRow("'>' not last in SUB") << QByteArray("SUB a.>.b\n\n.\n") << QByteArray("a.>.b")
                                         << QByteArray("SUB") << none << QByteArray("last token") << true;
    QTest::addRow("REQ without ReqID") << QByteArray("REQ svc\n\n.\n") << QByteArray("svc") << QByteArray("REQ")
                                       << none << QByteArray("missing ReqID") << true;
    QTest::addRow("ERR from a peer") << QByteArray("ERR x\nStatus: 400\n\n.\n") << QByteArray("x")
                                     << QByteArray("ERR") << none << QByteArray("broker only") << true;
    QTest::addRow("unreadable Content-Length ends the frame")
        << QByteArray("PUB ok\nContent-Length: abc\n\nxy\n.\n") << QByteArray("ok") << QByteArray("PUB") << none
        << QByteArray("Content-Length") << false;
}

void tst_FlowControl::malformedMessages()
{
    QFETCH(QByteArray, bad);
    QFETCH(QByteArray, errTarget);
    QFETCH(QByteArray, command);
    QFETCH(QByteArray, reqId);
    QFETCH(QByteArray, reason);
    QFETCH(bool, framingKept);

    const auto broker = startBroker();
    TestPeer peer;
    QVERIFY(peer.connectWithKey(broker->serverUrl(), kServiceKey));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    peer.send(msg(Command::Sub, "ok"));
    QTRY_COMPARE(subscribed.size(), 1);

    // Good, bad, good in one frame; the service gets its own publishes back.
    peer.send(pubWire("ok", "before") + bad + pubWire("ok", "after"));
    if (framingKept) {
        QVERIFY(peer.waitForCount(3));
    } else {
        QVERIFY(peer.waitForCount(2));
        peer.send(pubWire("ok", "next frame"));
        QVERIFY(peer.waitForCount(3));
    }
    QVERIFY(peer.sync());
    QCOMPARE(commandsOf(peer.messages), (QList<Command>{Command::Pub, Command::Err, Command::Pub}));
    QCOMPARE(peer.messages.at(0).body, QByteArray("before"));
    QCOMPARE(peer.messages.at(2).body, framingKept ? QByteArray("after") : QByteArray("next frame"));

    const Message &err = peer.messages.at(1);
    QCOMPARE(err.target, errTarget);
    QCOMPARE(err.header(HeaderName::Status), QByteArray("400"));
    QCOMPARE(err.header(HeaderName::Command), command);
    QCOMPARE(err.header(HeaderName::ReqId), reqId);
    QVERIFY2(err.body.contains(reason), err.body.constData());
    QVERIFY(!peer.closed);
    QVERIFY(peer.badFrames.isEmpty());
    QCOMPARE(subscribed.size(), 1); // a bad SUB subscribed nothing
}

void tst_FlowControl::options_data()
{
    QTest::addColumn<bool>("batchFirst");      // an earlier OPT turned Batch on
    QTest::addColumn<QList<Header>>("headers");
    QTest::addColumn<int>("status");
    QTest::addColumn<QByteArray>("reason");    // the ERR body
    QTest::addColumn<bool>("batching");        // Batch on afterwards?

    QTest::addRow("Batch on") << false << QList<Header>{{"Batch", "on"}} << 200 << QByteArray() << true;
    QTest::addRow("Batch off") << false << QList<Header>{{"Batch", "off"}} << 200 << QByteArray() << false;
    QTest::addRow("Batch off after on") << true << QList<Header>{{"Batch", "off"}} << 200 << QByteArray()
                                        << false;
    QTest::addRow("name and value in any case") << false << QList<Header>{{"batch", "ON"}} << 200 << QByteArray()
                                                << true;
    QTest::addRow("no option") << false << QList<Header>{} << 200 << QByteArray() << false;
    QTest::addRow("no option keeps Batch on") << true << QList<Header>{} << 200 << QByteArray() << true;
    QTest::addRow("bad Batch value") << false << QList<Header>{{"Batch", "maybe"}} << 400
                                     << QByteArray("Batch must be on or off") << false;
    QTest::addRow("bad Batch value keeps Batch on") << true << QList<Header>{{"Batch", "off!"}} << 400
                                                    << QByteArray("Batch must be on or off") << true;
    QTest::addRow("unknown option") << false << QList<Header>{{"Colour", "red"}} << 400
                                    << QByteArray("unknown option 'Colour'") << false;
    // Every option is checked before any is applied.
    QTest::addRow("unknown option after a good one") << false << QList<Header>{{"Batch", "on"}, {"Colour", "red"}}
                                                     << 400 << QByteArray("unknown option 'Colour'") << false;
}

void tst_FlowControl::options()
{
    QFETCH(bool, batchFirst);
    QFETCH(QList<Header>, headers);
    QFETCH(int, status);
    QFETCH(QByteArray, reason);
    QFETCH(bool, batching);

    BrokerConfig config = testConfig();
    config.grants = {GrantConfig{Command::Esub, "burst"}};
    const auto broker = startBroker(config);
    TestPeer publisher;
    TestPeer peer;
    QVERIFY(publisher.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(peer.connectWithKey(broker->serverUrl(), kClientKey));
    if (batchFirst) {
        peer.send(msg(Command::Opt, "-", {{"ReqID", "o0"}, {"Batch", "on"}}));
        const std::optional<Message> on = peer.waitFor(Command::Res, "-");
        QVERIFY(on);
        QCOMPARE(on->header(HeaderName::Status), QByteArray("200"));
    }
    Message opt = msg(Command::Opt, "-", headers);
    opt.headers.prepend(Header{"ReqID", "o1"});
    peer.send(opt);

    const Command expected = status == 200 ? Command::Res : Command::Err;
    const std::optional<Message> answer = peer.waitFor(expected, "-");
    QVERIFY(answer);
    QCOMPARE(answer->header(HeaderName::Status), QByteArray::number(status));
    QCOMPARE(answer->header(HeaderName::ReqId), QByteArray("o1"));
    if (status != 200) {
        QCOMPARE(answer->header(HeaderName::Command), QByteArray("OPT"));
        QCOMPARE(answer->body, reason);
    } else {
        QVERIFY(answer->body.isEmpty());
    }
    // Either way the connection goes on.
    peer.send(msg(Command::Sub, "burst"));
    QVERIFY(peer.sync());
    QVERIFY(peer.messages.isEmpty());
    QVERIFY(!peer.closed);

    // A burst, half of it in one WebSocket message from the publisher, in both
    // frame types, with bodies that need dot-stuffing or are empty: all of it
    // arrives whole, parseable and in order, whether or not the broker packs it.
    constexpr int kBurst = 200;
    QList<Message> burst;
    for (int i = 0; i < kBurst; ++i) {
        QByteArray body;
        switch (i % 4) {
        case 0: body = "plain " + QByteArray::number(i); break;
        case 1: body = ".\n..\nline\n.\n"; break; // terminator-like lines
        case 2: break;                               // empty
        case 3: body = QByteArray(1000 + i, char('a' + i % 26)); break;
        }
        Message m = msg(Command::Pub, "burst", {{"Seq", QByteArray::number(i)}}, body);
        m.binary = i % 10 == 9;
        if (m.binary)
            m.body += QByteArray("\0\x01\xff", 3);
        burst.append(m);
    }
    QByteArray oneFrame;
    qsizetype inOneFrame = 0;
    for (int i = 0; i < kBurst / 2; ++i) {
        if (!burst.at(i).binary) {
            oneFrame += serialize(burst.at(i));
            ++inOneFrame;
        }
    }
    const qsizetype framesBefore = peer.frames.size();
    publisher.send(oneFrame);
    for (int i = 0; i < kBurst / 2; ++i) {
        if (burst.at(i).binary)
            publisher.send(burst.at(i));
    }
    for (int i = kBurst / 2; i < kBurst; ++i)
        publisher.send(burst.at(i));
    // Binary ones of the first half went after the one frame: the expected order.
    QList<Message> order;
    for (int i = 0; i < kBurst / 2; ++i) {
        if (!burst.at(i).binary)
            order.append(burst.at(i));
    }
    for (int i = 0; i < kBurst / 2; ++i) {
        if (burst.at(i).binary)
            order.append(burst.at(i));
    }
    order.append(burst.mid(kBurst / 2));

    QVERIFY(peer.waitForCount(kBurst, 10000));
    QVERIFY(peer.sync());
    QVERIFY(peer.badFrames.isEmpty());
    QCOMPARE(peer.messages.size(), qsizetype(kBurst));
    for (int i = 0; i < kBurst; ++i) {
        const Message &got = peer.messages.at(i);
        const Message &want = order.at(i);
        QCOMPARE(got.command, Command::Pub);
        QCOMPARE(got.target, QByteArray("burst"));
        QCOMPARE(got.header("Seq"), want.header("Seq"));
        QCOMPARE(got.body, want.body);
        QCOMPARE(got.binary, want.binary);
    }
    // Frames after the burst's: the sync's RES. Without Batch the broker sends
    // one protocol message per WebSocket message (section 1); with it, at least
    // the publisher's one frame arrives as one.
    const qsizetype burstFrames = peer.frames.size() - framesBefore - 1;
    if (batching)
        QVERIFY(burstFrames <= kBurst - inOneFrame + 1);
    else
        QCOMPARE(burstFrames, qsizetype(kBurst));
    QVERIFY(!peer.closed);
}

QTEST_MAIN(tst_FlowControl)
#include "tst_flowcontrol.moc"
