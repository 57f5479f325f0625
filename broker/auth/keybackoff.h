#pragma once
// KeyBackoff: the back-off for failed API keys per remote address (docs/protocol.md
// §7). A plain class: time is passed in, so it is tested without a clock.
//
// An address may send `freeFailures` bad keys; every bad key after that blocks it
// for baseMs, doubled with each further one up to maxMs. While blocked, its new
// connections are refused before any key is looked at, so guessing goes no faster
// than the back-off allows. A good key does not reset the count (an attacker with
// one key of its own could otherwise reset it between guesses); an address that
// sent no bad key for maxMs after its block ended starts afresh.

#include <QHash>
#include <QHostAddress>

namespace Middleman {

class KeyBackoff
{
public:
    // baseMs 0: no back-off (failures are not even recorded).
    KeyBackoff(int freeFailures, int baseMs, int maxMs, qsizetype maxTracked = 65536);

    bool enabled() const { return m_baseMs > 0; }

    // Milliseconds the address must still wait; 0 when it may try a key.
    qint64 blockedFor(const QHostAddress &address, qint64 nowMs) const;
    // Records a bad key; returns the block it starts (0: still within the free failures).
    qint64 recordFailure(const QHostAddress &address, qint64 nowMs);
    // Forgets addresses quiet for maxMs since their block ended.
    void prune(qint64 nowMs);

    qsizetype trackedAddresses() const { return m_entries.size(); }

private:
    struct Entry
    {
        int failures = 0;
        qint64 lastFailureMs = 0;
        qint64 blockedUntilMs = 0;
    };
    bool expired(const Entry &entry, qint64 nowMs) const;

    const int m_freeFailures;
    const qint64 m_baseMs;
    const qint64 m_maxMs;
    const qsizetype m_maxTracked;
    QHash<QHostAddress, Entry> m_entries;
};

} // namespace Middleman
