#pragma once
// GrantTable: EPUB/ESUB/EREQ grants and who holds them (docs/protocol.md §4.5).
// Plain class; lives on the broker's thread.

#include "message.h"
#include "patterntree.h"

#include <QByteArray>
#include <QHash>
#include <QList>
#include <QSet>

namespace Middleman {

class GrantTable
{
public:
    // The granter id of grants from configuration; they never go away.
    static constexpr quint64 Permanent = 0;

    struct Grant
    {
        Command kind;
        QByteArray pattern;
        friend bool operator==(const Grant &, const Grant &) = default;
    };

    // kind is Epub, Esub or Ereq. True when this granter did not hold it yet.
    bool add(Command kind, const QByteArray &pattern, quint64 granter);
    // Drops every grant of a granter; returns the grants that nobody holds any more.
    QList<Grant> removeGranter(quint64 granter);

    // PUB and REQ by clients: does a grant of this kind match the literal target?
    bool allows(Command kind, QByteArrayView literal) const;
    // SUB by clients: does one grant of this kind cover the whole pattern?
    bool covers(Command kind, QByteArrayView pattern) const;

    QList<quint64> granters(Command kind, const QByteArray &pattern) const;
    QList<Grant> grantsOf(quint64 granter) const;
    QList<Grant> all() const;

private:
    struct PerKind
    {
        PatternTree<quint64> tree;
        QHash<QByteArray, QSet<quint64>> granters; // pattern -> granters
    };
    PerKind *table(Command kind);
    const PerKind *table(Command kind) const;

    PerKind m_epub;
    PerKind m_esub;
    PerKind m_ereq;
    QHash<quint64, QList<Grant>> m_byGranter;
};

} // namespace Middleman
