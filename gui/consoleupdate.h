#pragma once
// What the console's engine side (BrokerHost, on the broker's thread) tells the
// window, batched on a timer: plain values, never engine pointers, so the models
// can live on another thread and a peer's lifetime never matters to a view.

#include "brokertypes.h"
#include "granttable.h"

#include <QByteArray>
#include <QList>
#include <QMetaType>
#include <QString>

#include <optional>

namespace Middleman {

// One row of the topics table: a target or pattern somebody subscribed to,
// granted, or sent to.
struct TopicRow
{
    QByteArray pattern;
    int serviceSubscribers = 0;
    int clientSubscribers = 0;
    // Who holds each grant on exactly this pattern: connection ids, 0 for the
    // configuration's permanent grants. Sorted.
    QList<quint64> epubBy;
    QList<quint64> esubBy;
    QList<quint64> ereqBy;
    // PUB and REQ routed to this target, or for a pattern to the targets it
    // matches, since the row appeared; and the rate over the last second.
    quint64 messages = 0;
    double messagesPerSecond = 0;

    friend bool operator==(const TopicRow &, const TopicRow &) = default;
};

// One pending request (RequestInfo with the peers' names resolved).
struct PendingRow
{
    QByteArray token;   // the broker's ReqID
    QByteArray reqId;   // the requester's own
    QByteArray target;
    // As of requestsStarted (0 if the requester had already gone). Rows are not
    // resent: a window learns that a requester left from peersGone.
    quint64 requester = 0;
    quint64 responder = 0;
    QString requesterName;
    QString responderName;
    qint64 startedMs = 0;  // monotonic clock (clock.h), like ConsoleUpdate::nowMs
    qint64 deadlineMs = 0;
};

// The subscriptions and grants of the connection the window has selected.
struct PeerDetail
{
    quint64 id = 0;
    QList<QByteArray> subscriptions;
    QList<GrantTable::Grant> grants;
};

// A key (connection id, pattern, token) never appears both as changed and as
// gone in one update.
struct ConsoleUpdate
{
    // True for the first update after a start: forget everything seen before.
    bool reset = false;
    qint64 nowMs = 0;       // monotonic clock, for ages and time left
    qint64 wallMs = 0;      // wall clock, ms since the epoch
    BrokerStats stats;      // totals since the broker started

    // Connections: new or changed since the last update, and gone. Ordered by id.
    QList<PeerInfo> peersChanged;
    QList<quint64> peersGone;
    // Topics: new or changed rows, and rows gone.
    QList<TopicRow> topicsChanged;
    QList<QByteArray> topicsGone;
    // Requests that started and are still pending, and earlier ones that ended.
    // A request that starts and ends between two updates appears in neither.
    QList<PendingRow> requestsStarted;
    QList<QByteArray> requestsFinished;
    // The latest traced messages, oldest first, and how many earlier ones of this
    // interval were left out to keep the batch bounded.
    QList<TraceEvent> traffic;
    quint64 trafficSkipped = 0;
    // Set while the window watches a connection (BrokerHost::watchPeer).
    std::optional<PeerDetail> watched;
};

} // namespace Middleman

Q_DECLARE_METATYPE(Middleman::ConsoleUpdate)
