#pragma once
// KeyStore: the configured API keys, as SHA-256 digests, looked up in constant time
// (docs/protocol.md §2). Plain class; no thread affinity.

#include "brokerconfig.h"

#include <QByteArray>
#include <QList>
#include <QString>

#include <optional>

namespace Middleman {

class KeyStore
{
public:
    struct Match
    {
        Role role = Role::None;
        QString name;
    };

    void add(Role role, const KeyConfig &key);
    bool isEmpty() const { return m_entries.isEmpty(); }
    qsizetype size() const { return m_entries.size(); }

    // Compares the presented key with every stored one, always all of them and
    // always in constant time per comparison, so timing reveals nothing.
    std::optional<Match> lookup(QByteArrayView presented) const;

    // A key is usable if it is non-empty, has no white space inside, and a
    // "sha256:" form carries exactly 64 hex digits.
    static bool checkKey(const QByteArray &key, QString *why);
    // "sha256:<hex>" of a key: what to put in a config file instead of the key.
    static QByteArray hashedForm(QByteArrayView key);
    // A new random key (32 bytes from the system generator, base64url).
    static QByteArray generateKey();

private:
    struct Entry
    {
        QByteArray digest; // 32 bytes
        Role role;
        QString name;
    };
    QList<Entry> m_entries;
};

} // namespace Middleman
