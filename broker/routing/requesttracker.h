#pragma once
// RequestTracker: requests on their way to a service and back (docs/protocol.md §4.3, §4.4).
// Plain class with time passed in by the caller; lives on the broker's thread.

#include <QByteArray>
#include <QHash>
#include <QList>

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

// Every request is one entry keyed by a number that its token spells
// ("mm-" and the number in base 36), and sits on two lists threaded through the
// entries: its requester's and its responder's. Adding and answering a request
// costs hash lookups and no allocation beyond the token and a deadline node;
// a peer that leaves walks only its own list.
class RequestTracker
{
public:
    // Records a request sent to `responder` and returns the token that replaces its ReqID.
    QByteArray add(quint64 requester, const QByteArray &reqId, quint64 responder,
                   const QByteArray &target, qint64 nowMs, qint64 timeoutMs);

    const PendingRequest *find(QByteArrayView token) const;
    std::optional<PendingRequest> take(QByteArrayView token);

    // Requests whose deadline is at or before now, removed.
    QList<PendingRequest> takeExpired(qint64 nowMs);
    // Requests held by a responder that is leaving, removed, in the order they were made.
    QList<PendingRequest> takeByResponder(quint64 responder);
    // The requester left: its requests stay until answered or expired, so the
    // responder's load stays right, but their answers go nowhere. Returns how many.
    qsizetype orphan(quint64 requester);
    // Everything, removed (shutdown).
    QList<PendingRequest> takeAll();

    // Requests a responder holds now (for least-outstanding balancing).
    int outstanding(quint64 responder) const { return m_responders.value(responder).count; }
    // Requests a requester waits for now (for the per-connection limit).
    int pendingOf(quint64 requester) const { return m_requesters.value(requester).count; }
    std::optional<qint64> nextDeadline() const;
    qsizetype size() const { return m_entries.size(); }
    QList<PendingRequest> all() const;

    // The number a token spells, or 0 when it is not one this tracker makes
    // (exactly "mm-" and base 36 in lower case without leading zeros).
    static quint64 numberOf(QByteArrayView token);

private:
    // Links to the neighbours on one peer's list (0: none).
    struct Links
    {
        quint64 previous = 0;
        quint64 next = 0;
    };
    struct Entry
    {
        PendingRequest request;
        Links byRequester; // unused once orphaned (request.requester == 0)
        Links byResponder;
    };
    struct Peer
    {
        quint64 first = 0; // the newest request
        int count = 0;
    };
    using LinksOf = Links Entry::*;

    void link(QHash<quint64, Peer> &peers, quint64 peer, LinksOf links, quint64 number);
    void unlink(QHash<quint64, Peer> &peers, quint64 peer, LinksOf links, quint64 number);
    PendingRequest remove(QHash<quint64, Entry>::iterator it);

    QHash<quint64, Entry> m_entries; // by the token's number
    // Earliest deadline first; ties in the order the requests were made.
    std::set<std::pair<qint64, quint64>> m_deadlines;
    QHash<quint64, Peer> m_requesters;
    QHash<quint64, Peer> m_responders;
    quint64 m_counter = 0;
};

} // namespace Middleman
