// PROTOCOL.md 3, 4.1, 4.2, 4.7: SUB/UNSUB/PUB over real WebSockets.

#include "testpeer.h"

using namespace Middleman;
using namespace Middleman::Testing;

class tst_PubSub : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void init();
    void cleanup();
    void wildcardDelivery_data();
    void wildcardDelivery();

private:
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

QTEST_MAIN(tst_PubSub)
#include "tst_pubsub.moc"
