#include "keystore.h"

#include <QCryptographicHash>
#include <QRandomGenerator>

namespace Middleman {

namespace {

constexpr QByteArrayView kHashPrefix = "sha256:";

QByteArray sha256(QByteArrayView data)
{
    return QCryptographicHash::hash(data, QCryptographicHash::Sha256);
}

// Digest the stored form of a key: the hex of a "sha256:" key, else a hash of it.
QByteArray storedDigest(const QByteArray &key)
{
    if (key.startsWith(kHashPrefix))
        return QByteArray::fromHex(key.sliced(kHashPrefix.size()));
    return sha256(key);
}

bool constantTimeEquals(const QByteArray &a, const QByteArray &b)
{
    if (a.size() != b.size())
        return false;
    unsigned char diff = 0;
    for (qsizetype i = 0; i < a.size(); ++i)
        diff |= static_cast<unsigned char>(a.at(i) ^ b.at(i));
    return diff == 0;
}

} // namespace

void KeyStore::add(Role role, const KeyConfig &key)
{
    m_entries.append(Entry{storedDigest(key.key), role, key.name});
}

std::optional<KeyStore::Match> KeyStore::lookup(QByteArrayView presented) const
{
    const QByteArray digest = sha256(presented.trimmed());
    const Entry *found = nullptr;
    for (const Entry &entry : m_entries) {
        // No early exit: every entry is compared.
        if (constantTimeEquals(entry.digest, digest) && !found)
            found = &entry;
    }
    if (!found || presented.trimmed().isEmpty())
        return std::nullopt;
    return Match{found->role, found->name};
}

bool KeyStore::checkKey(const QByteArray &key, QString *why)
{
    auto fail = [why](const char *text) {
        if (why)
            *why = QString::fromLatin1(text);
        return false;
    };
    if (key.trimmed().isEmpty())
        return fail("empty key");
    for (const char c : key) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f)
            return fail("key contains white space or a control character");
    }
    if (key.startsWith(kHashPrefix)) {
        const QByteArray hex = key.sliced(kHashPrefix.size());
        if (hex.size() != 64)
            return fail("a sha256: key needs exactly 64 hex digits");
        for (const char c : hex) {
            if (!std::isxdigit(static_cast<unsigned char>(c)))
                return fail("a sha256: key needs exactly 64 hex digits");
        }
    }
    return true;
}

QByteArray KeyStore::hashedForm(QByteArrayView key)
{
    return kHashPrefix.toByteArray() + sha256(key.trimmed()).toHex();
}

QByteArray KeyStore::generateKey()
{
    QByteArray bytes(32, Qt::Uninitialized);
    QRandomGenerator::system()->fillRange(reinterpret_cast<quint32 *>(bytes.data()), bytes.size() / 4);
    return bytes.toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
}

} // namespace Middleman
