// Broker, requests: REQ to one responder, RES back to its requester, and
// the 503s and 504s of requests that end otherwise (docs/protocol.md §4.3,
// §4.4).

#include "broker.h"

#include "clock.h"
#include "session.h"
#include "status.h"

#include <QMetaMethod>

#include <limits>
#include <utility>

namespace Middleman {

namespace {

// Caps on the round-robin memory: one entry per REQ target, cleared when full.
constexpr qsizetype kRoundRobinCapacity = 65536;

} // namespace

void Broker::handleReq(Session *session, Message &message)
{
    const QByteArray reqId = message.header(HeaderName::ReqId);
    if (session->role() == Role::Client && !m_grants.allows(Command::Ereq, message.target)) {
        sendError(session, Status::NotAllowed, "no EREQ grant for " + message.target, message.command, message.target, reqId);
        return;
    }
    const int maxPending = m_config.limits(session->role()).maxPendingRequests;
    if (m_requests.pendingOf(session->id()) >= maxPending) {
        sendError(session, Status::LimitReached, "pending request limit reached (" + QByteArray::number(maxPending) + ")",
                  message.command, message.target, reqId);
        return;
    }
    // Section 4.3: Timeout overrides the default, capped by configuration.
    qint64 timeoutMs = m_config.requestTimeoutMs;
    const QByteArray timeoutText = message.header(HeaderName::Timeout);
    if (!timeoutText.isNull()) {
        const std::optional<qint64> asked = parseTimeoutMs(timeoutText);
        if (!asked) {
            sendError(session, Status::Malformed, "invalid Timeout '" + quoteInReason(timeoutText, 32) + "'",
                      message.command, message.target, reqId);
            return;
        }
        timeoutMs = qMin<qint64>(*asked, m_config.maxRequestTimeoutMs);
    }
    Session *chosen = chooseResponder(message.target);
    if (!chosen) {
        ++m_stats.requestsNoResponder;
        sendStatus(session->id(), message.target, reqId, Status::Unavailable, "no responder for " + message.target);
        return;
    }

    const QByteArray token =
        m_requests.add(session->id(), reqId, chosen->id(), message.target, now(), timeoutMs);
    ++m_stats.requests;
    message.setHeader(HeaderName::ReqId, token);
    message.removeHeader(HeaderName::ClientId);
    message.headers.append(Header{staticBytes(HeaderName::ClientId), session->clientId()});
    deliver(chosen, OutFrame::fromBytes(serialize(message), message.binary));
    // If the delivery failed the responder is closing: its disconnect answers 503.
    scheduleExpiry();
    if (isSignalConnected(QMetaMethod::fromSignal(&Broker::requestStarted))) {
        if (const PendingRequest *pending = m_requests.find(token))
            Q_EMIT requestStarted(requestInfo(*pending));
    }
    if (isSignalConnected(QMetaMethod::fromSignal(&Broker::messageRouted)))
        Q_EMIT messageRouted(session->id(), Command::Req, message.target, 1);
}

Session *Broker::chooseResponder(const QByteArray &target)
{
    // Least outstanding first; ties in turn, per target: of the least loaded,
    // in id order, the first after the one chosen last time, else the first.
    // One hash of the target when it was seen before (hashing QByteArray keys
    // is a few percent of the broker's time at full request load).
    auto lastIt = m_lastResponder.find(target);
    const quint64 last = lastIt == m_lastResponder.end() ? 0 : *lastIt;
    int fewest = std::numeric_limits<int>::max();
    Session *firstTied = nullptr;
    Session *nextInTurn = nullptr;
    for (const quint64 id : m_subscriptions.match(target)) {
        Session *candidate = openSession(id);
        if (!candidate || candidate->role() != Role::Service)
            continue;
        const int load = m_requests.outstanding(id);
        if (load < fewest) {
            fewest = load;
            firstTied = candidate;
            nextInTurn = nullptr;
        } else if (load > fewest) {
            continue;
        }
        if (!nextInTurn && id > last)
            nextInTurn = candidate;
    }
    if (!firstTied)
        return nullptr;
    Session *chosen = nextInTurn ? nextInTurn : firstTied;
    if (lastIt != m_lastResponder.end()) {
        *lastIt = chosen->id();
    } else {
        if (m_lastResponder.size() >= kRoundRobinCapacity)
            m_lastResponder.clear();
        m_lastResponder.insert(target, chosen->id());
    }
    return chosen;
}

void Broker::handleRes(Session *session, Message &message)
{
    const QByteArray reqId = message.header(HeaderName::ReqId);
    if (session->role() != Role::Service) {
        sendError(session, Status::NotAllowed, "only services answer requests", message.command, message.target, reqId);
        return;
    }
    // Section 4.4: only the connection the request went to may answer, once.
    const PendingRequest *pending = m_requests.find(reqId);
    if (!pending || pending->responder != session->id()) {
        ++m_stats.responsesUnknown;
        sendError(session, Status::UnknownRequest, "unknown request " + quoteInReason(reqId), message.command, message.target, reqId);
        return;
    }
    const PendingRequest request = *m_requests.take(reqId);
    scheduleExpiry();
    Session *requester = request.requester ? openSession(request.requester) : nullptr;
    if (!requester) {
        ++m_stats.responsesDiscarded;
        Q_EMIT requestFinished(request.token, 0);
        return;
    }
    message.setHeader(HeaderName::ReqId, request.requesterReqId);
    message.removeHeader(HeaderName::ClientId);
    ++m_stats.responses;
    deliver(requester, OutFrame::fromMixedBytes(serialize(message), message.binary));
    bool ok = false;
    const int status = message.header(HeaderName::Status).toInt(&ok);
    Q_EMIT requestFinished(request.token, ok ? status : Status::Ok);
    if (isSignalConnected(QMetaMethod::fromSignal(&Broker::messageRouted)))
        Q_EMIT messageRouted(session->id(), Command::Res, message.target, 1);
}

// --- Requests --------------------------------------------------------------

void Broker::answerRequests(const QList<PendingRequest> &requests, int status, const QByteArray &reason,
                            quint64 *counter)
{
    for (const PendingRequest &request : requests) {
        if (request.requester != 0) {
            ++*counter;
            sendStatus(request.requester, request.target, request.requesterReqId, status, reason);
        }
        Q_EMIT requestFinished(request.token, request.requester ? status : 0);
    }
}

void Broker::onExpiry()
{
    m_expiryAt = -1;
    QList<PendingRequest> expired = m_requests.takeExpired(now());
    for (const PendingRequest &request : std::as_const(expired)) {
        const QByteArray reason =
            "request timed out after " + QByteArray::number(request.deadlineMs - request.startedMs) + " ms";
        answerRequests({request}, Status::TimedOut, reason, &m_stats.requestsTimedOut);
    }
    scheduleExpiry();
}

void Broker::scheduleExpiry()
{
    const std::optional<qint64> next = m_requests.nextDeadline();
    if (!next) {
        // A running timer is left to fire once and find nothing: stopping and
        // starting it around every request of a lone requester costs more.
        return;
    }
    if (m_expiryAt >= 0 && m_expiryAt <= *next && m_expiryTimer.isActive())
        return; // already due no later than needed
    m_expiryAt = *next;
    m_expiryTimer.start(int(qBound(qint64(0), *next - now(), qint64(std::numeric_limits<int>::max()))));
}

} // namespace Middleman
