#include "target.h"

#include <QByteArrayList>

namespace Middleman::Target {

namespace {

void setWhy(QByteArray *why, const char *text)
{
    if (why)
        *why = text;
}

// Walks the '.'-separated tokens of a view without allocating.
class Tokens
{
public:
    explicit Tokens(QByteArrayView text) : m_text(text) {}
    bool atEnd() const { return m_pos > m_text.size(); }
    QByteArrayView next()
    {
        const qsizetype dot = m_text.indexOf('.', m_pos);
        const qsizetype end = dot < 0 ? m_text.size() : dot;
        const QByteArrayView token = m_text.sliced(m_pos, end - m_pos);
        m_pos = end + 1;
        return token;
    }

private:
    QByteArrayView m_text;
    qsizetype m_pos = 0;
};

enum class Kind { Literal, Pattern };

bool checkTokens(QByteArrayView target, Kind kind, QByteArray *why)
{
    Tokens tokens(target);
    while (!tokens.atEnd()) {
        const QByteArrayView token = tokens.next();
        if (token.isEmpty()) {
            setWhy(why, "target has an empty token");
            return false;
        }
        const bool star = token == "*";
        const bool rest = token == ">";
        if (kind == Kind::Literal && (star || rest)) {
            setWhy(why, "wildcards are not allowed in this target");
            return false;
        }
        if (rest && !tokens.atEnd()) {
            setWhy(why, "'>' must be the last token");
            return false;
        }
    }
    return true;
}

} // namespace

bool checkSyntax(QByteArrayView target, int maxLength, QByteArray *why)
{
    if (target.isEmpty()) {
        setWhy(why, "missing target");
        return false;
    }
    if (target.size() > maxLength) {
        setWhy(why, "target too long");
        return false;
    }
    for (const char c : target) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f) {
            setWhy(why, "target contains a space or control character");
            return false;
        }
    }
    return true;
}

bool isLiteral(QByteArrayView target, int maxLength, QByteArray *why)
{
    return checkSyntax(target, maxLength, why) && checkTokens(target, Kind::Literal, why);
}

bool isPattern(QByteArrayView target, int maxLength, QByteArray *why)
{
    return checkSyntax(target, maxLength, why) && checkTokens(target, Kind::Pattern, why);
}

bool hasWildcard(QByteArrayView pattern)
{
    Tokens tokens(pattern);
    while (!tokens.atEnd()) {
        const QByteArrayView token = tokens.next();
        if (token == "*" || token == ">")
            return true;
    }
    return false;
}

bool matches(QByteArrayView pattern, QByteArrayView literal)
{
    Tokens p(pattern);
    Tokens l(literal);
    while (!p.atEnd()) {
        const QByteArrayView pt = p.next();
        if (pt == ">")
            return !l.atEnd(); // one or more tokens left
        if (l.atEnd())
            return false;
        const QByteArrayView lt = l.next();
        if (pt != "*" && pt != lt)
            return false;
    }
    return l.atEnd();
}

bool covers(QByteArrayView general, QByteArrayView specific)
{
    Tokens g(general);
    Tokens s(specific);
    while (!g.atEnd()) {
        const QByteArrayView gt = g.next();
        if (gt == ">")
            return !s.atEnd();
        if (s.atEnd())
            return false;
        const QByteArrayView st = s.next();
        if (st == ">")
            return false; // `specific` reaches arbitrarily deep where `general` does not
        if (gt == "*")
            continue;
        if (st == "*" || st != gt)
            return false;
    }
    return s.atEnd();
}

} // namespace Middleman::Target
