// Broker, snapshots: the values the console and tests read (PeerInfo,
// RequestInfo) and the message trace, built only while someone listens.

#include "broker.h"

#include "clock.h"
#include "session.h"

#include <QMetaMethod>

#include <algorithm>

namespace Middleman {

void Broker::connectNotify(const QMetaMethod &signal)
{
    if (signal == QMetaMethod::fromSignal(&Broker::messageTraced))
        m_tracing.store(true, std::memory_order_relaxed);
}

void Broker::disconnectNotify(const QMetaMethod &signal)
{
    // An invalid method: everything was disconnected at once.
    static const QMetaMethod traced = QMetaMethod::fromSignal(&Broker::messageTraced);
    if (!signal.isValid() || signal == traced)
        m_tracing.store(isSignalConnected(traced), std::memory_order_relaxed);
}

void Broker::trace(quint64 peer, TraceEvent::Direction direction, const Message &message)
{
    TraceEvent event;
    event.atMs = QDateTime::currentMSecsSinceEpoch();
    event.peer = peer;
    event.direction = direction;
    event.command = message.command;
    event.target = message.target;
    event.headers = message.headers;
    event.bodySize = message.body.size();
    event.body = message.body.size() > TraceEvent::kBodyPreview ? message.body.left(TraceEvent::kBodyPreview)
                                                                : message.body;
    event.binary = message.binary;
    Q_EMIT messageTraced(event);
}

// --- Snapshots -------------------------------------------------------------

PeerInfo Broker::peerInfo(const Session *session) const
{
    PeerInfo info;
    info.id = session->id();
    info.role = session->role();
    info.keyName = session->keyName();
    info.clientId = session->clientId();
    info.address = session->peerAddress();
    info.port = session->peerPort();
    info.connectedAt = session->connectedAt();
    info.messagesIn = session->messagesIn();
    info.messagesOut = session->messagesOut();
    info.bytesIn = session->bytesIn();
    info.bytesOut = session->bytesOut();
    info.bytesQueued = session->bytesQueued();
    info.subscriptions = int(m_subscriptions.countOf(session->id()));
    info.pendingRequests = m_requests.pendingOf(session->id());
    info.inputPauses = session->inputPauses();
    return info;
}

QList<PeerInfo> Broker::peers() const
{
    QList<PeerInfo> out;
    out.reserve(m_sessions.size());
    for (const Session *session : m_sessions)
        out.append(peerInfo(session));
    std::sort(out.begin(), out.end(), [](const PeerInfo &a, const PeerInfo &b) { return a.id < b.id; });
    return out;
}

std::optional<PeerInfo> Broker::peer(quint64 id) const
{
    const Session *session = m_sessions.value(id);
    if (!session)
        return std::nullopt;
    return peerInfo(session);
}

QList<QByteArray> Broker::subscriptionsOf(quint64 id) const
{
    return m_subscriptions.patternsOf(id);
}

RequestInfo Broker::requestInfo(const PendingRequest &request) const
{
    const qint64 nowMs = now();
    return RequestInfo{request.token,      request.requesterReqId, request.target,
                       request.requester,  request.responder,      nowMs - request.startedMs,
                       qMax<qint64>(0, request.deadlineMs - nowMs), request.startedMs, request.deadlineMs};
}

QList<RequestInfo> Broker::pendingRequests() const
{
    QList<RequestInfo> out;
    const QList<PendingRequest> all = m_requests.all();
    for (const PendingRequest &request : all)
        out.append(requestInfo(request));
    return out;
}

} // namespace Middleman
