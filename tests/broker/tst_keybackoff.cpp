// KeyBackoff (docs/protocol.md §7, failed-key back-off per address): free failures,
// doubling blocks up to the cap, per-address state, expiry and the bound on
// tracked addresses. Time is passed in.

#include "keybackoff.h"

#include <QTest>

using namespace Middleman;

class tst_KeyBackoff : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void freeFailuresThenDoubling();
    void perAddress();
    void goodKeysDoNotReset();
    void forgetsQuietAddresses();
    void disabled();
    void boundedTable();
};

namespace {
const QHostAddress kA(QStringLiteral("192.0.2.1"));
const QHostAddress kB(QStringLiteral("2001:db8::1"));
} // namespace

void tst_KeyBackoff::freeFailuresThenDoubling()
{
    KeyBackoff backoff(3, 1000, 5000);
    QVERIFY(backoff.enabled());
    qint64 t = 1000;
    for (int i = 0; i < 3; ++i) {
        QCOMPARE(backoff.recordFailure(kA, t), qint64(0));
        QCOMPARE(backoff.blockedFor(kA, t), qint64(0));
    }
    // The fourth bad key blocks for the base, each further one twice as long, capped.
    QCOMPARE(backoff.recordFailure(kA, t), qint64(1000));
    QCOMPARE(backoff.blockedFor(kA, t), qint64(1000));
    QCOMPARE(backoff.blockedFor(kA, t + 400), qint64(600));
    QCOMPARE(backoff.blockedFor(kA, t + 1000), qint64(0));
    t += 1000;
    QCOMPARE(backoff.recordFailure(kA, t), qint64(2000));
    QCOMPARE(backoff.blockedFor(kA, t + 1999), qint64(1));
    t += 2000;
    QCOMPARE(backoff.recordFailure(kA, t), qint64(4000));
    t += 4000;
    QCOMPARE(backoff.recordFailure(kA, t), qint64(5000));
    // A guess right when a block at the cap ends keeps the cap: the count is
    // forgotten only after a quiet spell as long as the cap.
    t += 5000;
    QCOMPARE(backoff.recordFailure(kA, t), qint64(5000));
    // No overflow however many failures come in.
    for (int i = 0; i < 200; ++i)
        QCOMPARE(backoff.recordFailure(kA, t), qint64(5000));
}

void tst_KeyBackoff::perAddress()
{
    KeyBackoff backoff(1, 1000, 60000);
    QCOMPARE(backoff.recordFailure(kA, 0), qint64(0));
    QCOMPARE(backoff.recordFailure(kA, 0), qint64(1000));
    QCOMPARE(backoff.blockedFor(kA, 10), qint64(990));
    QCOMPARE(backoff.blockedFor(kB, 10), qint64(0));
    QCOMPARE(backoff.recordFailure(kB, 10), qint64(0));
    QCOMPARE(backoff.blockedFor(kB, 10), qint64(0));
    QCOMPARE(backoff.trackedAddresses(), qsizetype(2));
}

void tst_KeyBackoff::goodKeysDoNotReset()
{
    // There is no call for a good key: the count only ends by expiry. A guess
    // right after a block keeps doubling.
    KeyBackoff backoff(0, 100, 10000);
    QCOMPARE(backoff.recordFailure(kA, 0), qint64(100));
    QCOMPARE(backoff.recordFailure(kA, 100), qint64(200));
    QCOMPARE(backoff.recordFailure(kA, 300), qint64(400));
}

void tst_KeyBackoff::forgetsQuietAddresses()
{
    KeyBackoff backoff(1, 1000, 4000);
    QCOMPARE(backoff.recordFailure(kA, 0), qint64(0));
    QCOMPARE(backoff.recordFailure(kA, 0), qint64(1000));
    backoff.prune(3999); // quiet for less than the cap: kept
    QCOMPARE(backoff.trackedAddresses(), qsizetype(1));
    QCOMPARE(backoff.recordFailure(kA, 3999), qint64(2000));
    // Blocked until 5999, then quiet for the cap: forgotten at 9999.
    backoff.prune(9998);
    QCOMPARE(backoff.trackedAddresses(), qsizetype(1));
    backoff.prune(9999);
    QCOMPARE(backoff.trackedAddresses(), qsizetype(0));
    // A fresh start: the free failure again.
    QCOMPARE(backoff.recordFailure(kA, 10000), qint64(0));
    // Without a prune, an expired entry starts afresh too: blocked until 11000,
    // quiet until 15000.
    QCOMPARE(backoff.recordFailure(kA, 10000), qint64(1000));
    QCOMPARE(backoff.recordFailure(kA, 14999), qint64(2000));
    QCOMPARE(backoff.recordFailure(kA, 16999 + 4000), qint64(0));
}

void tst_KeyBackoff::disabled()
{
    KeyBackoff backoff(0, 0, 60000);
    QVERIFY(!backoff.enabled());
    for (int i = 0; i < 100; ++i)
        QCOMPARE(backoff.recordFailure(kA, 0), qint64(0));
    QCOMPARE(backoff.blockedFor(kA, 0), qint64(0));
    QCOMPARE(backoff.trackedAddresses(), qsizetype(0));
}

void tst_KeyBackoff::boundedTable()
{
    KeyBackoff backoff(0, 1000, 1000, 4);
    for (quint32 i = 1; i <= 4; ++i)
        QCOMPARE(backoff.recordFailure(QHostAddress(0xC0000200 + i), 0), qint64(1000));
    // Full, nothing expired: a fifth address is not tracked.
    const QHostAddress fifth(0xC0000205);
    QCOMPARE(backoff.recordFailure(fifth, 10), qint64(0));
    QCOMPARE(backoff.blockedFor(fifth, 10), qint64(0));
    QCOMPARE(backoff.trackedAddresses(), qsizetype(4));
    // Once the others expire, a new address is tracked again.
    QCOMPARE(backoff.recordFailure(fifth, 2000), qint64(1000));
    QCOMPARE(backoff.trackedAddresses(), qsizetype(1));
}

QTEST_APPLESS_MAIN(tst_KeyBackoff)
#include "tst_keybackoff.moc"
