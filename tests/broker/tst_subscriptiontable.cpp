// Unit tests for SubscriptionTable: who is subscribed to what (docs/protocol.md §4.1)
// and who gets a PUB (4.2: each connection at most once).

#include "subscriptiontable.h"
#include "targettrie.h"
#include "target.h"

#include <QRandomGenerator>
#include <QTest>

#include <algorithm>

using namespace Middleman;

using AddResult = SubscriptionTable::AddResult;
using Ids = QList<quint64>;
using Patterns = QList<QByteArray>;

// One subscription: connection and pattern.
struct Sub
{
    quint64 connection;
    QByteArray pattern;
};
Q_DECLARE_METATYPE(Sub)
using Subs = QList<Sub>;

namespace {
constexpr int kNoLimit = 10000;
}

class tst_SubscriptionTable : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void add();
    void addLimit_data();
    void addLimit();
    void remove();
    void removeAll();
    void match_data();
    void match();
    void cacheFollowsAdd();
    void cacheFollowsRemove();
    void cacheFollowsRemoveAll();
    void cacheKeepsWhatAChangeCannotReach();
    void cacheKeepsWhatALeavingConnectionCannotReach();
    void cacheUnderChurn();
    void targetTrieTakesWhatMatches();
    void patternsOf();
    void countOfAndSize();
};

void tst_SubscriptionTable::add()
{
    SubscriptionTable table;
    QCOMPARE(table.add(1, QByteArrayLiteral("chat.*"), kNoLimit), AddResult::Added);
    // Repeating a SUB changes nothing (4.1).
    QCOMPARE(table.add(1, QByteArrayLiteral("chat.*"), kNoLimit), AddResult::Exists);
    QCOMPARE(table.countOf(1), qsizetype(1));
    QCOMPARE(table.size(), qsizetype(1));
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1}));
    // The same pattern for another connection, or another pattern, is new.
    QCOMPARE(table.add(2, QByteArrayLiteral("chat.*"), kNoLimit), AddResult::Added);
    QCOMPARE(table.add(1, QByteArrayLiteral("chat.>"), kNoLimit), AddResult::Added);
    QCOMPARE(table.size(), qsizetype(3));
}

void tst_SubscriptionTable::addLimit_data()
{
    QTest::addColumn<int>("limit");
    QTest::addColumn<int>("accepted");

    QTest::addRow("limit 1") << 1 << 1;
    QTest::addRow("limit 3") << 3 << 3;
    QTest::addRow("limit 0 refuses everything") << 0 << 0;
}

void tst_SubscriptionTable::addLimit()
{
    QFETCH(int, limit);
    QFETCH(int, accepted);

    SubscriptionTable table;
    for (int i = 0; i < accepted; ++i)
        QCOMPARE(table.add(1, "p." + QByteArray::number(i), limit), AddResult::Added);
    QCOMPARE(table.add(1, QByteArrayLiteral("one.too.many"), limit), AddResult::LimitReached);
    QCOMPARE(table.countOf(1), qsizetype(accepted));
    QVERIFY(!table.patternsOf(1).contains(QByteArrayLiteral("one.too.many")));
    QVERIFY(table.match(QByteArrayLiteral("one.too.many")).isEmpty());
    // A repeated SUB at the limit is still just "exists", not a refusal.
    if (accepted > 0)
        QCOMPARE(table.add(1, QByteArrayLiteral("p.0"), limit), AddResult::Exists);
    // The limit is per connection.
    QCOMPARE(table.add(2, QByteArrayLiteral("one.too.many"), limit + 1), AddResult::Added);
    // Room again after an UNSUB.
    if (accepted > 0) {
        QVERIFY(table.remove(1, QByteArrayLiteral("p.0")));
        QCOMPARE(table.add(1, QByteArrayLiteral("one.too.many"), limit), AddResult::Added);
    }
}

void tst_SubscriptionTable::remove()
{
    SubscriptionTable table;
    table.add(1, QByteArrayLiteral("chat.*"), kNoLimit);
    table.add(1, QByteArrayLiteral("chat.>"), kNoLimit);
    table.add(2, QByteArrayLiteral("chat.*"), kNoLimit);

    // UNSUB removes exactly that subscription: not a pattern covering it.
    QVERIFY(!table.remove(1, QByteArrayLiteral("chat.room")));
    QVERIFY(!table.remove(1, QByteArrayLiteral(">")));
    QVERIFY(!table.remove(3, QByteArrayLiteral("chat.*")));
    QCOMPARE(table.size(), qsizetype(3));

    QVERIFY(table.remove(1, QByteArrayLiteral("chat.*")));
    QVERIFY(!table.remove(1, QByteArrayLiteral("chat.*"))); // already gone
    QCOMPARE(table.patternsOf(1), (Patterns{"chat.>"}));
    QCOMPARE(table.patternsOf(2), (Patterns{"chat.*"})); // the other connection's stays
    QCOMPARE(table.size(), qsizetype(2));
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1, 2}));
    QCOMPARE(table.match(QByteArrayLiteral("chat.room.x")), (Ids{1}));

    QVERIFY(table.remove(1, QByteArrayLiteral("chat.>")));
    QCOMPARE(table.countOf(1), qsizetype(0));
    QVERIFY(table.patternsOf(1).isEmpty());
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{2}));
}

void tst_SubscriptionTable::removeAll()
{
    SubscriptionTable table;
    table.add(1, QByteArrayLiteral("b.*"), kNoLimit);
    table.add(1, QByteArrayLiteral("a.>"), kNoLimit);
    table.add(1, QByteArrayLiteral("c"), kNoLimit);
    table.add(2, QByteArrayLiteral("a.>"), kNoLimit);

    table.removeAll(1);
    QVERIFY(table.patternsOf(1).isEmpty());
    QCOMPARE(table.patternsOf(2), (Patterns{"a.>"}));
    QCOMPARE(table.countOf(1), qsizetype(0));
    QCOMPARE(table.size(), qsizetype(1));
    QCOMPARE(table.match(QByteArrayLiteral("a.x")), (Ids{2}));
    QVERIFY(table.match(QByteArrayLiteral("b.x")).isEmpty());
    QVERIFY(table.match(QByteArrayLiteral("c")).isEmpty());
    table.removeAll(1);
    table.removeAll(99);
    QCOMPARE(table.size(), qsizetype(1));
    // The connection may subscribe again from nothing.
    QCOMPARE(table.add(1, QByteArrayLiteral("c"), 1), AddResult::Added);
}

void tst_SubscriptionTable::match_data()
{
    QTest::addColumn<Subs>("subs");
    QTest::addColumn<QByteArray>("literal");
    QTest::addColumn<Ids>("expected");

    QTest::addRow("nobody") << Subs() << QByteArrayLiteral("chat.room") << Ids();
    QTest::addRow("literal subscription") << Subs{{4, "chat.room"}} << QByteArrayLiteral("chat.room") << Ids{4};
    QTest::addRow("no matching pattern")
        << Subs{{4, "chat.other"}, {5, "chat.*.x"}, {6, "chat"}} << QByteArrayLiteral("chat.room") << Ids();
    QTest::addRow("one connection through two patterns, once")
        << Subs{{4, "chat.*"}, {4, "chat.>"}} << QByteArrayLiteral("chat.room") << Ids{4};
    QTest::addRow("one connection through three patterns, once")
        << Subs{{4, "chat.room"}, {4, "*.room"}, {4, ">"}} << QByteArrayLiteral("chat.room") << Ids{4};
    QTest::addRow("ids sorted, not in subscription order")
        << Subs{{30, "chat.>"}, {10, "chat.room"}, {20, "*.room"}} << QByteArrayLiteral("chat.room")
        << Ids{10, 20, 30};
    QTest::addRow("mixed duplicates, sorted")
        << Subs{{9, ">"}, {3, "chat.*"}, {9, "chat.room"}, {3, "chat.room"}, {7, "news.*"}}
        << QByteArrayLiteral("chat.room") << Ids{3, 9};
    QTest::addRow("rest matches deep targets")
        << Subs{{1, "a.>"}, {2, "a.*"}, {3, "a.*.c"}} << QByteArrayLiteral("a.b.c") << Ids{1, 3};
    QTest::addRow("rest needs a token")
        << Subs{{1, "a.>"}, {2, "a"}} << QByteArrayLiteral("a") << Ids{2};
}

void tst_SubscriptionTable::match()
{
    QFETCH(Subs, subs);
    QFETCH(QByteArray, literal);
    QFETCH(Ids, expected);

    SubscriptionTable table;
    for (const Sub &sub : subs)
        QCOMPARE(table.add(sub.connection, sub.pattern, kNoLimit), AddResult::Added);
    QCOMPARE(table.match(literal), expected);
    // Asking again (from the cache) gives the same.
    QCOMPARE(table.match(literal), expected);
}

void tst_SubscriptionTable::cacheFollowsAdd()
{
    SubscriptionTable table;
    table.add(2, QByteArrayLiteral("chat.*"), kNoLimit);
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{2}));
    QVERIFY(table.match(QByteArrayLiteral("news.today")).isEmpty());

    table.add(1, QByteArrayLiteral("chat.>"), kNoLimit);
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1, 2}));
    // An empty answer is not kept after the table changed either.
    table.add(3, QByteArrayLiteral("news.*"), kNoLimit);
    QCOMPARE(table.match(QByteArrayLiteral("news.today")), (Ids{3}));
    // A refused or repeated add leaves answers as they were.
    QCOMPARE(table.add(4, QByteArrayLiteral("chat.room"), 0), AddResult::LimitReached);
    QCOMPARE(table.add(1, QByteArrayLiteral("chat.>"), kNoLimit), AddResult::Exists);
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1, 2}));
}

void tst_SubscriptionTable::cacheFollowsRemove()
{
    SubscriptionTable table;
    table.add(1, QByteArrayLiteral("chat.*"), kNoLimit);
    table.add(2, QByteArrayLiteral("chat.room"), kNoLimit);
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1, 2}));

    QVERIFY(table.remove(2, QByteArrayLiteral("chat.room")));
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1}));
    QVERIFY(table.remove(1, QByteArrayLiteral("chat.*")));
    QVERIFY(table.match(QByteArrayLiteral("chat.room")).isEmpty());
    // And back.
    table.add(2, QByteArrayLiteral("chat.room"), kNoLimit);
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{2}));
}

void tst_SubscriptionTable::cacheFollowsRemoveAll()
{
    SubscriptionTable table;
    table.add(1, QByteArrayLiteral("chat.*"), kNoLimit);
    table.add(2, QByteArrayLiteral(">"), kNoLimit);
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1, 2}));
    QCOMPARE(table.match(QByteArrayLiteral("other")), (Ids{2}));

    table.removeAll(2);
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1}));
    QVERIFY(table.match(QByteArrayLiteral("other")).isEmpty());
}

// A SUB or UNSUB drops only the cached targets its pattern matches.
void tst_SubscriptionTable::cacheKeepsWhatAChangeCannotReach()
{
    SubscriptionTable table;
    table.add(1, QByteArrayLiteral("chat.*"), kNoLimit);
    const QList<QByteArray> targets{"chat.room", "chat.room.deep", "news.today", "x.y"};
    for (const QByteArray &target : targets)
        table.match(target);
    for (const QByteArray &target : targets)
        QVERIFY(table.isCached(target));

    // A literal pattern: its own target only.
    table.add(2, QByteArrayLiteral("x.y"), kNoLimit);
    QVERIFY(!table.isCached("x.y"));
    QVERIFY(table.isCached("chat.room") && table.isCached("chat.room.deep") && table.isCached("news.today"));
    QCOMPARE(table.match(QByteArrayLiteral("x.y")), (Ids{2}));

    // A wildcard: the targets it matches.
    table.add(3, QByteArrayLiteral("*.room"), kNoLimit);
    QVERIFY(!table.isCached("chat.room"));
    QVERIFY(table.isCached("chat.room.deep") && table.isCached("news.today") && table.isCached("x.y"));
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1, 3}));

    table.add(4, QByteArrayLiteral("chat.>"), kNoLimit);
    QVERIFY(!table.isCached("chat.room") && !table.isCached("chat.room.deep"));
    QVERIFY(table.isCached("news.today") && table.isCached("x.y"));
    QCOMPARE(table.match(QByteArrayLiteral("chat.room.deep")), (Ids{4}));

    // UNSUB alike; a refused or repeated change drops nothing.
    table.match(QByteArrayLiteral("chat.room"));
    QVERIFY(table.remove(3, QByteArrayLiteral("*.room")));
    QVERIFY(!table.isCached("chat.room"));
    QVERIFY(table.isCached("chat.room.deep") && table.isCached("news.today") && table.isCached("x.y"));
    QCOMPARE(table.match(QByteArrayLiteral("chat.room")), (Ids{1, 4}));
    QVERIFY(!table.remove(3, QByteArrayLiteral("*.room")));
    QCOMPARE(table.add(1, QByteArrayLiteral("chat.*"), kNoLimit), AddResult::Exists);
    QCOMPARE(table.add(5, QByteArrayLiteral(">"), 0), AddResult::LimitReached);
    for (const QByteArray &target : targets)
        QVERIFY(table.isCached(target));
}

void tst_SubscriptionTable::cacheKeepsWhatALeavingConnectionCannotReach()
{
    SubscriptionTable table;
    table.add(1, QByteArrayLiteral("chat.*"), kNoLimit);
    table.add(1, QByteArrayLiteral("x.y"), kNoLimit);
    table.add(2, QByteArrayLiteral("news.*"), kNoLimit);
    for (const char *target : {"chat.room", "x.y", "news.today", "other"})
        table.match(target);
    table.removeAll(1);
    QVERIFY(!table.isCached("chat.room") && !table.isCached("x.y"));
    QVERIFY(table.isCached("news.today") && table.isCached("other"));

    // However many patterns leave, only what they match goes.
    for (int i = 0; i < 100; ++i)
        table.add(3, QByteArrayLiteral("w") + QByteArray::number(i) + QByteArrayLiteral(".*"), kNoLimit);
    table.add(3, QByteArrayLiteral("*.today"), kNoLimit);
    table.match(QByteArrayLiteral("news.today"));
    table.match(QByteArrayLiteral("w7.x"));
    table.removeAll(3);
    QVERIFY(!table.isCached("news.today") && !table.isCached("w7.x"));
    QVERIFY(table.isCached("other"));
    QCOMPARE(table.match(QByteArrayLiteral("news.today")), (Ids{2}));
    QVERIFY(table.match(QByteArrayLiteral("w7.x")).isEmpty());
}

// Random SUB, UNSUB and leaving connections between matches, each answer
// checked against every pattern held, so a cached answer kept too long fails.
void tst_SubscriptionTable::cacheUnderChurn()
{
    const QList<QByteArray> patterns{"a", "a.b", "a.*", "a.>", "*.b", "*", ">", "a.b.c", "*.*.c", "b.>", "b"};
    const QList<QByteArray> literals{"a", "b", "a.b", "a.c", "b.b", "a.b.c", "b.x.c", "c"};
    QRandomGenerator random(20261207);
    SubscriptionTable table;
    QHash<quint64, QSet<QByteArray>> model;
    for (int step = 0; step < 20000; ++step) {
        const quint64 connection = random.bounded(6);
        const QByteArray &pattern = patterns.at(random.bounded(patterns.size()));
        switch (random.bounded(8)) {
        case 0:
        case 1:
            table.add(connection, pattern, kNoLimit);
            model[connection].insert(pattern);
            break;
        case 2:
            table.remove(connection, pattern);
            model[connection].remove(pattern);
            break;
        case 3:
            if (random.bounded(10) == 0) {
                table.removeAll(connection);
                model.remove(connection);
            }
            break;
        default: {
            const QByteArray &literal = literals.at(random.bounded(literals.size()));
            Ids expected;
            for (auto it = model.cbegin(); it != model.cend(); ++it) {
                if (std::any_of(it->cbegin(), it->cend(),
                                [&literal](const QByteArray &p) { return Target::matches(p, literal); }))
                    expected.append(it.key());
            }
            std::sort(expected.begin(), expected.end());
            QCOMPARE(table.match(literal), expected);
        }
        }
    }
}

// Every pattern against every stored target: what the walk takes is what
// Target::matches() says, each once, and the rest stay.
void tst_SubscriptionTable::targetTrieTakesWhatMatches()
{
    const QList<QByteArray> targets{"a", "b", "a.b", "a.c", "b.b", "a.b.c", "a.b.c.d", "b.x.c", "c", "ab", "a.bb"};
    const QList<QByteArray> patterns{"a", "a.b", "a.*", "a.>", "*.b", "*", ">", "a.b.c", "*.*.c", "b.>",
                                     "*.>", "a.*.c", "a.*.>", "x", "x.>", "ab.*"};
    for (const QByteArray &pattern : patterns) {
        TargetTrie trie;
        for (const QByteArray &target : targets)
            trie.insert(target);
        QList<QByteArray> taken;
        trie.takeMatching(pattern, [&taken](const QByteArray &target) { taken.append(target); });
        QList<QByteArray> expected;
        for (const QByteArray &target : targets) {
            if (Target::matches(pattern, target))
                expected.append(target);
        }
        std::sort(taken.begin(), taken.end());
        std::sort(expected.begin(), expected.end());
        QCOMPARE(taken, expected);
        // Taken once: the same walk again finds nothing; the others remain.
        trie.takeMatching(pattern, [&](const QByteArray &target) { QFAIL(target.constData()); });
        QList<QByteArray> left;
        trie.takeMatching(">", [&left](const QByteArray &target) { left.append(target); });
        QCOMPARE(left.size() + taken.size(), targets.size());
    }
}

void tst_SubscriptionTable::patternsOf()
{
    SubscriptionTable table;
    QVERIFY(table.patternsOf(1).isEmpty());
    table.add(1, QByteArrayLiteral("zeta.*"), kNoLimit);
    table.add(1, QByteArrayLiteral("alpha.>"), kNoLimit);
    table.add(1, QByteArrayLiteral("mid"), kNoLimit);
    table.add(1, QByteArrayLiteral("alpha"), kNoLimit);
    table.add(2, QByteArrayLiteral("beta"), kNoLimit);
    // Sorted, whatever the order of subscribing; only the connection's own.
    QCOMPARE(table.patternsOf(1), (Patterns{"alpha", "alpha.>", "mid", "zeta.*"}));
    QCOMPARE(table.patternsOf(2), (Patterns{"beta"}));
}

void tst_SubscriptionTable::countOfAndSize()
{
    SubscriptionTable table;
    QCOMPARE(table.size(), qsizetype(0));
    QCOMPARE(table.countOf(1), qsizetype(0));

    table.add(1, QByteArrayLiteral("a"), kNoLimit);
    table.add(1, QByteArrayLiteral("b"), kNoLimit);
    table.add(1, QByteArrayLiteral("b"), kNoLimit); // repeated: not counted
    table.add(2, QByteArrayLiteral("a"), kNoLimit); // same pattern, other connection: counted
    QCOMPARE(table.countOf(1), qsizetype(2));
    QCOMPARE(table.countOf(2), qsizetype(1));
    QCOMPARE(table.countOf(3), qsizetype(0));
    QCOMPARE(table.size(), qsizetype(3)); // (connection, pattern) pairs

    table.remove(1, QByteArrayLiteral("a"));
    QCOMPARE(table.countOf(1), qsizetype(1));
    QCOMPARE(table.size(), qsizetype(2));
    table.removeAll(2);
    QCOMPARE(table.countOf(2), qsizetype(0));
    QCOMPARE(table.size(), qsizetype(1));
    table.removeAll(1);
    QCOMPARE(table.size(), qsizetype(0));
}

QTEST_APPLESS_MAIN(tst_SubscriptionTable)
#include "tst_subscriptiontable.moc"
