#include "requesttracker.h"

namespace Middleman {

QByteArray RequestTracker::add(quint64 requester, const QByteArray &reqId, quint64 responder,
                               const QByteArray &target, qint64 nowMs, qint64 timeoutMs)
{
    QByteArray token = "mm-" + QByteArray::number(++m_counter, 36);
    PendingRequest request{token, requester, reqId, responder, target, nowMs, nowMs + timeoutMs};
    m_deadlines.emplace(request.deadlineMs, token);
    ++m_outstanding[responder];
    m_byRequester[requester].insert(token);
    m_byResponder[responder].insert(token);
    m_byToken.insert(token, std::move(request));
    return token;
}

const PendingRequest *RequestTracker::find(QByteArrayView token) const
{
    auto it = m_byToken.constFind(token.toByteArray());
    return it == m_byToken.cend() ? nullptr : &*it;
}

std::optional<PendingRequest> RequestTracker::take(const QByteArray &token)
{
    auto it = m_byToken.find(token);
    if (it == m_byToken.end())
        return std::nullopt;
    PendingRequest request = std::move(*it);
    m_byToken.erase(it);
    forget(request);
    return request;
}

void RequestTracker::forget(const PendingRequest &request)
{
    m_deadlines.erase({request.deadlineMs, request.token});
    auto out = m_outstanding.find(request.responder);
    if (out != m_outstanding.end() && --*out <= 0)
        m_outstanding.erase(out);
    auto byResponder = m_byResponder.find(request.responder);
    if (byResponder != m_byResponder.end()) {
        byResponder->remove(request.token);
        if (byResponder->isEmpty())
            m_byResponder.erase(byResponder);
    }
    if (request.requester != 0) {
        auto byRequester = m_byRequester.find(request.requester);
        if (byRequester != m_byRequester.end()) {
            byRequester->remove(request.token);
            if (byRequester->isEmpty())
                m_byRequester.erase(byRequester);
        }
    }
}

QList<PendingRequest> RequestTracker::takeExpired(qint64 nowMs)
{
    QList<PendingRequest> expired;
    while (!m_deadlines.empty() && m_deadlines.begin()->first <= nowMs) {
        const QByteArray token = m_deadlines.begin()->second;
        if (std::optional<PendingRequest> request = take(token))
            expired.append(std::move(*request));
        else
            m_deadlines.erase(m_deadlines.begin());
    }
    return expired;
}

QList<PendingRequest> RequestTracker::takeByResponder(quint64 responder)
{
    QList<PendingRequest> taken;
    const QSet<QByteArray> tokens = m_byResponder.value(responder);
    for (const QByteArray &token : tokens) {
        if (std::optional<PendingRequest> request = take(token))
            taken.append(std::move(*request));
    }
    // In the order the requests were made.
    std::sort(taken.begin(), taken.end(), [](const PendingRequest &a, const PendingRequest &b) {
        return DeadlineOrder()({a.startedMs, a.token}, {b.startedMs, b.token});
    });
    return taken;
}

qsizetype RequestTracker::orphan(quint64 requester)
{
    const QSet<QByteArray> tokens = m_byRequester.take(requester);
    for (const QByteArray &token : tokens) {
        auto it = m_byToken.find(token);
        if (it != m_byToken.end())
            it->requester = 0;
    }
    return tokens.size();
}

QList<PendingRequest> RequestTracker::takeAll()
{
    QList<PendingRequest> all = m_byToken.values();
    m_byToken.clear();
    m_deadlines.clear();
    m_outstanding.clear();
    m_byRequester.clear();
    m_byResponder.clear();
    return all;
}

std::optional<qint64> RequestTracker::nextDeadline() const
{
    if (m_deadlines.empty())
        return std::nullopt;
    return m_deadlines.begin()->first;
}

} // namespace Middleman
