#pragma once
// RequestTracker: requests on their way to a service and back (PROTOCOL.md 4.3, 4.4).
// Plain class with time passed in by the caller; lives on the broker's thread.

#include <QByteArray>
#include <QHash>
#include <QList>
#include <QSet>

#include <optional>
#include <set>
#include <utility>

namespace Middleman {

struct PendingRequest
{
    QByteArray token;          // the broker's ReqID, unique for the broker's lifetime
    quint64 requester = 0;     // 0 once the requester has gone (answers are discarded)
    QByteArray requesterReqId; // restored on the answer
    quint64 responder = 0;
    QByteArray target;
    qint64 startedMs = 0;
    qint64 deadlineMs = 0;
};

class RequestTracker
{
public:
    // Records a request sent to `responder` and returns the token that replaces its ReqID.
    QByteArray add(quint64 requester, const QByteArray &reqId, quint64 responder,
                   const QByteArray &target, qint64 nowMs, qint64 timeoutMs);

    const PendingRequest *find(QByteArrayView token) const;
    std::optional<PendingRequest> take(const QByteArray &token);

    // Requests whose deadline is at or before now, removed.
    QList<PendingRequest> takeExpired(qint64 nowMs);
    // Requests held by a responder that is leaving, removed.
    QList<PendingRequest> takeByResponder(quint64 responder);
    // The requester left: its requests stay until answered or expired, so the
    // responder's load stays right, but their answers go nowhere. Returns how many.
    qsizetype orphan(quint64 requester);
    // Everything, removed (shutdown).
    QList<PendingRequest> takeAll();

    // Requests a responder holds now (for least-outstanding balancing).
    int outstanding(quint64 responder) const { return m_outstanding.value(responder); }
    // Requests a requester waits for now (for the per-connection limit).
    int pendingOf(quint64 requester) const { return int(m_byRequester.value(requester).size()); }
    std::optional<qint64> nextDeadline() const;
    qsizetype size() const { return m_byToken.size(); }
    QList<PendingRequest> all() const { return m_byToken.values(); }

private:
    void forget(const PendingRequest &request);

    // Earliest deadline first; ties in the order the requests were made (tokens
    // carry a counter: a shorter token is an older one).
    struct DeadlineOrder
    {
        bool operator()(const std::pair<qint64, QByteArray> &a, const std::pair<qint64, QByteArray> &b) const
        {
            if (a.first != b.first)
                return a.first < b.first;
            if (a.second.size() != b.second.size())
                return a.second.size() < b.second.size();
            return a.second < b.second;
        }
    };

    QHash<QByteArray, PendingRequest> m_byToken;
    std::set<std::pair<qint64, QByteArray>, DeadlineOrder> m_deadlines;
    QHash<quint64, int> m_outstanding;
    QHash<quint64, QSet<QByteArray>> m_byRequester;
    QHash<quint64, QSet<QByteArray>> m_byResponder;
    quint64 m_counter = 0;
};

} // namespace Middleman
