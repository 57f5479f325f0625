#pragma once
// Value snapshots the broker hands out in signals and getters: ids and plain data,
// never engine pointers, so observers (the console, tests) never depend on a
// session's lifetime.

#include "brokerconfig.h"
#include "message.h"

#include <QByteArray>
#include <QDateTime>
#include <QHostAddress>
#include <QMetaType>
#include <QString>

namespace Middleman {

struct PeerInfo
{
    quint64 id = 0;
    Role role = Role::None;
    QString keyName;
    QByteArray clientId; // what services see in Client-Id (docs/protocol.md §5)
    QHostAddress address;
    quint16 port = 0;
    QDateTime connectedAt;
    // Counters at the time of the snapshot.
    quint64 messagesIn = 0;
    quint64 messagesOut = 0;
    quint64 bytesIn = 0;
    quint64 bytesOut = 0;
    qint64 bytesQueued = 0;
    int subscriptions = 0;
    int pendingRequests = 0; // requests this peer waits for
    quint64 inputPauses = 0; // times its input was held for its message rate
};

struct RequestInfo
{
    QByteArray token;      // the broker's ReqID
    QByteArray reqId;      // the requester's own ReqID
    QByteArray target;
    quint64 requester = 0; // 0 once the requester has gone
    quint64 responder = 0;
    qint64 ageMs = 0;
    qint64 remainingMs = 0;
    // The same moments on the monotonic clock of clock.h, so an observer can age
    // the request itself without asking again.
    qint64 startedMs = 0;
    qint64 deadlineMs = 0;
};

// One message as it crosses the broker, for monitors such as the console's
// traffic log (Broker::messageTraced): what a peer sent (In), or what the broker
// made itself and sent to a peer (Out: ERR, and RES with a 503, 504 or OPT's 200).
// Forwarded copies are not traced one by one: the In event stands for them.
struct TraceEvent
{
    enum class Direction : quint8 { In, Out };
    static constexpr qsizetype kBodyPreview = 512; // bytes kept of the body

    qint64 atMs = 0;    // wall clock, milliseconds since the epoch
    quint64 peer = 0;   // the sender (In) or the receiver (Out)
    Direction direction = Direction::In;
    Command command = Command::Pub;
    QByteArray target;
    QList<Header> headers;
    QByteArray body;    // at most kBodyPreview bytes
    qint64 bodySize = 0; // the whole body
    bool binary = false; // arrived in (or left as) a binary frame
};

// Counters since start (docs/protocol.md §10, decision 26: every drop and close is counted).
struct BrokerStats
{
    quint64 connectionsAccepted = 0; // WebSocket upgrades accepted
    quint64 handshakesCompleted = 0; // MM OK sent
    quint64 originsRefused = 0;      // closed 1008 at once: Origin not allowed
    quint64 connectionsRefused = 0;  // closed 1013 at once: too many in total or from the address;
                                     // or ws:// dropped before the upgrade: too many waiting for it
    quint64 tlsHandshakeFailures = 0; // wss:// only: TLS handshake failed or timed out (no WebSocket yet)
    quint64 upgradeTimeouts = 0;     // TCP (or TLS) connection closed: no WebSocket upgrade in time
    quint64 upgradesRefused = 0;     // answered with an HTTP error: not a valid WebSocket upgrade
    quint64 acceptPauses = 0;        // accepting paused after an accept error or near the open-file limit
    quint64 keysRefused = 0;         // closed 1008 for a bad key
    quint64 keyBackoffRefused = 0;   // closed 1013: the address is backing off after bad keys
    quint64 handshakeTimeouts = 0;   // closed 1008 for no key in time
    quint64 slowConsumersClosed = 0; // closed 1013
    quint64 idleClosed = 0;          // closed for missed pongs
    quint64 disconnects = 0;         // sessions gone, for any reason
    quint64 messagesIn = 0;          // protocol messages parsed
    quint64 messagesOut = 0;         // protocol messages queued to peers
    quint64 errorsSent = 0;          // ERR messages, all statuses
    quint64 messagesTooLarge = 0;    // ERR 413 (message, headers)
    quint64 limitRefusals = 0;       // ERR 429 (subscriptions, pending requests, message rate)
    quint64 rateLimited = 0;         // ERR 429 for the message rate (also in limitRefusals)
    quint64 inputPauses = 0;         // input held for the message rate (rate_limit_action "pace")
    quint64 answersOverRate = 0;     // RES over the rate delivered all the same ("refuse")
    quint64 protocolCloses = 0;      // the peer broke RFC 6455: closed 1002, 1007 or 1009
    quint64 publishes = 0;
    quint64 publishesUnrouted = 0;   // PUB that matched no subscriber
    quint64 deliveriesDropped = 0;   // deliveries refused by a full or closing queue
    quint64 requests = 0;            // REQ routed to a responder
    quint64 responses = 0;           // RES delivered to the requester
    quint64 requestsNoResponder = 0; // answered 503 at once
    quint64 requestsResponderGone = 0; // answered 503 when the responder left
    quint64 requestsTimedOut = 0;    // answered 504
    quint64 requestsShutdown = 0;    // answered 503 at shutdown
    quint64 requestsOrphaned = 0;    // requester left before the answer
    quint64 responsesDiscarded = 0;  // answers for requesters that had left
    quint64 responsesUnknown = 0;    // RES answered with ERR 404
    quint64 subscriptionsRevoked = 0; // removed because their last grant went
};

} // namespace Middleman

Q_DECLARE_METATYPE(Middleman::PeerInfo)
Q_DECLARE_METATYPE(Middleman::RequestInfo)
Q_DECLARE_METATYPE(Middleman::TraceEvent)
