#include "brokerhost.h"

#include "broker.h"
#include "clock.h"
#include "target.h"

#include <QDateTime>

#include <algorithm>

namespace Middleman {

namespace {

bool samePeer(const PeerInfo &a, const PeerInfo &b)
{
    return a.role == b.role && a.keyName == b.keyName && a.messagesIn == b.messagesIn
        && a.messagesOut == b.messagesOut && a.bytesIn == b.bytesIn && a.bytesOut == b.bytesOut
        && a.bytesQueued == b.bytesQueued && a.subscriptions == b.subscriptions
        && a.pendingRequests == b.pendingRequests;
}

QList<quint64> *granterList(TopicRow &row, Command kind)
{
    switch (kind) {
    case Command::Epub: return &row.epubBy;
    case Command::Esub: return &row.esubBy;
    case Command::Ereq: return &row.ereqBy;
    default: return nullptr;
    }
}

bool unused(const TopicRow &row)
{
    return row.serviceSubscribers == 0 && row.clientSubscribers == 0 && row.epubBy.isEmpty()
        && row.esubBy.isEmpty() && row.ereqBy.isEmpty();
}

} // namespace

BrokerHost::BrokerHost(QObject *parent)
    : QObject(parent)
    , m_timer(this)
{
    qRegisterMetaType<ConsoleUpdate>();
    qRegisterMetaType<TraceEvent>();
    m_timer.setInterval(kDefaultIntervalMs);
    connect(&m_timer, &QTimer::timeout, this, &BrokerHost::flush);
}

BrokerHost::~BrokerHost()
{
    // The broker goes after this object's members: nothing of it may reach them.
    if (m_broker)
        m_broker->disconnect(this);
}

void BrokerHost::start(const BrokerConfig &config)
{
    if (m_broker) {
        Q_EMIT startFailed(m_broker->isShuttingDown() ? QStringLiteral("the broker is still stopping")
                                                      : QStringLiteral("the broker is already running"));
        return;
    }
    QString error;
    if (!config.validate(&error)) {
        Q_EMIT startFailed(error);
        return;
    }
    m_broker = std::make_unique<Broker>(config);
    if (!m_broker->listen()) {
        const QString why = m_broker->errorString();
        m_broker.reset();
        Q_EMIT startFailed(why);
        return;
    }
    resetState();
    connectBroker();
    for (const GrantConfig &grant : config.grants)
        onGrantAdded(grant.kind, grant.pattern, GrantTable::Permanent);
    m_timer.start();
    Q_EMIT started(m_broker->serverUrl());
    flush();
}

void BrokerHost::stop()
{
    if (m_broker && !m_broker->isShuttingDown())
        m_broker->shutdown();
}

void BrokerHost::disconnectPeer(quint64 id, const QString &reason)
{
    if (m_broker)
        m_broker->disconnectPeer(id, reason);
}

void BrokerHost::watchPeer(quint64 id)
{
    m_watched = id;
}

void BrokerHost::setInterval(int ms)
{
    m_timer.setInterval(qMax(1, ms));
}

void BrokerHost::setTracing(bool on)
{
    if (m_tracing == on)
        return;
    m_tracing = on;
    if (!on)
        clearTraffic(); // what this interval gathered is not sent either
    if (!m_broker)
        return;
    if (on)
        connect(m_broker.get(), &Broker::messageTraced, this, &BrokerHost::onTraced);
    else
        disconnect(m_broker.get(), &Broker::messageTraced, this, &BrokerHost::onTraced);
}

void BrokerHost::clearTraffic()
{
    m_traffic.clear();
    m_trafficHead = 0;
    m_trafficSkipped = 0;
}

void BrokerHost::resetState()
{
    m_resetPending = true;
    m_watched = 0; // connection ids start over with the next broker
    m_peersSent.clear();
    m_roles.clear();
    m_names.clear();
    m_subscriptionsOf.clear();
    m_grantsOf.clear();
    m_topics.clear();
    m_patternTopics = {};
    m_dirtyTopics.clear();
    m_routedSinceFlush.clear();
    m_topicsGone.clear();
    m_lastRateMs = monotonicMs();
    m_pendingNew.clear();
    m_pendingSent.clear();
    m_pendingFinished.clear();
    clearTraffic();
}

void BrokerHost::connectBroker()
{
    Broker *broker = m_broker.get();
    connect(broker, &Broker::peerConnected, this, &BrokerHost::onPeerConnected);
    connect(broker, &Broker::peerDisconnected, this, [this](quint64 id) { onPeerDisconnected(id); });
    connect(broker, &Broker::subscriptionAdded, this,
            [this](quint64 id, const QByteArray &pattern) { onSubscription(id, pattern, true); });
    connect(broker, &Broker::subscriptionRemoved, this,
            [this](quint64 id, const QByteArray &pattern) { onSubscription(id, pattern, false); });
    connect(broker, &Broker::grantAdded, this, &BrokerHost::onGrantAdded);
    connect(broker, &Broker::grantRemoved, this, &BrokerHost::onGrantRemoved);
    connect(broker, &Broker::messageRouted, this,
            [this](quint64, Command command, const QByteArray &target, int) { onRouted(command, target); });
    connect(broker, &Broker::requestStarted, this, &BrokerHost::onRequestStarted);
    connect(broker, &Broker::requestFinished, this,
            [this](const QByteArray &token, int) { onRequestFinished(token); });
    if (m_tracing)
        connect(broker, &Broker::messageTraced, this, &BrokerHost::onTraced);
    connect(broker, &Broker::stopped, this, [this] {
        // The last word on this run: first what happened since the last update
        // (the shutdown's 503s are in its traffic), then everything is gone. The
        // broker is deleted once its own signal has returned.
        m_timer.stop();
        flush();
        ConsoleUpdate last;
        last.reset = true;
        last.nowMs = monotonicMs();
        last.wallMs = QDateTime::currentMSecsSinceEpoch();
        last.stats = m_broker->stats();
        m_broker.release()->deleteLater();
        resetState();
        Q_EMIT updated(last);
        Q_EMIT stopped();
    });
}

// --- Topics ----------------------------------------------------------------

BrokerHost::Topic &BrokerHost::topic(const QByteArray &pattern)
{
    auto it = m_topics.find(pattern);
    if (it == m_topics.end()) {
        it = m_topics.insert(pattern, Topic{});
        it->row.pattern = pattern;
        it->lastActivityMs = monotonicMs();
        // Gone and back within one interval: the window still has the row, and
        // gets the new one as a change, not as "changed" and "gone" at once.
        if (m_topicsGone.remove(pattern)) {
            it->sent = true;
            markDirty(*it);
        }
        if (Target::hasWildcard(pattern))
            m_patternTopics.insert(pattern, pattern);
    }
    return *it;
}

void BrokerHost::markDirty(Topic &topic)
{
    m_dirtyTopics.insert(topic.row.pattern);
}

void BrokerHost::dropTopic(const QByteArray &pattern)
{
    const auto it = m_topics.constFind(pattern);
    if (it == m_topics.cend())
        return;
    if (it->sent)
        m_topicsGone.insert(pattern);
    m_dirtyTopics.remove(pattern);
    if (Target::hasWildcard(pattern))
        m_patternTopics.remove(pattern, pattern);
    m_topics.erase(it);
}

void BrokerHost::dropTopicIfUnused(const QByteArray &pattern)
{
    const auto it = m_topics.constFind(pattern);
    // A row that has carried messages stays until it has been idle a while.
    if (it != m_topics.cend() && unused(it->row) && it->row.messages == 0)
        dropTopic(pattern);
}

void BrokerHost::onSubscription(quint64 id, const QByteArray &pattern, bool added)
{
    const bool service = m_roles.value(id) == Role::Service;
    if (added) {
        Topic &entry = topic(pattern);
        if (entry.subscribers.contains(id))
            return;
        entry.subscribers.insert(id);
        m_subscriptionsOf[id].insert(pattern);
        ++(service ? entry.row.serviceSubscribers : entry.row.clientSubscribers);
        entry.lastActivityMs = monotonicMs();
        markDirty(entry);
        return;
    }
    const auto it = m_topics.find(pattern);
    if (it == m_topics.end() || !it->subscribers.remove(id))
        return;
    if (const auto of = m_subscriptionsOf.find(id); of != m_subscriptionsOf.end())
        of->remove(pattern);
    --(service ? it->row.serviceSubscribers : it->row.clientSubscribers);
    it->lastActivityMs = monotonicMs();
    markDirty(*it);
    dropTopicIfUnused(pattern);
}

void BrokerHost::onGrantAdded(Command kind, const QByteArray &pattern, quint64 granter)
{
    Topic &entry = topic(pattern);
    QList<quint64> *by = granterList(entry.row, kind);
    if (!by || by->contains(granter))
        return;
    by->insert(std::lower_bound(by->begin(), by->end(), granter), granter);
    if (granter != GrantTable::Permanent)
        m_grantsOf[granter].insert({int(kind), pattern});
    markDirty(entry);
}

void BrokerHost::onGrantRemoved(Command kind, const QByteArray &pattern)
{
    // Nobody holds this grant any more.
    const auto it = m_topics.find(pattern);
    if (it == m_topics.end())
        return;
    if (QList<quint64> *by = granterList(it->row, kind)) {
        for (const quint64 granter : std::as_const(*by)) {
            if (granter != GrantTable::Permanent)
                m_grantsOf[granter].remove({int(kind), pattern});
        }
        by->clear();
    }
    it->lastActivityMs = monotonicMs();
    markDirty(*it);
    dropTopicIfUnused(pattern);
}

void BrokerHost::onRouted(Command command, const QByteArray &target)
{
    if (command == Command::Pub || command == Command::Req)
        ++m_routedSinceFlush[target];
}

void BrokerHost::collectTopics(ConsoleUpdate &update, qint64 nowMs)
{
    for (auto it = m_routedSinceFlush.cbegin(); it != m_routedSinceFlush.cend(); ++it) {
        // A target only sent to gets a row while the table has room: a peer
        // sending to ever new targets cannot grow it (or an update) without bound.
        if (m_topics.contains(it.key()) || m_topics.size() < kMaxTopicRows) {
            Topic &entry = topic(it.key());
            entry.row.messages += it.value();
            entry.lastActivityMs = nowMs;
            markDirty(entry);
        }
        // The pattern rows covering this target, found through the tree: the cost
        // follows the matches, not the number of pattern rows.
        m_patternTopics.match(it.key(), [&](const QByteArray &pattern) {
            const auto covering = m_topics.find(pattern);
            if (covering == m_topics.end())
                return;
            covering->row.messages += it.value();
            covering->lastActivityMs = nowMs;
            markDirty(*covering);
        });
    }
    m_routedSinceFlush.clear();

    const qint64 elapsed = nowMs - m_lastRateMs;
    if (elapsed >= 1000) {
        m_lastRateMs = nowMs;
        QList<QPair<qint64, QByteArray>> idle;
        for (auto it = m_topics.begin(); it != m_topics.end(); ++it) {
            Topic &entry = it.value();
            const double rate = double(entry.row.messages - entry.messagesAtLastRate) * 1000.0 / double(elapsed);
            entry.messagesAtLastRate = entry.row.messages;
            if (rate != entry.row.messagesPerSecond) {
                entry.row.messagesPerSecond = rate;
                markDirty(entry);
            }
            if (unused(entry.row))
                idle.append({entry.lastActivityMs, it.key()});
        }
        // Targets only sent to go after a quiet minute; the oldest first when
        // there are too many of them.
        std::sort(idle.begin(), idle.end());
        for (qsizetype i = 0; i < idle.size(); ++i) {
            if (nowMs - idle.at(i).first > kIdleTopicMs || idle.size() - i > kMaxIdleTopics)
                dropTopic(idle.at(i).second);
        }
    }

    for (const QByteArray &pattern : std::as_const(m_dirtyTopics)) {
        Topic &entry = m_topics[pattern];
        entry.sent = true;
        update.topicsChanged.append(entry.row);
    }
    m_dirtyTopics.clear();
    std::sort(update.topicsChanged.begin(), update.topicsChanged.end(),
              [](const TopicRow &a, const TopicRow &b) { return a.pattern < b.pattern; });
    update.topicsGone = m_topicsGone.values();
    std::sort(update.topicsGone.begin(), update.topicsGone.end());
    m_topicsGone.clear();
}

// --- Connections -----------------------------------------------------------

void BrokerHost::onPeerConnected(const PeerInfo &peer)
{
    m_roles.insert(peer.id, peer.role);
    m_names.insert(peer.id, peer.keyName);
}

void BrokerHost::onPeerDisconnected(quint64 id)
{
    // The broker drops a leaving peer's subscriptions without a signal per pattern.
    const QSet<QByteArray> patterns = m_subscriptionsOf.take(id);
    for (const QByteArray &pattern : patterns)
        onSubscription(id, pattern, false);
    const auto grants = m_grantsOf.take(id);
    for (const auto &[kind, pattern] : grants) {
        const auto it = m_topics.find(pattern);
        if (it == m_topics.end())
            continue;
        if (QList<quint64> *by = granterList(it->row, Command(kind)))
            by->removeOne(id);
        markDirty(*it);
        dropTopicIfUnused(pattern);
    }
    m_roles.remove(id);
    m_names.remove(id);
    // The broker keeps its requests without a requester (RequestInfo); rows the
    // window has not seen yet say so. Rows it has seen cannot change.
    for (PendingRow &row : m_pendingNew) {
        if (row.requester == id)
            row.requester = 0;
    }
}

void BrokerHost::collectPeers(ConsoleUpdate &update)
{
    const QList<PeerInfo> peers = m_broker->peers(); // sorted by id
    QSet<quint64> present;
    present.reserve(peers.size());
    for (const PeerInfo &peer : peers) {
        present.insert(peer.id);
        const auto it = m_peersSent.constFind(peer.id);
        if (it != m_peersSent.cend() && samePeer(*it, peer))
            continue;
        m_peersSent.insert(peer.id, peer);
        update.peersChanged.append(peer);
    }
    for (auto it = m_peersSent.begin(); it != m_peersSent.end();) {
        if (present.contains(it.key())) {
            ++it;
            continue;
        }
        update.peersGone.append(it.key());
        it = m_peersSent.erase(it);
    }
    std::sort(update.peersGone.begin(), update.peersGone.end());
}

// --- Requests --------------------------------------------------------------

void BrokerHost::onRequestStarted(const RequestInfo &request)
{
    PendingRow row;
    row.token = request.token;
    row.reqId = request.reqId;
    row.target = request.target;
    row.requester = request.requester;
    row.responder = request.responder;
    row.requesterName = m_names.value(request.requester);
    row.responderName = m_names.value(request.responder);
    row.startedMs = request.startedMs;
    row.deadlineMs = request.deadlineMs;
    m_pendingNew.insert(row.token, row);
}

void BrokerHost::onRequestFinished(const QByteArray &token)
{
    if (m_pendingNew.remove(token))
        return; // started and ended between two updates: the window never knew it
    if (m_pendingSent.remove(token))
        m_pendingFinished.append(token);
}

// --- Traffic ---------------------------------------------------------------

void BrokerHost::onTraced(const TraceEvent &event)
{
    if (m_traffic.size() < kMaxTrafficPerUpdate) {
        m_traffic.append(event);
        return;
    }
    // A ring: the latest kMaxTrafficPerUpdate of the interval are kept.
    m_traffic[m_trafficHead] = event;
    m_trafficHead = (m_trafficHead + 1) % kMaxTrafficPerUpdate;
    ++m_trafficSkipped;
}

// --- Updates ---------------------------------------------------------------

void BrokerHost::flush()
{
    if (!m_broker)
        return;
    ConsoleUpdate update;
    update.reset = std::exchange(m_resetPending, false);
    update.nowMs = monotonicMs();
    update.wallMs = QDateTime::currentMSecsSinceEpoch();
    update.stats = m_broker->stats();

    collectPeers(update);
    collectTopics(update, update.nowMs);

    update.requestsStarted = m_pendingNew.values();
    std::sort(update.requestsStarted.begin(), update.requestsStarted.end(),
              [](const PendingRow &a, const PendingRow &b) {
                  // Tokens are "mm-<base 36 counter>": shorter is older, then by value.
                  if (a.startedMs != b.startedMs)
                      return a.startedMs < b.startedMs;
                  if (a.token.size() != b.token.size())
                      return a.token.size() < b.token.size();
                  return a.token < b.token;
              });
    for (const PendingRow &row : std::as_const(update.requestsStarted))
        m_pendingSent.insert(row.token);
    m_pendingNew.clear();
    update.requestsFinished = std::exchange(m_pendingFinished, {});

    update.traffic.reserve(m_traffic.size());
    for (qsizetype i = 0; i < m_traffic.size(); ++i)
        update.traffic.append(m_traffic.at((m_trafficHead + i) % m_traffic.size()));
    update.trafficSkipped = m_trafficSkipped;
    clearTraffic();

    if (m_watched != 0 && m_broker->peer(m_watched)) {
        PeerDetail detail;
        detail.id = m_watched;
        detail.subscriptions = m_broker->subscriptionsOf(m_watched);
        std::sort(detail.subscriptions.begin(), detail.subscriptions.end());
        detail.grants = m_broker->grantsOf(m_watched);
        update.watched = detail;
    }
    Q_EMIT updated(update);
}

} // namespace Middleman
