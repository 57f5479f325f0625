// The fault soak (issue "Hostile and faulty peers"; docs/protocol.md sections 1-7 under churn):
// 200 peers that at random connect, subscribe, publish, request, answer (late or
// never), stop reading and vanish mid-request, replaced as they go. Afterwards:
// every REQ answered once, every PUB delivered to every reading subscriber, the
// broker's tables empty, its counters consistent, its heap back near the baseline,
// and a bystander's round trips fast the whole time. See docs/testing.md.
//
// The broker runs on its own QThread (as gui/brokerhost does in the console); the
// peers run on the test's thread. The broker is only ever reached through blocking
// queued calls onto its thread (BrokerThread::call) and its queued signals.
//
// MIDDLEMAN_SOAK_SECONDS: length of the soak (default 60).
// MIDDLEMAN_SOAK_SEED: the random schedule's seed (default random, printed).

#include "brokerthread.h"
#include "session.h"
#include "rawpeer.h"
#include "testpeer.h"

#include <QElapsedTimer>
#include <QLoggingCategory>
#include <QTimer>

#include <malloc.h>

#include <algorithm>
#include <memory>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
// From <sanitizer/allocator_interface.h>, which Debian's g++ does not install.
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#define MIDDLEMAN_SOAK_ASAN 1
#endif

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

// --- The soak's shape ----------------------------------------------------------

constexpr int kPeers = 200;            // kept live (connecting or open)
constexpr int kTopics = 8;             // feed.0 .. feed.7
constexpr int kServiceTargets = 4;     // REQ to svc.0.op .. svc.3.op
constexpr int kRawPercent = 5;         // of new peers: raw peers that will stop reading
constexpr int kMaxOutstanding = 20;    // REQs a peer has waiting at most
constexpr int kMaxFeedSubscriptions = 3;
constexpr int kRequestTimeoutMs = 1500;
constexpr int kLateAnswerMaxMs = 2500; // late answers: some after the timeout (ERR 404)
constexpr qint64 kQueueBytes = 256 * 1024;
constexpr int kFloodMessageBytes = 64 * 1024;
// A peer that stopped reading and was sent this much without being closed as a
// slow consumer is a failure (the kernel's buffers take a few MiB).
constexpr qint64 kFloodCapBytes = 96 * 1024 * 1024;
constexpr int kWarmUpMs = 5000;
#ifdef MIDDLEMAN_SOAK_ASAN
constexpr int kBystanderBoundMs = 10000; // sanitizers make everything several times slower
#else
constexpr int kBystanderBoundMs = 2000;
#endif
constexpr int kBystanderIntervalMs = 200;
// A request's answer (200, 503 or 504) must come within its timeout and this.
constexpr int kAnswerSlackMs = kBystanderBoundMs + 1000;

// Heap tolerance at the end, over the baseline; see docs/testing.md for the figures
// it was chosen from. A leak of 1 KiB per connection passes it within the first
// few hundred connections of a 60 s soak (which makes more than a thousand).
constexpr qint64 kHeapToleranceBytes = 512 * 1024;

// Heap in use by the whole process: bytes handed out by malloc and not freed, in
// every arena, mmapped blocks included. Unlike RSS it does not depend on whether
// freed memory went back to the system, so it can be held to a small tolerance.
// MIDDLEMAN_SOAK_SECONDS, default 60.
int soakSeconds()
{
    bool ok = false;
    const int seconds = qEnvironmentVariableIntValue("MIDDLEMAN_SOAK_SECONDS", &ok);
    return ok && seconds > 0 ? seconds : 60;
}

qint64 heapInUse()
{
#ifdef MIDDLEMAN_SOAK_ASAN
    return qint64(__sanitizer_get_current_allocated_bytes());
#else
    const struct mallinfo2 info = mallinfo2();
    return qint64(info.uordblks + info.hblkhd);
#endif
}

QByteArray topicName(int topic)
{
    return "feed." + QByteArray::number(topic);
}

bool covers(const QByteArray &pattern, int topic)
{
    return pattern == "feed.>" || pattern == "feed.*" || pattern == topicName(topic);
}

// --- Peers ------------------------------------------------------------------------

enum class Kind : quint8 { Service, Client, Raw, Bystander };
enum class State : quint8 { Connecting, Open, Leaving, Gone };
enum class Policy : quint8 { Prompt, Late, Never }; // how a service answers

// What one subscriber still has to receive from one publisher: sequence numbers in
// order, each with its topic (so an UNSUB can release the ones it may cancel).
struct Track
{
    qint64 lastSeq = 0;
    QList<std::pair<qint64, int>> expected;
};

struct Peer
{
    int serial = 0; // never reused; the publisher id in "Pub"
    Kind kind = Kind::Client;
    bool service = false;
    State state = State::Connecting;
    qint64 startedMs = 0;
    qint64 nextActionMs = 0;
    qint64 endOfLifeMs = 0;
    std::unique_ptr<QWebSocket> ws;
    std::unique_ptr<RawPeer> raw;

    // Subscriptions: pattern -> the sync that confirms it, 0 once confirmed.
    QHash<QByteArray, int> subs;
    // Sync round trips (docs/protocol.md §4.7: OPT is answered in order with the rest).
    int syncsSent = 0;
    int syncsDone = 0;
    QHash<int, qint64> seqAtSync;
    // As a publisher: last sequence number sent, and the last one the broker is
    // known to have handled (sent before a completed sync).
    qint64 seq = 0;
    qint64 confirmedSeq = 0;
    // As a subscriber: publisher serial -> what is still owed.
    QHash<int, Track> tracks;
    // As a requester: ReqID -> what the answer must echo, and by when it is due.
    struct Outstanding
    {
        QByteArray body;
        qint64 dueMs = 0;
        bool late = false; // reported once
    };
    int requestsSent = 0;
    QHash<QByteArray, Outstanding> outstanding;
    // As a service.
    Policy policy = Policy::Prompt;
    int held = 0; // requests received and not (yet) answered

    // Raw peers: the broker's id, when to stop reading, and the flood that follows.
    quint64 brokerId = 0;
    qint64 stallAtMs = 0;
    bool stalled = false;
    qint64 vanishAtMs = -1; // vanish while stalled instead of waiting to be closed
    QByteArray flood;
    qint64 floodBytes = 0;

    // Bystander probes.
    int probesSent = 0;
    qint64 probeSentMs = -1;
};

// Counters summed over the whole test (both rounds).
struct Totals
{
    quint64 connects = 0;      // peers that got MM OK
    quint64 rawPeers = 0;
    quint64 pubsSent = 0;      // numbered PUBs
    quint64 floodSent = 0;     // PUBs of stalled peers to themselves
    quint64 deliveriesOwed = 0;
    quint64 deliveriesChecked = 0; // numbered PUBs received by tracked subscribers
    quint64 reqsSent = 0;
    quint64 reqsReceived = 0;  // by services
    quint64 res200 = 0;
    quint64 res503 = 0;
    quint64 res504 = 0;
    quint64 reqsAbandoned = 0; // requester left before the answer
    quint64 answersSent = 0;
    quint64 late404 = 0;       // ERR 404 for answers after the timeout
    quint64 vanishes = 0;
    quint64 leaves = 0;
    quint64 stalls = 0;
    quint64 stalledClosed = 0;  // stopped reading and closed by the broker
    quint64 slowClosesSeen = 0; // peerDisconnected with 1013 slow consumer
    quint64 disconnectsSeen = 0;
    quint64 grantsSent = 0;
    qint64 maxProbeMs = 0;
    quint64 probes = 0;
};

} // namespace

class tst_Soak : public QObject
{
    Q_OBJECT
public:
    // Before the application exists: Qt Test's watchdog ends a test function
    // after 5 minutes unless QTEST_FUNCTION_TIMEOUT says otherwise, and a longer
    // soak must not be cut off by it.
    static void initMain()
    {
        if (qEnvironmentVariableIsEmpty("QTEST_FUNCTION_TIMEOUT"))
            qputenv("QTEST_FUNCTION_TIMEOUT", QByteArray::number((qint64(soakSeconds()) + 300) * 1000));
    }

private Q_SLOTS:
    void initTestCase();
    void soak();

private:
    // One round: load for durationMs, then quiesce, check and empty the broker.
    void runRound(qint64 durationMs, const char *name);
    void tick();
    void spawn();
    void spawnRaw(Peer *p);
    void act(Peer *p);
    void actRaw(Peer *p);
    void probe();
    void onFrame(Peer *p, const QByteArray &data, bool binary);
    void onMessage(Peer *p, const Message &m);
    void onSync(Peer *p, int n);
    void onPub(Peer *p, const Message &m);
    void onRes(Peer *p, const Message &m);
    void onReq(Peer *p, const Message &m);
    void onWsDisconnected(Peer *p);

    void send(Peer *p, const Message &m);
    void sendSync(Peer *p);
    void subscribe(Peer *p, const QByteArray &pattern);
    void unsubscribe(Peer *p, const QByteArray &pattern);
    void publish(Peer *p);
    void request(Peer *p);
    void answer(Peer *p, const QByteArray &target, const QByteArray &token, const QByteArray &body);
    void leave(Peer *p, bool vanish);
    // Bookkeeping when a peer stops being a reading, live participant.
    void departed(Peer *p);
    void reap();
    void fail(const QString &what);
    bool coveredByConfirmed(const Peer *p, int topic) const;
    qint64 now() const { return m_clock.elapsed(); }

    std::unique_ptr<BrokerThread> m_broker;
    QRandomGenerator m_rng;
    quint32 m_seed = 0;
    QElapsedTimer m_clock;
    std::vector<std::unique_ptr<Peer>> m_peers;
    Peer *m_bystander = nullptr;
    int m_nextSerial = 0;
    bool m_stopping = false; // load stopped: no new peers, no actions
    QSet<quint64> m_goneIds;    // broker ids seen in peerDisconnected (this round)
    QSet<quint64> m_stalledIds; // broker ids of peers that stopped reading (this round)
    QSet<int> m_departed;       // serials of publishers that have gone (this round)
    QStringList m_failures;
    quint64 m_failureCount = 0;
    Totals m_totals;
};

void tst_Soak::initTestCase()
{
    // Thousands of connects and disconnects: the broker's per-peer info lines
    // would drown the summary (and Qt Test stops printing after 2000 messages).
    // QT_LOGGING_RULES="middleman.*.info=true" brings them back.
    QLoggingCategory::setFilterRules(QStringLiteral("middleman.*.info=false"));
}

void tst_Soak::fail(const QString &what)
{
    ++m_failureCount;
    if (m_failures.size() < 40)
        m_failures.append(what);
}

void tst_Soak::soak()
{
    bool ok = false;
    const int seconds = soakSeconds();
    const QByteArray seedText = qgetenv("MIDDLEMAN_SOAK_SEED");
    m_seed = seedText.isEmpty() ? QRandomGenerator::system()->generate() : seedText.toUInt(&ok);
    if (!seedText.isEmpty() && !ok)
        QFAIL("MIDDLEMAN_SOAK_SEED must be an unsigned 32-bit number");
    m_rng.seed(m_seed);
    qInfo("soak: %d s, seed %u (MIDDLEMAN_SOAK_SEED=%u reproduces the schedule)", seconds, m_seed, m_seed);

    BrokerConfig config = testConfig();
    config.requestTimeoutMs = kRequestTimeoutMs;
    config.maxRequestTimeoutMs = kRequestTimeoutMs;
    config.pingIntervalMs = 1000;
    config.maxMissedPings = 2;
    config.shutdownGraceMs = 1000;
    config.forEachRole([](RoleLimits &limits) {
        limits.outboundQueueBytes = kQueueBytes; // stalled peers are closed soon
        limits.maxMessagesPerSecond = 100000;    // the soak is about faults, not rates
        limits.messageBurst = 200000;
    });
    config.grants = {GrantConfig{Command::Epub, "feed.>"}, GrantConfig{Command::Esub, "feed.>"},
                     GrantConfig{Command::Epub, "flood.>"}, GrantConfig{Command::Esub, "flood.>"},
                     GrantConfig{Command::Ereq, "svc.>"}};
    QString error;
    QVERIFY2(config.validate(&error), qPrintable(error));
    m_broker = std::make_unique<BrokerThread>(config);
    QVERIFY(m_broker->isListening());
    connect(m_broker->signalSource(), &Broker::peerDisconnected, this,
            [this](quint64 id, int code, const QString &reason) {
                ++m_totals.disconnectsSeen;
                m_goneIds.insert(id);
                if (code == 1013 && reason.startsWith(QStringLiteral("slow consumer"))) {
                    ++m_totals.slowClosesSeen;
                    if (!m_stalledIds.contains(id))
                        fail(QStringLiteral("peer %1 closed as a slow consumer but it was reading").arg(id));
                }
            });
    m_clock.start();

    // Warm-up: the same load, short, so that every cache and table the broker and
    // Qt keep has reached its working size before the baseline is taken.
    runRound(qMin<qint64>(kWarmUpMs, seconds * 1000), "warm-up");
    if (QTest::currentTestFailed())
        return;
    const qint64 baseline = heapInUse();
    const Totals before = m_totals;
    const BrokerStats statsBefore = m_broker->stats();
    const qint64 soakStart = now();

    runRound(qint64(seconds) * 1000, "soak");
    if (QTest::currentTestFailed())
        return;
    const qint64 final = heapInUse();
    const BrokerStats stats = m_broker->stats();
    const qint64 soakMs = now() - soakStart;

    const quint64 connects = m_totals.connects - before.connects;
    const quint64 requests = m_totals.reqsSent - before.reqsSent;
    qInfo().noquote() << QStringLiteral(
                             "soak summary (seed %1): %2 s of load, %3 s with quiescing and checks\n"
                             "  peers connected: %4 (%5 raw, %6 stopped reading), vanished %7, left %8\n"
                             "  numbered PUBs: %9, deliveries owed %10, received and checked %11; "
                             "floods to stalled peers: %12 PUBs\n"
                             "  REQs: %13 sent, received by services %14, answered 200: %15, 503: %16, 504: %17, "
                             "abandoned by vanishing requesters: %18; late answers refused 404: %19\n"
                             "  slow-consumer closes: %20; bystander: %21 round trips, slowest %22 ms\n"
                             "  broker: %23 accepted, %24 disconnects, %25 PUBs, %26 REQs routed, %27 no responder, "
                             "%28 responder gone, %29 timed out, %30 orphaned, %31 deliveries dropped\n"
                             "  heap in use: baseline %32 KiB, final %33 KiB, difference %34 KiB "
                             "(tolerance %35 KiB; a 1 KiB leak per connection would be %36 KiB)")
                             .arg(m_seed)
                             .arg(seconds)
                             .arg(double(soakMs) / 1000.0, 0, 'f', 1)
                             .arg(connects)
                             .arg(m_totals.rawPeers - before.rawPeers)
                             .arg(m_totals.stalls - before.stalls)
                             .arg(m_totals.vanishes - before.vanishes)
                             .arg(m_totals.leaves - before.leaves)
                             .arg(m_totals.pubsSent - before.pubsSent)
                             .arg(m_totals.deliveriesOwed - before.deliveriesOwed)
                             .arg(m_totals.deliveriesChecked - before.deliveriesChecked)
                             .arg(m_totals.floodSent - before.floodSent)
                             .arg(requests)
                             .arg(m_totals.reqsReceived - before.reqsReceived)
                             .arg(m_totals.res200 - before.res200)
                             .arg(m_totals.res503 - before.res503)
                             .arg(m_totals.res504 - before.res504)
                             .arg(m_totals.reqsAbandoned - before.reqsAbandoned)
                             .arg(m_totals.late404 - before.late404)
                             .arg(stats.slowConsumersClosed - statsBefore.slowConsumersClosed)
                             .arg(m_totals.probes)
                             .arg(m_totals.maxProbeMs)
                             .arg(stats.connectionsAccepted - statsBefore.connectionsAccepted)
                             .arg(stats.disconnects - statsBefore.disconnects)
                             .arg(stats.publishes - statsBefore.publishes)
                             .arg(stats.requests - statsBefore.requests)
                             .arg(stats.requestsNoResponder - statsBefore.requestsNoResponder)
                             .arg(stats.requestsResponderGone - statsBefore.requestsResponderGone)
                             .arg(stats.requestsTimedOut - statsBefore.requestsTimedOut)
                             .arg(stats.requestsOrphaned - statsBefore.requestsOrphaned)
                             .arg(stats.deliveriesDropped - statsBefore.deliveriesDropped)
                             .arg(baseline / 1024)
                             .arg(final / 1024)
                             .arg((final - baseline) / 1024)
                             .arg(kHeapToleranceBytes / 1024)
                             .arg(connects);

    // The load did what it is meant to: faults of every kind happened.
    QVERIFY(connects > quint64(kPeers));
    QVERIFY(m_totals.vanishes > before.vanishes);
    QVERIFY(m_totals.res200 > before.res200);
    QVERIFY(m_totals.deliveriesChecked > before.deliveriesChecked);
    QVERIFY(stats.slowConsumersClosed - statsBefore.slowConsumersClosed
            >= m_totals.stalledClosed - before.stalledClosed);

    // 4. Memory back near the baseline. The tolerance only catches a leak of
    // 1 KiB per connection when the soak made enough connections (60 s: yes).
    if (qint64(connects) * 1024 <= kHeapToleranceBytes)
        qWarning("soak too short for the heap check to catch a 1 KiB leak per connection");
    QVERIFY2(final - baseline <= kHeapToleranceBytes,
             qPrintable(QStringLiteral("heap grew by %1 bytes over the soak (tolerance %2)")
                            .arg(final - baseline)
                            .arg(kHeapToleranceBytes)));
    m_broker.reset();
}

// --- One round ----------------------------------------------------------------------

void tst_Soak::runRound(qint64 durationMs, const char *name)
{
    m_stopping = false;
    m_goneIds.clear();
    m_stalledIds.clear();
    m_departed.clear();
    m_failures.clear();
    m_failureCount = 0;
    m_peers.reserve(2 * kPeers);

    // The bystander: a client that only measures round trips (check 5).
    {
        auto by = std::make_unique<Peer>();
        by->serial = ++m_nextSerial;
        by->kind = Kind::Bystander;
        m_bystander = by.get();
        m_peers.push_back(std::move(by));
    }
    const qint64 start = now();
    const qint64 end = start + durationMs;
    const auto startConnect = [this](Peer *p) {
        p->ws = std::make_unique<QWebSocket>();
        QWebSocket *ws = p->ws.get();
        connect(ws, &QWebSocket::connected, ws, [ws, p] {
            ws->sendTextMessage(QString::fromUtf8(p->service ? kServiceKey : kClientKey));
        });
        connect(ws, &QWebSocket::textMessageReceived, ws,
                [this, p](const QString &text) { onFrame(p, text.toUtf8(), false); });
        connect(ws, &QWebSocket::binaryMessageReceived, ws,
                [this, p](const QByteArray &data) { onFrame(p, data, true); });
        connect(ws, &QWebSocket::disconnected, ws, [this, p] { onWsDisconnected(p); });
        p->startedMs = now();
        ws->open(m_broker->url());
    };
    startConnect(m_bystander);
    QVERIFY2(QTest::qWaitFor([this] { return m_bystander->state == State::Open; }, 10000),
             "the bystander could not connect");

    // The load.
    while (now() < end && m_failures.isEmpty()) {
        tick();
        // New peers are connected here, outside tick(), which only marks them.
        for (const std::unique_ptr<Peer> &p : m_peers) {
            if (p->state == State::Connecting && !p->ws && !p->raw)
                startConnect(p.get());
        }
        QTest::qWait(5);
    }

    // Quiesce: no new peers or actions; peers that stop reading and peers still
    // connecting are dropped; services keep answering (late ones too).
    m_stopping = true;
    for (const std::unique_ptr<Peer> &p : m_peers) {
        if (p->kind == Kind::Raw || p->state == State::Connecting)
            leave(p.get(), true);
    }
    reap();
    const auto openPeers = [this] {
        QList<Peer *> out;
        for (const std::unique_ptr<Peer> &p : m_peers) {
            if (p->state == State::Open)
                out.append(p.get());
        }
        return out;
    };
    // 1. Every request of a requester still here ends with one RES: 200, or 503/504.
    const bool answered = QTest::qWaitFor(
        [&] {
            for (Peer *p : openPeers()) {
                if (!p->outstanding.isEmpty())
                    return false;
            }
            return true;
        },
        kRequestTimeoutMs + kLateAnswerMaxMs + 10000);
    if (!answered) {
        for (Peer *p : openPeers()) {
            for (auto it = p->outstanding.cbegin(); it != p->outstanding.cend(); ++it)
                fail(QStringLiteral("peer %1: no answer to REQ %2").arg(p->serial).arg(QString::fromUtf8(it.key())));
        }
    }
    // 2. Two sync rounds: the first proves the broker handled every PUB, the
    // second that each subscriber has been sent everything queued for it before.
    for (int round = 0; round < 2; ++round) {
        for (Peer *p : openPeers())
            sendSync(p);
        const bool synced = QTest::qWaitFor(
            [&] {
                for (Peer *p : openPeers()) {
                    if (p->syncsDone < p->syncsSent)
                        return false;
                }
                return true;
            },
            30000);
        if (!synced)
            fail(QStringLiteral("sync round %1 did not complete").arg(round + 1));
    }
    for (Peer *p : openPeers()) {
        for (auto it = p->tracks.cbegin(); it != p->tracks.cend(); ++it) {
            if (!it->expected.isEmpty()) {
                fail(QStringLiteral("subscriber %1 never got %2 PUB(s) of publisher %3, first seq %4")
                         .arg(p->serial)
                         .arg(it->expected.size())
                         .arg(it.key())
                         .arg(it->expected.first().first));
            }
        }
    }

    // Everybody leaves: half with a close handshake, half vanishing.
    for (Peer *p : openPeers())
        leave(p, m_rng.bounded(2) == 0);
    if (!QTest::qWaitFor(
            [this] {
                return std::all_of(m_peers.cbegin(), m_peers.cend(),
                                   [](const std::unique_ptr<Peer> &p) { return p->state == State::Gone; });
            },
            10000)) {
        fail(QStringLiteral("peers still closing after 10 s"));
        for (const std::unique_ptr<Peer> &p : m_peers)
            leave(p.get(), true);
    }
    reap();
    m_bystander = nullptr;
    QVERIFY(m_peers.empty());
    if (m_failureCount > 0) {
        QFAIL(qPrintable(QStringLiteral("%1 round: %2 failure(s), seed %3:\n  ")
                             .arg(QLatin1String(name))
                             .arg(m_failureCount)
                             .arg(m_seed)
                         + m_failures.join(QStringLiteral("\n  "))));
    }

    // 3. The broker's tables are empty and its counters add up.
    QVERIFY2(QTest::qWaitFor([this] { return m_broker->connectionCount() == 0; }, 15000),
             "connections left in the broker after every peer went");
    QVERIFY(QTest::qWaitFor([this] { return m_totals.disconnectsSeen == m_broker->stats().disconnects; }, 5000));
    BrokerStats stats;
    qsizetype peers = -1;
    qsizetype pending = -1;
    QStringList grants;
    QStringList configGrants;
    quint64 leftovers = 0; // subscriptions and grants of connections that have gone
    m_broker->call([&] {
        const Broker &b = *m_broker->signalSource();
        stats = b.stats();
        peers = b.peers().size();
        pending = b.pendingRequests().size();
        for (const GrantTable::Grant &grant : b.grants())
            grants.append(QString::fromUtf8(commandName(grant.kind).toByteArray() + ' ' + grant.pattern));
        for (const GrantConfig &grant : b.config().grants)
            configGrants.append(QString::fromUtf8(commandName(grant.kind).toByteArray() + ' ' + grant.pattern));
        // Connection ids are 1, 2, ... in the order sessions were made.
        for (quint64 id = 1; id <= stats.connectionsAccepted; ++id)
            leftovers += quint64(b.subscriptionsOf(id).size() + b.grantsOf(id).size());
    });
    QCOMPARE(peers, qsizetype(0));
    QCOMPARE(pending, qsizetype(0));
    QCOMPARE(leftovers, quint64(0));
    grants.sort();
    configGrants.sort();
    QCOMPARE(grants, configGrants);

    // Every close counted, each kind once.
    QCOMPARE(stats.disconnects, stats.connectionsAccepted);
    QVERIFY(stats.handshakesCompleted <= stats.connectionsAccepted); // some vanish before their key
    QVERIFY(stats.handshakesCompleted >= m_totals.connects);
    QCOMPARE(stats.keysRefused + stats.handshakeTimeouts + stats.connectionsRefused + stats.originsRefused,
             quint64(0));
    QCOMPARE(stats.idleClosed, quint64(0));
    QCOMPARE(stats.protocolCloses, quint64(0));
    QCOMPARE(stats.slowConsumersClosed, m_totals.slowClosesSeen);
    // Nothing refused but late answers.
    QCOMPARE(stats.errorsSent, stats.responsesUnknown);
    QVERIFY(stats.responsesUnknown >= m_totals.late404); // a service may vanish before its 404 arrives
    QCOMPARE(stats.limitRefusals + stats.messagesTooLarge + stats.subscriptionsRevoked, quint64(0));
    // Every routed request ended one way: answered, 503 (responder gone), 504, or
    // orphaned by its requester. An answer for a requester that was closing but
    // not yet gone is discarded without being counted as orphaned.
    const quint64 ended =
        stats.responses + stats.requestsResponderGone + stats.requestsTimedOut + stats.requestsOrphaned;
    QVERIFY2(ended <= stats.requests && stats.requests <= ended + stats.responsesDiscarded,
             qPrintable(QStringLiteral("requests %1, ended %2, discarded %3")
                            .arg(stats.requests)
                            .arg(ended)
                            .arg(stats.responsesDiscarded)));
    QVERIFY(stats.requests + stats.requestsNoResponder <= m_totals.reqsSent);
    QVERIFY(m_totals.res200 <= stats.responses);
    QVERIFY(m_totals.res504 <= stats.requestsTimedOut);
    QVERIFY(m_totals.res503 <= stats.requestsNoResponder + stats.requestsResponderGone);
    QVERIFY(stats.publishes <= m_totals.pubsSent + m_totals.floodSent);

    // Whatever was kept for this round goes, so that the heap can be compared.
    m_goneIds = {};
    m_stalledIds = {};
    m_departed = {};
    m_failures = {};
    m_peers.shrink_to_fit();
    // Sessions and sockets the broker closed are deleted later on its thread.
    const auto closedObjectsLeft = [this] {
        qsizetype left = -1;
        m_broker->call([&] {
            const Broker &b = *m_broker->signalSource();
            left = b.findChildren<Session *>().size() + b.findChildren<QAbstractSocket *>().size();
        });
        return left;
    };
    QTRY_COMPARE_WITH_TIMEOUT(closedObjectsLeft(), qsizetype(0), 10000);
}

void tst_Soak::tick()
{
    spawn();
    // Indexes: spawning raw peers waits on the network, which may run handlers,
    // but nothing adds to or removes from m_peers except spawn() and reap().
    for (std::size_t i = 0; i < m_peers.size(); ++i) {
        Peer *p = m_peers[i].get();
        if (p->kind == Kind::Raw)
            actRaw(p);
        else if (p->kind != Kind::Bystander && p->state == State::Open && now() >= p->nextActionMs)
            act(p);
        else if (p->state == State::Connecting && p->ws && now() - p->startedMs > 10000) {
            fail(QStringLiteral("peer %1 not connected after 10 s").arg(p->serial));
            leave(p, true);
        } else if (p->state == State::Leaving && now() - p->startedMs > 10000) {
            leave(p, true); // the close handshake never finished: cut it off
        }
    }
    probe();
    reap();
}

void tst_Soak::spawn()
{
    int live = 0;
    for (const std::unique_ptr<Peer> &p : m_peers) {
        if (p->kind != Kind::Bystander && (p->state == State::Connecting || p->state == State::Open))
            ++live;
    }
    // At most 20 at a time, so that a mass departure refills over a few ticks.
    for (int n = 0; live < kPeers && n < 20; ++n, ++live) {
        auto peer = std::make_unique<Peer>();
        Peer *p = peer.get();
        p->serial = ++m_nextSerial;
        p->service = m_rng.bounded(100) < 35;
        p->kind = m_rng.bounded(100) < kRawPercent ? Kind::Raw : (p->service ? Kind::Service : Kind::Client);
        const int r = int(m_rng.bounded(100));
        p->policy = r < 60 ? Policy::Prompt : (r < 85 ? Policy::Late : Policy::Never);
        p->startedMs = now();
        p->endOfLifeMs = now() + 2000 + m_rng.bounded(13000);
        m_peers.push_back(std::move(peer));
        if (p->kind == Kind::Raw)
            spawnRaw(p);
        // WebSocket peers are opened by the round's loop (State::Connecting, no socket yet).
    }
}

void tst_Soak::spawnRaw(Peer *p)
{
    ++m_totals.rawPeers;
    p->raw = std::make_unique<RawPeer>();
    if (!p->raw->connectWithKey(m_broker->url(), p->service ? kServiceKey2 : kClientKey)) {
        fail(QStringLiteral("raw peer %1 could not connect: %2").arg(p->serial).arg(p->raw->errorString()));
        p->state = State::Gone;
        return;
    }
    ++m_totals.connects;
    p->state = State::Open;
    p->brokerId = m_broker->idByPort(p->raw->localPort());
    if (p->brokerId == 0) {
        fail(QStringLiteral("raw peer %1 unknown to the broker").arg(p->serial));
        leave(p, true);
        return;
    }
    // A small receive buffer, so that a few hundred KiB fill the path to it.
    p->raw->socket().setSocketOption(QAbstractSocket::ReceiveBufferSizeSocketOption, 16 * 1024);
    const QByteArray self = "flood." + QByteArray::number(p->serial);
    QByteArray subs = serialize(msg(Command::Sub, topicName(int(m_rng.bounded(kTopics)))))
        + serialize(msg(Command::Sub, self));
    if (p->service) // a responder that will stop reading while it holds requests
        subs += serialize(msg(Command::Sub, "svc." + QByteArray::number(m_rng.bounded(kServiceTargets)) + ".*"));
    p->raw->sendText(subs);
    p->stallAtMs = now() + 500 + m_rng.bounded(3000);
    if (m_rng.bounded(100) < 30)
        p->vanishAtMs = p->stallAtMs + 200 + m_rng.bounded(1500);
    p->flood = serialize(msg(Command::Pub, self, {}, QByteArray(kFloodMessageBytes, 'f')));
}

void tst_Soak::actRaw(Peer *p)
{
    if (p->state != State::Open || m_stopping)
        return;
    if (!p->stalled) {
        p->raw->messages.clear(); // read and forgotten
        if (m_goneIds.contains(p->brokerId)) {
            fail(QStringLiteral("raw peer %1 closed while it was reading: %2 %3")
                     .arg(p->serial)
                     .arg(p->raw->closeCode)
                     .arg(p->raw->closeReason));
            leave(p, true);
            return;
        }
        if (now() < p->stallAtMs)
            return;
        // Stops reading: its queue in the broker fills with what follows.
        p->stalled = true;
        ++m_totals.stalls;
        m_stalledIds.insert(p->brokerId);
        p->raw->stopReading();
    }
    if (m_goneIds.contains(p->brokerId)) { // closed by the broker as a slow consumer
        ++m_totals.stalledClosed;
        leave(p, true);
        return;
    }
    if (p->vanishAtMs >= 0 && now() >= p->vanishAtMs) {
        leave(p, true);
        return;
    }
    if (p->floodBytes >= kFloodCapBytes) {
        fail(QStringLiteral("raw peer %1 stopped reading and was sent %2 bytes, but is still open")
                 .arg(p->serial)
                 .arg(p->floodBytes));
        leave(p, true);
        return;
    }
    // Publishes to a target only it subscribes to (the sender gets its own PUB),
    // until the broker has cut the connection (its peerDisconnected follows).
    if (p->raw->socket().state() == QAbstractSocket::ConnectedState
        && p->raw->socket().bytesToWrite() < 4 * kFloodMessageBytes) {
        for (int i = 0; i < 4; ++i) {
            p->raw->sendText(p->flood);
            p->floodBytes += p->flood.size();
            ++m_totals.floodSent;
        }
    }
}

void tst_Soak::act(Peer *p)
{
    p->nextActionMs = now() + 50 + m_rng.bounded(450);
    // Check 1 while the requester is here: no answer may be overdue, even for
    // requesters that vanish before the end.
    for (auto it = p->outstanding.begin(); it != p->outstanding.end(); ++it) {
        if (!it->late && now() > it->dueMs) {
            it->late = true;
            fail(QStringLiteral("peer %1: no answer to REQ %2 %3 ms after its timeout")
                     .arg(p->serial)
                     .arg(QString::fromUtf8(it.key()))
                     .arg(kAnswerSlackMs));
        }
    }
    if (now() >= p->endOfLifeMs) {
        leave(p, m_rng.bounded(2) == 0);
        return;
    }
    const int r = int(m_rng.bounded(100));
    // Services holding requests sometimes vanish with them (503 to the requesters).
    if (p->service && p->held > 0 && r < 2) {
        leave(p, true);
        return;
    }
    int feedSubs = 0;
    for (auto it = p->subs.cbegin(); it != p->subs.cend(); ++it)
        feedSubs += it.key().startsWith("feed.");
    if (r < 12) {
        if (p->service && m_rng.bounded(2) == 0) {
            // Rarely everything: REQs to svc.4.op find no responder most of the time.
            const int k = int(m_rng.bounded(kServiceTargets * 5));
            subscribe(p, k >= kServiceTargets * 5 - 1 ? QByteArray("svc.>")
                                                      : "svc." + QByteArray::number(k % kServiceTargets) + ".*");
        } else if (feedSubs < kMaxFeedSubscriptions) {
            const int k = int(m_rng.bounded(kTopics + 4));
            subscribe(p, k < kTopics ? topicName(k) : (k < kTopics + 3 ? QByteArray("feed.*") : QByteArray("feed.>")));
        }
    } else if (r < 20) {
        if (!p->subs.isEmpty()) {
            const QList<QByteArray> patterns = p->subs.keys();
            unsubscribe(p, patterns.at(m_rng.bounded(int(patterns.size()))));
        }
    } else if (r < 55) {
        publish(p);
    } else if (r < 80) {
        request(p);
    } else if (r < 85) {
        sendSync(p);
    } else if (r < 90 && p->service) {
        // Grants by services: they must all go again with their granters.
        static const Command kinds[] = {Command::Epub, Command::Esub, Command::Ereq};
        const Command kind = kinds[m_rng.bounded(3)];
        const QByteArray pattern = m_rng.bounded(2) == 0
            ? topicName(int(m_rng.bounded(kTopics)))
            : "granted." + QByteArray::number(p->serial) + ".>";
        send(p, msg(kind, pattern));
        ++m_totals.grantsSent;
    } else if (r == 99) {
        leave(p, true); // vanishes mid-life, requests and all
    }
}

void tst_Soak::probe()
{
    Peer *by = m_bystander;
    if (!by || by->state != State::Open)
        return;
    if (by->probeSentMs >= 0) {
        const qint64 waited = now() - by->probeSentMs;
        if (waited > kBystanderBoundMs) {
            fail(QStringLiteral("bystander: no answer after %1 ms").arg(waited));
            by->probeSentMs = now(); // once per bound, not every tick
        }
        return;
    }
    if (by->probesSent > 0 && now() - by->startedMs < kBystanderIntervalMs)
        return;
    by->startedMs = now();
    by->probeSentMs = now();
    send(by, msg(Command::Opt, "-", {{"ReqID", "p" + QByteArray::number(++by->probesSent)}}));
}

// --- Sending ---------------------------------------------------------------------------

void tst_Soak::send(Peer *p, const Message &m)
{
    p->ws->sendTextMessage(QString::fromUtf8(serialize(m)));
}

void tst_Soak::sendSync(Peer *p)
{
    const int n = ++p->syncsSent;
    p->seqAtSync.insert(n, p->seq);
    send(p, msg(Command::Opt, "-", {{"ReqID", "y" + QByteArray::number(n)}}));
}

void tst_Soak::subscribe(Peer *p, const QByteArray &pattern)
{
    if (p->subs.contains(pattern))
        return;
    send(p, msg(Command::Sub, pattern));
    // Confirmed once the OPT sent right after it comes back (SUB has no answer).
    p->subs.insert(pattern, p->syncsSent + 1);
    sendSync(p);
}

void tst_Soak::unsubscribe(Peer *p, const QByteArray &pattern)
{
    p->subs.remove(pattern);
    send(p, msg(Command::Unsub, pattern));
    // Whatever this pattern alone made owed may now cross the UNSUB in the broker.
    for (auto it = p->tracks.begin(); it != p->tracks.end(); ++it) {
        it->expected.removeIf([&](const std::pair<qint64, int> &e) {
            return covers(pattern, e.second) && !coveredByConfirmed(p, e.second);
        });
    }
}

bool tst_Soak::coveredByConfirmed(const Peer *p, int topic) const
{
    for (auto it = p->subs.cbegin(); it != p->subs.cend(); ++it) {
        if (it.value() == 0 && covers(it.key(), topic))
            return true;
    }
    return false;
}

void tst_Soak::publish(Peer *p)
{
    const int topic = int(m_rng.bounded(kTopics));
    const qint64 seq = ++p->seq;
    const QByteArray body(16 + m_rng.bounded(1000), char('a' + seq % 26));
    send(p, msg(Command::Pub, topicName(topic),
                {{"Pub", QByteArray::number(p->serial)}, {"Seq", QByteArray::number(seq)}}, body));
    ++m_totals.pubsSent;
    // Owed to every live, reading subscriber whose SUB is confirmed now.
    for (const std::unique_ptr<Peer> &s : m_peers) {
        if ((s->kind == Kind::Service || s->kind == Kind::Client) && s->state == State::Open
            && coveredByConfirmed(s.get(), topic)) {
            s->tracks[p->serial].expected.append({seq, topic});
            ++m_totals.deliveriesOwed;
        }
    }
}

void tst_Soak::request(Peer *p)
{
    if (p->outstanding.size() >= kMaxOutstanding)
        return;
    const int n = ++p->requestsSent;
    const QByteArray reqId = "q" + QByteArray::number(n);
    const QByteArray body = "from " + QByteArray::number(p->serial) + " #" + QByteArray::number(n);
    QList<Header> headers{{"ReqID", reqId}};
    int timeoutMs = kRequestTimeoutMs;
    if (m_rng.bounded(100) < 20) {
        timeoutMs = 300 + int(m_rng.bounded(1200));
        headers.append({"Timeout", QByteArray::number(timeoutMs)});
    }
    // svc.4.op has no responder ever: 503 at once.
    const QByteArray target = "svc." + QByteArray::number(m_rng.bounded(kServiceTargets + 1)) + ".op";
    p->outstanding.insert(reqId, Peer::Outstanding{body, now() + timeoutMs + kAnswerSlackMs});
    send(p, msg(Command::Req, target, headers, body));
    ++m_totals.reqsSent;
}

void tst_Soak::answer(Peer *p, const QByteArray &target, const QByteArray &token, const QByteArray &body)
{
    if (p->state != State::Open)
        return;
    --p->held;
    send(p, msg(Command::Res, target, {{"ReqID", token}}, body));
    ++m_totals.answersSent;
}

void tst_Soak::leave(Peer *p, bool vanish)
{
    if (p->state == State::Gone)
        return;
    if (p->state == State::Open) {
        departed(p);
        ++(vanish ? m_totals.vanishes : m_totals.leaves);
    }
    if (vanish || p->state != State::Open) {
        // Without a close handshake: the TCP connection just ends.
        p->state = State::Gone;
        if (p->ws)
            p->ws->abort();
        if (p->raw)
            p->raw->socket().abort();
        return;
    }
    p->state = State::Leaving;
    p->startedMs = now();
    p->ws->close();
}

void tst_Soak::departed(Peer *p)
{
    // As a requester: its requests are dropped silently by the broker.
    m_totals.reqsAbandoned += quint64(p->outstanding.size());
    p->outstanding.clear();
    // As a subscriber: nothing more is checked.
    p->tracks.clear();
    p->subs.clear();
    // As a publisher: what the broker may not have read yet is owed to nobody.
    m_departed.insert(p->serial);
    for (const std::unique_ptr<Peer> &s : m_peers) {
        auto it = s->tracks.find(p->serial);
        if (it == s->tracks.end())
            continue;
        it->expected.removeIf([p](const std::pair<qint64, int> &e) { return e.first > p->confirmedSeq; });
        if (it->expected.isEmpty())
            s->tracks.erase(it);
    }
}

void tst_Soak::reap()
{
    // Sockets are deleted only here, never inside one of their own signals.
    std::erase_if(m_peers, [](const std::unique_ptr<Peer> &p) {
        if (p->state != State::Gone)
            return false;
        if (p->ws)
            p->ws->abort(); // Qt 6.4's ~QWebSocket leaks when it has to close itself
        return true;
    });
}

// --- Receiving ---------------------------------------------------------------------------

void tst_Soak::onWsDisconnected(Peer *p)
{
    if (p->state == State::Gone)
        return;
    if (p->state == State::Leaving) {
        p->state = State::Gone;
        return;
    }
    fail(QStringLiteral("peer %1 (%2) closed by the broker: %3 %4")
             .arg(p->serial)
             .arg(p->service ? QStringLiteral("service") : QStringLiteral("client"))
             .arg(int(p->ws->closeCode()))
             .arg(p->ws->closeReason()));
    if (p->state == State::Open)
        departed(p);
    p->state = State::Gone;
}

void tst_Soak::onFrame(Peer *p, const QByteArray &data, bool binary)
{
    if (p->state == State::Gone)
        return;
    if (p->state == State::Connecting) {
        if (data != "MM OK") {
            fail(QStringLiteral("peer %1: handshake answered %2").arg(p->serial).arg(QString::fromUtf8(data.left(80))));
            leave(p, true);
            return;
        }
        p->state = State::Open;
        p->nextActionMs = now();
        if (p->kind != Kind::Bystander)
            ++m_totals.connects;
        return;
    }
    readBrokerFrame(
        data, binary,
        [&](const Message &message) {
            onMessage(p, message);
            return p->state != State::Gone;
        },
        [&](const ParseError &error) {
            fail(QStringLiteral("peer %1: unreadable broker output: %2")
                     .arg(p->serial)
                     .arg(QString::fromUtf8(error.reason)));
        });
}

void tst_Soak::onMessage(Peer *p, const Message &m)
{
    switch (m.command) {
    case Command::Pub:
        return onPub(p, m);
    case Command::Req:
        return onReq(p, m);
    case Command::Res:
        return onRes(p, m);
    case Command::Err:
        if (p->service && m.header(HeaderName::Status) == "404" && m.header(HeaderName::Command) == "RES") {
            ++m_totals.late404; // answered after the timeout: the requester had its 504
            return;
        }
        fail(QStringLiteral("peer %1: ERR %2 %3: %4")
                 .arg(p->serial)
                 .arg(QString::fromUtf8(m.header(HeaderName::Status)))
                 .arg(QString::fromUtf8(m.target))
                 .arg(QString::fromUtf8(m.body)));
        return;
    default:
        fail(QStringLiteral("peer %1: unexpected %2").arg(p->serial).arg(QString::fromUtf8(commandName(m.command).toByteArray())));
        return;
    }
}

void tst_Soak::onPub(Peer *p, const Message &m)
{
    if (m.target.startsWith("flood."))
        return fail(QStringLiteral("peer %1 got a flood PUB").arg(p->serial));
    const int publisher = m.header("Pub").toInt();
    const qint64 seq = m.header("Seq").toLongLong();
    if (m.body.size() < 16 || m.body.at(0) != char('a' + seq % 26))
        fail(QStringLiteral("peer %1: PUB %2/%3 arrived with a wrong body").arg(p->serial).arg(publisher).arg(seq));
    auto it = p->tracks.find(publisher);
    if (it == p->tracks.end()) {
        if (m_departed.contains(publisher))
            return; // nothing owed, and the publisher has gone: a message in flight
        it = p->tracks.insert(publisher, Track{});
    }
    Track &track = *it;
    if (seq <= track.lastSeq) {
        fail(QStringLiteral("peer %1: PUB %2/%3 after %4 (duplicate or out of order)")
                 .arg(p->serial)
                 .arg(publisher)
                 .arg(seq)
                 .arg(track.lastSeq));
    }
    track.lastSeq = seq;
    ++m_totals.deliveriesChecked;
    while (!track.expected.isEmpty() && track.expected.first().first < seq) {
        fail(QStringLiteral("peer %1: PUB %2/%3 lost (%4 came next)")
                 .arg(p->serial)
                 .arg(publisher)
                 .arg(track.expected.first().first)
                 .arg(seq));
        track.expected.removeFirst();
    }
    if (!track.expected.isEmpty() && track.expected.first().first == seq)
        track.expected.removeFirst();
    if (track.expected.isEmpty() && m_departed.contains(publisher))
        p->tracks.erase(it);
}

void tst_Soak::onReq(Peer *p, const Message &m)
{
    if (!p->service) {
        fail(QStringLiteral("client %1 got a REQ").arg(p->serial));
        return;
    }
    ++m_totals.reqsReceived;
    ++p->held;
    const QByteArray token = m.header(HeaderName::ReqId);
    if (m.header(HeaderName::ClientId).size() != 22)
        fail(QStringLiteral("service %1: REQ without a Client-Id").arg(p->serial));
    switch (p->policy) {
    case Policy::Prompt:
        if (m_rng.bounded(100) < 95)
            answer(p, m.target, token, m.body);
        break;
    case Policy::Late: {
        const int delay = int(m_rng.bounded(kLateAnswerMaxMs));
        QTimer::singleShot(delay, p->ws.get(), [this, p, target = m.target, token, body = m.body] {
            answer(p, target, token, body);
        });
        break;
    }
    case Policy::Never:
        break;
    }
}

void tst_Soak::onRes(Peer *p, const Message &m)
{
    const QByteArray reqId = m.header(HeaderName::ReqId);
    if (reqId.startsWith('y')) {
        if (m.header(HeaderName::Status) != "200")
            fail(QStringLiteral("peer %1: OPT refused").arg(p->serial));
        return onSync(p, reqId.mid(1).toInt());
    }
    if (reqId.startsWith('p') && p->kind == Kind::Bystander) {
        const qint64 took = now() - p->probeSentMs;
        m_totals.maxProbeMs = qMax(m_totals.maxProbeMs, took);
        ++m_totals.probes;
        p->probeSentMs = -1;
        return;
    }
    const auto it = p->outstanding.find(reqId);
    if (it == p->outstanding.end()) {
        fail(QStringLiteral("peer %1: RES for %2, which is not waiting (answered twice?)")
                 .arg(p->serial)
                 .arg(QString::fromUtf8(reqId)));
        return;
    }
    const QByteArray status = m.header(HeaderName::Status);
    if (status.isNull()) {
        ++m_totals.res200;
        if (m.body != it->body)
            fail(QStringLiteral("peer %1: RES %2 carries another request's answer").arg(p->serial).arg(QString::fromUtf8(reqId)));
    } else if (status == "503") {
        ++m_totals.res503;
    } else if (status == "504") {
        ++m_totals.res504;
    } else {
        fail(QStringLiteral("peer %1: RES %2 with status %3").arg(p->serial).arg(QString::fromUtf8(reqId)).arg(QString::fromUtf8(status)));
    }
    p->outstanding.erase(it);
}

void tst_Soak::onSync(Peer *p, int n)
{
    if (n != p->syncsDone + 1)
        fail(QStringLiteral("peer %1: sync %2 came back after %3").arg(p->serial).arg(n).arg(p->syncsDone));
    p->syncsDone = n;
    // The broker has handled everything sent before sync n: SUBs took effect,
    // PUBs were routed.
    for (auto it = p->subs.begin(); it != p->subs.end(); ++it) {
        if (it.value() != 0 && it.value() <= n)
            it.value() = 0;
    }
    if (auto it = p->seqAtSync.find(n); it != p->seqAtSync.end()) {
        p->confirmedSeq = qMax(p->confirmedSeq, *it);
        p->seqAtSync.erase(it);
    }
}

QTEST_GUILESS_MAIN(tst_Soak)
#include "tst_soak.moc"
