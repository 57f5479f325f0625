// Unit tests for PatternTree: insert/remove/contains/size, and match() checked
// against a brute-force Target::matches over the same patterns (docs/protocol.md §3.2).

#include "patterntree.h"
#include "target.h"

#include <QTest>

#include <algorithm>

using namespace Middleman;

namespace {

using Entry = QPair<QByteArray, int>; // (pattern, value)

QList<int> matchAll(const PatternTree<int> &tree, QByteArrayView literal)
{
    QList<int> found;
    tree.match(literal, [&found](const int &v) { found.append(v); });
    std::sort(found.begin(), found.end());
    return found;
}

QList<int> bruteForce(const QList<Entry> &entries, QByteArrayView literal)
{
    QList<int> found;
    for (const Entry &e : entries) {
        if (Target::matches(e.first, literal))
            found.append(e.second);
    }
    std::sort(found.begin(), found.end());
    return found;
}

// A mixed set of patterns: literals, '*' anywhere, '>' at several depths, shared prefixes.
QList<Entry> standardEntries()
{
    const QList<QByteArray> patterns = {
        QByteArrayLiteral("a"),       QByteArrayLiteral("a.b"),     QByteArrayLiteral("a.b.c"),
        QByteArrayLiteral("a.*"),     QByteArrayLiteral("a.*.c"),   QByteArrayLiteral("a.>"),
        QByteArrayLiteral("a.b.>"),   QByteArrayLiteral("*"),       QByteArrayLiteral("*.b"),
        QByteArrayLiteral("*.*"),     QByteArrayLiteral("*.*.*"),   QByteArrayLiteral("*.>"),
        QByteArrayLiteral(">"),       QByteArrayLiteral("b.c"),     QByteArrayLiteral("b.*.d"),
        QByteArrayLiteral("x*y"),     QByteArrayLiteral("chat.room1"), QByteArrayLiteral("chat.>"),
    };
    QList<Entry> entries;
    int value = 0;
    for (const QByteArray &p : patterns)
        entries.append({p, value++});
    return entries;
}

QList<QByteArray> standardLiterals()
{
    return {
        QByteArrayLiteral("a"),       QByteArrayLiteral("b"),         QByteArrayLiteral("c"),
        QByteArrayLiteral("a.b"),     QByteArrayLiteral("a.c"),       QByteArrayLiteral("b.b"),
        QByteArrayLiteral("a.b.c"),   QByteArrayLiteral("a.x.c"),     QByteArrayLiteral("a.b.d"),
        QByteArrayLiteral("b.c"),     QByteArrayLiteral("b.q.d"),     QByteArrayLiteral("a.b.c.d"),
        QByteArrayLiteral("x*y"),     QByteArrayLiteral("xzy"),       QByteArrayLiteral("chat"),
        QByteArrayLiteral("chat.room1"), QByteArrayLiteral("chat.room1.x"), QByteArrayLiteral("z.z.z.z.z"),
    };
}

} // namespace

class tst_PatternTree : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void empty();
    void insertContainsSize_data();
    void insertContainsSize();
    void duplicateInsert();
    void removeMissing();
    void matchAgainstBruteForce_data();
    void matchAgainstBruteForce();
    void gtNeedsAtLeastOneToken();
    void sameValueUnderTwoPatterns();
    void removeKeepsSiblings();
    void removeAllPrunes();
    void removeInOtherOrders_data();
    void removeInOtherOrders();
};

void tst_PatternTree::empty()
{
    PatternTree<int> tree;
    QCOMPARE(tree.size(), 0);
    QVERIFY(tree.isEmpty());
    QVERIFY(!tree.contains("a", 1));
    QVERIFY(!tree.contains(">", 1));
    QVERIFY(matchAll(tree, "a.b").isEmpty());
    QVERIFY(!tree.remove("a", 1));
    QVERIFY(!tree.remove(">", 1));
    QCOMPARE(tree.size(), 0);
}

void tst_PatternTree::insertContainsSize_data()
{
    QTest::addColumn<QByteArray>("pattern");
    QTest::addColumn<QByteArray>("sibling"); // same depth, must not be reported as contained

    QTest::addRow("one token") << QByteArrayLiteral("a") << QByteArrayLiteral("b");
    QTest::addRow("two tokens") << QByteArrayLiteral("a.b") << QByteArrayLiteral("a.c");
    QTest::addRow("star") << QByteArrayLiteral("a.*") << QByteArrayLiteral("a.>");
    QTest::addRow("gt") << QByteArrayLiteral("a.>") << QByteArrayLiteral("a.*");
    QTest::addRow("lone star") << QByteArrayLiteral("*") << QByteArrayLiteral(">");
    QTest::addRow("lone gt") << QByteArrayLiteral(">") << QByteArrayLiteral("*");
    QTest::addRow("literal star token is not the wildcard") << QByteArrayLiteral("x*") << QByteArrayLiteral("*");
    QTest::addRow("deep") << QByteArrayLiteral("a.*.c.>") << QByteArrayLiteral("a.*.c.*");
}

void tst_PatternTree::insertContainsSize()
{
    QFETCH(QByteArray, pattern);
    QFETCH(QByteArray, sibling);

    PatternTree<int> tree;
    QVERIFY(tree.insert(pattern, 1));
    QCOMPARE(tree.size(), 1);
    QVERIFY(!tree.isEmpty());
    QVERIFY(tree.contains(pattern, 1));
    QVERIFY(!tree.contains(pattern, 2));
    QVERIFY(!tree.contains(sibling, 1));

    // A prefix of a stored pattern holds nothing itself.
    const qsizetype dot = pattern.lastIndexOf('.');
    if (dot > 0)
        QVERIFY(!tree.contains(pattern.first(dot), 1));

    QVERIFY(tree.insert(pattern, 2));
    QVERIFY(tree.insert(sibling, 1));
    QCOMPARE(tree.size(), 3);
    QVERIFY(tree.contains(pattern, 2));
    QVERIFY(tree.contains(sibling, 1));

    QVERIFY(tree.remove(pattern, 1));
    QCOMPARE(tree.size(), 2);
    QVERIFY(!tree.contains(pattern, 1));
    QVERIFY(tree.contains(pattern, 2));
    QVERIFY(tree.contains(sibling, 1));
}

void tst_PatternTree::duplicateInsert()
{
    PatternTree<int> tree;
    QVERIFY(tree.insert("a.*", 7));
    QVERIFY(!tree.insert("a.*", 7));
    QCOMPARE(tree.size(), 1);
    QCOMPARE(matchAll(tree, "a.b"), QList<int>{7});

    // Removing once removes it; a second remove finds nothing.
    QVERIFY(tree.remove("a.*", 7));
    QVERIFY(!tree.remove("a.*", 7));
    QCOMPARE(tree.size(), 0);
    QVERIFY(matchAll(tree, "a.b").isEmpty());
}

void tst_PatternTree::removeMissing()
{
    PatternTree<int> tree;
    QVERIFY(tree.insert("a.b.c", 1));
    QVERIFY(!tree.remove("a.b.c", 2)); // other value
    QVERIFY(!tree.remove("a.b", 1));   // prefix of a stored pattern
    QVERIFY(!tree.remove("a.b.c.d", 1)); // longer
    QVERIFY(!tree.remove("a.*.c", 1)); // wildcard where a literal is stored
    QVERIFY(!tree.remove("a.b.>", 1));
    QVERIFY(!tree.remove("x", 1));
    QCOMPARE(tree.size(), 1);
    QVERIFY(tree.contains("a.b.c", 1));
    QCOMPARE(matchAll(tree, "a.b.c"), QList<int>{1});
}

void tst_PatternTree::matchAgainstBruteForce_data()
{
    QTest::addColumn<QByteArray>("literal");
    for (const QByteArray &l : standardLiterals())
        QTest::addRow("%s", l.constData()) << l;
}

void tst_PatternTree::matchAgainstBruteForce()
{
    QFETCH(QByteArray, literal);
    QVERIFY(Target::isLiteral(literal));

    const QList<Entry> entries = standardEntries();
    PatternTree<int> tree;
    for (const Entry &e : entries) {
        QVERIFY(Target::isPattern(e.first));
        QVERIFY(tree.insert(e.first, e.second));
    }
    QCOMPARE(tree.size(), entries.size());
    QCOMPARE(matchAll(tree, literal), bruteForce(entries, literal));

    // Remove every other entry: the rest still match as brute force says.
    QList<Entry> kept;
    for (qsizetype i = 0; i < entries.size(); ++i) {
        if (i % 2 == 0)
            QVERIFY(tree.remove(entries.at(i).first, entries.at(i).second));
        else
            kept.append(entries.at(i));
    }
    QCOMPARE(tree.size(), kept.size());
    QCOMPARE(matchAll(tree, literal), bruteForce(kept, literal));
}

void tst_PatternTree::gtNeedsAtLeastOneToken()
{
    PatternTree<int> tree;
    QVERIFY(tree.insert("a.>", 1));
    QVERIFY(tree.insert(">", 2));
    QVERIFY(tree.insert("a.b.>", 3));

    QCOMPARE(matchAll(tree, "a"), QList<int>{2});
    QCOMPARE(matchAll(tree, "a.b"), (QList<int>{1, 2}));
    QCOMPARE(matchAll(tree, "a.b.c"), (QList<int>{1, 2, 3}));
    QCOMPARE(matchAll(tree, "a.b.c.d.e"), (QList<int>{1, 2, 3}));
    QCOMPARE(matchAll(tree, "b"), QList<int>{2});
}

void tst_PatternTree::sameValueUnderTwoPatterns()
{
    PatternTree<int> tree;
    QVERIFY(tree.insert("a.*", 5));
    QVERIFY(tree.insert("a.>", 5));
    QVERIFY(tree.insert("a.b", 5));
    QVERIFY(tree.insert("a.b", 6));
    QCOMPARE(tree.size(), 4);

    // Reported once per matching pattern; the caller deduplicates.
    QCOMPARE(matchAll(tree, "a.b"), (QList<int>{5, 5, 5, 6}));
    QCOMPARE(matchAll(tree, "a.c"), (QList<int>{5, 5}));
    QCOMPARE(matchAll(tree, "a.b.c"), QList<int>{5});

    QVERIFY(tree.remove("a.*", 5));
    QCOMPARE(matchAll(tree, "a.b"), (QList<int>{5, 5, 6}));
}

void tst_PatternTree::removeKeepsSiblings()
{
    PatternTree<int> tree;
    QVERIFY(tree.insert("a.b.c", 1));
    QVERIFY(tree.insert("a.b", 2));
    QVERIFY(tree.insert("a.b.d", 3));

    // Removing the deepest entry must not take its ancestors' values with it.
    QVERIFY(tree.remove("a.b.c", 1));
    QVERIFY(tree.contains("a.b", 2));
    QVERIFY(tree.contains("a.b.d", 3));
    QCOMPARE(matchAll(tree, "a.b"), QList<int>{2});
    QCOMPARE(matchAll(tree, "a.b.d"), QList<int>{3});
    QVERIFY(matchAll(tree, "a.b.c").isEmpty());

    // Removing a value in the middle must keep the deeper branch.
    QVERIFY(tree.remove("a.b", 2));
    QVERIFY(tree.contains("a.b.d", 3));
    QCOMPARE(matchAll(tree, "a.b.d"), QList<int>{3});

    // A pruned branch can be filled again.
    QVERIFY(tree.insert("a.b.c", 1));
    QCOMPARE(matchAll(tree, "a.b.c"), QList<int>{1});
    QCOMPARE(tree.size(), 2);
}

void tst_PatternTree::removeAllPrunes()
{
    const QList<Entry> entries = standardEntries();
    PatternTree<int> tree;
    for (const Entry &e : entries) {
        QVERIFY(tree.insert(e.first, e.second));
        QVERIFY(tree.insert(e.first, e.second + 100)); // a second value on every node
    }
    QCOMPARE(tree.size(), 2 * entries.size());

    for (const Entry &e : entries) {
        QVERIFY(tree.remove(e.first, e.second));
        QVERIFY(tree.remove(e.first, e.second + 100));
        QVERIFY(!tree.contains(e.first, e.second));
    }
    QCOMPARE(tree.size(), 0);
    QVERIFY(tree.isEmpty());
    for (const QByteArray &l : standardLiterals())
        QVERIFY2(matchAll(tree, l).isEmpty(), l.constData());
    for (const Entry &e : entries)
        QVERIFY(!tree.remove(e.first, e.second));
    QCOMPARE(tree.size(), 0);

    // Usable again after everything was pruned.
    QVERIFY(tree.insert("a.>", 1));
    QCOMPARE(matchAll(tree, "a.b"), QList<int>{1});
}

void tst_PatternTree::removeInOtherOrders_data()
{
    QTest::addColumn<bool>("reverse");
    QTest::addRow("insertion order") << false;
    QTest::addRow("reverse order") << true;
}

void tst_PatternTree::removeInOtherOrders()
{
    QFETCH(bool, reverse);

    QList<Entry> entries = standardEntries();
    PatternTree<int> tree;
    for (const Entry &e : std::as_const(entries))
        QVERIFY(tree.insert(e.first, e.second));
    if (reverse)
        std::reverse(entries.begin(), entries.end());

    QList<Entry> remaining = entries;
    while (!remaining.isEmpty()) {
        const Entry e = remaining.takeFirst();
        QVERIFY(tree.remove(e.first, e.second));
        QCOMPARE(tree.size(), remaining.size());
        for (const QByteArray &l : standardLiterals())
            QCOMPARE(matchAll(tree, l), bruteForce(remaining, l));
    }
    QVERIFY(tree.isEmpty());
}

QTEST_APPLESS_MAIN(tst_PatternTree)
#include "tst_patterntree.moc"
