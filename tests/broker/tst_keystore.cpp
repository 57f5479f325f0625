// Unit tests for KeyStore: API keys and their roles (docs/protocol.md §2),
// plain or as "sha256:<hex>", and the key checks run on configuration.

#include "keystore.h"

#include <QSet>
#include <QTest>

using namespace Middleman;

namespace {

// SHA-256 of "abc" (FIPS 180-2 test vector).
constexpr QByteArrayView kAbcHex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

KeyStore makeStore()
{
    KeyStore store;
    store.add(Role::Service, KeyConfig{QStringLiteral("svc-plain"), QByteArrayLiteral("s3cret-service")});
    store.add(Role::Client, KeyConfig{QStringLiteral("cli-hashed"), KeyStore::hashedForm("client-secret")});
    store.add(Role::Service,
              KeyConfig{QStringLiteral("svc-upper-hex"),
                        "sha256:" + KeyStore::hashedForm("upper-secret").sliced(7).toUpper()});
    store.add(Role::Client, KeyConfig{QStringLiteral("cli-plain"), QByteArrayLiteral("plain-client")});
    return store;
}

} // namespace

class tst_KeyStore : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void lookup_data();
    void lookup();
    void emptyStore();
    void emptyKeyNeverMatches();
    void checkKey_data();
    void checkKey();
    void hashedForm();
    void generateKey();
};

void tst_KeyStore::lookup_data()
{
    QTest::addColumn<QByteArray>("presented");
    QTest::addColumn<bool>("found");
    QTest::addColumn<Role>("role");
    QTest::addColumn<QString>("name");

    QTest::addRow("plain service key") << QByteArrayLiteral("s3cret-service") << true << Role::Service
                                       << QStringLiteral("svc-plain");
    QTest::addRow("plain client key") << QByteArrayLiteral("plain-client") << true << Role::Client
                                      << QStringLiteral("cli-plain");
    QTest::addRow("key configured by sha256") << QByteArrayLiteral("client-secret") << true << Role::Client
                                              << QStringLiteral("cli-hashed");
    QTest::addRow("sha256 with upper-case hex") << QByteArrayLiteral("upper-secret") << true << Role::Service
                                                << QStringLiteral("svc-upper-hex");
    QTest::addRow("surrounding white space, plain") << QByteArrayLiteral("  s3cret-service\r\n") << true
                                                    << Role::Service << QStringLiteral("svc-plain");
    QTest::addRow("surrounding white space, hashed") << QByteArrayLiteral("\tclient-secret ") << true
                                                     << Role::Client << QStringLiteral("cli-hashed");

    QTest::addRow("wrong key") << QByteArrayLiteral("nope") << false << Role::None << QString();
    QTest::addRow("prefix of a key") << QByteArrayLiteral("s3cret") << false << Role::None << QString();
    QTest::addRow("key with more after it") << QByteArrayLiteral("s3cret-service2") << false << Role::None
                                            << QString();
    QTest::addRow("case differs") << QByteArrayLiteral("S3CRET-SERVICE") << false << Role::None << QString();
    QTest::addRow("white space inside") << QByteArrayLiteral("s3cret -service") << false << Role::None
                                        << QString();
    QTest::addRow("empty") << QByteArray() << false << Role::None << QString();
    QTest::addRow("only white space") << QByteArrayLiteral(" \t\r\n") << false << Role::None << QString();
    // The config holds the hash so that it is no secret: presenting it must not work.
    QTest::addRow("the sha256 form is not the key") << KeyStore::hashedForm("client-secret") << false
                                                    << Role::None << QString();
    QTest::addRow("the bare digest is not the key")
        << KeyStore::hashedForm("client-secret").sliced(7) << false << Role::None << QString();
}

void tst_KeyStore::lookup()
{
    QFETCH(QByteArray, presented);
    QFETCH(bool, found);
    QFETCH(Role, role);
    QFETCH(QString, name);

    const KeyStore store = makeStore();
    QCOMPARE(store.size(), qsizetype(4));
    QVERIFY(!store.isEmpty());

    const std::optional<KeyStore::Match> match = store.lookup(presented);
    QCOMPARE(match.has_value(), found);
    if (match) {
        QCOMPARE(match->role, role);
        QCOMPARE(match->name, name);
    }
}

void tst_KeyStore::emptyStore()
{
    KeyStore store;
    QVERIFY(store.isEmpty());
    QCOMPARE(store.size(), qsizetype(0));
    QVERIFY(!store.lookup("anything"));
    QVERIFY(!store.lookup(""));
}

void tst_KeyStore::emptyKeyNeverMatches()
{
    // validate() refuses such a key, but the store must not open up even if one
    // slips through: the digest of "" is stored, "" is still refused.
    KeyStore store;
    store.add(Role::Service, KeyConfig{QStringLiteral("empty-hashed"), KeyStore::hashedForm("")});
    store.add(Role::Service, KeyConfig{QStringLiteral("empty-plain"), QByteArray()});
    QCOMPARE(store.size(), qsizetype(2));
    QVERIFY(!store.lookup(""));
    QVERIFY(!store.lookup("   "));
    QVERIFY(!store.lookup("\n"));
}

void tst_KeyStore::checkKey_data()
{
    QTest::addColumn<QByteArray>("key");
    QTest::addColumn<bool>("valid");
    QTest::addColumn<QString>("why"); // a part of the reason

    const QByteArray hex64 = kAbcHex.toByteArray();
    QTest::addRow("plain") << QByteArrayLiteral("abc") << true << QString();
    QTest::addRow("one character") << QByteArrayLiteral("x") << true << QString();
    QTest::addRow("base64url characters") << QByteArrayLiteral("aZ09-_~!.") << true << QString();
    QTest::addRow("generated") << KeyStore::generateKey() << true << QString();
    QTest::addRow("sha256, lower-case hex") << "sha256:" + hex64 << true << QString();
    QTest::addRow("sha256, upper-case hex") << "sha256:" + hex64.toUpper() << true << QString();
    QTest::addRow("sha256, from hashedForm") << KeyStore::hashedForm("k") << true << QString();

    QTest::addRow("empty") << QByteArray() << false << QStringLiteral("empty");
    QTest::addRow("only white space") << QByteArrayLiteral("  \t") << false << QStringLiteral("empty");
    QTest::addRow("space inside") << QByteArrayLiteral("ab cd") << false << QStringLiteral("white space");
    QTest::addRow("tab inside") << QByteArrayLiteral("ab\tcd") << false << QStringLiteral("white space");
    QTest::addRow("leading space") << QByteArrayLiteral(" abcd") << false << QStringLiteral("white space");
    QTest::addRow("trailing newline") << QByteArrayLiteral("abcd\n") << false << QStringLiteral("white space");
    QTest::addRow("control character") << QByteArrayLiteral("ab\x01" "cd") << false << QStringLiteral("control");
    QTest::addRow("DEL") << QByteArrayLiteral("ab\x7f") << false << QStringLiteral("control");
    QTest::addRow("sha256, no digits") << QByteArrayLiteral("sha256:") << false << QStringLiteral("64 hex");
    QTest::addRow("sha256, 63 digits") << "sha256:" + hex64.chopped(1) << false << QStringLiteral("64 hex");
    QTest::addRow("sha256, 65 digits") << "sha256:" + hex64 + 'a' << false << QStringLiteral("64 hex");
    QTest::addRow("sha256, non-hex digit") << "sha256:" + hex64.chopped(1) + 'g' << false
                                           << QStringLiteral("64 hex");
    QTest::addRow("sha256, base64 instead of hex")
        << "sha256:" + QByteArray::fromHex(hex64).toBase64() << false << QStringLiteral("64 hex");
}

void tst_KeyStore::checkKey()
{
    QFETCH(QByteArray, key);
    QFETCH(bool, valid);
    QFETCH(QString, why);

    QString reason;
    QCOMPARE(KeyStore::checkKey(key, &reason), valid);
    if (valid)
        QVERIFY2(reason.isEmpty(), qPrintable(reason));
    else
        QVERIFY2(reason.contains(why), qPrintable(reason));
    // The reason is optional.
    QCOMPARE(KeyStore::checkKey(key, nullptr), valid);
}

void tst_KeyStore::hashedForm()
{
    QCOMPARE(KeyStore::hashedForm("abc"), "sha256:" + kAbcHex.toByteArray());
    // What a user pastes from a terminal, newline included, gives the same form.
    QCOMPARE(KeyStore::hashedForm(" abc\n"), KeyStore::hashedForm("abc"));
    QVERIFY(KeyStore::hashedForm("abc") != KeyStore::hashedForm("abd"));
    QVERIFY(KeyStore::checkKey(KeyStore::hashedForm("abc"), nullptr));
}

void tst_KeyStore::generateKey()
{
    QSet<QByteArray> seen;
    for (int i = 0; i < 200; ++i) {
        const QByteArray key = KeyStore::generateKey();
        // 32 bytes, base64url without padding: 43 characters.
        QCOMPARE(key.size(), qsizetype(43));
        for (const char c : key) {
            const bool urlSafe = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                || c == '-' || c == '_';
            QVERIFY2(urlSafe, key.constData());
        }
        const auto decoded = QByteArray::fromBase64Encoding(
            key, QByteArray::Base64UrlEncoding | QByteArray::AbortOnBase64DecodingErrors);
        QVERIFY(decoded);
        QCOMPARE(decoded.decoded.size(), qsizetype(32));
        QVERIFY(KeyStore::checkKey(key, nullptr));
        QVERIFY2(!seen.contains(key), key.constData());
        seen.insert(key);
    }

    // A generated key works as a key, plain and hashed.
    const QByteArray key = KeyStore::generateKey();
    KeyStore store;
    store.add(Role::Client, KeyConfig{QStringLiteral("plain"), key});
    QVERIFY(store.lookup(key));
    KeyStore hashed;
    hashed.add(Role::Client, KeyConfig{QStringLiteral("hashed"), KeyStore::hashedForm(key)});
    QVERIFY(hashed.lookup(key));
}

QTEST_APPLESS_MAIN(tst_KeyStore)
#include "tst_keystore.moc"
