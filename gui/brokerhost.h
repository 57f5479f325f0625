#pragma once
// BrokerHost: the console's engine side. Owns a Broker, listens to its signals on
// the broker's own thread, and every interval sends the window one ConsoleUpdate
// of plain values. The window drives it through its slots (queued across
// threads), so no widget is ever called from the engine and no view holds an
// engine pointer.

#include "brokerconfig.h"
#include "consoleupdate.h"
#include "patterntree.h"

#include <QElapsedTimer>
#include <QHash>
#include <QMap>
#include <QObject>
#include <QSet>
#include <QTimer>
#include <QUrl>

#include <memory>

namespace Middleman {

class Broker;

class BrokerHost : public QObject
{
    Q_OBJECT
public:
    static constexpr int kDefaultIntervalMs = 200;
    static constexpr int kMaxTrafficPerUpdate = 2000;
    // Targets that were only sent to (no subscriber, no grant) leave the topics
    // table after this long without traffic, and at most this many are kept.
    static constexpr qint64 kIdleTopicMs = 60000;
    static constexpr int kMaxIdleTopics = 10000;
    // Rows for targets only sent to are made only while the table is smaller
    // than this; rows for subscriptions and grants always are.
    static constexpr int kMaxTopicRows = 20000;

    explicit BrokerHost(QObject *parent = nullptr);
    ~BrokerHost() override;

    bool isRunning() const { return m_broker != nullptr; }

public Q_SLOTS:
    // Creates the broker and listens; started() or startFailed() follows.
    void start(const Middleman::BrokerConfig &config);
    // Graceful shutdown (Broker::shutdown); stopped() follows.
    void stop();
    void disconnectPeer(quint64 id, const QString &reason);
    // Include this connection's subscriptions and grants in every update (0: none).
    void watchPeer(quint64 id);
    void setInterval(int ms);
    // Traced messages in updates on or off (the traffic log's switch).
    void setTracing(bool on);

Q_SIGNALS:
    void started(const QUrl &url);
    void startFailed(const QString &error);
    void stopped();
    void updated(const Middleman::ConsoleUpdate &update);

private:
    struct Topic
    {
        TopicRow row;
        QSet<quint64> subscribers;
        quint64 messagesAtLastRate = 0;
        qint64 lastActivityMs = 0;
        bool sent = false; // the window has this row
    };

    void connectBroker();
    void flush();
    Topic &topic(const QByteArray &pattern);
    void markDirty(Topic &topic);
    void dropTopic(const QByteArray &pattern);
    void dropTopicIfUnused(const QByteArray &pattern);
    void onPeerConnected(const PeerInfo &peer);
    void onPeerDisconnected(quint64 id);
    void onSubscription(quint64 id, const QByteArray &pattern, bool added);
    void onGrantAdded(Command kind, const QByteArray &pattern, quint64 granter);
    void onGrantRemoved(Command kind, const QByteArray &pattern);
    void onRouted(Command command, const QByteArray &target);
    void onRequestStarted(const RequestInfo &request);
    void onRequestFinished(const QByteArray &token);
    void onTraced(const TraceEvent &event);
    void collectTopics(ConsoleUpdate &update, qint64 nowMs);
    void collectPeers(ConsoleUpdate &update);
    void resetState();
    void clearTraffic();

    std::unique_ptr<Broker> m_broker;
    QTimer m_timer; // a child, so that it follows moveToThread()
    bool m_tracing = true;
    bool m_resetPending = false;
    quint64 m_watched = 0;

    // What the window has been told, to send only changes.
    QHash<quint64, PeerInfo> m_peersSent;
    QHash<quint64, Role> m_roles;
    QHash<quint64, QString> m_names;
    QHash<quint64, QSet<QByteArray>> m_subscriptionsOf; // per connection
    QHash<quint64, QSet<QPair<int, QByteArray>>> m_grantsOf; // per granter: (kind, pattern)

    QHash<QByteArray, Topic> m_topics;
    PatternTree<QByteArray> m_patternTopics; // rows with a wildcard, by pattern
    QSet<QByteArray> m_dirtyTopics;   // changed since the last update
    QHash<QByteArray, quint64> m_routedSinceFlush; // literal target -> messages
    QSet<QByteArray> m_topicsGone;    // rows the window has, gone since the last update
    qint64 m_lastRateMs = 0;

    QHash<QByteArray, PendingRow> m_pendingNew;  // started since the last update
    QSet<QByteArray> m_pendingSent;               // the window has these
    QList<QByteArray> m_pendingFinished;

    QList<TraceEvent> m_traffic; // a ring of kMaxTrafficPerUpdate
    qsizetype m_trafficHead = 0;
    quint64 m_trafficSkipped = 0;
};

} // namespace Middleman
