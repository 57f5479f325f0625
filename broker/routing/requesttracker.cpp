#include "requesttracker.h"

#include <algorithm>
#include <limits>

namespace Middleman {

namespace {

constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";

QByteArray tokenFor(quint64 number)
{
    char text[3 + 13]; // "mm-" and up to 13 base-36 digits for 64 bits
    char *end = text + sizeof text;
    char *at = end;
    do {
        *--at = kDigits[number % 36];
        number /= 36;
    } while (number != 0);
    *--at = '-';
    *--at = 'm';
    *--at = 'm';
    return QByteArray(at, end - at);
}

} // namespace

quint64 RequestTracker::numberOf(QByteArrayView token)
{
    if (token.size() < 4 || token.size() > 16 || !token.startsWith("mm-") || token[3] == '0')
        return 0;
    quint64 number = 0;
    for (qsizetype i = 3; i < token.size(); ++i) {
        const char c = token[i];
        quint64 digit;
        if (c >= '0' && c <= '9')
            digit = quint64(c - '0');
        else if (c >= 'a' && c <= 'z')
            digit = quint64(c - 'a' + 10);
        else
            return 0;
        if (number > (std::numeric_limits<quint64>::max() - digit) / 36)
            return 0;
        number = number * 36 + digit;
    }
    return number;
}

void RequestTracker::link(QHash<quint64, Peer> &peers, quint64 peer, LinksOf links, quint64 number)
{
    Peer &list = peers[peer];
    ((*m_entries.find(number)).*links).next = list.first;
    if (list.first != 0)
        ((*m_entries.find(list.first)).*links).previous = number;
    list.first = number;
    ++list.count;
}

void RequestTracker::unlink(QHash<quint64, Peer> &peers, quint64 peer, LinksOf links, quint64 number)
{
    const auto list = peers.find(peer);
    if (list == peers.end())
        return;
    const Links own = (*m_entries.find(number)).*links;
    if (own.previous != 0)
        ((*m_entries.find(own.previous)).*links).next = own.next;
    else
        list->first = own.next;
    if (own.next != 0)
        ((*m_entries.find(own.next)).*links).previous = own.previous;
    if (--list->count <= 0)
        peers.erase(list);
}

QByteArray RequestTracker::add(quint64 requester, const QByteArray &reqId, quint64 responder,
                               const QByteArray &target, qint64 nowMs, qint64 timeoutMs)
{
    const quint64 number = ++m_counter;
    QByteArray token = tokenFor(number);
    Entry entry;
    entry.request = PendingRequest{token, requester, reqId, responder, target, nowMs, nowMs + timeoutMs};
    m_deadlines.emplace(entry.request.deadlineMs, number);
    m_entries.insert(number, std::move(entry));
    link(m_requesters, requester, &Entry::byRequester, number);
    link(m_responders, responder, &Entry::byResponder, number);
    return token;
}

const PendingRequest *RequestTracker::find(QByteArrayView token) const
{
    const auto it = m_entries.constFind(numberOf(token));
    return it == m_entries.cend() ? nullptr : &it->request;
}

PendingRequest RequestTracker::remove(QHash<quint64, Entry>::iterator it)
{
    const quint64 number = it.key();
    const PendingRequest &request = it->request;
    m_deadlines.erase({request.deadlineMs, number});
    unlink(m_responders, request.responder, &Entry::byResponder, number);
    if (request.requester != 0)
        unlink(m_requesters, request.requester, &Entry::byRequester, number);
    // Unlinking looked up neighbours only, so `it` still points at the entry.
    PendingRequest taken = std::move(it->request);
    m_entries.erase(it);
    return taken;
}

std::optional<PendingRequest> RequestTracker::take(QByteArrayView token)
{
    const auto it = m_entries.find(numberOf(token));
    if (it == m_entries.end())
        return std::nullopt;
    return remove(it);
}

QList<PendingRequest> RequestTracker::takeExpired(qint64 nowMs)
{
    QList<PendingRequest> expired;
    while (!m_deadlines.empty() && m_deadlines.begin()->first <= nowMs) {
        const auto it = m_entries.find(m_deadlines.begin()->second);
        if (it == m_entries.end())
            m_deadlines.erase(m_deadlines.begin());
        else
            expired.append(remove(it));
    }
    return expired;
}

QList<PendingRequest> RequestTracker::takeByResponder(quint64 responder)
{
    QList<quint64> numbers;
    for (quint64 number = m_responders.value(responder).first; number != 0;
         number = m_entries.find(number)->byResponder.next)
        numbers.append(number);
    QList<PendingRequest> taken;
    taken.reserve(numbers.size());
    // The list runs newest first; the answers go in the order the requests were
    // made (by start time, then by number).
    for (auto n = numbers.crbegin(); n != numbers.crend(); ++n)
        taken.append(remove(m_entries.find(*n)));
    std::stable_sort(taken.begin(), taken.end(), [](const PendingRequest &a, const PendingRequest &b) {
        return a.startedMs < b.startedMs;
    });
    return taken;
}

qsizetype RequestTracker::orphan(quint64 requester)
{
    const Peer peer = m_requesters.take(requester);
    for (quint64 number = peer.first; number != 0;) {
        Entry &entry = *m_entries.find(number);
        entry.request.requester = 0;
        number = std::exchange(entry.byRequester, Links{}).next;
    }
    return peer.count;
}

QList<PendingRequest> RequestTracker::all() const
{
    QList<PendingRequest> requests;
    requests.reserve(m_entries.size());
    for (const Entry &entry : m_entries)
        requests.append(entry.request);
    return requests;
}

QList<PendingRequest> RequestTracker::takeAll()
{
    QList<PendingRequest> requests = all();
    m_entries.clear();
    m_deadlines.clear();
    m_requesters.clear();
    m_responders.clear();
    return requests;
}

std::optional<qint64> RequestTracker::nextDeadline() const
{
    if (m_deadlines.empty())
        return std::nullopt;
    return m_deadlines.begin()->first;
}

} // namespace Middleman
