// docs/protocol.md §7 (limits that protect the broker), with real peers: the
// limits by role, the message rate per connection with its two actions (pace:
// the input is held; refuse: ERR 429), the connections in total and per remote
// address, the Origin allow-list for browsers, and the back-off for bad keys
// per address; and the idle spin (docs/design.md) that [limits] sets too.

#include "configfile.h"
#include "epolldispatcher.h"
#include "rawpeer.h"
#include "testpeer.h"

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

// Several PUBs to one target in a single frame, ReqIDs p1, p2, ...
QByteArray pubFrame(const QByteArray &target, int count)
{
    QByteArray wire;
    for (int i = 1; i <= count; ++i)
        wire += serialize(msg(Command::Pub, target, {{"ReqID", "p" + QByteArray::number(i)}}, "x"));
    return wire;
}

} // namespace

class tst_Limits : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void defaults();
    void rateLimitsByRole();
    void rateRefused();
    void rateRefills();
    void rateUnlimited();
    void refuseNeverRefusesAnswers();
    void paceDeliversEverything_data();
    void paceDeliversEverything();
    void heldInputStaysInTheKernel();
    void pacedPeerIsNotPingedOut();
    void pacedPeerClosesAtOnce();
    void connectionLimits_data();
    void connectionLimits();
    void originAllowList();
    void keyBackoffConfig();
    void keyBackoff();
    void idleSpinConfig();
};

void tst_Limits::defaults()
{
    // The documented defaults (docs/configuration.md, "Defaults and what they
    // are for"): clients paced at a protective rate, services unlimited; no
    // limit per address and no key back-off, which would refuse every peer
    // behind one proxy or NAT.
    const BrokerConfig config;
    QCOMPARE(config.clientLimits.maxMessagesPerSecond, 10000);
    QCOMPARE(config.clientLimits.messageBurst, 20000);
    QCOMPARE(config.clientLimits.rateLimitAction, RateLimitAction::Pace);
    QCOMPARE(config.clientLimits.maxPendingRequests, 10000);
    QCOMPARE(config.clientLimits.maxSubscriptions, 10000);
    QCOMPARE(config.clientLimits.outboundQueueBytes, qint64(8 * 1024 * 1024));
    QCOMPARE(config.serviceLimits.maxMessagesPerSecond, 0);
    QCOMPARE(config.serviceLimits.rateLimitAction, RateLimitAction::Pace);
    QCOMPARE(config.serviceLimits.maxPendingRequests, 100000);
    QCOMPARE(config.serviceLimits.maxSubscriptions, 100000);
    QCOMPARE(config.serviceLimits.outboundQueueBytes, qint64(64 * 1024 * 1024));
    QCOMPARE(config.maxConnections, 100000);
    QCOMPARE(config.maxConnectionsPerAddress, 0);
    QCOMPARE(config.failedKeyBackoffMs, 0);
    QString error;
    QVERIFY2(config.validate(&error), qPrintable(error));
}

void tst_Limits::rateLimitsByRole()
{
    // A client over its rate is refused (here: "refuse"); a service, with no
    // limit of its own, sends as much in the same frame.
    BrokerConfig config = testConfig();
    config.clientLimits.maxMessagesPerSecond = 1;
    config.clientLimits.messageBurst = 2;
    config.clientLimits.rateLimitAction = RateLimitAction::Refuse;
    config.grants = {GrantConfig{Command::Epub, "feed"}};
    const auto broker = startBroker(config);

    TestPeer client;
    TestPeer service;
    TestPeer subscriber;
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(subscriber.connectWithKey(broker->serverUrl(), kServiceKey2));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    subscriber.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 1);

    service.send(pubFrame("feed", 50));
    QVERIFY(subscriber.waitForCount(50));
    QVERIFY(service.sync());
    QVERIFY(service.messages.isEmpty());
    client.send(pubFrame("feed", 5));
    for (int i = 3; i <= 5; ++i) {
        const QByteArray reqId = "p" + QByteArray::number(i);
        const std::optional<Message> err = client.waitFor(
            [&](const Message &m) { return m.command == Command::Err && m.header(HeaderName::ReqId) == reqId; });
        QVERIFY2(err.has_value(), reqId.constData());
        QCOMPARE(err->header(HeaderName::Status), QByteArray("429"));
        QVERIFY2(err->body.startsWith("message rate limit exceeded (1 per second, burst 2)"), err->body.constData());
    }
    QVERIFY(subscriber.waitForCount(52));
    QCOMPARE(broker->stats().rateLimited, quint64(3));
}

void tst_Limits::rateRefused()
{
    // One token a second and a burst of five: of eight messages in one frame,
    // five pass and three get ERR 429; other connections have their own bucket.
    BrokerConfig config = testConfig();
    config.forEachRole([](RoleLimits &limits) {
        limits.maxMessagesPerSecond = 1;
        limits.messageBurst = 5;
        limits.rateLimitAction = RateLimitAction::Refuse;
    });
    const auto broker = startBroker(config);
    TestPeer publisher;
    TestPeer other;
    TestPeer subscriber;
    QVERIFY(publisher.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(other.connectWithKey(broker->serverUrl(), kServiceKey2));
    QVERIFY(subscriber.connectWithKey(broker->serverUrl(), kServiceKey));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    subscriber.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 1);

    // The last one is malformed: refused for the rate too, echoing what was read.
    publisher.send(pubFrame("feed", 8) + "PUB bad target\nReqID: p9\n\n.\n");
    for (int i = 6; i <= 9; ++i) {
        const QByteArray reqId = "p" + QByteArray::number(i);
        const std::optional<Message> err = publisher.waitFor(
            [&](const Message &m) { return m.command == Command::Err && m.header(HeaderName::ReqId) == reqId; });
        QVERIFY2(err.has_value(), reqId.constData());
        QCOMPARE(err->header(HeaderName::Status), QByteArray("429"));
        QCOMPARE(err->header(HeaderName::Command), QByteArray("PUB"));
        QCOMPARE(err->target, QByteArray(i < 9 ? "feed" : "-"));
        QVERIFY2(err->body.startsWith("message rate limit exceeded (1 per second, burst 5)"), err->body.constData());
    }
    QVERIFY(subscriber.waitForCount(5));
    for (int i = 0; i < 5; ++i)
        QCOMPARE(subscriber.messages.at(i).header(HeaderName::ReqId), "p" + QByteArray::number(i + 1));
    QCOMPARE(broker->stats().rateLimited, quint64(4));
    QCOMPARE(broker->stats().limitRefusals, quint64(4));
    QVERIFY(publisher.messages.isEmpty());

    // The others are served as before; the limited peer stays connected.
    other.send(msg(Command::Pub, "feed", {{"ReqID", "o1"}}, "y"));
    QVERIFY(subscriber.waitForCount(6));
    QCOMPARE(subscriber.messages.at(5).header(HeaderName::ReqId), QByteArray("o1"));
    QVERIFY(subscriber.sync());
    QCOMPARE(subscriber.messages.size(), qsizetype(6));
    QVERIFY(!publisher.closed);
    QCOMPARE(broker->stats().rateLimited, quint64(4));
    QVERIFY(publisher.badFrames.isEmpty());
    QVERIFY(subscriber.badFrames.isEmpty());
}

void tst_Limits::rateRefills()
{
    // Fifty tokens a second, burst one: the second of two messages is refused,
    // and a later one passes once the bucket has refilled.
    BrokerConfig config = testConfig();
    config.forEachRole([](RoleLimits &limits) {
        limits.maxMessagesPerSecond = 50;
        limits.messageBurst = 1;
        limits.rateLimitAction = RateLimitAction::Refuse;
    });
    const auto broker = startBroker(config);

    TestPeer publisher;
    TestPeer subscriber;
    QVERIFY(publisher.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(subscriber.connectWithKey(broker->serverUrl(), kServiceKey2));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    subscriber.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 1);

    publisher.send(pubFrame("feed", 2));
    const std::optional<Message> err = publisher.waitFor(Command::Err, "feed");
    QVERIFY(err.has_value());
    QCOMPARE(err->header(HeaderName::ReqId), QByteArray("p2"));
    QVERIFY(subscriber.waitForCount(1));
    QCOMPARE(broker->stats().rateLimited, quint64(1));

    // Retry, one message at a time, until one is delivered.
    int attempt = 0;
    const bool delivered = QTest::qWaitFor(
        [&] {
            const quint64 refusedBefore = broker->stats().rateLimited;
            publisher.send(msg(Command::Pub, "feed", {{"ReqID", "r" + QByteArray::number(++attempt)}}, "x"));
            (void)QTest::qWaitFor(
                [&] { return subscriber.messages.size() > 1 || broker->stats().rateLimited > refusedBefore; }, 1000);
            return subscriber.messages.size() > 1;
        },
        5000);
    QVERIFY(delivered);
    QCOMPARE(subscriber.messages.at(1).header(HeaderName::ReqId), "r" + QByteArray::number(attempt));
}

void tst_Limits::rateUnlimited()
{
    BrokerConfig config = testConfig();
    config.forEachRole([](RoleLimits &limits) {
        limits.maxMessagesPerSecond = 0;
        limits.messageBurst = 1;
    });
    const auto broker = startBroker(config);

    TestPeer publisher;
    TestPeer subscriber;
    QVERIFY(publisher.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(subscriber.connectWithKey(broker->serverUrl(), kServiceKey2));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    subscriber.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 1);
    publisher.send(pubFrame("feed", 50));
    QVERIFY(subscriber.waitForCount(50));
    QVERIFY(publisher.sync());
    QVERIFY(publisher.messages.isEmpty());
    QCOMPARE(broker->stats().rateLimited, quint64(0));
}

void tst_Limits::refuseNeverRefusesAnswers()
{
    // A service out of tokens in "refuse" mode: its PUB gets ERR 429, but its
    // RES go through, each to its requester, and are counted; a RES that
    // answers nothing gets its 404 as without a rate.
    BrokerConfig config = testConfig();
    config.serviceLimits.maxMessagesPerSecond = 1;
    config.serviceLimits.messageBurst = 1;
    config.serviceLimits.rateLimitAction = RateLimitAction::Refuse;
    config.grants = {GrantConfig{Command::Ereq, "calc"}};
    const auto broker = startBroker(config);

    TestPeer service;
    TestPeer requester;
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(requester.connectWithKey(broker->serverUrl(), kClientKey));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    service.send(msg(Command::Sub, "calc")); // its one token
    QTRY_COMPARE(subscribed.size(), 1);

    QByteArray requests;
    for (int i = 1; i <= 3; ++i)
        requests += serialize(msg(Command::Req, "calc", {{"ReqID", "r" + QByteArray::number(i)}}, "q"));
    requester.send(requests);
    QVERIFY(service.waitForCount(3));
    QByteArray answers;
    for (const Message &req : std::as_const(service.messages))
        answers += serialize(msg(Command::Res, "calc", {{"ReqID", req.header(HeaderName::ReqId)}}, "a"));
    service.messages.clear();
    answers += serialize(msg(Command::Res, "calc", {{"ReqID", "mm-nothing"}}, "a"));
    answers += serialize(msg(Command::Pub, "calc", {{"ReqID", "p1"}}, "x"));
    service.send(answers);

    QVERIFY(requester.waitForCount(3));
    for (int i = 0; i < 3; ++i) {
        const Message &res = requester.messages.at(i);
        QCOMPARE(res.command, Command::Res);
        QCOMPARE(res.header(HeaderName::ReqId), "r" + QByteArray::number(i + 1));
        QVERIFY(res.header(HeaderName::Status).isNull());
    }
    const std::optional<Message> unknown = service.waitFor(Command::Err);
    QVERIFY(unknown.has_value());
    QCOMPARE(unknown->header(HeaderName::Status), QByteArray("404"));
    const std::optional<Message> refused = service.waitFor(Command::Err);
    QVERIFY(refused.has_value());
    QCOMPARE(refused->header(HeaderName::Status), QByteArray("429"));
    QCOMPARE(refused->header(HeaderName::Command), QByteArray("PUB"));
    QCOMPARE(refused->header(HeaderName::ReqId), QByteArray("p1"));
    const BrokerStats stats = broker->stats();
    QCOMPARE(stats.answersOverRate, quint64(4));
    QCOMPARE(stats.rateLimited, quint64(1));
    QCOMPARE(stats.responses, quint64(3));
    QCOMPARE(stats.requestsTimedOut, quint64(0));
}

void tst_Limits::paceDeliversEverything_data()
{
    QTest::addColumn<bool>("oneFrame");
    QTest::addRow("in one frame") << true;
    QTest::addRow("a frame each") << false;
}

void tst_Limits::paceDeliversEverything()
{
    // Fifty tokens a second, a burst of five, "pace": thirty messages all
    // arrive, in order, none refused, and no sooner than the bucket allows:
    // (30 - 5) / 50 s.
    QFETCH(bool, oneFrame);
    BrokerConfig config = testConfig();
    config.clientLimits.maxMessagesPerSecond = 50;
    config.clientLimits.messageBurst = 5;
    config.grants = {GrantConfig{Command::Epub, "feed"}};
    const auto broker = startBroker(config);

    TestPeer client;
    TestPeer subscriber;
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY(subscriber.connectWithKey(broker->serverUrl(), kServiceKey));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    subscriber.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 1);

    QElapsedTimer elapsed;
    elapsed.start();
    if (oneFrame) {
        client.send(pubFrame("feed", 30));
    } else {
        for (int i = 1; i <= 30; ++i)
            client.send(msg(Command::Pub, "feed", {{"ReqID", "p" + QByteArray::number(i)}}, "x"));
    }
    QVERIFY(subscriber.waitForCount(30, 10000));
    QVERIFY2(elapsed.elapsed() >= 450, QByteArray::number(elapsed.elapsed()).constData());
    for (int i = 0; i < 30; ++i)
        QCOMPARE(subscriber.messages.at(i).header(HeaderName::ReqId), "p" + QByteArray::number(i + 1));
    QVERIFY(client.sync());
    QVERIFY(client.messages.isEmpty()); // no ERR
    const BrokerStats stats = broker->stats();
    QCOMPARE(stats.rateLimited, quint64(0));
    QVERIFY(stats.inputPauses >= 1);
    const std::optional<PeerInfo> info = broker->peer(peerIdByPort(*broker, client.socket.localPort()));
    QVERIFY(info.has_value());
    QCOMPARE(info->inputPauses, stats.inputPauses);
    QCOMPARE(info->messagesIn, quint64(31)); // the PUBs and the OPT of sync()
}

void tst_Limits::heldInputStaysInTheKernel()
{
    BrokerConfig config = testConfig();
    config.clientLimits.maxMessagesPerSecond = 1;
    config.clientLimits.messageBurst = 1;
    config.grants = {GrantConfig{Command::Epub, "feed"}};
    const auto broker = startBroker(config);
    TestPeer client;
    TestPeer subscriber;
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY(subscriber.connectWithKey(broker->serverUrl(), kServiceKey));
    subscriber.send(msg(Command::Sub, "feed"));
    QVERIFY(subscriber.sync());
    checkHeldInputStaysInTheKernel(*broker, client, subscriber);
}

void tst_Limits::pacedPeerIsNotPingedOut()
{
    // Held for about 1.5 s, ten ping intervals, with its pongs unread behind
    // its messages: it is sending, not silent, and is not closed.
    BrokerConfig config = testConfig();
    config.clientLimits.maxMessagesPerSecond = 2;
    config.clientLimits.messageBurst = 1;
    config.pingIntervalMs = 150;
    config.maxMissedPings = 1;
    config.grants = {GrantConfig{Command::Epub, "feed"}};
    const auto broker = startBroker(config);

    TestPeer client;
    TestPeer subscriber;
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY(subscriber.connectWithKey(broker->serverUrl(), kServiceKey));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    subscriber.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 1);

    client.send(pubFrame("feed", 4));
    QVERIFY(subscriber.waitForCount(4, 10000));
    QVERIFY(!client.closed);
    QCOMPARE(broker->stats().idleClosed, quint64(0));
    QVERIFY(client.sync());
}

void tst_Limits::pacedPeerClosesAtOnce()
{
    // A held peer disconnected by an operator: its close frame, behind what
    // it sent, is read, and the connection ends long before the grace period.
    BrokerConfig config = testConfig();
    config.clientLimits.maxMessagesPerSecond = 1;
    config.clientLimits.messageBurst = 1;
    config.shutdownGraceMs = 20000;
    config.grants = {GrantConfig{Command::Epub, "feed"}};
    const auto broker = startBroker(config);

    TestPeer client;
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    const quint64 id = peerIdByPort(*broker, client.socket.localPort());
    client.send(pubFrame("feed", 30)); // about 29 s of its rate
    QTRY_VERIFY(broker->stats().inputPauses >= 1);
    QSignalSpy gone(broker.get(), &Broker::peerDisconnected);
    QElapsedTimer elapsed;
    elapsed.start();
    QVERIFY(broker->disconnectPeer(id, QStringLiteral("enough")));
    QVERIFY(client.waitForClose());
    QTRY_COMPARE_WITH_TIMEOUT(gone.size(), 1, 5000);
    QVERIFY2(elapsed.elapsed() < 5000, QByteArray::number(elapsed.elapsed()).constData());
    QCOMPARE(client.closeCode, 1000);
    QCOMPARE(client.closeReason, QStringLiteral("enough"));
    QCOMPARE(gone.at(0).at(1).toInt(), 1000);
}

void tst_Limits::connectionLimits_data()
{
    // All test peers come from 127.0.0.1: each limit is tested with the other high.
    QTest::addColumn<int>("total");
    QTest::addColumn<int>("perAddress");
    QTest::addColumn<QString>("reason");
    QTest::newRow("in total") << 2 << 100 << QStringLiteral("too many connections");
    QTest::newRow("per address") << 100 << 2 << QStringLiteral("too many connections from this address");
}

void tst_Limits::connectionLimits()
{
    QFETCH(int, total);
    QFETCH(int, perAddress);
    QFETCH(QString, reason);
    BrokerConfig config = testConfig();
    config.maxConnections = total;
    config.maxConnectionsPerAddress = perAddress;
    config.grants = {GrantConfig{Command::Esub, "feed"}};
    const auto broker = startBroker(config);

    TestPeer service;
    TestPeer client; // the second connection: at the limit
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QCOMPARE(broker->connectionCount(), qsizetype(2));

    // The third is closed right after the upgrade, with 1013 and the reason.
    RawPeer refused;
    QVERIFY2(refused.open(broker->serverUrl()), qPrintable(refused.errorString()));
    QVERIFY(refused.waitForCloseFrame());
    QCOMPARE(refused.closeCode, 1013);
    QCOMPARE(refused.closeReason, reason);
    QVERIFY(refused.waitForDisconnected());
    QCOMPARE(broker->stats().connectionsRefused, quint64(1));
    QCOMPARE(broker->stats().connectionsAccepted, quint64(2));
    QCOMPARE(broker->connectionCount(), qsizetype(2));

    // The connected peers are served as before.
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    client.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 1);
    service.send(msg(Command::Pub, "feed", {}, "still here"));
    const std::optional<Message> pub = client.waitFor(Command::Pub, "feed");
    QVERIFY(pub.has_value());
    QCOMPARE(pub->body, QByteArray("still here"));

    // A connection that leaves makes room for a new one.
    client.socket.close();
    QTRY_COMPARE(broker->connectionCount(), qsizetype(1));
    TestPeer later;
    QVERIFY(later.connectWithKey(broker->serverUrl(), kClientKey));
    QCOMPARE(broker->stats().connectionsRefused, quint64(1));
    QVERIFY(service.sync());
}

void tst_Limits::originAllowList()
{
    BrokerConfig config = testConfig();
    QString error;
    QVERIFY2(loadConfigText("allowed_origins = [\"https://app.example\"]\n", QStringLiteral("t"), &config, nullptr,
                            &error),
             qPrintable(error));
    QCOMPARE(config.allowedOrigins, QStringList{QStringLiteral("https://app.example")});
    const auto broker = startBroker(config);

    // A browser from elsewhere is closed with 1008.
    QWebSocket foreign(QStringLiteral("https://evil.example"));
    bool foreignClosed = false;
    connect(&foreign, &QWebSocket::disconnected, this, [&] { foreignClosed = true; });
    foreign.open(broker->serverUrl());
    QTRY_VERIFY(foreignClosed);
    QCOMPARE(int(foreign.closeCode()), 1008);
    QCOMPARE(foreign.closeReason(), QStringLiteral("origin not allowed"));
    QCOMPARE(broker->stats().originsRefused, quint64(1));
    QCOMPARE(broker->stats().connectionsAccepted, quint64(0));

    // The allowed origin (any letter case) and native clients without Origin get in.
    QWebSocket allowed(QStringLiteral("https://APP.example"));
    QStringList frames;
    connect(&allowed, &QWebSocket::textMessageReceived, this, [&](const QString &text) { frames.append(text); });
    allowed.open(broker->serverUrl());
    QTRY_COMPARE(allowed.state(), QAbstractSocket::ConnectedState);
    allowed.sendTextMessage(QString::fromUtf8(kClientKey));
    QTRY_COMPARE(frames, QStringList{QStringLiteral("MM OK")});
    TestPeer native;
    QVERIFY(native.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(native.sync());
    QCOMPARE(broker->stats().originsRefused, quint64(1));
    QCOMPARE(broker->stats().handshakesCompleted, quint64(2));
    allowed.abort();
    foreign.abort();

    config.allowedOrigins = {QStringLiteral(" https://x.example")};
    QVERIFY(!config.validate(&error));
    QVERIFY2(error.contains(QStringLiteral("allowed_origins")), qPrintable(error));
}

void tst_Limits::keyBackoffConfig()
{
    BrokerConfig config;
    QCOMPARE(config.failedKeysBeforeBackoff, 10);
    QCOMPARE(config.failedKeyBackoffMs, 0); // off
    QCOMPARE(config.maxFailedKeyBackoffMs, 60000);
    QString error;
    QVERIFY2(loadConfigText("[limits]\nfailed_keys_before_backoff = 3\nfailed_key_backoff_ms = 250\n"
                            "max_failed_key_backoff_ms = 4000\n",
                            QStringLiteral("t"), &config, nullptr, &error),
             qPrintable(error));
    QCOMPARE(config.failedKeysBeforeBackoff, 3);
    QCOMPARE(config.failedKeyBackoffMs, 250);
    QCOMPARE(config.maxFailedKeyBackoffMs, 4000);
    QVERIFY(config.validate(&error));
    config.maxFailedKeyBackoffMs = 100;
    QVERIFY(!config.validate(&error));
    QVERIFY2(error.contains(QStringLiteral("max_failed_key_backoff_ms")), qPrintable(error));
    config.failedKeyBackoffMs = 0; // off: the cap does not matter
    QVERIFY2(config.validate(&error), qPrintable(error));
    config.failedKeyBackoffMs = -1;
    QVERIFY(!config.validate(&error));
    QVERIFY2(error.contains(QStringLiteral("failed_key_backoff_ms")), qPrintable(error));
}

void tst_Limits::keyBackoff()
{
    // Two free bad keys; the third blocks 127.0.0.1 for 400 ms. Other addresses
    // (127.0.0.2 also reaches the broker on 127.0.0.1) keep their own count.
    BrokerConfig config = testConfig();
    config.failedKeysBeforeBackoff = 2;
    config.failedKeyBackoffMs = 400;
    config.maxFailedKeyBackoffMs = 10000;
    config.grants = {GrantConfig{Command::Esub, "feed"}};
    const auto broker = startBroker(config);
    const QUrl url = broker->serverUrl();

    auto badKey = [&url](const QHostAddress &from) -> QString {
        RawPeer peer;
        peer.sourceAddress = from;
        if (!peer.open(url) || (peer.sendText("not-a-key"), !peer.waitForCloseFrame()))
            return QStringLiteral("no close: ") + peer.errorString();
        return QString::number(peer.closeCode) + QLatin1Char(' ') + peer.closeReason;
    };
    const QString invalid = QStringLiteral("1008 invalid API key");
    const QHostAddress home(QHostAddress::LocalHost);
    QCOMPARE(badKey(home), invalid);
    QCOMPARE(badKey(home), invalid);

    // Opened before the block: it will send a good key too late.
    RawPeer early;
    QVERIFY2(early.open(url), qPrintable(early.errorString()));

    QElapsedTimer blocked;
    blocked.start();
    QCOMPARE(badKey(home), invalid); // the third: still told why, and the block starts
    QCOMPARE(broker->stats().keysRefused, quint64(3));

    // A new connection from the address is closed before it can try any key.
    const QString backingOff = QStringLiteral("1013 too many invalid API keys from this address: retry in 1 s");
    RawPeer refused;
    QVERIFY2(refused.open(url), qPrintable(refused.errorString()));
    QVERIFY(refused.waitForCloseFrame());
    QCOMPARE(QString::number(refused.closeCode) + QLatin1Char(' ') + refused.closeReason, backingOff);
    // The connection opened earlier is refused too, even with a good key.
    early.sendText(kClientKey);
    QVERIFY(early.waitForCloseFrame());
    QCOMPARE(QString::number(early.closeCode) + QLatin1Char(' ') + early.closeReason, backingOff);
    QVERIFY(early.messages.isEmpty());
    QCOMPARE(broker->stats().keyBackoffRefused, quint64(2));
    QCOMPARE(broker->stats().keysRefused, quint64(3));
    QCOMPARE(broker->stats().handshakesCompleted, quint64(0));

    // Another address is not affected: it has its two free bad keys and gets in.
    const QHostAddress other(QStringLiteral("127.0.0.2"));
    QCOMPARE(badKey(other), invalid);
    RawPeer neighbour;
    neighbour.sourceAddress = other;
    QVERIFY2(neighbour.connectWithKey(url, kServiceKey), qPrintable(neighbour.errorString()));

    // When the block ends, a good key from 127.0.0.1 gets in, not sooner.
    // (A loop, not QTRY: that evaluates its expression again after success.)
    std::unique_ptr<TestPeer> admitted;
    QVERIFY(QTest::qWaitFor(
        [&] { return (admitted = std::make_unique<TestPeer>())->connectWithKey(url, kClientKey); }, 5000));
    TestPeer &client = *admitted;
    QVERIFY2(blocked.elapsed() >= 400, QByteArray::number(blocked.elapsed()).constData());
    QVERIFY(broker->stats().keyBackoffRefused >= 2);
    QCOMPARE(broker->stats().handshakesCompleted, quint64(2));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    client.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 1);

    // The next bad key doubles the block: 800 ms, still under "1 s" when rounded up.
    QCOMPARE(badKey(home), invalid);
    RawPeer again;
    QVERIFY2(again.open(url), qPrintable(again.errorString()));
    QVERIFY(again.waitForCloseFrame());
    QCOMPARE(QString::number(again.closeCode) + QLatin1Char(' ') + again.closeReason, backingOff);
    // The peers already in are served throughout.
    neighbour.sendText(serialize(msg(Command::Pub, "feed", {}, "served")));
    const std::optional<Message> pub = client.waitFor(Command::Pub, "feed");
    QVERIFY(pub.has_value());
    QCOMPARE(pub->body, QByteArray("served"));
}

void tst_Limits::idleSpinConfig()
{
    BrokerConfig config = testConfig();
    QCOMPARE(config.idleSpinUs, 50); // the documented default
    QString error;
    QVERIFY2(loadConfigText("[limits]\nidle_spin_us = 0\n", QStringLiteral("t"), &config, nullptr, &error),
             qPrintable(error));
    QCOMPARE(config.idleSpinUs, 0);

    // The broker sets its thread's loop to spin as configured when it listens.
    auto *epoll = qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance());
    if (!epoll) {
        // Qt's dispatcher, on request: it has no spin, and the broker runs all the same.
        QCOMPARE(qEnvironmentVariable("MIDDLEMAN_EVENT_DISPATCHER"), QStringLiteral("qt"));
        const auto broker = startBroker(config);
        QVERIFY(broker->serverUrl().isValid());
        return;
    }
    for (const int us : {50, 0, 1000}) {
        config.idleSpinUs = us;
        epoll->setIdleSpin(std::chrono::microseconds(777));
        const auto broker = startBroker(config);
        QCOMPARE(epoll->idleSpin(), std::chrono::nanoseconds(std::chrono::microseconds(us)));
    }
    epoll->setIdleSpin({});
}

QTEST_GUILESS_MAIN(tst_Limits)
#include "tst_limits.moc"
