#pragma once
// Targets and patterns (docs/protocol.md sections 3.2 and 4.5): pure functions, no state.
//
// A target is 1..maxLength bytes with no space and no control character.
// Tokens are separated by '.', and none may be empty.
// In a pattern, '*' as a whole token matches exactly one token and '>' as the
// last token matches one or more tokens (the NATS rules).
//
//   valid literals:   "chat", "chat.room1", "a-b.c_d", "x*y" ('*' inside a token is literal)
//   invalid literals: "", "a..b", ".a", "a.", "a b", "chat.*", "chat.>"
//   valid patterns:   "chat.*", "chat.>", "*", ">", "*.*.x", "a.*.>"
//   invalid patterns: "a.>.b" ('>' not last), "a..b", "a.", ".a"
//   "chat.*" matches "chat.room1" but not "chat" nor "chat.room1.x";
//   "chat.>" matches "chat.room1" and "chat.room1.x" but not "chat".

#include <QByteArray>
#include <QByteArrayView>

namespace Middleman::Target {

inline constexpr int DefaultMaxLength = 256;

// Length and characters only (section 3.2): what every command's target obeys.
bool checkSyntax(QByteArrayView target, int maxLength, QByteArray *why = nullptr);
// A literal target for PUB and REQ: syntax, non-empty tokens, no wildcard token.
bool isLiteral(QByteArrayView target, int maxLength = DefaultMaxLength, QByteArray *why = nullptr);
// A pattern for SUB, UNSUB and grants: syntax, non-empty tokens, '>' last only.
bool isPattern(QByteArrayView target, int maxLength = DefaultMaxLength, QByteArray *why = nullptr);
// True when the pattern contains a '*' or '>' token.
bool hasWildcard(QByteArrayView pattern);

// Does `pattern` match the literal target `literal`? Both are assumed valid.
bool matches(QByteArrayView pattern, QByteArrayView literal);
// Does every literal that `specific` matches also match `general`?
// Used to decide whether a grant allows a client's (possibly wildcard) SUB.
bool covers(QByteArrayView general, QByteArrayView specific);

} // namespace Middleman::Target
