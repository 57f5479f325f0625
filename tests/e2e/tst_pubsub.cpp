// docs/protocol.md §3, §4.1, §4.2, §5: SUB/UNSUB/PUB over real WebSockets.

#include "testpeer.h"

using namespace Middleman;
using namespace Middleman::Testing;

class tst_PubSub : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void init();
    void cleanup();
    void wildcardDelivery_data();
    void wildcardDelivery();
    void deliveredOncePerConnection();
    void orderPerPublisherKept();
    void publisherReceivesOwnMessage();
    void unsubscribeStopsDelivery_data();
    void unsubscribeStopsDelivery();
    void clientIdOnlyForServices();
    void frameTypeAndBytesKept_data();
    void frameTypeAndBytesKept();
    void severalMessagesPerFrame();
    void headersKeptInOrder();
    void unroutedPublishCounted();
    void brokerRepliesKeepNonUtf8Bytes();
    void echoedReqIdSanitised();

private:
    // Subscribes `peer` to each pattern and waits until the broker has them all.
    void subscribe(TestPeer &peer, const QList<QByteArray> &patterns);

    std::unique_ptr<Broker> m_broker;
};

void tst_PubSub::init()
{
    m_broker = startBroker();
}

void tst_PubSub::cleanup()
{
    m_broker.reset();
}

void tst_PubSub::wildcardDelivery_data()
{
    QTest::addColumn<QByteArray>("pattern");
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<bool>("delivered");
    QTest::addRow("literal") << QByteArray("chat.room1") << QByteArray("chat.room1") << true;
    QTest::addRow("star one token") << QByteArray("chat.*") << QByteArray("chat.room1") << true;
    QTest::addRow("star not two tokens") << QByteArray("chat.*") << QByteArray("chat.room1.x") << false;
    QTest::addRow("rest many tokens") << QByteArray("chat.>") << QByteArray("chat.room1.x") << true;
    QTest::addRow("rest needs one token") << QByteArray("chat.>") << QByteArray("chat") << false;
    QTest::addRow("other literal") << QByteArray("chat.room2") << QByteArray("chat.room1") << false;
}

void tst_PubSub::wildcardDelivery()
{
    QFETCH(QByteArray, pattern);
    QFETCH(QByteArray, target);
    QFETCH(bool, delivered);

    TestPeer subscriber;
    TestPeer publisher;
    QVERIFY(subscriber.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QSignalSpy subscribed(m_broker.get(), &Broker::subscriptionAdded);
    subscriber.send(msg(Command::Sub, pattern));
    QTRY_COMPARE(subscribed.size(), 1);

    // A marker on a literal target the subscriber also holds proves ordering:
    // once it arrives, the earlier PUB would have arrived too.
    subscriber.send(msg(Command::Sub, "marker"));
    QTRY_COMPARE(subscribed.size(), 2);
    publisher.send(msg(Command::Pub, target, {}, "hello"));
    publisher.send(msg(Command::Pub, "marker"));
    QVERIFY(subscriber.waitFor(Command::Pub, "marker"));
    const std::optional<Message> got = subscriber.waitFor(Command::Pub, target, 0);
    QCOMPARE(got.has_value(), delivered);
    if (delivered)
        QCOMPARE(got->body, QByteArray("hello"));
    QVERIFY(subscriber.badFrames.isEmpty());
}

void tst_PubSub::subscribe(TestPeer &peer, const QList<QByteArray> &patterns)
{
    QSignalSpy added(m_broker.get(), &Broker::subscriptionAdded);
    for (const QByteArray &pattern : patterns)
        peer.send(msg(Command::Sub, pattern));
    QTRY_COMPARE(added.size(), patterns.size());
}

void tst_PubSub::deliveredOncePerConnection()
{
    TestPeer subscriber;
    TestPeer publisher;
    QVERIFY(subscriber.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2));
    // Three patterns that all match the target, and a repeated SUB that changes nothing.
    subscribe(subscriber, {"a.b.c", "a.*.c", "a.>"});
    subscriber.send(msg(Command::Sub, "a.>"));
    subscribe(subscriber, {"marker"});
    QCOMPARE(m_broker->subscriptionsOf(m_broker->peers().first().id).size(), 4);

    publisher.send(msg(Command::Pub, "a.b.c", {}, "once"));
    publisher.send(msg(Command::Pub, "marker"));
    QVERIFY(subscriber.waitFor(Command::Pub, "marker"));
    QCOMPARE(subscriber.messages.size(), 1);
    QCOMPARE(subscriber.messages.first().target, QByteArray("a.b.c"));
    QCOMPARE(subscriber.messages.first().body, QByteArray("once"));
}

void tst_PubSub::orderPerPublisherKept()
{
    TestPeer subscriber;
    TestPeer publisher;
    QVERIFY(subscriber.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2));
    subscribe(subscriber, {"seq.*"});
    constexpr int count = 500;
    for (int i = 0; i < count; ++i)
        publisher.send(msg(Command::Pub, i % 2 ? "seq.odd" : "seq.even", {}, QByteArray::number(i)));
    QVERIFY(subscriber.waitForCount(count, 15000));
    for (int i = 0; i < count; ++i)
        QCOMPARE(subscriber.messages.at(i).body, QByteArray::number(i));
}

void tst_PubSub::publisherReceivesOwnMessage()
{
    TestPeer peer;
    QVERIFY(peer.connectWithKey(m_broker->serverUrl(), kServiceKey));
    subscribe(peer, {"echo"});
    peer.send(msg(Command::Pub, "echo", {}, "me"));
    const std::optional<Message> got = peer.waitFor(Command::Pub, "echo");
    QVERIFY(got);
    QCOMPARE(got->body, QByteArray("me"));
}

void tst_PubSub::unsubscribeStopsDelivery_data()
{
    QTest::addColumn<QByteArray>("command");
    QTest::addRow("UNSUB") << QByteArray("UNSUB");
    QTest::addRow("UNS alias") << QByteArray("UNS");
    QTest::addRow("lower case") << QByteArray("unsub");
}

void tst_PubSub::unsubscribeStopsDelivery()
{
    QFETCH(QByteArray, command);
    TestPeer subscriber;
    TestPeer publisher;
    QVERIFY(subscriber.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2));
    subscribe(subscriber, {"news.*", "news.sport", "marker"});

    // UNSUB removes exactly that subscription: news.* still delivers news.sport.
    QSignalSpy removed(m_broker.get(), &Broker::subscriptionRemoved);
    subscriber.send(command + " news.sport\n\n.\n");
    QTRY_COMPARE(removed.size(), 1);
    publisher.send(msg(Command::Pub, "news.sport", {}, "1"));
    QVERIFY(subscriber.waitFor(Command::Pub, "news.sport"));

    subscriber.send(command + " news.*\n\n.\n");
    QTRY_COMPARE(removed.size(), 2);
    publisher.send(msg(Command::Pub, "news.sport", {}, "2"));
    publisher.send(msg(Command::Pub, "marker"));
    QVERIFY(subscriber.waitFor(Command::Pub, "marker"));
    QVERIFY(!subscriber.waitFor(Command::Pub, "news.sport", 0));
    QCOMPARE(m_broker->subscriptionsOf(m_broker->peers().first().id), QList<QByteArray>{"marker"});
}

void tst_PubSub::clientIdOnlyForServices()
{
    BrokerConfig config = testConfig();
    config.grants = {GrantConfig{Command::Esub, "room.>"}, GrantConfig{Command::Epub, "room.>"}};
    m_broker = startBroker(config);
    TestPeer service;
    TestPeer client;
    TestPeer publisher;
    QVERIFY(service.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QVERIFY(client.connectWithKey(m_broker->serverUrl(), kClientKey));
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kClientKey));
    subscribe(service, {"room.1"});
    subscribe(client, {"room.1"});
    const QList<PeerInfo> peers = m_broker->peers();
    QCOMPARE(peers.size(), 3);
    const QByteArray publisherId = peers.at(2).clientId;
    QVERIFY(!publisherId.isEmpty());
    QVERIFY(peers.at(0).clientId != publisherId && peers.at(1).clientId != publisherId);

    // A forged Client-Id is reserved: replaced for services, removed for clients.
    publisher.send(msg(Command::Pub, "room.1", {{"Client-Id", "forged"}, {"X", "1"}}, "hi"));
    const std::optional<Message> toService = service.waitFor(Command::Pub, "room.1");
    const std::optional<Message> toClient = client.waitFor(Command::Pub, "room.1");
    QVERIFY(toService && toClient);
    QCOMPARE(toService->header("Client-Id"), publisherId);
    QCOMPARE(toService->headers.size(), 2);
    QCOMPARE(toService->header("X"), QByteArray("1"));
    QVERIFY(!toClient->hasHeader("Client-Id"));
    QCOMPARE(toClient->headers, (QList<Header>{{"X", "1"}}));
    QCOMPARE(toClient->body, QByteArray("hi"));
}

void tst_PubSub::frameTypeAndBytesKept_data()
{
    QTest::addColumn<bool>("binary");
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<bool>("contentLength");
    QTest::addRow("text, plain") << false << QByteArray("hello world") << false;
    QTest::addRow("text, dot lines") << false << QByteArray(".\n..\n.x\nend.") << false;
    QTest::addRow("text, empty lines") << false << QByteArray("\n\na\n\n") << false;
    QTest::addRow("text, utf-8") << false << QByteArray("gr\xc3\xbc\xc3\x9f \xe2\x82\xac") << false;
    QTest::addRow("text, CRLF kept by length") << false << QByteArray("a\r\nb\r\n.\r\n") << true;
    QTest::addRow("binary, all bytes") << true << QByteArray() << true;
    QTest::addRow("binary, dot-stuffed") << true << QByteArray(".a\n.\nb") << false;
}

void tst_PubSub::frameTypeAndBytesKept()
{
    QFETCH(bool, binary);
    QFETCH(QByteArray, body);
    QFETCH(bool, contentLength);
    if (binary && body.isEmpty()) {
        for (int i = 0; i < 256; ++i)
            body.append(char(i));
    }
    TestPeer subscriber;
    TestPeer publisher;
    QVERIFY(subscriber.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2));
    subscribe(subscriber, {"bytes"});

    Message out = msg(Command::Pub, "bytes", {}, body);
    out.binary = binary;
    if (contentLength)
        out.headers.append(Header{"Content-Length", QByteArray::number(body.size())});
    publisher.send(out);
    const std::optional<Message> got = subscriber.waitFor(Command::Pub, "bytes");
    QVERIFY(got);
    QCOMPARE(got->body, body);
    QCOMPARE(got->binary, binary);
    QCOMPARE(subscriber.frameIsBinary.last(), binary);
    QCOMPARE(got->hasHeader("Content-Length"), contentLength);
}

void tst_PubSub::severalMessagesPerFrame()
{
    TestPeer subscriber;
    TestPeer publisher;
    QVERIFY(subscriber.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2));
    // One frame: a SUB, blank lines, then two PUBs with CRLF line ends.
    subscriber.send(QByteArray("SUB multi.*\n\n.\n\nsub multi.x\r\n\r\n.\r\n"));
    QTRY_COMPARE(m_broker->subscriptionsOf(m_broker->peers().first().id).size(), 2);
    publisher.send(QByteArray("PUB multi.a\r\nH: 1\r\n\r\nfirst\r\n.\r\npub multi.b\n\nsecond\nline\n.\n"));
    QVERIFY(subscriber.waitForCount(2));
    QCOMPARE(subscriber.messages.at(0).target, QByteArray("multi.a"));
    QCOMPARE(subscriber.messages.at(0).header("h"), QByteArray("1"));
    QCOMPARE(subscriber.messages.at(0).body, QByteArray("first"));
    QCOMPARE(subscriber.messages.at(1).target, QByteArray("multi.b"));
    QCOMPARE(subscriber.messages.at(1).body, QByteArray("second\nline"));
    // Output is one message per frame, upper-case command.
    QVERIFY(subscriber.frames.last().startsWith("PUB multi.b\n"));
    QCOMPARE(subscriber.frames.size(), 3); // MM OK + two PUBs
}

void tst_PubSub::headersKeptInOrder()
{
    TestPeer subscriber;
    TestPeer publisher;
    QVERIFY(subscriber.connectWithKey(m_broker->serverUrl(), kClientKey));
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2));
    publisher.send(msg(Command::Esub, "h"));
    QSignalSpy granted(m_broker.get(), &Broker::grantAdded);
    QTRY_COMPARE(granted.size(), 1);
    subscribe(subscriber, {"h"});
    const QList<Header> headers{{"B", "2"}, {"a", "1"}, {"B", "3"}, {"Empty", ""}};
    publisher.send(msg(Command::Pub, "h", headers, "x"));
    const std::optional<Message> got = subscriber.waitFor(Command::Pub, "h");
    QVERIFY(got);
    QCOMPARE(got->headers, headers);
}

void tst_PubSub::unroutedPublishCounted()
{
    TestPeer publisher;
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QSignalSpy routed(m_broker.get(), &Broker::messageRouted);
    publisher.send(msg(Command::Pub, "nobody.listens"));
    QTRY_COMPARE(routed.size(), 1);
    QCOMPARE(routed.first().at(3).toInt(), 0);
    QCOMPARE(m_broker->stats().publishes, 1u);
    QCOMPARE(m_broker->stats().publishesUnrouted, 1u);
}

void tst_PubSub::brokerRepliesKeepNonUtf8Bytes()
{
    // A REQ in a binary frame may carry bytes that are not UTF-8; the broker's own
    // answer restores them exactly, in a binary frame (a text frame could not).
    TestPeer requester;
    QVERIFY(requester.connectWithKey(m_broker->serverUrl(), kServiceKey));
    const QByteArray reqId("id-\xff\xfe", 5);
    requester.sendBinary("REQ nobody\nReqID: " + reqId + "\n\n.\n");
    const std::optional<Message> res = requester.waitFor(Command::Res, "nobody");
    QVERIFY(res);
    QCOMPARE(res->header("ReqID"), reqId);
    QCOMPARE(res->header("Status"), QByteArray("503"));
    QVERIFY(res->binary);
    QVERIFY(requester.frameIsBinary.last());

    // Valid UTF-8 stays in a text frame.
    requester.sendBinary("REQ nobody\nReqID: plain\n\n.\n");
    const std::optional<Message> plain = requester.waitFor(Command::Res, "nobody");
    QVERIFY(plain);
    QVERIFY(!plain->binary);
}

void tst_PubSub::echoedReqIdSanitised()
{
    // Section 4.8: an ERR names the ReqID; a control character in it is replaced.
    TestPeer client;
    QVERIFY(client.connectWithKey(m_broker->serverUrl(), kClientKey));
    client.send(QByteArray("PUB closed\nReqID: a\rb\n\nx\n.\n"));
    const std::optional<Message> err = client.waitFor(Command::Err, "closed");
    QVERIFY(err);
    QCOMPARE(err->header("Status"), QByteArray("403"));
    QCOMPARE(err->header("ReqID"), QByteArray("a?b"));
    QVERIFY(client.badFrames.isEmpty());
}

QTEST_MAIN(tst_PubSub)
#include "tst_pubsub.moc"
