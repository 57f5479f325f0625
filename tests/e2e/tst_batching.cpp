// docs/protocol.md sections 1 and 4.7: a connection that sent OPT Batch: on gets the messages
// queued for it in one event-loop turn packed into as few WebSocket messages as
// the frame type and the batch size allow, in order, and nothing batched is lost
// when the connection closes.

#include "session.h"
#include "testpeer.h"

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

QByteArray pubs(const QByteArray &target, int from, int count, const QByteArray &body = "b")
{
    QByteArray wire;
    for (int i = from; i < from + count; ++i)
        wire += serialize(msg(Command::Pub, target, {{"Seq", QByteArray::number(i)}}, body));
    return wire;
}

} // namespace

class tst_Batching : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void init();
    void cleanup();
    void oneTurnOneFrame_data();
    void oneTurnOneFrame();
    void batchesCloseAtTheSizeLimit();
    void frameTypesNeverMix();
    void turningOffSendsTheBatchFirst();
    void closingSendsTheBatchFirst_data();
    void closingSendsTheBatchFirst();

private:
    // A peer subscribed to `pattern`, with Batch on if `batch`; returns its id.
    quint64 subscriber(TestPeer &peer, const QByteArray &key, const QByteArray &pattern, bool batch);

    std::unique_ptr<Broker> m_broker;
};

void tst_Batching::init()
{
    m_broker = startBroker();
}

void tst_Batching::cleanup()
{
    m_broker.reset();
}

quint64 tst_Batching::subscriber(TestPeer &peer, const QByteArray &key, const QByteArray &pattern, bool batch)
{
    if (!peer.connectWithKey(m_broker->serverUrl(), key))
        return 0;
    if (batch)
        peer.send(msg(Command::Opt, "-", {{"Batch", "on"}}));
    peer.send(msg(Command::Sub, pattern));
    if (!peer.sync())
        return 0;
    peer.messages.clear(); // the OPT's answer
    return peerIdByPort(*m_broker, peer.socket.localPort());
}

void tst_Batching::oneTurnOneFrame_data()
{
    QTest::addColumn<bool>("binary");
    QTest::addRow("text") << false;
    QTest::addRow("binary") << true;
}

void tst_Batching::oneTurnOneFrame()
{
    QFETCH(bool, binary);
    TestPeer batched;
    TestPeer plain;
    TestPeer publisher;
    const quint64 batchedId = subscriber(batched, kServiceKey, "feed", true);
    QVERIFY(batchedId != 0);
    QVERIFY(subscriber(plain, kServiceKey2, "feed", false) != 0);
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey));
    const qsizetype batchedBefore = batched.frames.size();
    const qsizetype plainBefore = plain.frames.size();

    // 50 messages in one WebSocket message are routed in one turn.
    constexpr int kCount = 50;
    const QByteArray wire = pubs("feed", 0, kCount);
    if (binary)
        publisher.sendBinary(wire);
    else
        publisher.send(wire);
    QVERIFY(batched.waitForCount(kCount));
    QVERIFY(plain.waitForCount(kCount));

    QCOMPARE(batched.frames.size() - batchedBefore, qsizetype(1));
    QCOMPARE(batched.frameIsBinary.last(), binary);
    const QList<Message> packed = brokerMessages(batched.frames.last(), binary);
    QCOMPARE(packed.size(), qsizetype(kCount));
    QCOMPARE(plain.frames.size() - plainBefore, qsizetype(kCount)); // no Batch: one message per frame
    for (int i = 0; i < kCount; ++i) {
        QCOMPARE(packed.at(i).header("Seq"), QByteArray::number(i));
        QCOMPARE(batched.messages.at(i).header("Seq"), QByteArray::number(i));
        QCOMPARE(batched.messages.at(i).binary, binary);
        QCOMPARE(plain.messages.at(i).header("Seq"), QByteArray::number(i));
    }
    QVERIFY(batched.badFrames.isEmpty());
    // The queue accounting comes back to zero: the frame header was counted once.
    QVERIFY(m_broker->peer(batchedId));
    QTRY_COMPARE(m_broker->peer(batchedId).value_or(PeerInfo{}).bytesQueued, qint64(0));
    QCOMPARE(m_broker->peer(batchedId)->messagesOut, quint64(kCount + 2)); // and the RES of OPT and of the sync
}

void tst_Batching::batchesCloseAtTheSizeLimit()
{
    TestPeer batched;
    TestPeer publisher;
    QVERIFY(subscriber(batched, kServiceKey, "feed", true) != 0);
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2));
    const qsizetype before = batched.frames.size();

    // About 300 KiB in one frame, with one message larger than a batch among them.
    const QByteArray body(1024, 'k');
    const QByteArray big(100 * 1024, 'B');
    const QByteArray wire = pubs("feed", 0, 150, body) + pubs("feed", 150, 1, big) + pubs("feed", 151, 149, body);
    publisher.send(wire);
    QVERIFY(batched.waitForCount(300));

    int seq = 0;
    qint64 bytes = 0;
    for (qsizetype f = before; f < batched.frames.size(); ++f) {
        const QByteArray &frame = batched.frames.at(f);
        const QList<Message> inFrame = brokerMessages(frame, false);
        QVERIFY(!inFrame.isEmpty());
        // Over the limit only as a message alone.
        QVERIFY2(frame.size() <= Session::kMaxBatchBytes || inFrame.size() == 1,
                 qPrintable(QStringLiteral("frame of %1 bytes with %2 messages").arg(frame.size()).arg(inFrame.size())));
        if (inFrame.first().body == big)
            QCOMPARE(inFrame.size(), qsizetype(1));
        for (const Message &m : inFrame)
            QCOMPARE(m.header("Seq"), QByteArray::number(seq++));
        bytes += frame.size();
    }
    QCOMPARE(seq, 300);
    // Full batches: no more frames than the bytes need, plus the one a message
    // that does not fit closes early and the big message's own.
    const qsizetype frames = batched.frames.size() - before;
    const qint64 largestSmall = serialize(msg(Command::Pub, "feed", {{"Seq", "299"}}, body)).size();
    QVERIFY2(frames <= bytes / (Session::kMaxBatchBytes - largestSmall) + 3,
             qPrintable(QStringLiteral("%1 frames for %2 bytes").arg(frames).arg(bytes)));
}

void tst_Batching::frameTypesNeverMix()
{
    TestPeer batched;
    TestPeer publisher;
    QVERIFY(subscriber(batched, kServiceKey, "feed", true) != 0);
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2));
    const qsizetype before = batched.frames.size();

    // Back to back, so that they are usually read in the same turn.
    publisher.send(pubs("feed", 0, 10));
    publisher.sendBinary(pubs("feed", 10, 10));
    publisher.send(pubs("feed", 20, 10));
    QVERIFY(batched.waitForCount(30));

    int seq = 0;
    for (qsizetype f = before; f < batched.frames.size(); ++f) {
        const bool binary = batched.frameIsBinary.at(f);
        for (const Message &m : brokerMessages(batched.frames.at(f), binary)) {
            QCOMPARE(m.header("Seq"), QByteArray::number(seq));
            QCOMPARE(binary, seq >= 10 && seq < 20); // each in the type it came in
            ++seq;
        }
    }
    QCOMPARE(seq, 30);
}

void tst_Batching::turningOffSendsTheBatchFirst()
{
    TestPeer peer;
    QVERIFY(subscriber(peer, kServiceKey, "self", true) != 0);
    const qsizetype before = peer.frames.size();
    // One frame: a PUB to itself (batched), Batch off, another PUB (sent alone).
    peer.send(pubs("self", 0, 2) + serialize(msg(Command::Opt, "-", {{"ReqID", "off"}, {"Batch", "off"}}))
              + pubs("self", 2, 1));
    QVERIFY(peer.waitForCount(4));
    QCOMPARE(peer.messages.at(0).header("Seq"), QByteArray("0"));
    QCOMPARE(peer.messages.at(1).header("Seq"), QByteArray("1"));
    QCOMPARE(peer.messages.at(2).command, Command::Res);
    QCOMPARE(peer.messages.at(2).header(HeaderName::ReqId), QByteArray("off"));
    QCOMPARE(peer.messages.at(3).header("Seq"), QByteArray("2"));
    // The two batched PUBs in one frame, then one message per frame.
    QCOMPARE(peer.frames.size() - before, qsizetype(3));
    QCOMPARE(brokerMessages(peer.frames.at(before), false).size(), qsizetype(2));
}

void tst_Batching::closingSendsTheBatchFirst_data()
{
    QTest::addColumn<bool>("shutdown");
    QTest::addColumn<int>("closeCode");
    QTest::addRow("operator disconnect") << false << int(QWebSocketProtocol::CloseCodeNormal);
    QTest::addRow("broker shutdown") << true << int(QWebSocketProtocol::CloseCodeGoingAway);
}

void tst_Batching::closingSendsTheBatchFirst()
{
    QFETCH(bool, shutdown);
    QFETCH(int, closeCode);
    TestPeer batched;
    TestPeer publisher;
    const quint64 id = subscriber(batched, kServiceKey, "feed", true);
    QVERIFY(id != 0);
    QVERIFY(publisher.connectWithKey(m_broker->serverUrl(), kServiceKey2));

    // The close comes in the same turn as the routing, while the batch is pending.
    bool closed = false;
    connect(m_broker.get(), &Broker::messageRouted, this, [&](quint64, Command, const QByteArray &, int deliveries) {
        if (closed || deliveries != 1)
            return;
        closed = true;
        if (shutdown)
            m_broker->shutdown();
        else
            QVERIFY(m_broker->disconnectPeer(id, QString()));
    });
    publisher.send(pubs("feed", 0, 3));
    QVERIFY(batched.waitForClose());
    QVERIFY(closed);
    QCOMPARE(batched.closeCode, closeCode);
    // The first PUB was batched before the close; it went out ahead of the close frame.
    QVERIFY(!batched.messages.isEmpty());
    QCOMPARE(batched.messages.first().header("Seq"), QByteArray("0"));
    QVERIFY(batched.badFrames.isEmpty());
}

QTEST_MAIN(tst_Batching)
#include "tst_batching.moc"
