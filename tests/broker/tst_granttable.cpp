// Unit tests for GrantTable: EPUB/ESUB/EREQ grants and who holds them
// (docs/protocol.md §4.5), with the NATS wildcard rules of §3.2.

#include "granttable.h"

#include <QTest>

#include <algorithm>

using namespace Middleman;

using Grant = GrantTable::Grant;
using Grants = QList<GrantTable::Grant>;
using Ids = QList<quint64>;

namespace {

Grants sorted(Grants grants)
{
    std::sort(grants.begin(), grants.end(), [](const Grant &a, const Grant &b) {
        return std::pair(int(a.kind), a.pattern) < std::pair(int(b.kind), b.pattern);
    });
    return grants;
}

Ids sorted(Ids ids)
{
    std::sort(ids.begin(), ids.end());
    return ids;
}

} // namespace

namespace Middleman {
// Found by QTest through ADL, so failing comparisons print "ESUB chat.>".
char *toString(const GrantTable::Grant &grant)
{
    return qstrdup(QByteArray(commandName(grant.kind).toByteArray() + ' ' + grant.pattern).constData());
}
} // namespace Middleman

class tst_GrantTable : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void add();
    void allows_data();
    void allows();
    void kindsAreSeparate();
    void covers_data();
    void covers();
    void removeGranter();
    void removeGranterSharedPattern();
    void permanentGrantsStay();
    void removeUnknownGranter();
    void grantsOf();
    void granters();
    void all();
};

void tst_GrantTable::add()
{
    GrantTable table;
    QVERIFY(table.add(Command::Epub, QByteArrayLiteral("chat.>"), 5));
    // Repeating a grant changes nothing (like a repeated SUB, 4.1).
    QVERIFY(!table.add(Command::Epub, QByteArrayLiteral("chat.>"), 5));
    QCOMPARE(table.grantsOf(5).size(), qsizetype(1));
    // The same pattern from another granter, or of another kind, is new.
    QVERIFY(table.add(Command::Epub, QByteArrayLiteral("chat.>"), 6));
    QVERIFY(table.add(Command::Esub, QByteArrayLiteral("chat.>"), 5));
    QVERIFY(table.add(Command::Epub, QByteArrayLiteral("chat.*"), 5));
    QCOMPARE(table.grantsOf(5).size(), qsizetype(3));
    QCOMPARE(sorted(table.granters(Command::Epub, QByteArrayLiteral("chat.>"))), (Ids{5, 6}));
    // After the granter leaves, its grant can be made anew.
    table.removeGranter(5);
    QVERIFY(table.add(Command::Epub, QByteArrayLiteral("chat.>"), 5));
}

void tst_GrantTable::allows_data()
{
    QTest::addColumn<QByteArray>("grant");
    QTest::addColumn<QByteArray>("literal");
    QTest::addColumn<bool>("allowed");

    QTest::addRow("same literal") << QByteArrayLiteral("chat.room1") << QByteArrayLiteral("chat.room1") << true;
    QTest::addRow("other literal") << QByteArrayLiteral("chat.room1") << QByteArrayLiteral("chat.room2") << false;
    QTest::addRow("prefix is not a match") << QByteArrayLiteral("chat") << QByteArrayLiteral("chat.room1") << false;
    QTest::addRow("longer grant") << QByteArrayLiteral("chat.room1.x") << QByteArrayLiteral("chat.room1") << false;
    QTest::addRow("star, one token") << QByteArrayLiteral("chat.*") << QByteArrayLiteral("chat.room1") << true;
    QTest::addRow("star needs its token") << QByteArrayLiteral("chat.*") << QByteArrayLiteral("chat") << false;
    QTest::addRow("star, not two tokens")
        << QByteArrayLiteral("chat.*") << QByteArrayLiteral("chat.room1.x") << false;
    QTest::addRow("star in the middle") << QByteArrayLiteral("a.*.c") << QByteArrayLiteral("a.b.c") << true;
    QTest::addRow("star in the middle, wrong tail")
        << QByteArrayLiteral("a.*.c") << QByteArrayLiteral("a.b.d") << false;
    QTest::addRow("rest, one token") << QByteArrayLiteral("chat.>") << QByteArrayLiteral("chat.room1") << true;
    QTest::addRow("rest, many tokens") << QByteArrayLiteral("chat.>") << QByteArrayLiteral("chat.a.b.c") << true;
    QTest::addRow("rest needs a token") << QByteArrayLiteral("chat.>") << QByteArrayLiteral("chat") << false;
    QTest::addRow("rest, other root") << QByteArrayLiteral("chat.>") << QByteArrayLiteral("news.a") << false;
    QTest::addRow("lone rest, everything") << QByteArrayLiteral(">") << QByteArrayLiteral("any.thing.at.all") << true;
    QTest::addRow("lone star, one token") << QByteArrayLiteral("*") << QByteArrayLiteral("single") << true;
    QTest::addRow("lone star, not two") << QByteArrayLiteral("*") << QByteArrayLiteral("two.tokens") << false;
    QTest::addRow("star inside a token is literal")
        << QByteArrayLiteral("chat.ro*m") << QByteArrayLiteral("chat.room") << false;
    QTest::addRow("case matters") << QByteArrayLiteral("Chat.room") << QByteArrayLiteral("chat.room") << false;
}

void tst_GrantTable::allows()
{
    QFETCH(QByteArray, grant);
    QFETCH(QByteArray, literal);
    QFETCH(bool, allowed);

    GrantTable table;
    QVERIFY(!table.allows(Command::Epub, literal)); // nothing granted yet
    QVERIFY(table.add(Command::Epub, grant, 5));
    QCOMPARE(table.allows(Command::Epub, literal), allowed);
    // A granted literal is also covered as a SUB pattern of the same kind.
    QCOMPARE(table.covers(Command::Epub, literal), allowed);
    table.removeGranter(5);
    QVERIFY(!table.allows(Command::Epub, literal));
}

void tst_GrantTable::kindsAreSeparate()
{
    GrantTable table;
    table.add(Command::Epub, QByteArrayLiteral("pub.>"), 5);
    table.add(Command::Esub, QByteArrayLiteral("sub.>"), 5);
    table.add(Command::Ereq, QByteArrayLiteral("req.>"), 5);

    QVERIFY(table.allows(Command::Epub, "pub.x"));
    QVERIFY(!table.allows(Command::Esub, "pub.x"));
    QVERIFY(!table.allows(Command::Ereq, "pub.x"));
    QVERIFY(!table.allows(Command::Epub, "sub.x"));
    QVERIFY(table.allows(Command::Esub, "sub.x"));
    QVERIFY(!table.allows(Command::Ereq, "sub.x"));
    QVERIFY(!table.allows(Command::Epub, "req.x"));
    QVERIFY(!table.allows(Command::Esub, "req.x"));
    QVERIFY(table.allows(Command::Ereq, "req.x"));
    QVERIFY(table.covers(Command::Esub, "sub.*"));
    QVERIFY(!table.covers(Command::Esub, "pub.*"));
}

void tst_GrantTable::covers_data()
{
    QTest::addColumn<QList<QByteArray>>("grants");
    QTest::addColumn<QByteArray>("pattern"); // a client's SUB
    QTest::addColumn<bool>("covered");

    using P = QList<QByteArray>;
    QTest::addRow("no grants") << P() << QByteArrayLiteral("chat.*") << false;
    QTest::addRow("same star pattern") << P{"chat.*"} << QByteArrayLiteral("chat.*") << true;
    QTest::addRow("same rest pattern") << P{"chat.>"} << QByteArrayLiteral("chat.>") << true;
    QTest::addRow("rest covers star") << P{"chat.>"} << QByteArrayLiteral("chat.*") << true;
    QTest::addRow("rest covers deeper star") << P{"chat.>"} << QByteArrayLiteral("chat.*.x") << true;
    QTest::addRow("rest covers deeper rest") << P{"chat.>"} << QByteArrayLiteral("chat.room.>") << true;
    QTest::addRow("star does not cover rest") << P{"chat.*"} << QByteArrayLiteral("chat.>") << false;
    QTest::addRow("literal grant does not cover star")
        << P{"chat.room1"} << QByteArrayLiteral("chat.*") << false;
    QTest::addRow("star covers literal SUB") << P{"chat.*"} << QByteArrayLiteral("chat.room1") << true;
    QTest::addRow("star does not cover deeper literal")
        << P{"chat.*"} << QByteArrayLiteral("chat.room1.x") << false;
    QTest::addRow("lone rest covers everything") << P{">"} << QByteArrayLiteral("*.*.>") << true;
    QTest::addRow("lone rest covers lone rest") << P{">"} << QByteArrayLiteral(">") << true;
    QTest::addRow("star-star covers star-literal") << P{"*.*"} << QByteArrayLiteral("*.room") << true;
    QTest::addRow("star-literal does not cover star-star") << P{"*.room"} << QByteArrayLiteral("*.*") << false;
    QTest::addRow("other root") << P{"news.>"} << QByteArrayLiteral("chat.*") << false;
    QTest::addRow("rest does not cover its own root") << P{"chat.>"} << QByteArrayLiteral("chat") << false;
    QTest::addRow("one of several grants covers")
        << P{"news.*", "chat.room1", "chat.>"} << QByteArrayLiteral("chat.*") << true;
    // Decision (granttable.h): one grant must cover the whole pattern; two grants
    // that together cover it are not enough.
    QTest::addRow("union of grants is not enough")
        << P{"chat.a", "chat.b"} << QByteArrayLiteral("chat.*") << false;
}

void tst_GrantTable::covers()
{
    QFETCH(QList<QByteArray>, grants);
    QFETCH(QByteArray, pattern);
    QFETCH(bool, covered);

    GrantTable table;
    quint64 granter = 10;
    for (const QByteArray &grant : grants)
        QVERIFY(table.add(Command::Esub, grant, granter++));
    QCOMPARE(table.covers(Command::Esub, pattern), covered);
    // Another kind never covers it.
    QVERIFY(!table.covers(Command::Epub, pattern));

    // With every granter gone, nothing is covered.
    for (quint64 id = 10; id < granter; ++id)
        table.removeGranter(id);
    QVERIFY(!table.covers(Command::Esub, pattern));
}

void tst_GrantTable::removeGranter()
{
    GrantTable table;
    table.add(Command::Epub, QByteArrayLiteral("a.>"), 5);
    table.add(Command::Esub, QByteArrayLiteral("a.>"), 5);
    table.add(Command::Ereq, QByteArrayLiteral("svc.*"), 5);
    table.add(Command::Esub, QByteArrayLiteral("b.*"), 6);

    const Grants gone = table.removeGranter(5);
    QCOMPARE(sorted(gone), sorted(Grants{{Command::Epub, "a.>"}, {Command::Esub, "a.>"}, {Command::Ereq, "svc.*"}}));
    QVERIFY(table.grantsOf(5).isEmpty());
    QVERIFY(!table.allows(Command::Epub, "a.x"));
    QVERIFY(!table.allows(Command::Esub, "a.x"));
    QVERIFY(!table.allows(Command::Ereq, "svc.x"));
    QVERIFY(table.granters(Command::Epub, "a.>").isEmpty());
    // The other granter's grant is untouched.
    QVERIFY(table.allows(Command::Esub, "b.x"));
    QCOMPARE(table.all(), (Grants{{Command::Esub, "b.*"}}));
    // Leaving twice reports nothing the second time.
    QVERIFY(table.removeGranter(5).isEmpty());
}

void tst_GrantTable::removeGranterSharedPattern()
{
    GrantTable table;
    // Two services grant the same pattern; one also holds a grant of its own.
    table.add(Command::Esub, QByteArrayLiteral("chat.>"), 5);
    table.add(Command::Esub, QByteArrayLiteral("chat.>"), 6);
    table.add(Command::Esub, QByteArrayLiteral("own.*"), 5);

    // The first to leave takes only what nobody else holds (4.5: a grant lives
    // as long as one service that made it stays connected).
    QCOMPARE(table.removeGranter(5), (Grants{{Command::Esub, "own.*"}}));
    QVERIFY(table.allows(Command::Esub, "chat.x"));
    QVERIFY(table.covers(Command::Esub, "chat.*"));
    QVERIFY(!table.allows(Command::Esub, "own.x"));
    QCOMPARE(table.granters(Command::Esub, "chat.>"), (Ids{6}));

    // The last one takes the shared grant.
    QCOMPARE(table.removeGranter(6), (Grants{{Command::Esub, "chat.>"}}));
    QVERIFY(!table.allows(Command::Esub, "chat.x"));
    QVERIFY(!table.covers(Command::Esub, "chat.*"));
    QVERIFY(table.all().isEmpty());
}

void tst_GrantTable::permanentGrantsStay()
{
    GrantTable table;
    QVERIFY(table.add(Command::Epub, QByteArrayLiteral("public.>"), GrantTable::Permanent));
    QVERIFY(table.add(Command::Epub, QByteArrayLiteral("public.>"), 5));
    QVERIFY(table.add(Command::Epub, QByteArrayLiteral("other.>"), 5));

    // The service leaving does not take the configured grant with it.
    QCOMPARE(table.removeGranter(5), (Grants{{Command::Epub, "other.>"}}));
    QVERIFY(table.allows(Command::Epub, "public.news"));
    QCOMPARE(table.granters(Command::Epub, "public.>"), (Ids{GrantTable::Permanent}));
    QCOMPARE(table.grantsOf(GrantTable::Permanent), (Grants{{Command::Epub, "public.>"}}));
    QCOMPARE(table.all(), (Grants{{Command::Epub, "public.>"}}));

    // Nor does any number of other granters coming and going.
    for (quint64 id = 100; id < 110; ++id) {
        QVERIFY(table.add(Command::Epub, QByteArrayLiteral("public.>"), id));
        QVERIFY(table.removeGranter(id).isEmpty());
    }
    QVERIFY(table.allows(Command::Epub, "public.news"));
}

void tst_GrantTable::removeUnknownGranter()
{
    GrantTable table;
    QVERIFY(table.removeGranter(42).isEmpty());
    table.add(Command::Esub, QByteArrayLiteral("x.*"), 5);
    QVERIFY(table.removeGranter(42).isEmpty());
    QVERIFY(table.allows(Command::Esub, "x.y"));
}

void tst_GrantTable::grantsOf()
{
    GrantTable table;
    QVERIFY(table.grantsOf(5).isEmpty());
    table.add(Command::Ereq, QByteArrayLiteral("svc.math"), 5);
    table.add(Command::Epub, QByteArrayLiteral("chat.>"), 5);
    table.add(Command::Epub, QByteArrayLiteral("chat.>"), 5); // repeated: not listed twice
    table.add(Command::Esub, QByteArrayLiteral("chat.*"), 6);
    // In the order they were made.
    QCOMPARE(table.grantsOf(5), (Grants{{Command::Ereq, "svc.math"}, {Command::Epub, "chat.>"}}));
    QCOMPARE(table.grantsOf(6), (Grants{{Command::Esub, "chat.*"}}));
    QVERIFY(table.grantsOf(7).isEmpty());
}

void tst_GrantTable::granters()
{
    GrantTable table;
    QVERIFY(table.granters(Command::Esub, "chat.>").isEmpty());
    table.add(Command::Esub, QByteArrayLiteral("chat.>"), 7);
    table.add(Command::Esub, QByteArrayLiteral("chat.>"), 5);
    table.add(Command::Esub, QByteArrayLiteral("chat.>"), GrantTable::Permanent);
    table.add(Command::Epub, QByteArrayLiteral("chat.>"), 9);
    QCOMPARE(sorted(table.granters(Command::Esub, "chat.>")), (Ids{0, 5, 7}));
    QCOMPARE(table.granters(Command::Epub, "chat.>"), (Ids{9}));
    // Exact pattern only: a pattern covered by a grant has no granters of its own.
    QVERIFY(table.granters(Command::Esub, "chat.*").isEmpty());
    QVERIFY(table.granters(Command::Ereq, "chat.>").isEmpty());
}

void tst_GrantTable::all()
{
    GrantTable table;
    QVERIFY(table.all().isEmpty());
    table.add(Command::Epub, QByteArrayLiteral("a.>"), 5);
    table.add(Command::Epub, QByteArrayLiteral("a.>"), 6); // same grant, two granters: listed once
    table.add(Command::Esub, QByteArrayLiteral("a.>"), 5);
    table.add(Command::Ereq, QByteArrayLiteral("svc.*"), GrantTable::Permanent);
    table.add(Command::Esub, QByteArrayLiteral("b.c"), 7);
    QCOMPARE(sorted(table.all()), sorted(Grants{{Command::Epub, "a.>"},
                                                 {Command::Esub, "a.>"},
                                                 {Command::Ereq, "svc.*"},
                                                 {Command::Esub, "b.c"}}));
    table.removeGranter(7);
    QCOMPARE(sorted(table.all()),
             sorted(Grants{{Command::Epub, "a.>"}, {Command::Esub, "a.>"}, {Command::Ereq, "svc.*"}}));
}

QTEST_APPLESS_MAIN(tst_GrantTable)
#include "tst_granttable.moc"
