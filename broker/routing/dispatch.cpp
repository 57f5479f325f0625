// Broker, dispatch: a frame's messages, each paced or refused by the rate
// limit (§7) and routed by command: SUB, UNSUB, PUB, grants, OPT; delivery
// and batches; ERR and status replies.

#include "broker.h"

#include "clock.h"
#include "plainserver.h"
#include "session.h"
#include "status.h"

#include <QMetaMethod>

#include <limits>
#include <utility>

namespace Middleman {

void Broker::onFrame(quint64 id, const QByteArray &frame, bool binary)
{
    Session *session = m_sessions.value(id);
    if (!session)
        return;
    if (session->state() == Session::State::Handshaking) {
        handleKey(session, frame);
        return;
    }
    routeFrame(session, frame, binary, 0);
}

void Broker::resumeHeldInput()
{
    const qint64 nowMs = now();
    while (!m_resumes.empty() && m_resumes.begin()->first <= nowMs) {
        const auto [atMs, id] = *m_resumes.begin();
        m_resumes.erase(m_resumes.begin());
        // Passed over: a session gone, closing (its input read on for its
        // close frame) or held again since with a time of its own.
        Session *session = openSession(id);
        if (!session || session->resumeAtMs() != atMs)
            continue;
        const Session::HeldFrame held = session->takeHeldFrame();
        if (routeFrame(session, held.frame, held.binary, held.offset))
            session->resumeInput();
    }
    scheduleResume();
}

void Broker::scheduleResume()
{
    if (m_resumes.empty()) {
        m_resumeTimer.stop();
        return;
    }
    const qint64 waitMs = qMax<qint64>(0, m_resumes.begin()->first - now());
    if (!m_resumeTimer.isActive() || m_resumeTimer.remainingTime() > waitMs)
        m_resumeTimer.start(int(qMin<qint64>(waitMs, std::numeric_limits<int>::max())));
}

bool Broker::routeFrame(Session *session, const QByteArray &frame, bool binary, qsizetype offset)
{
    // Section 3.6: one frame, one or more whole messages.
    FrameReader reader(QByteArrayView(frame).sliced(offset), m_config.codec, binary);
    Message message;
    ParseError error;
    // One clock reading per frame for the rate limit (section 7).
    const qint64 frameMs = session->rateLimited() ? now() : 0;
    while (session->state() == Session::State::Open) {
        const FrameReader::Item item = reader.next(message, error);
        if (item == FrameReader::Item::End)
            return true;
        const bool overRate = !session->takeToken(frameMs);
        if (overRate && session->rateLimitAction() == RateLimitAction::Pace) {
            // Section 7: this message and the rest wait, unread, for tokens.
            if (!session->inputHeld())
                ++m_stats.inputPauses;
            m_resumes.emplace(session->holdInput(frame, binary, offset + reader.messageStart(), frameMs),
                              session->id());
            scheduleResume();
            return false;
        }
        session->countMessageIn();
        ++m_stats.messagesIn;
        const bool parsed = item == FrameReader::Item::Message;
        if (parsed && tracing())
            trace(session->id(), TraceEvent::Direction::In, message);
        if (overRate) {
            // Section 7: a RES is never refused for the rate, since refusing an
            // answer would make its request's 504 certain; one that answers
            // nothing gets its 404 as before, at the cost a 429 would have.
            if (parsed && message.command == Command::Res) {
                ++m_stats.answersOverRate;
            } else {
                refuseRate(session, parsed ? ParseError{Status::LimitReached, {}, commandName(message.command).toByteArray(),
                                                        message.target, message.header(HeaderName::ReqId)}
                                           : error);
                continue;
            }
        }
        if (parsed)
            dispatch(session, message);
        else
            sendError(session, error);
    }
    return true;
}

void Broker::refuseRate(Session *session, ParseError error)
{
    // Echoes what was read of the message, like any other ERR.
    const RoleLimits &limits = m_config.limits(session->role());
    ++m_stats.rateLimited;
    error.status = Status::LimitReached;
    error.reason = "message rate limit exceeded (" + QByteArray::number(limits.maxMessagesPerSecond)
        + " per second, burst " + QByteArray::number(limits.messageBurst) + ")";
    sendError(session, error);
}

void Broker::dispatch(Session *session, Message &message)
{
    switch (message.command) {
    case Command::Sub: return handleSub(session, message);
    case Command::Unsub: return handleUnsub(session, message);
    case Command::Pub: return handlePub(session, message);
    case Command::Req: return handleReq(session, message);
    case Command::Res: return handleRes(session, message);
    case Command::Epub:
    case Command::Esub:
    case Command::Ereq: return handleGrant(session, message);
    case Command::Opt: return handleOpt(session, message);
    case Command::Err: break; // refused by validateMessage()
    }
}

// --- Commands --------------------------------------------------------------

void Broker::handleSub(Session *session, const Message &message)
{
    // Section 4.1: a client needs an ESUB grant covering the whole pattern.
    if (session->role() == Role::Client && !m_grants.covers(Command::Esub, message.target)) {
        sendError(session, Status::NotAllowed, "no ESUB grant covers " + message.target, message.command, message.target,
                  message.header(HeaderName::ReqId));
        return;
    }
    const int maxSubscriptions = m_config.limits(session->role()).maxSubscriptions;
    switch (m_subscriptions.add(session->id(), message.target, maxSubscriptions)) {
    case SubscriptionTable::AddResult::Added:
        Q_EMIT subscriptionAdded(session->id(), message.target);
        break;
    case SubscriptionTable::AddResult::Exists:
        break; // repeating a SUB changes nothing
    case SubscriptionTable::AddResult::LimitReached:
        sendError(session, Status::LimitReached,
                  "subscription limit reached (" + QByteArray::number(maxSubscriptions) + ")",
                  message.command, message.target, message.header(HeaderName::ReqId));
        break;
    }
}

void Broker::handleUnsub(Session *session, const Message &message)
{
    // Removes exactly that subscription; unknown ones are ignored, like a repeated SUB.
    if (m_subscriptions.remove(session->id(), message.target))
        Q_EMIT subscriptionRemoved(session->id(), message.target);
}

void Broker::handlePub(Session *session, Message &message)
{
    if (session->role() == Role::Client && !m_grants.allows(Command::Epub, message.target)) {
        sendError(session, Status::NotAllowed, "no EPUB grant for " + message.target, message.command, message.target,
                  message.header(HeaderName::ReqId));
        return;
    }
    ++m_stats.publishes;
    const QList<quint64> ids = m_subscriptions.match(message.target);
    if (ids.isEmpty())
        ++m_stats.publishesUnrouted;

    // Section 5: Client-Id is reserved; clients get the message without it and
    // services with the sender's id. Each form is serialised once and shared.
    message.removeHeader(HeaderName::ClientId);
    std::optional<OutFrame> forClients;
    std::optional<OutFrame> forServices;
    int deliveries = 0;
    for (const quint64 id : ids) {
        Session *receiver = openSession(id);
        if (!receiver) {
            ++m_stats.deliveriesDropped; // closing: section 6, nothing lost silently
            continue;
        }
        if (receiver->role() == Role::Service) {
            if (!forServices) {
                Message copy = message;
                copy.headers.append(Header{staticBytes(HeaderName::ClientId), session->clientId()});
                forServices = OutFrame::fromBytes(serialize(copy), message.binary);
            }
            deliveries += deliver(receiver, *forServices);
        } else {
            if (!forClients)
                forClients = OutFrame::fromBytes(serialize(message), message.binary);
            deliveries += deliver(receiver, *forClients);
        }
    }
    if (isSignalConnected(QMetaMethod::fromSignal(&Broker::messageRouted)))
        Q_EMIT messageRouted(session->id(), Command::Pub, message.target, deliveries);
}

void Broker::handleGrant(Session *session, const Message &message)
{
    // Section 4.5: grants come from services only.
    if (session->role() != Role::Service) {
        sendError(session, Status::NotAllowed, "only services grant", message.command, message.target,
                  message.header(HeaderName::ReqId));
        return;
    }
    if (m_grants.add(message.command, message.target, session->id()))
        Q_EMIT grantAdded(message.command, message.target, session->id());
}

void Broker::handleOpt(Session *session, const Message &message)
{
    // Section 4.7: every option is checked before any is applied.
    std::optional<bool> batch;
    for (const Header &header : message.headers) {
        if (headerNameEquals(header.name, HeaderName::ReqId))
            continue;
        if (headerNameEquals(header.name, HeaderName::Batch)) {
            const QByteArray value = header.value.toLower();
            if (value != "on" && value != "off") {
                sendError(session, Status::Malformed, "Batch must be on or off", message.command, message.target,
                          message.header(HeaderName::ReqId));
                return;
            }
            batch = value == "on";
            continue;
        }
        sendError(session, Status::Malformed, "unknown option '" + quoteInReason(header.name) + "'", message.command,
                  message.target, message.header(HeaderName::ReqId));
        return;
    }
    if (batch)
        session->setBatching(*batch);
    sendStatus(session->id(), message.target, message.header(HeaderName::ReqId), Status::Ok, QByteArray());
}

// --- Output ----------------------------------------------------------------

bool Broker::deliver(Session *session, const OutFrame &frame)
{
    if (session->send(frame)) {
        ++m_stats.messagesOut;
        return true;
    }
    ++m_stats.deliveriesDropped;
    return false;
}

void Broker::scheduleBatchFlush(quint64 id)
{
    m_batchesDue.append(id);
    // At the end of the turn, after this turn's sockets and timers: every frame
    // read in this turn is routed first.
    m_batchFlush.schedule();
}

void Broker::flushBatches()
{
    m_batchFlush.cancel();
    m_batchesFlushing.swap(m_batchesDue);
    for (const quint64 id : std::as_const(m_batchesFlushing)) {
        if (Session *session = m_sessions.value(id))
            session->flushBatch();
    }
    m_batchesFlushing.clear();
    // The batches just written are sent in this turn too.
    if (m_plainServer)
        m_plainServer->coalescer()->flush();
}

void Broker::sendError(Session *session, int status, const QByteArray &reason, Command command,
                       const QByteArray &target, const QByteArray &reqId)
{
    ParseError error{status, reason, commandName(command).toByteArray(), target, reqId};
    sendError(session, error);
}

void Broker::sendError(Session *session, const ParseError &error)
{
    Message err;
    err.command = Command::Err;
    err.target = error.target.isEmpty() ? QByteArray("-") : error.target;
    if (!Target::checkSyntax(err.target, m_config.codec.maxTargetLength))
        err.target = "-";
    err.headers.append(Header{HeaderName::Status.toByteArray(), QByteArray::number(error.status)});
    if (!error.reqId.isEmpty())
        err.headers.append(Header{HeaderName::ReqId.toByteArray(), echoControlsReplaced(error.reqId)});
    if (!error.command.isEmpty())
        err.headers.append(Header{HeaderName::Command.toByteArray(), error.command});
    err.body = error.reason;
    ++m_stats.errorsSent;
    if (error.status == Status::TooLarge)
        ++m_stats.messagesTooLarge;
    else if (error.status == Status::LimitReached)
        ++m_stats.limitRefusals;
    if (tracing())
        trace(session->id(), TraceEvent::Direction::Out, err);
    deliver(session, OutFrame::fromMixedBytes(serialize(err), false));
}

void Broker::sendStatus(quint64 id, const QByteArray &target, const QByteArray &reqId, int status,
                        const QByteArray &reason)
{
    Session *session = openSession(id);
    if (!session) {
        ++m_stats.deliveriesDropped;
        return;
    }
    Message res;
    res.command = Command::Res;
    res.target = target;
    if (!reqId.isEmpty())
        res.headers.append(Header{HeaderName::ReqId.toByteArray(), reqId});
    res.headers.append(Header{HeaderName::Status.toByteArray(), QByteArray::number(status)});
    res.body = reason;
    if (tracing())
        trace(id, TraceEvent::Direction::Out, res);
    deliver(session, OutFrame::fromMixedBytes(serialize(res), false));
}

// --- Grants ----------------------------------------------------------------

void Broker::revokeUncoveredSubscriptions()
{
    // Section 4.5: a client subscription no grant covers any more is removed, and
    // the client is told with ERR 403.
    // A copy: sending an ERR may close a slow consumer, which changes m_sessions.
    const QList<Session *> sessions = m_sessions.values();
    for (Session *session : sessions) {
        if (session->role() != Role::Client)
            continue;
        const QList<QByteArray> patterns = m_subscriptions.patternsOf(session->id());
        for (const QByteArray &pattern : patterns) {
            if (m_grants.covers(Command::Esub, pattern))
                continue;
            m_subscriptions.remove(session->id(), pattern);
            ++m_stats.subscriptionsRevoked;
            if (session->state() == Session::State::Open)
                sendError(session, Status::NotAllowed, "the grant for this subscription was withdrawn", Command::Sub, pattern,
                          QByteArray());
            Q_EMIT subscriptionRemoved(session->id(), pattern);
        }
    }
}

} // namespace Middleman
