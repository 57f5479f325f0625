// PROTOCOL.md 6 (limits that protect the broker), with real peers: the message
// rate per connection, the connections in total and per remote address, the
// Origin allow-list for browsers, and the back-off for bad keys per address;
// and the idle spin (docs/design.md) that [limits] sets too.

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
    void rateConfig();
    void rateLimited();
    void rateRefills();
    void rateUnlimited();
    void connectionLimits_data();
    void connectionLimits();
    void originAllowList();
    void keyBackoffConfig();
    void keyBackoff();
    void idleSpinConfig();
};

void tst_Limits::rateConfig()
{
    BrokerConfig config;
    QCOMPARE(config.maxMessagesPerSecond, 10000);
    QCOMPARE(config.messageBurst, 20000);
    QString error;
    QVERIFY2(loadConfigText("[limits]\nmax_messages_per_second = 5\nmessage_burst = 7\n", QStringLiteral("t"),
                            &config, nullptr, &error),
             qPrintable(error));
    QCOMPARE(config.maxMessagesPerSecond, 5);
    QCOMPARE(config.messageBurst, 7);
    QVERIFY(config.validate(&error));
    config.maxMessagesPerSecond = 0;
    QVERIFY(config.validate(&error));
    config.maxMessagesPerSecond = -1;
    QVERIFY(!config.validate(&error));
    QVERIFY2(error.contains(QStringLiteral("max_messages_per_second")), qPrintable(error));
    config.maxMessagesPerSecond = 5;
    config.messageBurst = 0;
    QVERIFY(!config.validate(&error));
    QVERIFY2(error.contains(QStringLiteral("message_burst")), qPrintable(error));

    config = BrokerConfig();
    QCOMPARE(config.maxConnections, 10000);
    QCOMPARE(config.maxConnectionsPerAddress, 1000);
    QVERIFY2(loadConfigText("[limits]\nmax_connections = 3\nmax_connections_per_address = 2\n",
                            QStringLiteral("t"), &config, nullptr, &error),
             qPrintable(error));
    QCOMPARE(config.maxConnections, 3);
    QCOMPARE(config.maxConnectionsPerAddress, 2);
    config.maxConnectionsPerAddress = 0;
    QVERIFY(!config.validate(&error));
    QVERIFY2(error.contains(QStringLiteral("max_connections_per_address")), qPrintable(error));
}

void tst_Limits::rateLimited()
{
    // One token a second and a burst of five: of eight messages in one frame,
    // five pass and three get ERR 429; other connections have their own bucket.
    BrokerConfig config = testConfig();
    config.maxMessagesPerSecond = 1;
    config.messageBurst = 5;
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
    config.maxMessagesPerSecond = 50;
    config.messageBurst = 1;
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
    config.maxMessagesPerSecond = 0;
    config.messageBurst = 1;
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
    QCOMPARE(config.failedKeyBackoffMs, 1000);
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
