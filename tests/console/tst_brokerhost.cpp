// BrokerHost (gui/brokerhost.h) against real QWebSocket peers: every
// ConsoleUpdate is folded into a local view, as the window would, and the checks
// are on what the deltas add up to — peers, topics, pending requests, traffic,
// the watched peer — and on start, stop and restart.

#include "brokerhost.h"
#include "testpeer.h"

#include <QMap>
#include <QScopeGuard>
#include <QTcpServer>
#include <QThread>

#include <cmath>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

constexpr int kFastMs = 20;
constexpr int kLongMs = 600000; // no update while a test builds one interval's worth

// What the window knows: every update folded in, and every delta that does not
// fit what came before.
struct View
{
    QMap<quint64, PeerInfo> peers;
    QMap<QByteArray, TopicRow> topics;
    QMap<QByteArray, PendingRow> pending;
    std::optional<PeerDetail> watched;
    QList<ConsoleUpdate> updates;
    QStringList errors;

    void apply(const ConsoleUpdate &u)
    {
        auto error = [this](const QString &what) {
            errors.append(QStringLiteral("update %1: %2").arg(updates.size()).arg(what));
        };
        if (!updates.isEmpty() && u.nowMs < updates.last().nowMs)
            error(QStringLiteral("nowMs went back"));
        if (u.reset) {
            peers.clear();
            topics.clear();
            pending.clear();
        }

        QSet<quint64> changedIds;
        quint64 lastId = 0;
        for (const PeerInfo &peer : u.peersChanged) {
            if (peer.id <= lastId)
                error(QStringLiteral("peersChanged not ordered by id"));
            lastId = peer.id;
            changedIds.insert(peer.id);
        }
        for (const quint64 id : u.peersGone) {
            if (!peers.remove(id))
                error(QStringLiteral("peer %1 gone but never seen").arg(id));
            if (changedIds.contains(id))
                error(QStringLiteral("peer %1 both changed and gone").arg(id));
        }
        for (const PeerInfo &peer : u.peersChanged)
            peers.insert(peer.id, peer);

        QSet<QByteArray> changedTopics;
        for (const TopicRow &row : u.topicsChanged) {
            if (changedTopics.contains(row.pattern))
                error(QStringLiteral("topic %1 twice").arg(QString::fromUtf8(row.pattern)));
            changedTopics.insert(row.pattern);
        }
        for (const QByteArray &pattern : u.topicsGone) {
            if (!topics.remove(pattern))
                error(QStringLiteral("topic %1 gone but never seen").arg(QString::fromUtf8(pattern)));
            if (changedTopics.contains(pattern))
                error(QStringLiteral("topic %1 both changed and gone").arg(QString::fromUtf8(pattern)));
        }
        for (const TopicRow &row : u.topicsChanged)
            topics.insert(row.pattern, row);

        for (const QByteArray &token : u.requestsFinished) {
            if (!pending.remove(token))
                error(QStringLiteral("request %1 finished but never started").arg(QString::fromUtf8(token)));
        }
        for (const PendingRow &row : u.requestsStarted) {
            if (pending.contains(row.token))
                error(QStringLiteral("request %1 started twice").arg(QString::fromUtf8(row.token)));
            pending.insert(row.token, row);
        }

        if (u.traffic.size() > BrokerHost::kMaxTrafficPerUpdate)
            error(QStringLiteral("%1 traffic events").arg(u.traffic.size()));
        if (u.trafficSkipped > 0 && u.traffic.size() != BrokerHost::kMaxTrafficPerUpdate)
            error(QStringLiteral("skipped traffic while the batch was not full"));
        watched = u.watched;
        updates.append(u);
    }

    std::optional<PeerInfo> peerAtPort(quint16 port) const
    {
        for (const PeerInfo &peer : peers) {
            if (peer.port == port)
                return peer;
        }
        return std::nullopt;
    }

    // Every traced event of the updates from index `from` on.
    QList<TraceEvent> trafficSince(qsizetype from) const
    {
        QList<TraceEvent> out;
        for (qsizetype i = from; i < updates.size(); ++i)
            out += updates.at(i).traffic;
        return out;
    }
};

QByteArray headerOf(const TraceEvent &event, QByteArrayView name)
{
    for (const Header &header : event.headers) {
        if (headerNameEquals(header.name, name))
            return header.value;
    }
    return {};
}

QList<QByteArray> granters(const QList<GrantTable::Grant> &grants, Command kind)
{
    QList<QByteArray> out;
    for (const GrantTable::Grant &grant : grants) {
        if (grant.kind == kind)
            out.append(grant.pattern);
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

class tst_BrokerHost : public QObject
{
    Q_OBJECT

Q_SIGNALS:
    void startRequested(const Middleman::BrokerConfig &config);
    void stopRequested();

private Q_SLOTS:
    void init();
    void cleanup();

    // start and stop
    void startReportsUrlAndResets();
    void startWhileRunningFails();
    void startFailures_data();
    void startFailures();
    void stopResetsThenRestarts();
    // connections
    void peersAppearWithRoleNameAndAddress();
    void handshakingPeerHasNoRole();
    void countersSentOnlyWhenChanged();
    void disconnectPeerClosesIt();
    // topics
    void subscriptionsCountedPerRole();
    void unsubscribeAndSubscribeInOneInterval();
    void grantsFollowTheirServices();
    void permanentGrantsFromConfig();
    void messagesCountOnTargetAndPatterns();
    void topicRowsAreBounded();
    void rateRisesAndFalls();
    // requests
    void pendingRequestStartsAndFinishes();
    void requestWithinOneIntervalNeverAppears();
    void requesterGoneBeforeTheUpdate();
    void timedOutRequestFinishes();
    // traffic
    void trafficInAndOut();
    void trafficBoundedPerUpdate();
    void tracingOff();
    // watched peer
    void watchPeer();
    // threads
    void runsOnItsOwnThread();

private:
    bool startHost(const BrokerConfig &config = testConfig());
    // Waits for `count` more updates.
    bool waitUpdates(int count = 1);
    // Connects with a key; returns the broker's id once the view has the peer
    // with its role (0 on failure).
    quint64 connectPeer(TestPeer &peer, const QByteArray &key);
    // The broker has handled all `peer` sent, and an update since has reached the view.
    bool settle(TestPeer &peer);
    std::optional<PeerInfo> viewed(const TestPeer &peer) const
    {
        return m_view.peerAtPort(peer.socket.localPort());
    }

    std::unique_ptr<BrokerHost> m_host;
    View m_view;
    QUrl m_url;
    qsizetype m_updatesAtStopped = -1; // updates received when stopped() came
};

void tst_BrokerHost::init()
{
    m_view = View();
    m_url.clear();
    m_updatesAtStopped = -1;
    m_host = std::make_unique<BrokerHost>();
    m_host->setInterval(kFastMs);
    connect(m_host.get(), &BrokerHost::updated, this, [this](const ConsoleUpdate &u) { m_view.apply(u); });
    connect(m_host.get(), &BrokerHost::stopped, this, [this] { m_updatesAtStopped = m_view.updates.size(); });
}

void tst_BrokerHost::cleanup()
{
    m_host.reset();
    QVERIFY2(m_view.errors.isEmpty(), qPrintable(m_view.errors.join(QLatin1Char('\n'))));
}

bool tst_BrokerHost::startHost(const BrokerConfig &config)
{
    QSignalSpy started(m_host.get(), &BrokerHost::started);
    const qsizetype before = m_view.updates.size();
    m_host->start(config);
    if (started.size() != 1)
        return false;
    m_url = started.at(0).at(0).toUrl();
    return QTest::qWaitFor([&] { return m_view.updates.size() > before; }, 5000);
}

bool tst_BrokerHost::waitUpdates(int count)
{
    const qsizetype target = m_view.updates.size() + count;
    return QTest::qWaitFor([&] { return m_view.updates.size() >= target; }, 5000);
}

quint64 tst_BrokerHost::connectPeer(TestPeer &peer, const QByteArray &key)
{
    if (!peer.connectWithKey(m_url, key))
        return 0;
    std::optional<PeerInfo> info;
    (void)QTest::qWaitFor(
        [&] {
            info = viewed(peer);
            return info && info->role != Role::None;
        },
        5000);
    return info && info->role != Role::None ? info->id : 0;
}

bool tst_BrokerHost::settle(TestPeer &peer)
{
    return peer.sync() && waitUpdates();
}

// --- start and stop --------------------------------------------------------

// started() carries a real port; the first update, and only it, resets the view.
void tst_BrokerHost::startReportsUrlAndResets()
{
    QSignalSpy failed(m_host.get(), &BrokerHost::startFailed);
    QVERIFY(!m_host->isRunning());
    QVERIFY(startHost());
    QVERIFY(m_host->isRunning());
    QCOMPARE(m_url.scheme(), QStringLiteral("ws"));
    QCOMPARE(m_url.host(), QStringLiteral("127.0.0.1"));
    QVERIFY(m_url.port() > 0);
    QVERIFY(m_view.updates.first().reset);
    QVERIFY(waitUpdates(3));
    for (qsizetype i = 1; i < m_view.updates.size(); ++i)
        QVERIFY(!m_view.updates.at(i).reset);
    QVERIFY(failed.isEmpty());

    // The URL is where peers connect.
    TestPeer peer;
    QVERIFY(connectPeer(peer, kServiceKey));
}

void tst_BrokerHost::startWhileRunningFails()
{
    QVERIFY(startHost());
    QSignalSpy started(m_host.get(), &BrokerHost::started);
    QSignalSpy failed(m_host.get(), &BrokerHost::startFailed);
    const qsizetype before = m_view.updates.size();
    m_host->start(testConfig());
    QCOMPARE(failed.size(), 1);
    QVERIFY(!failed.at(0).at(0).toString().isEmpty());
    QCOMPARE(started.size(), 0);
    QVERIFY(m_host->isRunning());

    // The first broker still serves, and nothing was reset.
    TestPeer peer;
    QVERIFY(connectPeer(peer, kClientKey));
    for (qsizetype i = before; i < m_view.updates.size(); ++i)
        QVERIFY(!m_view.updates.at(i).reset);
}

void tst_BrokerHost::startFailures_data()
{
    QTest::addColumn<QString>("kind");
    QTest::newRow("invalid config") << QStringLiteral("invalid");
    QTest::newRow("duplicate key") << QStringLiteral("duplicate");
    QTest::newRow("occupied port") << QStringLiteral("occupied");
}

// A failed start says why, sends no update and leaves the host ready to start.
void tst_BrokerHost::startFailures()
{
    QFETCH(QString, kind);
    QTcpServer occupier;
    BrokerConfig config = testConfig();
    QString expected;
    if (kind == QLatin1String("invalid")) {
        config.requestTimeoutMs = 0;
        expected = QStringLiteral("request_timeout_ms");
    } else if (kind == QLatin1String("duplicate")) {
        config.clientKeys.append(KeyConfig{QStringLiteral("again"), kServiceKey});
        expected = QStringLiteral("more than once");
    } else {
        QVERIFY(occupier.listen(QHostAddress::LocalHost, 0));
        config.port = occupier.serverPort();
        expected = QString::number(config.port);
    }

    QSignalSpy started(m_host.get(), &BrokerHost::started);
    QSignalSpy failed(m_host.get(), &BrokerHost::startFailed);
    m_host->start(config);
    QCOMPARE(failed.size(), 1);
    const QString why = failed.at(0).at(0).toString();
    QVERIFY2(why.contains(expected), qPrintable(why));
    QCOMPARE(started.size(), 0);
    QVERIFY(!m_host->isRunning());

    // Marker: a good start afterwards, whose reset update is the very first one.
    QVERIFY(startHost());
    QCOMPARE(started.size(), 1);
    QVERIFY(m_view.updates.first().reset);
    QCOMPARE(m_view.updates.first().peersChanged.size(), 0);
}

// stop(): peers are closed, a last update resets the view, then stopped(); a
// second start on the same host begins again from a reset.
void tst_BrokerHost::stopResetsThenRestarts()
{
    QVERIFY(startHost());
    TestPeer service, client;
    const quint64 serviceId = connectPeer(service, kServiceKey);
    QVERIFY(serviceId);
    QVERIFY(connectPeer(client, kClientKey));
    service.send(msg(Command::Ereq, "calc.*"));
    service.send(msg(Command::Sub, "calc.*"));
    QVERIFY(settle(service));
    client.send(msg(Command::Req, "calc.add", {{"ReqID", "r1"}}));
    QTRY_COMPARE(m_view.pending.size(), 1);
    QVERIFY(!m_view.topics.isEmpty());
    m_host->watchPeer(serviceId);
    QTRY_VERIFY(m_view.watched.has_value());

    QSignalSpy stopped(m_host.get(), &BrokerHost::stopped);
    m_host->stop();
    QVERIFY(stopped.wait(10000));
    QCOMPARE(stopped.size(), 1);
    QVERIFY(!m_host->isRunning());
    // The last update before stopped() resets, and the view is empty.
    QCOMPARE(m_updatesAtStopped, m_view.updates.size());
    QVERIFY(m_view.updates.last().reset);
    QVERIFY(m_view.peers.isEmpty());
    QVERIFY(m_view.topics.isEmpty());
    QVERIFY(m_view.pending.isEmpty());
    QVERIFY(!m_view.watched);
    // The requester got its 503 and both peers the going-away close.
    const std::optional<Message> res = client.waitFor(Command::Res, "calc.add");
    QVERIFY(res);
    QCOMPARE(res->header(HeaderName::Status), QByteArray("503"));
    QVERIFY(client.waitForClose());
    QVERIFY(service.waitForClose());
    QCOMPARE(service.closeCode, 1001);

    // Restart: started() again, and the next update (the first since stopped())
    // resets; ids start over, so the old watch does not carry over.
    QVERIFY(startHost());
    QCOMPARE(m_view.updates.size(), m_updatesAtStopped + 1);
    QVERIFY(m_view.updates.at(m_updatesAtStopped).reset);
    TestPeer again;
    const quint64 againId = connectPeer(again, kServiceKey);
    QCOMPARE(againId, serviceId); // the new broker counts from 1 again
    QVERIFY(settle(again));
    QVERIFY(!m_view.watched);
    QCOMPARE(m_view.peers.keys(), QList<quint64>{againId});
    QVERIFY(m_view.topics.isEmpty());
}

// --- Connections -----------------------------------------------------------

void tst_BrokerHost::peersAppearWithRoleNameAndAddress()
{
    QVERIFY(startHost());
    TestPeer service, client;
    const quint64 serviceId = connectPeer(service, kServiceKey);
    const quint64 clientId = connectPeer(client, kClientKey);
    QVERIFY(serviceId && clientId && serviceId != clientId);

    const PeerInfo s = m_view.peers.value(serviceId);
    QCOMPARE(s.role, Role::Service);
    QCOMPARE(s.keyName, QStringLiteral("svc"));
    QCOMPARE(s.address, QHostAddress(QHostAddress::LocalHost));
    QCOMPARE(s.port, service.socket.localPort());
    QVERIFY(!s.clientId.isEmpty());
    QVERIFY(s.connectedAt.isValid());

    const PeerInfo c = m_view.peers.value(clientId);
    QCOMPARE(c.role, Role::Client);
    QCOMPARE(c.keyName, QStringLiteral("web"));
    QCOMPARE(c.address, QHostAddress(QHostAddress::LocalHost));
    QCOMPARE(c.port, client.socket.localPort());
    QVERIFY(c.clientId != s.clientId);

    // A peer that leaves is gone from the view; the other stays.
    const qsizetype mark = m_view.updates.size();
    client.socket.close();
    QTRY_VERIFY(!m_view.peers.contains(clientId));
    bool reported = false;
    for (qsizetype i = mark; i < m_view.updates.size(); ++i)
        reported = reported || m_view.updates.at(i).peersGone.contains(clientId);
    QVERIFY(reported);
    QVERIFY(settle(service));
    QCOMPARE(m_view.peers.keys(), QList<quint64>{serviceId});
}

// A connection that has not sent its key yet is listed without a role.
void tst_BrokerHost::handshakingPeerHasNoRole()
{
    QVERIFY(startHost());
    TestPeer peer;
    peer.socket.open(m_url);
    QTRY_VERIFY(peer.socket.state() == QAbstractSocket::ConnectedState);
    QTRY_VERIFY(viewed(peer).has_value());
    const PeerInfo before = *viewed(peer);
    QCOMPARE(before.role, Role::None);
    QVERIFY(before.keyName.isEmpty());
    QCOMPARE(before.address, QHostAddress(QHostAddress::LocalHost));

    peer.socket.sendTextMessage(QString::fromUtf8(kClientKey));
    QTRY_COMPARE(viewed(peer)->role, Role::Client);
    QCOMPARE(viewed(peer)->id, before.id);
    QCOMPARE(viewed(peer)->keyName, QStringLiteral("web"));
}

// Counters travel as deltas: a peer is resent when they change and not while it
// is idle, and what the view ends with is the peer's real count.
void tst_BrokerHost::countersSentOnlyWhenChanged()
{
    QVERIFY(startHost());
    TestPeer idle, busy;
    const quint64 idleId = connectPeer(idle, kServiceKey);
    const quint64 busyId = connectPeer(busy, kServiceKey2);
    QVERIFY(idleId && busyId);
    QVERIFY(settle(idle));
    QVERIFY(settle(busy));
    const PeerInfo idleBefore = m_view.peers.value(idleId);
    QCOMPARE(idleBefore.messagesIn, quint64(1)); // its OPT
    QCOMPARE(idleBefore.messagesOut, quint64(1)); // the RES to it

    const qsizetype mark = m_view.updates.size();
    const int rounds = 4;
    for (int round = 0; round < rounds; ++round) {
        busy.send(msg(Command::Pub, "nobody.listens", {}, "x"));
        busy.send(msg(Command::Pub, "nobody.listens", {}, "y"));
        QVERIFY(settle(busy));
    }
    QVERIFY(m_view.updates.size() - mark >= rounds);
    int busyResent = 0;
    for (qsizetype i = mark; i < m_view.updates.size(); ++i) {
        for (const PeerInfo &peer : m_view.updates.at(i).peersChanged) {
            QVERIFY2(peer.id != idleId, "an idle peer was resent");
            busyResent += peer.id == busyId;
        }
    }
    QVERIFY(busyResent >= rounds);
    // 1 + 3 OPT per settle, 2 PUB per round.
    const PeerInfo busyNow = m_view.peers.value(busyId);
    QCOMPARE(busyNow.messagesIn, quint64(1 + rounds * 3));
    QCOMPARE(busyNow.messagesOut, quint64(1 + rounds));
    QVERIFY(busyNow.bytesIn > m_view.peers.value(idleId).bytesIn);
    QCOMPARE(m_view.peers.value(idleId).messagesIn, idleBefore.messagesIn);
    QCOMPARE(m_view.updates.last().stats.publishes, quint64(2 * rounds));
}

// disconnectPeer closes that peer with 1000 and the reason; the others stay.
void tst_BrokerHost::disconnectPeerClosesIt()
{
    QVERIFY(startHost());
    TestPeer victim, bystander;
    const quint64 victimId = connectPeer(victim, kClientKey);
    const quint64 bystanderId = connectPeer(bystander, kServiceKey);
    QVERIFY(victimId && bystanderId);

    m_host->disconnectPeer(victimId, QStringLiteral("maintenance window"));
    QVERIFY(victim.waitForClose());
    QCOMPARE(victim.closeCode, 1000);
    QCOMPARE(victim.closeReason, QStringLiteral("maintenance window"));
    QTRY_VERIFY(!m_view.peers.contains(victimId));
    QVERIFY(settle(bystander));
    QVERIFY(!bystander.closed);
    QVERIFY(m_view.peers.contains(bystanderId));
}

// --- Topics ----------------------------------------------------------------

// SUB counts per role; UNSUB and disconnects take the count down; a row nobody
// subscribes to, grants or sent to leaves the view.
void tst_BrokerHost::subscriptionsCountedPerRole()
{
    QVERIFY(startHost());
    TestPeer service, service2, client;
    const quint64 serviceId = connectPeer(service, kServiceKey);
    QVERIFY(serviceId);
    QVERIFY(connectPeer(service2, kServiceKey2));
    QVERIFY(connectPeer(client, kClientKey));
    service.send(msg(Command::Esub, "chat.>"));
    service.send(msg(Command::Sub, "chat.*"));
    service.send(msg(Command::Sub, "chat.*")); // a repeat changes nothing
    QVERIFY(service.sync());
    service2.send(msg(Command::Sub, "chat.*"));
    QVERIFY(service2.sync());
    client.send(msg(Command::Sub, "chat.*"));
    client.send(msg(Command::Sub, "chat.room1"));
    QVERIFY(settle(client));

    TopicRow row = m_view.topics.value("chat.*");
    QCOMPARE(row.serviceSubscribers, 2);
    QCOMPARE(row.clientSubscribers, 1);
    QCOMPARE(row.messages, quint64(0));
    QCOMPARE(m_view.topics.value("chat.room1").clientSubscribers, 1);
    QCOMPARE(m_view.topics.value("chat.room1").serviceSubscribers, 0);
    QCOMPARE(m_view.topics.value("chat.>").esubBy, QList<quint64>{serviceId});
    QCOMPARE(m_view.topics.size(), 3);

    client.send(msg(Command::Unsub, "chat.*"));
    QVERIFY(settle(client));
    row = m_view.topics.value("chat.*");
    QCOMPARE(row.serviceSubscribers, 2);
    QCOMPARE(row.clientSubscribers, 0);

    service2.socket.close();
    QTRY_COMPARE(m_view.topics.value("chat.*").serviceSubscribers, 1);

    // The last subscriber of a row without grants or messages takes it along.
    const qsizetype mark = m_view.updates.size();
    client.send(msg(Command::Unsub, "chat.room1"));
    QVERIFY(settle(client));
    QVERIFY(!m_view.topics.contains("chat.room1"));
    bool reported = false;
    for (qsizetype i = mark; i < m_view.updates.size(); ++i)
        reported = reported || m_view.updates.at(i).topicsGone.contains("chat.room1");
    QVERIFY(reported);
    service.send(msg(Command::Unsub, "chat.*"));
    QVERIFY(settle(service));
    QCOMPARE(m_view.topics.keys(), QList<QByteArray>{"chat.>"});
}

// A row that goes and comes back within one interval is one change, never
// "changed" and "gone" in the same update; one that comes and goes is never sent.
void tst_BrokerHost::unsubscribeAndSubscribeInOneInterval()
{
    QVERIFY(startHost());
    TestPeer service;
    QVERIFY(connectPeer(service, kServiceKey));
    service.send(msg(Command::Sub, "a.b"));
    QVERIFY(settle(service));
    QCOMPARE(m_view.topics.value("a.b").serviceSubscribers, 1);

    const qsizetype mark = m_view.updates.size();
    service.send(serialize(msg(Command::Unsub, "a.b")) + serialize(msg(Command::Sub, "a.b"))
                 + serialize(msg(Command::Sub, "brief.*")) + serialize(msg(Command::Unsub, "brief.*")));
    QVERIFY(settle(service));
    QVERIFY(m_view.topics.contains("a.b"));
    QCOMPARE(m_view.topics.value("a.b").serviceSubscribers, 1);
    for (qsizetype i = mark; i < m_view.updates.size(); ++i) {
        for (const TopicRow &row : m_view.updates.at(i).topicsChanged)
            QVERIFY(row.pattern != "brief.*");
    }
    QVERIFY(!m_view.topics.contains("brief.*"));

    // And the row still goes when it is really left.
    service.send(msg(Command::Unsub, "a.b"));
    QVERIFY(settle(service));
    QVERIFY(m_view.topics.isEmpty());
}

// Grants show who holds them; they go with their services, and a client's
// subscription goes with the last ESUB covering it.
void tst_BrokerHost::grantsFollowTheirServices()
{
    QVERIFY(startHost());
    TestPeer service, service2, client;
    const quint64 serviceId = connectPeer(service, kServiceKey);
    const quint64 service2Id = connectPeer(service2, kServiceKey2);
    QVERIFY(serviceId && service2Id);
    QVERIFY(connectPeer(client, kClientKey));
    // The higher id grants first: the list is sorted anyway.
    service2.send(msg(Command::Esub, "chat.>"));
    service2.send(msg(Command::Epub, "chat.>"));
    QVERIFY(service2.sync());
    service.send(msg(Command::Esub, "chat.>"));
    service.send(msg(Command::Esub, "chat.>")); // a repeat changes nothing
    service.send(msg(Command::Ereq, "calc.*"));
    QVERIFY(service.sync());
    client.send(msg(Command::Sub, "chat.x"));
    QVERIFY(settle(client));

    QCOMPARE(m_view.topics.value("chat.>").esubBy, (QList<quint64>{serviceId, service2Id}));
    QCOMPARE(m_view.topics.value("chat.>").epubBy, QList<quint64>{service2Id});
    QVERIFY(m_view.topics.value("chat.>").ereqBy.isEmpty());
    QCOMPARE(m_view.topics.value("calc.*").ereqBy, QList<quint64>{serviceId});
    QCOMPARE(m_view.topics.value("chat.x").clientSubscribers, 1);

    service2.socket.close();
    QTRY_VERIFY(m_view.topics.value("chat.>").epubBy.isEmpty());
    QCOMPARE(m_view.topics.value("chat.>").esubBy, QList<quint64>{serviceId});
    QCOMPARE(m_view.topics.value("chat.x").clientSubscribers, 1);

    service.socket.close();
    QTRY_VERIFY(m_view.topics.isEmpty());
    const std::optional<Message> revoked = client.waitFor(Command::Err, "chat.x");
    QVERIFY(revoked);
    QCOMPARE(revoked->header(HeaderName::Status), QByteArray("403"));
}

// Grants from the configuration are held by 0 and stay.
void tst_BrokerHost::permanentGrantsFromConfig()
{
    BrokerConfig config = testConfig();
    config.grants = {GrantConfig{Command::Epub, "pub.>"}, GrantConfig{Command::Esub, "pub.>"},
                     GrantConfig{Command::Ereq, "ask.*"}};
    QVERIFY(startHost(config));
    const ConsoleUpdate &first = m_view.updates.first();
    QVERIFY(first.reset);
    QCOMPARE(first.topicsChanged.size(), 2);
    QCOMPARE(m_view.topics.value("pub.>").epubBy, QList<quint64>{0});
    QCOMPARE(m_view.topics.value("pub.>").esubBy, QList<quint64>{0});
    QCOMPARE(m_view.topics.value("ask.*").ereqBy, QList<quint64>{0});

    TestPeer service;
    const quint64 serviceId = connectPeer(service, kServiceKey);
    QVERIFY(serviceId);
    service.send(msg(Command::Esub, "pub.>"));
    QVERIFY(settle(service));
    QCOMPARE(m_view.topics.value("pub.>").esubBy, (QList<quint64>{0, serviceId}));

    service.socket.close();
    QTRY_COMPARE(m_view.topics.value("pub.>").esubBy, QList<quint64>{0});
    QCOMPARE(m_view.topics.value("pub.>").epubBy, QList<quint64>{0});
    QCOMPARE(m_view.topics.size(), 2);
}

// PUB and REQ count on their literal target and on every pattern row covering it.
void tst_BrokerHost::messagesCountOnTargetAndPatterns()
{
    QVERIFY(startHost());
    TestPeer service, publisher;
    QVERIFY(connectPeer(service, kServiceKey));
    QVERIFY(connectPeer(publisher, kServiceKey2));
    service.send(msg(Command::Sub, "news.*"));
    service.send(msg(Command::Sub, ">"));
    service.send(msg(Command::Epub, "news.>"));
    service.send(msg(Command::Sub, "sport.*"));
    QVERIFY(settle(service));

    QByteArray frame;
    for (int i = 0; i < 3; ++i)
        frame += serialize(msg(Command::Pub, "news.a", {}, "a"));
    for (int i = 0; i < 2; ++i)
        frame += serialize(msg(Command::Pub, "news.b", {}, "b"));
    frame += serialize(msg(Command::Pub, "other", {}, "o"));
    frame += serialize(msg(Command::Req, "news.c", {{"ReqID", "q"}}));
    publisher.send(frame);
    QVERIFY(service.waitFor(Command::Req, "news.c"));
    QVERIFY(settle(publisher));

    QCOMPARE(m_view.topics.value("news.a").messages, quint64(3));
    QCOMPARE(m_view.topics.value("news.b").messages, quint64(2));
    QCOMPARE(m_view.topics.value("news.c").messages, quint64(1));
    QCOMPARE(m_view.topics.value("other").messages, quint64(1));
    QCOMPARE(m_view.topics.value("news.*").messages, quint64(6));
    QCOMPARE(m_view.topics.value("news.>").messages, quint64(6));
    QCOMPARE(m_view.topics.value(">").messages, quint64(7));
    QCOMPARE(m_view.topics.value("sport.*").messages, quint64(0));
    // Rows only sent to have no subscribers or grants.
    QCOMPARE(m_view.topics.value("news.a").serviceSubscribers, 0);

    // More traffic adds up.
    publisher.send(msg(Command::Pub, "news.a", {}, "again"));
    QVERIFY(settle(publisher));
    QCOMPARE(m_view.topics.value("news.a").messages, quint64(4));
    QCOMPARE(m_view.topics.value("news.*").messages, quint64(7));
    QCOMPARE(m_view.topics.value(">").messages, quint64(8));
}

// messagesPerSecond rises under traffic and falls back to 0 when it stops.
// A peer sending to ever new targets cannot grow the table without bound:
// targets only sent to get rows while there is room; subscriptions always do,
// and pattern rows keep counting every message.
void tst_BrokerHost::topicRowsAreBounded()
{
    QVERIFY(startHost());
    TestPeer service, publisher;
    QVERIFY(connectPeer(service, kServiceKey));
    QVERIFY(connectPeer(publisher, kServiceKey2));
    service.send(msg(Command::Sub, "spray.>"));
    QVERIFY(settle(service));

    // The table's size after every update (this runs after the view applied it).
    qsizetype largest = 0;
    connect(m_host.get(), &BrokerHost::updated, this, [&] { largest = qMax(largest, m_view.topics.size()); });
    const int total = BrokerHost::kMaxTopicRows + 2000;
    for (int sent = 0; sent < total;) {
        QByteArray frame;
        for (int i = 0; i < 1000 && sent < total; ++i, ++sent)
            frame += serialize(msg(Command::Pub, "spray.t" + QByteArray::number(sent), {}, "x"));
        publisher.send(frame);
    }
    // 22 000 deliveries to a service in this same process: slow under sanitizers.
    QVERIFY(publisher.sync(60000));
    QVERIFY(waitUpdates());
    QVERIFY(QTest::qWaitFor([&] { return m_view.topics.value("spray.>").messages == quint64(total); }, 20000));
    // Never more rows than the bound, whenever the once-a-second sweep ran; and
    // at least what the sweep keeps (10 000 sent-only rows and the subscription).
    QVERIFY2(largest <= BrokerHost::kMaxTopicRows, qPrintable(QString::number(largest)));
    QVERIFY2(m_view.topics.size() > BrokerHost::kMaxIdleTopics, qPrintable(QString::number(m_view.topics.size())));
    QVERIFY(m_view.topics.size() <= BrokerHost::kMaxTopicRows);
    // A new subscription still gets its row.
    service.send(msg(Command::Sub, "late.sub"));
    QVERIFY(settle(service));
    QCOMPARE(m_view.topics.value("late.sub").serviceSubscribers, 1);
}

void tst_BrokerHost::rateRisesAndFalls()
{
    QVERIFY(startHost());
    TestPeer service, publisher;
    QVERIFY(connectPeer(service, kServiceKey));
    QVERIFY(connectPeer(publisher, kServiceKey2));
    service.send(msg(Command::Sub, "rate.*"));
    QVERIFY(settle(service));
    QCOMPARE(m_view.topics.value("rate.*").messagesPerSecond, 0.0);

    QTimer ticker;
    ticker.setInterval(10);
    connect(&ticker, &QTimer::timeout, &publisher, [&] { publisher.send(msg(Command::Pub, "rate.x", {}, "t")); });
    ticker.start();
    QTRY_VERIFY_WITH_TIMEOUT(m_view.topics.value("rate.*").messagesPerSecond > 0, 10000);
    QTRY_VERIFY_WITH_TIMEOUT(m_view.topics.value("rate.x").messagesPerSecond > 0, 10000);
    const TopicRow busy = m_view.topics.value("rate.*");
    QVERIFY(std::isfinite(busy.messagesPerSecond));
    QVERIFY(busy.messagesPerSecond <= double(busy.messages) * 1000.0); // over at least 1 ms

    ticker.stop();
    QTRY_COMPARE_WITH_TIMEOUT(m_view.topics.value("rate.*").messagesPerSecond, 0.0, 10000);
    QTRY_COMPARE_WITH_TIMEOUT(m_view.topics.value("rate.x").messagesPerSecond, 0.0, 10000);
    QVERIFY(m_view.topics.value("rate.*").messages > 0);
}

// --- Requests --------------------------------------------------------------

// A request the service holds is listed with names and times, and leaves the
// list when it is answered.
void tst_BrokerHost::pendingRequestStartsAndFinishes()
{
    QVERIFY(startHost());
    TestPeer service, client;
    const quint64 serviceId = connectPeer(service, kServiceKey);
    const quint64 clientId = connectPeer(client, kClientKey);
    QVERIFY(serviceId && clientId);
    service.send(msg(Command::Sub, "calc.*"));
    service.send(msg(Command::Ereq, "calc.*"));
    QVERIFY(settle(service));

    client.send(msg(Command::Req, "calc.add", {{"ReqID", "7"}}, "1 2"));
    const std::optional<Message> req = service.waitFor(Command::Req, "calc.add");
    QVERIFY(req);
    const QByteArray token = req->header(HeaderName::ReqId);
    QTRY_VERIFY(m_view.pending.contains(token));
    const PendingRow row = m_view.pending.value(token);
    QCOMPARE(m_view.pending.size(), 1);
    QCOMPARE(row.reqId, QByteArray("7"));
    QCOMPARE(row.target, QByteArray("calc.add"));
    QCOMPARE(row.requester, clientId);
    QCOMPARE(row.responder, serviceId);
    QCOMPARE(row.requesterName, QStringLiteral("web"));
    QCOMPARE(row.responderName, QStringLiteral("svc"));
    QCOMPARE(row.deadlineMs - row.startedMs, qint64(30000)); // request_timeout_ms
    QVERIFY(row.startedMs <= m_view.updates.last().nowMs);
    QVERIFY(row.startedMs > m_view.updates.last().nowMs - 5000);
    QCOMPARE(m_view.peers.value(clientId).pendingRequests, 1);

    const qsizetype mark = m_view.updates.size();
    service.send(msg(Command::Res, "calc.add", {{"ReqID", token}}, "3"));
    const std::optional<Message> res = client.waitFor(Command::Res, "calc.add");
    QVERIFY(res);
    QCOMPARE(res->body, QByteArray("3"));
    QTRY_VERIFY(m_view.pending.isEmpty());
    bool finished = false;
    for (qsizetype i = mark; i < m_view.updates.size(); ++i)
        finished = finished || m_view.updates.at(i).requestsFinished.contains(token);
    QVERIFY(finished);
    QTRY_COMPARE(m_view.peers.value(clientId).pendingRequests, 0);
}

// A request that starts and ends between two updates appears in neither list;
// one that stays pending in the same interval does.
void tst_BrokerHost::requestWithinOneIntervalNeverAppears()
{
    QVERIFY(startHost());
    TestPeer service, client;
    QVERIFY(connectPeer(service, kServiceKey));
    QVERIFY(connectPeer(client, kServiceKey2));
    service.send(msg(Command::Sub, "calc.*"));
    QVERIFY(settle(service));

    const qsizetype mark = m_view.updates.size();
    m_host->setInterval(kLongMs);
    client.send(msg(Command::Req, "calc.fast", {{"ReqID", "f"}}));
    const std::optional<Message> fast = service.waitFor(Command::Req, "calc.fast");
    QVERIFY(fast);
    const QByteArray fastToken = fast->header(HeaderName::ReqId);
    service.send(msg(Command::Res, "calc.fast", {{"ReqID", fastToken}}, "done"));
    QVERIFY(client.waitFor(Command::Res, "calc.fast"));
    client.send(msg(Command::Req, "calc.slow", {{"ReqID", "s"}}));
    const std::optional<Message> slow = service.waitFor(Command::Req, "calc.slow");
    QVERIFY(slow);
    QCOMPARE(m_view.updates.size(), mark); // still one interval
    m_host->setInterval(kFastMs);
    QVERIFY(waitUpdates());

    const ConsoleUpdate &next = m_view.updates.at(mark);
    QCOMPARE(next.requestsStarted.size(), 1);
    QCOMPARE(next.requestsStarted.first().token, slow->header(HeaderName::ReqId));
    QVERIFY(next.requestsFinished.isEmpty());
    QVERIFY(settle(client));
    for (qsizetype i = mark; i < m_view.updates.size(); ++i)
        QVERIFY(!m_view.updates.at(i).requestsFinished.contains(fastToken));
    QCOMPARE(m_view.pending.keys(), QList<QByteArray>{slow->header(HeaderName::ReqId)});
    // Its target still counts both.
    QCOMPARE(m_view.topics.value("calc.*").messages, quint64(2));
}

// A request whose requester left before any update shows requester 0.
void tst_BrokerHost::requesterGoneBeforeTheUpdate()
{
    QVERIFY(startHost());
    TestPeer service, client;
    const quint64 serviceId = connectPeer(service, kServiceKey);
    QVERIFY(serviceId);
    QVERIFY(connectPeer(client, kServiceKey2));
    service.send(msg(Command::Sub, "calc.*"));
    QVERIFY(settle(service));

    const qsizetype mark = m_view.updates.size();
    m_host->setInterval(kLongMs);
    client.send(msg(Command::Req, "calc.orphan", {{"ReqID", "o"}}));
    const std::optional<Message> req = service.waitFor(Command::Req, "calc.orphan");
    QVERIFY(req);
    client.socket.close();
    QVERIFY(client.waitForClose());
    QVERIFY(service.sync()); // the broker has seen the close by now
    QCOMPARE(m_view.updates.size(), mark);
    m_host->setInterval(kFastMs);
    QVERIFY(waitUpdates());

    const QByteArray token = req->header(HeaderName::ReqId);
    QVERIFY(m_view.pending.contains(token));
    QCOMPARE(m_view.pending.value(token).requester, quint64(0));
    QCOMPARE(m_view.pending.value(token).responder, serviceId);

    // Answering it still finishes it.
    service.send(msg(Command::Res, "calc.orphan", {{"ReqID", token}}));
    QTRY_VERIFY(m_view.pending.isEmpty());
}

void tst_BrokerHost::timedOutRequestFinishes()
{
    QVERIFY(startHost());
    TestPeer service, client;
    QVERIFY(connectPeer(service, kServiceKey));
    QVERIFY(connectPeer(client, kServiceKey2));
    service.send(msg(Command::Sub, "slow.*"));
    QVERIFY(settle(service));

    client.send(msg(Command::Req, "slow.op", {{"ReqID", "t1"}, {"Timeout", "300"}}));
    const std::optional<Message> req = service.waitFor(Command::Req, "slow.op");
    QVERIFY(req);
    const QByteArray token = req->header(HeaderName::ReqId);
    QTRY_VERIFY(m_view.pending.contains(token));
    const PendingRow row = m_view.pending.value(token);
    QCOMPARE(row.deadlineMs - row.startedMs, qint64(300));

    const std::optional<Message> res = client.waitFor(Command::Res, "slow.op");
    QVERIFY(res);
    QCOMPARE(res->header(HeaderName::Status), QByteArray("504"));
    QTRY_VERIFY(!m_view.pending.contains(token));
    QVERIFY(m_view.updates.last().nowMs >= row.deadlineMs);
    QCOMPARE(m_view.updates.last().stats.requestsTimedOut, quint64(1));
}

// --- Traffic ---------------------------------------------------------------

// In: what peers send, with a cut body preview; Out: ERR and RES the broker makes.
void tst_BrokerHost::trafficInAndOut()
{
    QVERIFY(startHost());
    TestPeer service, client;
    const quint64 serviceId = connectPeer(service, kServiceKey);
    const quint64 clientId = connectPeer(client, kClientKey);
    QVERIFY(serviceId && clientId);
    service.send(msg(Command::Ereq, "nobody.>"));
    QVERIFY(settle(service));

    const qsizetype mark = m_view.updates.size();
    const qint64 wallBefore = QDateTime::currentMSecsSinceEpoch();
    const QByteArray body = QByteArray(TraceEvent::kBodyPreview, 'a') + QByteArray(100, 'b');
    service.send(msg(Command::Pub, "t.a", {{"X-Mood", "happy"}}, body));
    Message binary = msg(Command::Pub, "t.bin", {{"Content-Length", "3"}}, QByteArray("\x01\x02\x03", 3));
    binary.binary = true;
    service.send(binary);
    client.send(msg(Command::Pub, "t.a", {}, "no grant"));
    client.send(msg(Command::Req, "nobody.x", {{"ReqID", "r1"}}));
    QVERIFY(client.waitFor(Command::Err, "t.a"));
    QVERIFY(client.waitFor(Command::Res, "nobody.x"));
    QVERIFY(settle(service));

    const QList<TraceEvent> traffic = m_view.trafficSince(mark);
    auto find = [&](TraceEvent::Direction direction, Command command, const QByteArray &target,
                    quint64 peer) -> std::optional<TraceEvent> {
        for (const TraceEvent &event : traffic) {
            if (event.direction == direction && event.command == command && event.target == target
                && event.peer == peer)
                return event;
        }
        return std::nullopt;
    };

    const std::optional<TraceEvent> pub = find(TraceEvent::Direction::In, Command::Pub, "t.a", serviceId);
    QVERIFY(pub);
    QCOMPARE(headerOf(*pub, "X-Mood"), QByteArray("happy"));
    QCOMPARE(pub->body, QByteArray(TraceEvent::kBodyPreview, 'a'));
    QCOMPARE(pub->bodySize, qint64(body.size()));
    QVERIFY(!pub->binary);
    QVERIFY(pub->atMs >= wallBefore && pub->atMs <= QDateTime::currentMSecsSinceEpoch());

    const std::optional<TraceEvent> bin = find(TraceEvent::Direction::In, Command::Pub, "t.bin", serviceId);
    QVERIFY(bin);
    QVERIFY(bin->binary);
    QCOMPARE(bin->body, QByteArray("\x01\x02\x03", 3));
    QCOMPARE(bin->bodySize, qint64(3));

    QVERIFY(find(TraceEvent::Direction::In, Command::Pub, "t.a", clientId));
    const std::optional<TraceEvent> err = find(TraceEvent::Direction::Out, Command::Err, "t.a", clientId);
    QVERIFY(err);
    QCOMPARE(headerOf(*err, HeaderName::Status), QByteArray("403"));
    QCOMPARE(headerOf(*err, HeaderName::Command), QByteArray("PUB"));

    QVERIFY(find(TraceEvent::Direction::In, Command::Req, "nobody.x", clientId));
    const std::optional<TraceEvent> noResponder =
        find(TraceEvent::Direction::Out, Command::Res, "nobody.x", clientId);
    QVERIFY(noResponder);
    QCOMPARE(headerOf(*noResponder, HeaderName::Status), QByteArray("503"));
    QCOMPARE(headerOf(*noResponder, HeaderName::ReqId), QByteArray("r1"));
    QCOMPARE(noResponder->body, QByteArray("no responder for nobody.x"));

    // The OPT of settle() and its answer are there too, in order, last.
    QVERIFY(traffic.size() >= 2);
    QCOMPARE(traffic.at(traffic.size() - 2).command, Command::Opt);
    QCOMPARE(traffic.last().command, Command::Res);
    QCOMPARE(traffic.last().direction, TraceEvent::Direction::Out);
    QCOMPARE(traffic.last().peer, serviceId);
    for (qsizetype i = mark; i < m_view.updates.size(); ++i)
        QCOMPARE(m_view.updates.at(i).trafficSkipped, quint64(0));
}

// More than kMaxTrafficPerUpdate messages in one interval: exactly that many
// events, the latest, oldest first; trafficSkipped counts the rest.
void tst_BrokerHost::trafficBoundedPerUpdate()
{
    QVERIFY(startHost());
    TestPeer publisher;
    const quint64 publisherId = connectPeer(publisher, kServiceKey);
    QVERIFY(publisherId);
    QVERIFY(settle(publisher));

    const qsizetype mark = m_view.updates.size();
    m_host->setInterval(kLongMs);
    const int count = BrokerHost::kMaxTrafficPerUpdate + 500;
    QByteArray frame;
    for (int i = 0; i < count; ++i)
        frame += serialize(msg(Command::Pub, "flood", {}, QByteArray::number(i)));
    publisher.send(frame);
    QVERIFY(publisher.sync(20000)); // OPT in, RES out: count + 2 events
    QCOMPARE(m_view.updates.size(), mark);
    m_host->setInterval(kFastMs);
    QVERIFY(waitUpdates());

    const ConsoleUpdate &batch = m_view.updates.at(mark);
    QCOMPARE(batch.traffic.size(), qsizetype(BrokerHost::kMaxTrafficPerUpdate));
    QCOMPARE(batch.trafficSkipped, quint64(count + 2 - BrokerHost::kMaxTrafficPerUpdate));
    const int first = count + 2 - BrokerHost::kMaxTrafficPerUpdate;
    for (int i = 0; i < BrokerHost::kMaxTrafficPerUpdate - 2; ++i) {
        const TraceEvent &event = batch.traffic.at(i);
        QCOMPARE(event.command, Command::Pub);
        QCOMPARE(event.peer, publisherId);
        QCOMPARE(event.body, QByteArray::number(first + i));
    }
    QCOMPARE(batch.traffic.at(BrokerHost::kMaxTrafficPerUpdate - 2).command, Command::Opt);
    QCOMPARE(batch.traffic.last().command, Command::Res);
    QCOMPARE(batch.traffic.last().direction, TraceEvent::Direction::Out);

    // The next interval starts afresh.
    publisher.send(msg(Command::Pub, "flood", {}, "after"));
    QVERIFY(settle(publisher));
    const QList<TraceEvent> later = m_view.trafficSince(mark + 1);
    QCOMPARE(later.size(), 3);
    QCOMPARE(later.first().body, QByteArray("after"));
    for (qsizetype i = mark + 1; i < m_view.updates.size(); ++i)
        QCOMPARE(m_view.updates.at(i).trafficSkipped, quint64(0));
    QCOMPARE(m_view.topics.value("flood").messages, quint64(count + 1));
}

// setTracing(false): no traffic in updates, not even what the interval had
// gathered before; setTracing(true) brings it back.
void tst_BrokerHost::tracingOff()
{
    QVERIFY(startHost());
    TestPeer publisher;
    QVERIFY(connectPeer(publisher, kServiceKey));
    QVERIFY(settle(publisher));

    qsizetype mark = m_view.updates.size();
    m_host->setTracing(false);
    publisher.send(msg(Command::Pub, "quiet", {}, "1"));
    QVERIFY(settle(publisher));
    QVERIFY(settle(publisher));
    QVERIFY(m_view.trafficSince(mark).isEmpty());
    QCOMPARE(m_view.topics.value("quiet").messages, quint64(1)); // still counted

    // Gathered while on, switched off before the update.
    m_host->setTracing(true);
    mark = m_view.updates.size();
    m_host->setInterval(kLongMs);
    publisher.send(msg(Command::Pub, "quiet", {}, "2"));
    QVERIFY(publisher.sync());
    m_host->setTracing(false);
    QCOMPARE(m_view.updates.size(), mark);
    m_host->setInterval(kFastMs);
    QVERIFY(waitUpdates(2));
    QVERIFY(m_view.trafficSince(mark).isEmpty());
    for (qsizetype i = mark; i < m_view.updates.size(); ++i)
        QCOMPARE(m_view.updates.at(i).trafficSkipped, quint64(0));

    // Marker: on again, traffic comes through.
    m_host->setTracing(true);
    mark = m_view.updates.size();
    publisher.send(msg(Command::Pub, "quiet", {}, "3"));
    QVERIFY(settle(publisher));
    const QList<TraceEvent> traffic = m_view.trafficSince(mark);
    QCOMPARE(traffic.size(), 3);
    QCOMPARE(traffic.first().body, QByteArray("3"));
}

// --- Watched peer ----------------------------------------------------------

void tst_BrokerHost::watchPeer()
{
    QVERIFY(startHost());
    TestPeer service, other;
    const quint64 serviceId = connectPeer(service, kServiceKey);
    const quint64 otherId = connectPeer(other, kServiceKey2);
    QVERIFY(serviceId && otherId);
    service.send(msg(Command::Sub, "w.b"));
    service.send(msg(Command::Sub, "w.a"));
    service.send(msg(Command::Esub, "w.>"));
    service.send(msg(Command::Epub, "w.x"));
    other.send(msg(Command::Sub, "o.a"));
    QVERIFY(other.sync());
    QVERIFY(settle(service));
    QVERIFY(!m_view.watched);

    m_host->watchPeer(serviceId);
    QVERIFY(waitUpdates());
    QVERIFY(m_view.watched);
    QCOMPARE(m_view.watched->id, serviceId);
    QCOMPARE(m_view.watched->subscriptions, (QList<QByteArray>{"w.a", "w.b"}));
    QCOMPARE(granters(m_view.watched->grants, Command::Esub), QList<QByteArray>{"w.>"});
    QCOMPARE(granters(m_view.watched->grants, Command::Epub), QList<QByteArray>{"w.x"});
    QCOMPARE(m_view.watched->grants.size(), 2);

    service.send(msg(Command::Unsub, "w.a"));
    QVERIFY(settle(service));
    QCOMPARE(m_view.watched->subscriptions, QList<QByteArray>{"w.b"});

    m_host->watchPeer(otherId);
    QVERIFY(waitUpdates());
    QCOMPARE(m_view.watched->id, otherId);
    QCOMPARE(m_view.watched->subscriptions, QList<QByteArray>{"o.a"});
    QVERIFY(m_view.watched->grants.isEmpty());

    m_host->watchPeer(0);
    const qsizetype mark = m_view.updates.size();
    QVERIFY(waitUpdates(3));
    for (qsizetype i = mark; i < m_view.updates.size(); ++i)
        QVERIFY(!m_view.updates.at(i).watched);

    // A watched peer that leaves is no longer reported.
    m_host->watchPeer(otherId);
    QTRY_VERIFY(m_view.watched);
    other.socket.close();
    QTRY_VERIFY(!m_view.peers.contains(otherId));
    QVERIFY(waitUpdates());
    QVERIFY(!m_view.watched);
}

// --- Threads ---------------------------------------------------------------

// The console runs the host on an engine thread and drives it through queued
// slots: periodic updates still come, and stop() still ends in stopped().
void tst_BrokerHost::runsOnItsOwnThread()
{
    m_host.reset();
    QThread engine;
    auto *host = new BrokerHost;
    host->moveToThread(&engine);
    connect(&engine, &QThread::finished, host, &QObject::deleteLater);
    host->setInterval(kFastMs); // not started yet: safe from here
    engine.start();
    const auto joinEngine = qScopeGuard([&engine] {
        engine.quit();
        engine.wait();
    });

    connect(this, &tst_BrokerHost::startRequested, host, &BrokerHost::start);
    connect(this, &tst_BrokerHost::stopRequested, host, &BrokerHost::stop);
    // Queued to this thread, like the window's connections.
    connect(host, &BrokerHost::updated, this, [this](const ConsoleUpdate &u) { m_view.apply(u); });
    connect(host, &BrokerHost::started, this, [this](const QUrl &url) { m_url = url; });
    bool stopped = false;
    connect(host, &BrokerHost::stopped, this, [&stopped] { stopped = true; });

    Q_EMIT startRequested(testConfig());
    QTRY_VERIFY(m_url.port() > 0);
    QTRY_VERIFY(!m_view.updates.isEmpty());
    QVERIFY(m_view.updates.first().reset);

    TestPeer peer;
    const quint64 id = connectPeer(peer, kServiceKey);
    QVERIFY(id);
    peer.send(msg(Command::Sub, "thread.*"));
    QVERIFY(settle(peer));
    QTRY_COMPARE(m_view.topics.value("thread.*").serviceSubscribers, 1);
    QVERIFY(waitUpdates(5)); // the timer runs on the engine thread

    Q_EMIT stopRequested();
    QTRY_VERIFY_WITH_TIMEOUT(stopped, 10000);
    QVERIFY(peer.waitForClose());
    QVERIFY(m_view.updates.last().reset);
    QVERIFY(m_view.peers.isEmpty());
}

QTEST_GUILESS_MAIN(tst_BrokerHost)
#include "tst_brokerhost.moc"
