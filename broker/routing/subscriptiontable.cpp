#include "subscriptiontable.h"

#include <algorithm>

namespace Middleman {

namespace {
// Enough for the hot targets of a busy broker; cleared whole when full.
constexpr qsizetype kCacheCapacity = 4096;
}

SubscriptionTable::AddResult SubscriptionTable::add(quint64 connection, const QByteArray &pattern, int limit)
{
    QSet<QByteArray> &mine = m_byConnection[connection];
    if (mine.contains(pattern))
        return AddResult::Exists;
    if (mine.size() >= limit) {
        if (mine.isEmpty())
            m_byConnection.remove(connection);
        return AddResult::LimitReached;
    }
    mine.insert(pattern);
    m_tree.insert(pattern, connection);
    forget(pattern);
    return AddResult::Added;
}

bool SubscriptionTable::remove(quint64 connection, const QByteArray &pattern)
{
    auto it = m_byConnection.find(connection);
    if (it == m_byConnection.end() || !it->remove(pattern))
        return false;
    if (it->isEmpty())
        m_byConnection.erase(it);
    m_tree.remove(pattern, connection);
    forget(pattern);
    return true;
}

void SubscriptionTable::removeAll(quint64 connection)
{
    const QSet<QByteArray> patterns = m_byConnection.take(connection);
    for (const QByteArray &pattern : patterns) {
        m_tree.remove(pattern, connection);
        forget(pattern);
    }
}

QList<quint64> SubscriptionTable::match(const QByteArray &literal) const
{
    const auto cached = m_cache.constFind(literal);
    if (cached != m_cache.cend())
        return *cached;
    QList<quint64> ids;
    m_tree.match(literal, [&ids](quint64 id) { ids.append(id); });
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    if (m_cache.size() >= kCacheCapacity) {
        m_cache.clear();
        m_cachedTargets.clear();
    }
    m_cache.insert(literal, ids);
    m_cachedTargets.insert(literal);
    return ids;
}

QList<QByteArray> SubscriptionTable::patternsOf(quint64 connection) const
{
    QList<QByteArray> patterns = m_byConnection.value(connection).values();
    std::sort(patterns.begin(), patterns.end());
    return patterns;
}

qsizetype SubscriptionTable::countOf(quint64 connection) const
{
    return m_byConnection.value(connection).size();
}

bool SubscriptionTable::isCached(const QByteArray &literal) const
{
    return m_cache.contains(literal);
}

void SubscriptionTable::forget(const QByteArray &pattern) const
{
    // The cached targets the pattern matches, found by walking only the
    // branches it reaches; the rest stay cached.
    m_cachedTargets.takeMatching(pattern, [this](const QByteArray &target) { m_cache.remove(target); });
}

} // namespace Middleman
