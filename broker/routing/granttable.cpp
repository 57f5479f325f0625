#include "granttable.h"

#include "target.h"

namespace Middleman {

GrantTable::PerKind *GrantTable::table(Command kind)
{
    return const_cast<PerKind *>(std::as_const(*this).table(kind));
}

const GrantTable::PerKind *GrantTable::table(Command kind) const
{
    switch (kind) {
    case Command::Epub: return &m_epub;
    case Command::Esub: return &m_esub;
    case Command::Ereq: return &m_ereq;
    default: return nullptr;
    }
}

bool GrantTable::add(Command kind, const QByteArray &pattern, quint64 granter)
{
    PerKind *t = table(kind);
    Q_ASSERT(t);
    if (!t || !t->tree.insert(pattern, granter))
        return false;
    t->granters[pattern].insert(granter);
    m_byGranter[granter].append(Grant{kind, pattern});
    return true;
}

QList<GrantTable::Grant> GrantTable::removeGranter(quint64 granter)
{
    QList<Grant> gone;
    const QList<Grant> held = m_byGranter.take(granter);
    for (const Grant &grant : held) {
        PerKind *t = table(grant.kind);
        t->tree.remove(grant.pattern, granter);
        auto it = t->granters.find(grant.pattern);
        if (it != t->granters.end()) {
            it->remove(granter);
            if (it->isEmpty()) {
                t->granters.erase(it);
                gone.append(grant);
            }
        }
    }
    return gone;
}

bool GrantTable::allows(Command kind, QByteArrayView literal) const
{
    const PerKind *t = table(kind);
    bool found = false;
    if (t)
        t->tree.match(literal, [&found](quint64) { found = true; });
    return found;
}

bool GrantTable::covers(Command kind, QByteArrayView pattern) const
{
    if (!Target::hasWildcard(pattern))
        return allows(kind, pattern);
    const PerKind *t = table(kind);
    if (!t)
        return false;
    for (auto it = t->granters.cbegin(); it != t->granters.cend(); ++it) {
        if (Target::covers(it.key(), pattern))
            return true;
    }
    return false;
}

QList<quint64> GrantTable::granters(Command kind, const QByteArray &pattern) const
{
    const PerKind *t = table(kind);
    return t ? t->granters.value(pattern).values() : QList<quint64>();
}

QList<GrantTable::Grant> GrantTable::grantsOf(quint64 granter) const
{
    return m_byGranter.value(granter);
}

QList<GrantTable::Grant> GrantTable::all() const
{
    QList<Grant> out;
    for (Command kind : {Command::Epub, Command::Esub, Command::Ereq}) {
        const PerKind *t = table(kind);
        for (auto it = t->granters.cbegin(); it != t->granters.cend(); ++it)
            out.append(Grant{kind, it.key()});
    }
    return out;
}

} // namespace Middleman
