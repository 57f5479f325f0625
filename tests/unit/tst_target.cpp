// Unit tests for Target: literal and pattern syntax, matching and covering
// (docs/protocol.md sections 3.2 and 4.5, the NATS wildcard rules).

#include "target.h"

#include <QTest>

using namespace Middleman;

class tst_Target : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void checkSyntax_data();
    void checkSyntax();
    void isLiteral_data();
    void isLiteral();
    void isPattern_data();
    void isPattern();
    void hasWildcard_data();
    void hasWildcard();
    void matches_data();
    void matches();
    void covers_data();
    void covers();
    void coversAgreesWithMatches_data();
    void coversAgreesWithMatches();
};

void tst_Target::checkSyntax_data()
{
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<int>("maxLength");
    QTest::addColumn<bool>("valid");
    QTest::addColumn<QByteArray>("why"); // the exact reason, empty when valid

    const int max = Target::DefaultMaxLength;
    QTest::addRow("simple") << QByteArrayLiteral("chat") << max << true << QByteArray();
    QTest::addRow("dash for OPT") << QByteArrayLiteral("-") << max << true << QByteArray();
    // Syntax alone does not look at tokens.
    QTest::addRow("empty token passes syntax") << QByteArrayLiteral("a..b") << max << true << QByteArray();
    QTest::addRow("wildcard passes syntax") << QByteArrayLiteral("a.>") << max << true << QByteArray();
    QTest::addRow("utf-8 bytes") << QByteArrayLiteral("caf\xc3\xa9") << max << true << QByteArray();
    QTest::addRow("exactly max length") << QByteArray(max, 'a') << max << true << QByteArray();
    QTest::addRow("custom limit, at it") << QByteArray(8, 'a') << 8 << true << QByteArray();

    QTest::addRow("empty") << QByteArray() << max << false << QByteArrayLiteral("missing target");
    QTest::addRow("one past max length") << QByteArray(max + 1, 'a') << max << false
                                         << QByteArrayLiteral("target too long");
    QTest::addRow("custom limit, past it") << QByteArray(9, 'a') << 8 << false
                                           << QByteArrayLiteral("target too long");
    QTest::addRow("space") << QByteArrayLiteral("a b") << max << false << QByteArrayLiteral("target contains a space or control character");
    QTest::addRow("tab") << QByteArrayLiteral("a\tb") << max << false << QByteArrayLiteral("target contains a space or control character");
    QTest::addRow("NUL") << QByteArray("a\0b", 3) << max << false << QByteArrayLiteral("target contains a space or control character");
    QTest::addRow("CR") << QByteArrayLiteral("a\r") << max << false << QByteArrayLiteral("target contains a space or control character");
    QTest::addRow("DEL") << QByteArrayLiteral("a\x7f") << max << false << QByteArrayLiteral("target contains a space or control character");
}

void tst_Target::checkSyntax()
{
    QFETCH(QByteArray, target);
    QFETCH(int, maxLength);
    QFETCH(bool, valid);
    QFETCH(QByteArray, why);

    QByteArray reason;
    QCOMPARE(Target::checkSyntax(target, maxLength, &reason), valid);
    QCOMPARE(reason, why); // the exact reason; none when valid
    // The reason is optional.
    QCOMPARE(Target::checkSyntax(target, maxLength), valid);
}

void tst_Target::isLiteral_data()
{
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<bool>("valid");
    QTest::addColumn<QByteArray>("why"); // the exact reason, empty when valid

    QTest::addRow("one token") << QByteArrayLiteral("chat") << true << QByteArray();
    QTest::addRow("two tokens") << QByteArrayLiteral("chat.room1") << true << QByteArray();
    QTest::addRow("dash and underscore") << QByteArrayLiteral("a-b.c_d") << true << QByteArray();
    QTest::addRow("star inside a token") << QByteArrayLiteral("x*y") << true << QByteArray();
    QTest::addRow("gt inside a token") << QByteArrayLiteral("a.b>c") << true << QByteArray();
    QTest::addRow("many tokens") << QByteArrayLiteral("a.b.c.d.e.f.g") << true << QByteArray();
    QTest::addRow("max length") << QByteArray(Target::DefaultMaxLength, 'x') << true << QByteArray();

    QTest::addRow("empty") << QByteArray() << false << QByteArrayLiteral("missing target");
    QTest::addRow("double dot") << QByteArrayLiteral("a..b") << false << QByteArrayLiteral("target has an empty token");
    QTest::addRow("leading dot") << QByteArrayLiteral(".a") << false << QByteArrayLiteral("target has an empty token");
    QTest::addRow("trailing dot") << QByteArrayLiteral("a.") << false << QByteArrayLiteral("target has an empty token");
    QTest::addRow("only a dot") << QByteArrayLiteral(".") << false << QByteArrayLiteral("target has an empty token");
    QTest::addRow("space") << QByteArrayLiteral("a b") << false << QByteArrayLiteral("target contains a space or control character");
    QTest::addRow("star token") << QByteArrayLiteral("chat.*") << false << QByteArrayLiteral("wildcards are not allowed in this target");
    QTest::addRow("gt token") << QByteArrayLiteral("chat.>") << false << QByteArrayLiteral("wildcards are not allowed in this target");
    QTest::addRow("lone star") << QByteArrayLiteral("*") << false << QByteArrayLiteral("wildcards are not allowed in this target");
    QTest::addRow("lone gt") << QByteArrayLiteral(">") << false << QByteArrayLiteral("wildcards are not allowed in this target");
    QTest::addRow("too long") << QByteArray(Target::DefaultMaxLength + 1, 'x') << false
                              << QByteArrayLiteral("target too long");
}

void tst_Target::isLiteral()
{
    QFETCH(QByteArray, target);
    QFETCH(bool, valid);
    QFETCH(QByteArray, why);

    QByteArray reason;
    QCOMPARE(Target::isLiteral(target, Target::DefaultMaxLength, &reason), valid);
    QCOMPARE(reason, why); // the exact reason; none when valid
    QCOMPARE(Target::isLiteral(target), valid);
}

void tst_Target::isPattern_data()
{
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<bool>("valid");
    QTest::addColumn<QByteArray>("why"); // the exact reason, empty when valid

    QTest::addRow("literal") << QByteArrayLiteral("chat.room1") << true << QByteArray();
    QTest::addRow("star last") << QByteArrayLiteral("chat.*") << true << QByteArray();
    QTest::addRow("gt last") << QByteArrayLiteral("chat.>") << true << QByteArray();
    QTest::addRow("lone star") << QByteArrayLiteral("*") << true << QByteArray();
    QTest::addRow("lone gt") << QByteArrayLiteral(">") << true << QByteArray();
    QTest::addRow("stars then literal") << QByteArrayLiteral("*.*.x") << true << QByteArray();
    QTest::addRow("star then gt") << QByteArrayLiteral("a.*.>") << true << QByteArray();
    QTest::addRow("star inside a token") << QByteArrayLiteral("a.x*") << true << QByteArray();
    QTest::addRow("gt inside a token, not last") << QByteArrayLiteral("a>.b") << true << QByteArray();

    QTest::addRow("gt not last") << QByteArrayLiteral("a.>.b") << false << QByteArrayLiteral("'>' must be the last token");
    QTest::addRow("gt first of two") << QByteArrayLiteral(">.a") << false << QByteArrayLiteral("'>' must be the last token");
    QTest::addRow("two gts") << QByteArrayLiteral(">.>") << false << QByteArrayLiteral("'>' must be the last token");
    QTest::addRow("double dot") << QByteArrayLiteral("a..b") << false << QByteArrayLiteral("target has an empty token");
    QTest::addRow("trailing dot") << QByteArrayLiteral("a.") << false << QByteArrayLiteral("target has an empty token");
    QTest::addRow("leading dot") << QByteArrayLiteral(".a") << false << QByteArrayLiteral("target has an empty token");
    // Tokens are checked left to right: the '>' is found not last before the empty token.
    QTest::addRow("empty token after gt") << QByteArrayLiteral("a.>.") << false
                                          << QByteArrayLiteral("'>' must be the last token");
    QTest::addRow("empty") << QByteArray() << false << QByteArrayLiteral("missing target");
    QTest::addRow("control character") << QByteArrayLiteral("a.\x01") << false
                                       << QByteArrayLiteral("target contains a space or control character");
    QTest::addRow("too long") << QByteArray(Target::DefaultMaxLength + 1, '*') << false
                              << QByteArrayLiteral("target too long");
}

void tst_Target::isPattern()
{
    QFETCH(QByteArray, target);
    QFETCH(bool, valid);
    QFETCH(QByteArray, why);

    QByteArray reason;
    QCOMPARE(Target::isPattern(target, Target::DefaultMaxLength, &reason), valid);
    QCOMPARE(reason, why); // the exact reason; none when valid
    QCOMPARE(Target::isPattern(target), valid);
}

void tst_Target::hasWildcard_data()
{
    QTest::addColumn<QByteArray>("pattern");
    QTest::addColumn<bool>("wildcard");

    QTest::addRow("literal") << QByteArrayLiteral("chat.room1") << false;
    QTest::addRow("star inside a token") << QByteArrayLiteral("x*y.z") << false;
    QTest::addRow("gt inside a token") << QByteArrayLiteral("a.>b") << false;
    QTest::addRow("star token") << QByteArrayLiteral("chat.*") << true;
    QTest::addRow("gt token") << QByteArrayLiteral("chat.>") << true;
    QTest::addRow("star first") << QByteArrayLiteral("*.x") << true;
    QTest::addRow("lone gt") << QByteArrayLiteral(">") << true;
}

void tst_Target::hasWildcard()
{
    QFETCH(QByteArray, pattern);
    QFETCH(bool, wildcard);
    QCOMPARE(Target::hasWildcard(pattern), wildcard);
}

void tst_Target::matches_data()
{
    QTest::addColumn<QByteArray>("pattern");
    QTest::addColumn<QByteArray>("literal");
    QTest::addColumn<bool>("match");

    QTest::addRow("same literal") << QByteArrayLiteral("chat.room1") << QByteArrayLiteral("chat.room1") << true;
    QTest::addRow("different literal") << QByteArrayLiteral("chat.room1") << QByteArrayLiteral("chat.room2") << false;
    QTest::addRow("literal is a prefix") << QByteArrayLiteral("chat") << QByteArrayLiteral("chat.room1") << false;
    QTest::addRow("literal is longer") << QByteArrayLiteral("chat.room1") << QByteArrayLiteral("chat") << false;
    QTest::addRow("token prefix is not a match") << QByteArrayLiteral("chat.room") << QByteArrayLiteral("chat.room1") << false;
    QTest::addRow("case matters") << QByteArrayLiteral("Chat") << QByteArrayLiteral("chat") << false;

    QTest::addRow("star one token") << QByteArrayLiteral("chat.*") << QByteArrayLiteral("chat.room1") << true;
    QTest::addRow("star needs a token") << QByteArrayLiteral("chat.*") << QByteArrayLiteral("chat") << false;
    QTest::addRow("star only one token") << QByteArrayLiteral("chat.*") << QByteArrayLiteral("chat.room1.x") << false;
    QTest::addRow("star first") << QByteArrayLiteral("*.room1") << QByteArrayLiteral("chat.room1") << true;
    QTest::addRow("star first, wrong tail") << QByteArrayLiteral("*.room1") << QByteArrayLiteral("chat.room2") << false;
    QTest::addRow("lone star, one token") << QByteArrayLiteral("*") << QByteArrayLiteral("a") << true;
    QTest::addRow("lone star, two tokens") << QByteArrayLiteral("*") << QByteArrayLiteral("a.b") << false;
    QTest::addRow("two stars") << QByteArrayLiteral("*.*") << QByteArrayLiteral("a.b") << true;
    QTest::addRow("stars in the middle") << QByteArrayLiteral("*.*.x") << QByteArrayLiteral("a.b.x") << true;
    QTest::addRow("stars in the middle, wrong last") << QByteArrayLiteral("*.*.x") << QByteArrayLiteral("a.b.y") << false;
    QTest::addRow("star in a token is literal") << QByteArrayLiteral("x*y") << QByteArrayLiteral("xay") << false;
    QTest::addRow("star in a token matches itself") << QByteArrayLiteral("x*y") << QByteArrayLiteral("x*y") << true;

    QTest::addRow("gt one token") << QByteArrayLiteral("chat.>") << QByteArrayLiteral("chat.room1") << true;
    QTest::addRow("gt several tokens") << QByteArrayLiteral("chat.>") << QByteArrayLiteral("chat.room1.x.y") << true;
    QTest::addRow("gt needs a token") << QByteArrayLiteral("chat.>") << QByteArrayLiteral("chat") << false;
    QTest::addRow("gt wrong prefix") << QByteArrayLiteral("chat.>") << QByteArrayLiteral("news.room1") << false;
    QTest::addRow("lone gt, one token") << QByteArrayLiteral(">") << QByteArrayLiteral("a") << true;
    QTest::addRow("lone gt, deep") << QByteArrayLiteral(">") << QByteArrayLiteral("a.b.c") << true;
    QTest::addRow("star then gt") << QByteArrayLiteral("a.*.>") << QByteArrayLiteral("a.b.c") << true;
    QTest::addRow("star then gt, too short") << QByteArrayLiteral("a.*.>") << QByteArrayLiteral("a.b") << false;
}

void tst_Target::matches()
{
    QFETCH(QByteArray, pattern);
    QFETCH(QByteArray, literal);
    QFETCH(bool, match);

    QVERIFY(Target::isPattern(pattern));
    QVERIFY(Target::isLiteral(literal));
    QCOMPARE(Target::matches(pattern, literal), match);
    // A literal pattern covers a literal exactly when it matches it.
    QCOMPARE(Target::covers(pattern, literal), match);
}

void tst_Target::covers_data()
{
    QTest::addColumn<QByteArray>("general");
    QTest::addColumn<QByteArray>("specific");
    QTest::addColumn<bool>("cover");

    QTest::addRow("same literal") << QByteArrayLiteral("a.b") << QByteArrayLiteral("a.b") << true;
    QTest::addRow("other literal") << QByteArrayLiteral("a.b") << QByteArrayLiteral("a.c") << false;
    QTest::addRow("literal vs longer literal") << QByteArrayLiteral("a") << QByteArrayLiteral("a.b") << false;
    QTest::addRow("literal does not cover star") << QByteArrayLiteral("a.b") << QByteArrayLiteral("a.*") << false;
    QTest::addRow("literal does not cover gt") << QByteArrayLiteral("a.b") << QByteArrayLiteral("a.>") << false;

    QTest::addRow("gt covers everything: literal") << QByteArrayLiteral(">") << QByteArrayLiteral("a") << true;
    QTest::addRow("gt covers star pattern") << QByteArrayLiteral(">") << QByteArrayLiteral("a.*") << true;
    QTest::addRow("gt covers lone star") << QByteArrayLiteral(">") << QByteArrayLiteral("*") << true;
    QTest::addRow("gt covers gt") << QByteArrayLiteral(">") << QByteArrayLiteral(">") << true;
    QTest::addRow("gt covers deeper gt") << QByteArrayLiteral(">") << QByteArrayLiteral("a.b.>") << true;
    QTest::addRow("prefixed gt covers itself") << QByteArrayLiteral("a.>") << QByteArrayLiteral("a.>") << true;
    QTest::addRow("prefixed gt covers deeper gt") << QByteArrayLiteral("a.>") << QByteArrayLiteral("a.b.>") << true;
    QTest::addRow("prefixed gt covers star") << QByteArrayLiteral("a.>") << QByteArrayLiteral("a.*") << true;
    QTest::addRow("prefixed gt does not cover its prefix") << QByteArrayLiteral("a.>") << QByteArrayLiteral("a") << false;
    QTest::addRow("prefixed gt does not cover gt") << QByteArrayLiteral("a.>") << QByteArrayLiteral(">") << false;
    QTest::addRow("prefixed gt, other prefix") << QByteArrayLiteral("a.>") << QByteArrayLiteral("b.c") << false;

    QTest::addRow("star covers literal") << QByteArrayLiteral("a.*") << QByteArrayLiteral("a.b") << true;
    QTest::addRow("star covers star") << QByteArrayLiteral("a.*") << QByteArrayLiteral("a.*") << true;
    QTest::addRow("star does not cover gt") << QByteArrayLiteral("a.*") << QByteArrayLiteral("a.>") << false;
    QTest::addRow("lone star does not cover gt") << QByteArrayLiteral("*") << QByteArrayLiteral(">") << false;
    QTest::addRow("lone star covers lone star") << QByteArrayLiteral("*") << QByteArrayLiteral("*") << true;
    QTest::addRow("star does not cover deeper") << QByteArrayLiteral("a.*") << QByteArrayLiteral("a.b.c") << false;
    QTest::addRow("star does not cover shorter") << QByteArrayLiteral("a.*") << QByteArrayLiteral("a") << false;
    QTest::addRow("star covers star then literal") << QByteArrayLiteral("*.*") << QByteArrayLiteral("*.x") << true;
    QTest::addRow("literal does not cover star in its place") << QByteArrayLiteral("*.x") << QByteArrayLiteral("*.*") << false;
    QTest::addRow("star-gt covers star-star") << QByteArrayLiteral("*.>") << QByteArrayLiteral("*.*") << true;
    QTest::addRow("star-gt does not cover gt") << QByteArrayLiteral("*.>") << QByteArrayLiteral(">") << false;
    QTest::addRow("star-star-gt does not cover a-gt") << QByteArrayLiteral("a.*.>") << QByteArrayLiteral("a.>") << false;
    QTest::addRow("a-gt covers a-star-gt") << QByteArrayLiteral("a.>") << QByteArrayLiteral("a.*.>") << true;
}

void tst_Target::covers()
{
    QFETCH(QByteArray, general);
    QFETCH(QByteArray, specific);
    QFETCH(bool, cover);

    QVERIFY(Target::isPattern(general));
    QVERIFY(Target::isPattern(specific));
    QCOMPARE(Target::covers(general, specific), cover);
}

// Brute force: over a small alphabet of literals, covers(g, s) must hold exactly
// when every literal that s matches is also matched by g. Literals up to four tokens
// from {a, b} are enough to tell apart every pattern in the table (depth <= 3).
void tst_Target::coversAgreesWithMatches_data()
{
    QTest::addColumn<QByteArray>("general");
    QTest::addColumn<QByteArray>("specific");

    const QList<QByteArray> patterns = {
        QByteArrayLiteral("a"),     QByteArrayLiteral("b"),     QByteArrayLiteral("*"),
        QByteArrayLiteral(">"),     QByteArrayLiteral("a.b"),   QByteArrayLiteral("a.*"),
        QByteArrayLiteral("*.b"),   QByteArrayLiteral("*.*"),   QByteArrayLiteral("a.>"),
        QByteArrayLiteral("*.>"),   QByteArrayLiteral("a.*.>"), QByteArrayLiteral("*.*.*"),
        QByteArrayLiteral("a.b.>"), QByteArrayLiteral("*.b.*"),
    };
    for (const QByteArray &g : patterns) {
        for (const QByteArray &s : patterns)
            QTest::addRow("%s covers %s", g.constData(), s.constData()) << g << s;
    }
}

void tst_Target::coversAgreesWithMatches()
{
    QFETCH(QByteArray, general);
    QFETCH(QByteArray, specific);

    QList<QByteArray> literals;
    QList<QByteArray> level = {QByteArrayLiteral("a"), QByteArrayLiteral("b")};
    for (int depth = 1; depth <= 4; ++depth) {
        literals += level;
        QList<QByteArray> deeper;
        for (const QByteArray &l : std::as_const(level)) {
            deeper.append(l + ".a");
            deeper.append(l + ".b");
        }
        level = deeper;
    }

    bool expected = true;
    for (const QByteArray &l : std::as_const(literals)) {
        if (Target::matches(specific, l) && !Target::matches(general, l)) {
            expected = false;
            break;
        }
    }
    // A pattern ending in '>' reaches past depth 4, where only another '>' can follow it.
    if (expected && specific.endsWith('>') && !general.endsWith('>'))
        expected = false;
    QCOMPARE(Target::covers(general, specific), expected);
}

QTEST_APPLESS_MAIN(tst_Target)
#include "tst_target.moc"
