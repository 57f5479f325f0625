#include "keybackoff.h"

namespace Middleman {

KeyBackoff::KeyBackoff(int freeFailures, int baseMs, int maxMs, qsizetype maxTracked)
    : m_freeFailures(freeFailures)
    , m_baseMs(baseMs)
    , m_maxMs(qMax(baseMs, maxMs))
    , m_maxTracked(maxTracked)
{
}

qint64 KeyBackoff::blockedFor(const QHostAddress &address, qint64 nowMs) const
{
    const auto it = m_entries.constFind(address);
    if (it == m_entries.cend())
        return 0;
    return qMax<qint64>(0, it->blockedUntilMs - nowMs);
}

qint64 KeyBackoff::recordFailure(const QHostAddress &address, qint64 nowMs)
{
    if (!enabled())
        return 0;
    auto it = m_entries.find(address);
    if (it == m_entries.end()) {
        // Bounded: an attacker spread over many addresses cannot grow the table
        // without end. Past the bound, new addresses go untracked until a prune.
        if (m_entries.size() >= m_maxTracked) {
            prune(nowMs);
            if (m_entries.size() >= m_maxTracked)
                return 0;
        }
        it = m_entries.insert(address, Entry{});
    } else if (expired(*it, nowMs)) {
        *it = Entry{};
    }
    ++it->failures;
    it->lastFailureMs = nowMs;
    const int over = it->failures - m_freeFailures;
    if (over <= 0)
        return 0;
    // baseMs << (over - 1), capped; the shift is capped first so it cannot overflow.
    const qint64 blockMs = qMin(m_maxMs, m_baseMs << qMin(over - 1, 40));
    it->blockedUntilMs = nowMs + blockMs;
    return blockMs;
}

void KeyBackoff::prune(qint64 nowMs)
{
    m_entries.removeIf([this, nowMs](const auto &it) { return expired(it.value(), nowMs); });
}

bool KeyBackoff::expired(const Entry &entry, qint64 nowMs) const
{
    // Quiet for the cap since the later of its last bad key and the end of its block.
    return nowMs - qMax(entry.lastFailureMs, entry.blockedUntilMs) >= m_maxMs;
}

} // namespace Middleman
