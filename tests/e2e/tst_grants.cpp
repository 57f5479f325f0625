// docs/protocol.md §4.5, §4.6: clients need grants from services (or configuration) to
// SUB, PUB and REQ; a grant lives while one granting service stays connected, and
// a client subscription no grant covers any more is revoked with ERR 403.

#include "testpeer.h"

#include <algorithm>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

bool sendAndSync(TestPeer &peer, const Message &message)
{
    peer.send(message);
    return peer.sync();
}

// An ERR already received for `target`, taken off the queue.
std::optional<Message> takeError(TestPeer &peer, const QByteArray &target)
{
    return peer.waitFor(Command::Err, target, 0);
}

// What a client sends to use a grant of `kind` on `target`.
Message attempt(Command command, const QByteArray &target)
{
    Message m = msg(command, target, {}, "payload");
    if (command == Command::Req || command == Command::Res)
        m.headers.append(Header{"ReqID", "r-" + target});
    return m;
}

Command useOf(Command grantKind)
{
    switch (grantKind) {
    case Command::Epub: return Command::Pub;
    case Command::Ereq: return Command::Req;
    default: return Command::Sub;
    }
}

} // namespace

class tst_Grants : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void clientRefusedWithoutGrant_data();
    void clientRefusedWithoutGrant();
    void servicesNeedNoGrants();
    void grantEnablesAllClients_data();
    void grantEnablesAllClients();
    void wildcardGrant_data();
    void wildcardGrant();
    void grantFromClientRefused_data();
    void grantFromClientRefused();
    void permanentGrants();
    void grantLivesWhileAGranterStays_data();
    void grantLivesWhileAGranterStays();
    void subscriptionAfterGranterLeaves_data();
    void subscriptionAfterGranterLeaves();
};

void tst_Grants::clientRefusedWithoutGrant_data()
{
    QTest::addColumn<Command>("command");
    QTest::addColumn<QByteArray>("target");
    QTest::addRow("SUB literal") << Command::Sub << QByteArray("chat.room1");
    QTest::addRow("SUB wildcard") << Command::Sub << QByteArray("chat.>");
    QTest::addRow("PUB") << Command::Pub << QByteArray("chat.room1");
    QTest::addRow("REQ") << Command::Req << QByteArray("time.now");
    QTest::addRow("RES (4.6: clients never answer)") << Command::Res << QByteArray("time.now");
}

void tst_Grants::clientRefusedWithoutGrant()
{
    QFETCH(Command, command);
    QFETCH(QByteArray, target);

    const auto broker = startBroker();
    TestPeer service;
    TestPeer client;
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    // A service subscriber and responder: a leak past the refusal would reach it.
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    service.send(msg(Command::Sub, ">"));
    QTRY_COMPARE(subscribed.size(), 1);
    QSignalSpy requests(broker.get(), &Broker::requestStarted);

    QVERIFY(sendAndSync(client, attempt(command, target)));
    const std::optional<Message> err = takeError(client, target);
    QVERIFY(err);
    QCOMPARE(err->header(HeaderName::Status), QByteArray("403"));
    QCOMPARE(err->header(HeaderName::Command), commandName(command).toByteArray());
    if (command == Command::Req || command == Command::Res)
        QCOMPARE(err->header(HeaderName::ReqId), "r-" + target);
    QVERIFY(!err->body.isEmpty());

    QVERIFY(broker->subscriptionsOf(peerIdByPort(*broker, client.socket.localPort())).isEmpty());
    QCOMPARE(subscribed.size(), 1);
    QCOMPARE(requests.size(), 0);
    QVERIFY(service.sync());
    QVERIFY(!service.waitFor([](const Message &m) { return m.command != Command::Res; }, 0));
    QVERIFY(client.socket.isValid());
    QVERIFY(client.badFrames.isEmpty());
}

void tst_Grants::servicesNeedNoGrants()
{
    // 4.6: services may do everything without grants (there are none here).
    const auto broker = startBroker();
    QVERIFY(broker->grants().isEmpty());
    TestPeer responder;
    TestPeer requester;
    QVERIFY(responder.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(requester.connectWithKey(broker->serverUrl(), kServiceKey2));

    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    responder.send(msg(Command::Sub, "chat.*"));
    QTRY_COMPARE(subscribed.size(), 1);

    requester.send(msg(Command::Pub, "chat.room1", {}, "hello"));
    const std::optional<Message> pub = responder.waitFor(Command::Pub, "chat.room1");
    QVERIFY(pub);
    QCOMPARE(pub->body, QByteArray("hello"));

    requester.send(msg(Command::Req, "chat.room1", {{"ReqID", "q1"}}, "question"));
    const std::optional<Message> req = responder.waitFor(Command::Req, "chat.room1");
    QVERIFY(req);
    responder.send(msg(Command::Res, "chat.room1", {{"ReqID", req->header(HeaderName::ReqId)}}, "answer"));
    const std::optional<Message> res = requester.waitFor(Command::Res, "chat.room1");
    QVERIFY(res);
    QCOMPARE(res->header(HeaderName::ReqId), QByteArray("q1"));
    QCOMPARE(res->body, QByteArray("answer"));

    QVERIFY(responder.sync());
    QVERIFY(requester.sync());
    QVERIFY(!responder.waitFor(Command::Err, {}, 0));
    QVERIFY(!requester.waitFor(Command::Err, {}, 0));
}

void tst_Grants::grantEnablesAllClients_data()
{
    QTest::addColumn<Command>("kind");
    QTest::addRow("EPUB") << Command::Epub;
    QTest::addRow("ESUB") << Command::Esub;
    QTest::addRow("EREQ") << Command::Ereq;
}

void tst_Grants::grantEnablesAllClients()
{
    QFETCH(Command, kind);
    const Command use = useOf(kind);
    const QByteArray target = "chat.room1";

    const auto broker = startBroker();
    TestPeer service;
    TestPeer clients[2];
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));
    for (TestPeer &client : clients)
        QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    service.send(msg(Command::Sub, "chat.>"));
    QTRY_COMPARE(subscribed.size(), 1);

    for (TestPeer &client : clients) {
        QVERIFY(sendAndSync(client, attempt(use, target)));
        const std::optional<Message> err = takeError(client, target);
        QVERIFY(err);
        QCOMPARE(err->header(HeaderName::Status), QByteArray("403"));
    }

    QSignalSpy granted(broker.get(), &Broker::grantAdded);
    service.send(msg(kind, "chat.>"));
    QTRY_COMPARE(granted.size(), 1);
    QCOMPARE(granted.at(0).at(0).value<Command>(), kind);
    QCOMPARE(granted.at(0).at(1).toByteArray(), QByteArray("chat.>"));
    QCOMPARE(granted.at(0).at(2).toULongLong(), peerIdByPort(*broker, service.socket.localPort()));
    const QList<GrantTable::Grant> expected{GrantTable::Grant{kind, "chat.>"}};
    QCOMPARE(broker->grants(), expected);
    QCOMPARE(broker->grantsOf(peerIdByPort(*broker, service.socket.localPort())), expected);

    // Every client may now, not just one.
    for (TestPeer &client : clients) {
        QVERIFY(sendAndSync(client, attempt(use, target)));
        QVERIFY(!takeError(client, target));
    }

    if (use == Command::Sub) {
        for (TestPeer &client : clients)
            QCOMPARE(broker->subscriptionsOf(peerIdByPort(*broker, client.socket.localPort())), QList<QByteArray>{target});
        service.send(msg(Command::Pub, target, {}, "news"));
        for (TestPeer &client : clients) {
            const std::optional<Message> got = client.waitFor(Command::Pub, target);
            QVERIFY(got);
            QCOMPARE(got->body, QByteArray("news"));
        }
    } else {
        // The service received one message from each client, tagged with its Client-Id.
        QSet<QByteArray> senders;
        for (int i = 0; i < 2; ++i) {
            const std::optional<Message> got = service.waitFor(use, target);
            QVERIFY(got);
            senders.insert(got->header(HeaderName::ClientId));
        }
        QSet<QByteArray> expected;
        for (TestPeer &client : clients)
            expected.insert(broker->peer(peerIdByPort(*broker, client.socket.localPort()))->clientId);
        QCOMPARE(senders, expected);
    }
}

void tst_Grants::wildcardGrant_data()
{
    QTest::addColumn<Command>("kind");
    QTest::addColumn<QByteArray>("grant");
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<bool>("allowed");

    const auto row = [](const char *name, Command kind, const char *grant, const char *target, bool allowed) {
        QTest::addRow("%s", name) << kind << QByteArray(grant) << QByteArray(target) << allowed;
    };
    row("ESUB chat.> allows SUB chat.room1", Command::Esub, "chat.>", "chat.room1", true);
    row("ESUB chat.> allows SUB chat.*", Command::Esub, "chat.>", "chat.*", true);
    row("ESUB chat.> allows SUB chat.>", Command::Esub, "chat.>", "chat.>", true);
    row("ESUB chat.> allows SUB chat.room1.x", Command::Esub, "chat.>", "chat.room1.x", true);
    row("ESUB chat.> refuses SUB >", Command::Esub, "chat.>", ">", false);
    row("ESUB chat.> refuses SUB other", Command::Esub, "chat.>", "other", false);
    row("ESUB chat.> refuses SUB chat", Command::Esub, "chat.>", "chat", false);
    row("ESUB chat.> refuses SUB *.room1", Command::Esub, "chat.>", "*.room1", false);
    row("ESUB chat.* allows SUB chat.room1", Command::Esub, "chat.*", "chat.room1", true);
    row("ESUB chat.* allows SUB chat.*", Command::Esub, "chat.*", "chat.*", true);
    row("ESUB chat.* refuses SUB chat.>", Command::Esub, "chat.*", "chat.>", false);
    row("ESUB chat.* refuses SUB chat.room1.x", Command::Esub, "chat.*", "chat.room1.x", false);
    row("ESUB > allows SUB a.*.c", Command::Esub, ">", "a.*.c", true);
    row("ESUB chat.room1 refuses SUB chat.*", Command::Esub, "chat.room1", "chat.*", false);
    row("EPUB chat.> allows PUB chat.room1.x", Command::Epub, "chat.>", "chat.room1.x", true);
    row("EPUB chat.> refuses PUB chat", Command::Epub, "chat.>", "chat", false);
    row("EPUB chat.* refuses PUB chat.a.b", Command::Epub, "chat.*", "chat.a.b", false);
    row("EPUB *.room1 allows PUB chat.room1", Command::Epub, "*.room1", "chat.room1", true);
    row("EREQ svc.* allows REQ svc.time", Command::Ereq, "svc.*", "svc.time", true);
    row("EREQ svc.* refuses REQ svc.time.utc", Command::Ereq, "svc.*", "svc.time.utc", false);
    row("EREQ svc.time refuses REQ svc.date", Command::Ereq, "svc.time", "svc.date", false);
    row("EREQ svc.> allows REQ svc.time.utc", Command::Ereq, "svc.>", "svc.time.utc", true);
}

void tst_Grants::wildcardGrant()
{
    QFETCH(Command, kind);
    QFETCH(QByteArray, grant);
    QFETCH(QByteArray, target);
    QFETCH(bool, allowed);

    const auto broker = startBroker();
    TestPeer service;
    TestPeer client;
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QSignalSpy granted(broker.get(), &Broker::grantAdded);
    service.send(msg(kind, grant));
    QTRY_COMPARE(granted.size(), 1);

    const Command use = useOf(kind);
    // 4.2: a service subscribed to everything sees whatever a client PUB reaches.
    if (use == Command::Pub) {
        QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
        service.send(msg(Command::Sub, ">"));
        QTRY_COMPARE(subscribed.size(), 1);
    }
    QVERIFY(sendAndSync(client, attempt(use, target)));
    const std::optional<Message> err = takeError(client, target);
    if (use == Command::Pub) {
        // The client's PUB was handled before its sync answer, so a delivery is
        // queued to the service before the answer to the service's own sync.
        QVERIFY(service.sync());
        const std::optional<Message> pub = service.waitFor(Command::Pub, target, 0);
        QCOMPARE(bool(pub), allowed);
        if (pub) {
            QCOMPARE(pub->body, QByteArray("payload"));
            QCOMPARE(pub->header(HeaderName::ClientId),
                     broker->peer(peerIdByPort(*broker, client.socket.localPort()))->clientId);
        }
        QVERIFY(service.messages.isEmpty());
    }
    if (allowed) {
        QVERIFY2(!err, err ? err->body.constData() : "");
    } else {
        QVERIFY(err);
        QCOMPARE(err->header(HeaderName::Status), QByteArray("403"));
        QCOMPARE(err->header(HeaderName::Command), commandName(use).toByteArray());
    }
    if (use == Command::Sub)
        QCOMPARE(broker->subscriptionsOf(peerIdByPort(*broker, client.socket.localPort())).contains(target), allowed);
    if (use == Command::Req && allowed) {
        // Allowed, but nobody answers: the 503 of 4.3, not a refusal.
        const std::optional<Message> res = client.waitFor(Command::Res, target, 0);
        QVERIFY(res);
        QCOMPARE(res->header(HeaderName::Status), QByteArray("503"));
    }
}

void tst_Grants::grantFromClientRefused_data()
{
    QTest::addColumn<Command>("kind");
    QTest::addRow("EPUB") << Command::Epub;
    QTest::addRow("ESUB") << Command::Esub;
    QTest::addRow("EREQ") << Command::Ereq;
}

void tst_Grants::grantFromClientRefused()
{
    QFETCH(Command, kind);
    const auto broker = startBroker();
    TestPeer client;
    TestPeer other;
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY(other.connectWithKey(broker->serverUrl(), kClientKey));
    QSignalSpy granted(broker.get(), &Broker::grantAdded);

    QVERIFY(sendAndSync(client, msg(kind, "chat.>")));
    const std::optional<Message> err = takeError(client, "chat.>");
    QVERIFY(err);
    QCOMPARE(err->header(HeaderName::Status), QByteArray("403"));
    QCOMPARE(err->header(HeaderName::Command), commandName(kind).toByteArray());
    QCOMPARE(granted.size(), 0);
    QVERIFY(broker->grants().isEmpty());

    // Nothing was granted: the use it would have allowed is still refused.
    QVERIFY(sendAndSync(other, attempt(useOf(kind), "chat.room1")));
    const std::optional<Message> refused = takeError(other, "chat.room1");
    QVERIFY(refused);
    QCOMPARE(refused->header(HeaderName::Status), QByteArray("403"));
}

void tst_Grants::permanentGrants()
{
    BrokerConfig config = testConfig();
    config.grants = {GrantConfig{Command::Esub, "news.>"}, GrantConfig{Command::Epub, "news.>"},
                     GrantConfig{Command::Ereq, "time.now"}};
    const auto broker = startBroker(config);
    const QList<GrantTable::Grant> expected{{Command::Epub, "news.>"}, {Command::Esub, "news.>"},
                                            {Command::Ereq, "time.now"}};
    QCOMPARE(broker->grants(), expected);
    QCOMPARE(broker->grantsOf(GrantTable::Permanent).size(), 3);

    // No service is connected at all.
    TestPeer client;
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    client.send(msg(Command::Sub, "news.a"));
    QTRY_COMPARE(subscribed.size(), 1);
    client.send(msg(Command::Pub, "news.a", {}, "own words"));
    const std::optional<Message> own = client.waitFor(Command::Pub, "news.a");
    QVERIFY(own);
    QCOMPARE(own->body, QByteArray("own words"));

    QVERIFY(sendAndSync(client, attempt(Command::Req, "time.now")));
    QVERIFY(!takeError(client, "time.now"));
    const std::optional<Message> res = client.waitFor(Command::Res, "time.now", 0);
    QVERIFY(res);
    QCOMPARE(res->header(HeaderName::Status), QByteArray("503"));

    QVERIFY(sendAndSync(client, attempt(Command::Sub, "other")));
    QVERIFY(takeError(client, "other"));
    QVERIFY(sendAndSync(client, attempt(Command::Pub, "news")));
    QVERIFY(takeError(client, "news"));

    // A service making and dropping the same grant does not end the permanent one.
    QSignalSpy removed(broker.get(), &Broker::grantRemoved);
    QSignalSpy unsubscribed(broker.get(), &Broker::subscriptionRemoved);
    QSignalSpy left(broker.get(), &Broker::peerDisconnected);
    {
        TestPeer service;
        QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));
        QSignalSpy granted(broker.get(), &Broker::grantAdded);
        service.send(msg(Command::Esub, "news.>"));
        QTRY_COMPARE(granted.size(), 1);
        service.socket.close();
        QTRY_COMPARE(left.size(), 1);
    }
    QCOMPARE(removed.size(), 0);
    QCOMPARE(unsubscribed.size(), 0);
    QCOMPARE(broker->grants(), expected);
    QVERIFY(sendAndSync(client, msg(Command::Pub, "news.a", {}, "still")));
    QVERIFY(!client.waitFor(Command::Err, {}, 0));
    const std::optional<Message> still = client.waitFor(Command::Pub, "news.a", 0);
    QVERIFY(still);
    QCOMPARE(still->body, QByteArray("still"));
}

void tst_Grants::grantLivesWhileAGranterStays_data()
{
    QTest::addColumn<Command>("kind");
    QTest::addRow("EPUB") << Command::Epub;
    QTest::addRow("ESUB") << Command::Esub;
    QTest::addRow("EREQ") << Command::Ereq;
}

void tst_Grants::grantLivesWhileAGranterStays()
{
    QFETCH(Command, kind);
    const Command use = useOf(kind);

    const auto broker = startBroker();
    TestPeer client;
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QSignalSpy granted(broker.get(), &Broker::grantAdded);
    QSignalSpy removed(broker.get(), &Broker::grantRemoved);
    QSignalSpy left(broker.get(), &Broker::peerDisconnected);

    auto first = std::make_unique<TestPeer>();
    auto second = std::make_unique<TestPeer>();
    QVERIFY(first->connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(second->connectWithKey(broker->serverUrl(), kServiceKey2));
    const quint64 firstId = peerIdByPort(*broker, first->socket.localPort());
    const quint64 secondId = peerIdByPort(*broker, second->socket.localPort());
    first->send(msg(kind, "chat.>"));
    QTRY_COMPARE(granted.size(), 1);
    second->send(msg(kind, "chat.>"));
    QTRY_COMPARE(granted.size(), 2);
    QCOMPARE(granted.at(0).at(2).toULongLong(), firstId);
    QCOMPARE(granted.at(1).at(2).toULongLong(), secondId);
    // Repeating a grant one already holds changes nothing.
    QVERIFY(sendAndSync(*first, msg(kind, "chat.>")));
    QCOMPARE(granted.size(), 2);
    QCOMPARE(broker->grants().size(), 1);

    QVERIFY(sendAndSync(client, attempt(use, "chat.a")));
    QVERIFY(!takeError(client, "chat.a"));

    // One granter leaves: the other still holds the grant.
    first.reset();
    QTRY_COMPARE(left.size(), 1);
    QCOMPARE(left.at(0).at(0).toULongLong(), firstId);
    QCOMPARE(removed.size(), 0);
    const QList<GrantTable::Grant> expected{GrantTable::Grant{kind, "chat.>"}};
    QCOMPARE(broker->grants(), expected);
    QVERIFY(sendAndSync(client, attempt(use, "chat.b")));
    QVERIFY(!takeError(client, "chat.b"));
    if (use == Command::Sub)
        QCOMPARE(broker->subscriptionsOf(peerIdByPort(*broker, client.socket.localPort())).size(), 2);

    // The last granter leaves: the grant is gone.
    second.reset();
    QTRY_COMPARE(left.size(), 2);
    QCOMPARE(removed.size(), 1);
    QCOMPARE(removed.at(0).at(0).value<Command>(), kind);
    QCOMPARE(removed.at(0).at(1).toByteArray(), QByteArray("chat.>"));
    QVERIFY(broker->grants().isEmpty());
    QVERIFY(sendAndSync(client, attempt(use, "chat.c")));
    const std::optional<Message> err = takeError(client, "chat.c");
    QVERIFY(err);
    QCOMPARE(err->header(HeaderName::Status), QByteArray("403"));
    QCOMPARE(err->header(HeaderName::Command), commandName(use).toByteArray());
    if (use == Command::Sub)
        QVERIFY(broker->subscriptionsOf(peerIdByPort(*broker, client.socket.localPort())).isEmpty());
}

void tst_Grants::subscriptionAfterGranterLeaves_data()
{
    QTest::addColumn<QByteArray>("permanent"); // a configured ESUB, or empty
    QTest::addColumn<QByteArray>("leaving");   // ESUB of the service that leaves
    QTest::addColumn<QByteArray>("staying");   // ESUB of a service that stays, or empty
    QTest::addColumn<QByteArray>("subscription");
    QTest::addColumn<bool>("kept");

    const QByteArray none;
    QTest::addRow("last grant gone") << none << QByteArray("chat.>") << none << QByteArray("chat.room1") << false;
    QTest::addRow("last grant gone, wildcard subscription")
        << none << QByteArray("chat.>") << none << QByteArray("chat.*") << false;
    QTest::addRow("permanent grant covers") << QByteArray("chat.>") << QByteArray("chat.>") << none
                                            << QByteArray("chat.room1") << true;
    QTest::addRow("other service holds the same grant")
        << none << QByteArray("chat.>") << QByteArray("chat.>") << QByteArray("chat.room1") << true;
    QTest::addRow("other service's broader grant covers")
        << none << QByteArray("chat.room1") << QByteArray("chat.*") << QByteArray("chat.room1") << true;
    QTest::addRow("other service's grant covers a wildcard subscription")
        << none << QByteArray("chat.>") << QByteArray("chat.*") << QByteArray("chat.*") << true;
    QTest::addRow("other service's grant covers only part")
        << none << QByteArray("chat.>") << QByteArray("chat.*") << QByteArray("chat.>") << false;
    QTest::addRow("unrelated grant stays") << none << QByteArray("chat.>") << QByteArray("news.>")
                                           << QByteArray("chat.room1") << false;
}

void tst_Grants::subscriptionAfterGranterLeaves()
{
    QFETCH(QByteArray, permanent);
    QFETCH(QByteArray, leaving);
    QFETCH(QByteArray, staying);
    QFETCH(QByteArray, subscription);
    QFETCH(bool, kept);
    const QByteArray topic = "chat.room1"; // matches every subscription in the table

    BrokerConfig config = testConfig();
    // A subscription that always stays: its delivery proves later ones were not held back.
    config.grants = {GrantConfig{Command::Esub, "marker"}};
    if (!permanent.isEmpty())
        config.grants.append(GrantConfig{Command::Esub, permanent});
    const auto broker = startBroker(config);

    auto leaver = std::make_unique<TestPeer>();
    TestPeer stayer;
    TestPeer publisher;
    TestPeer client;
    QVERIFY(leaver->connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(stayer.connectWithKey(broker->serverUrl(), kServiceKey2));
    QVERIFY(publisher.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    const quint64 clientId = peerIdByPort(*broker, client.socket.localPort());

    QSignalSpy granted(broker.get(), &Broker::grantAdded);
    leaver->send(msg(Command::Esub, leaving));
    if (!staying.isEmpty())
        stayer.send(msg(Command::Esub, staying));
    QTRY_COMPARE(granted.size(), staying.isEmpty() ? 1 : 2);

    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    client.send(msg(Command::Sub, subscription));
    client.send(msg(Command::Sub, "marker"));
    QTRY_COMPARE(subscribed.size(), 2);
    QVERIFY(client.sync());
    QVERIFY(!client.waitFor(Command::Err, {}, 0));

    QSignalSpy unsubscribed(broker.get(), &Broker::subscriptionRemoved);
    QSignalSpy left(broker.get(), &Broker::peerDisconnected);
    leaver.reset();
    QTRY_COMPARE(left.size(), 1);

    publisher.send(msg(Command::Pub, topic, {}, "after"));
    publisher.send(msg(Command::Pub, "marker"));
    QVERIFY(client.waitFor(Command::Pub, "marker"));
    const std::optional<Message> delivered = client.waitFor(Command::Pub, topic, 0);
    const std::optional<Message> err = client.waitFor(Command::Err, subscription, 0);
    QList<QByteArray> expected{"marker"};
    if (kept)
        expected.prepend(subscription);
    QList<QByteArray> actual = broker->subscriptionsOf(clientId);
    std::sort(actual.begin(), actual.end());
    std::sort(expected.begin(), expected.end());
    QCOMPARE(actual, expected);
    if (kept) {
        QVERIFY(delivered);
        QCOMPARE(delivered->body, QByteArray("after"));
        QVERIFY(!err);
        QCOMPARE(unsubscribed.size(), 0);
        QCOMPARE(broker->stats().subscriptionsRevoked, quint64(0));
    } else {
        QVERIFY(!delivered);
        QVERIFY(err);
        QCOMPARE(err->header(HeaderName::Status), QByteArray("403"));
        QCOMPARE(unsubscribed.size(), 1);
        QCOMPARE(unsubscribed.at(0).at(0).toULongLong(), clientId);
        QCOMPARE(unsubscribed.at(0).at(1).toByteArray(), subscription);
        QCOMPARE(broker->stats().subscriptionsRevoked, quint64(1));
    }
    QVERIFY(!client.waitFor(Command::Err, {}, 0));
    QVERIFY(!client.closed);
    QVERIFY(client.badFrames.isEmpty());
}

QTEST_MAIN(tst_Grants)
#include "tst_grants.moc"
