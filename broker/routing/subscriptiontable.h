#pragma once
// SubscriptionTable: who is subscribed to what (docs/protocol.md §4.1), indexed by token
// for delivery. Plain class; lives on the broker's thread.

#include "patterntree.h"
#include "targettrie.h"

#include <QByteArray>
#include <QHash>
#include <QList>
#include <QSet>

namespace Middleman {

class SubscriptionTable
{
public:
    enum class AddResult { Added, Exists, LimitReached };

    AddResult add(quint64 connection, const QByteArray &pattern, int limit);
    bool remove(quint64 connection, const QByteArray &pattern);
    // Removes every subscription of a connection.
    void removeAll(quint64 connection);

    // Connections subscribed to a pattern matching `literal`, each once, in id order.
    // Results are cached per target; a change drops only the targets it can change.
    QList<quint64> match(const QByteArray &literal) const;
    bool isCached(const QByteArray &literal) const;

    QList<QByteArray> patternsOf(quint64 connection) const;
    qsizetype countOf(quint64 connection) const;
    // Number of (connection, pattern) pairs.
    qsizetype size() const { return m_tree.size(); }

private:
    // Drops the cached results a subscription to `pattern` can change.
    void forget(const QByteArray &pattern) const;

    PatternTree<quint64> m_tree;
    QHash<quint64, QSet<QByteArray>> m_byConnection;
    mutable QHash<QByteArray, QList<quint64>> m_cache;
    mutable TargetTrie m_cachedTargets; // the keys of m_cache, by token
};

} // namespace Middleman
