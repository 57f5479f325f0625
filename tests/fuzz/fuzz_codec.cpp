// fuzz_codec: the pure parse functions of shared/ (docs/protocol.md §3) under
// libFuzzer, and the same properties replayed from files in the normal build.
//
// Input: one mode byte, then the frame.
//   bit 0: binary frame          bit 1: read as the broker's output (Direction::FromBroker)
//   bit 2: tiny limits (so that every 413 path and the target length limit are reachable)
// The frame's lines also feed the target and pattern functions (target.h,
// patterntree.h).
//
// Every property violated ends in fuzzCheck(), which aborts: libFuzzer reports it
// as a crash, and the replay test fails.

#include "codec.h"
#include "fuzzcheck.h"
#include "patterntree.h"
#include "target.h"

#include <QByteArrayList>

#include <cstdint>

using namespace Middleman;

namespace {

// A lone CR inside a line is an ordinary byte (section 3.1: only a CR right before
// LF belongs to the line end); an LF would end the line.
bool hasLineBreak(QByteArrayView text)
{
    return text.contains('\n');
}

bool hasControl(QByteArrayView text)
{
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f)
            return true;
    }
    return false;
}

// What serialize() is documented to change (docs/protocol.md §3.5): only the first
// Content-Length is kept, with its value set to the body's size; one is appended
// when the body holds a CR.
Message normalized(const Message &message)
{
    Message out = message;
    out.headers.clear();
    bool length = false;
    for (const Header &h : message.headers) {
        if (headerNameEquals(h.name, HeaderName::ContentLength)) {
            if (length)
                continue;
            length = true;
            out.headers.append(Header{h.name, QByteArray::number(message.body.size())});
        } else {
            out.headers.append(h);
        }
    }
    if (!length && message.body.contains('\r'))
        out.headers.append(Header{HeaderName::ContentLength.toByteArray(), QByteArray::number(message.body.size())});
    return out;
}

CodecLimits generous(const CodecLimits &limits)
{
    CodecLimits out;
    out.maxMessageSize = qsizetype(1) << 40;
    out.maxHeaders = 1 << 30;
    out.maxHeaderBytes = qsizetype(1) << 40;
    out.maxTargetLength = limits.maxTargetLength;
    return out;
}

// A parsed message, written out and read again, is the same message (section 3),
// and writing is a fixpoint.
void checkRoundTrip(const Message &message, const CodecLimits &limits, Direction direction)
{
    const QByteArray wire = serialize(message);
    FrameReader reader(wire, generous(limits), message.binary, direction);
    Message again;
    ParseError error;
    fuzzCheck(reader.next(again, error) == FrameReader::Item::Message, "serialised message does not parse again",
              wire);
    fuzzCheck(reader.next(again, error) == FrameReader::Item::End, "serialised message reads as more than one",
              wire);
    FrameReader reader2(wire, generous(limits), message.binary, direction);
    reader2.next(again, error);
    fuzzCheck(again == normalized(message), "round trip changed the message", wire);
    fuzzCheck(serialize(again) == wire, "serialising is not a fixpoint", wire);
    fuzzCheck(validateMessage(again, limits, nullptr, direction), "round trip broke validity", wire);
}

// A refusal becomes an ERR (section 4.8): it must say why in one line, and the ERR
// the broker builds from it must itself be a well-formed broker message.
void checkError(const ParseError &error, const CodecLimits &limits)
{
    fuzzCheck(error.status == 400 || error.status == 413, "parse error with an unexpected status", error.reason);
    fuzzCheck(!error.reason.isEmpty(), "parse error without a reason", error.reason);
    fuzzCheck(!hasControl(error.reason), "parse error reason holds a control character", error.reason);
    fuzzCheck(!hasControl(error.reqId), "echoed ReqID holds a control character", error.reqId);
    fuzzCheck(error.target.isEmpty() || Target::checkSyntax(error.target, limits.maxTargetLength),
              "echoed target is not a valid target", error.target);
    fuzzCheck(error.command.isEmpty() || commandFromName(error.command).has_value(),
              "echoed command is not a command", error.command);

    Message err;
    err.command = Command::Err;
    err.target = error.target.isEmpty() ? QByteArray("-") : error.target;
    err.headers.append(Header{"Status", QByteArray::number(error.status)});
    if (!error.reqId.isEmpty())
        err.headers.append(Header{"ReqID", error.reqId});
    if (!error.command.isEmpty())
        err.headers.append(Header{"Command", error.command});
    err.body = error.reason;
    const QByteArray wire = serialize(err);
    Message back;
    ParseError backError;
    FrameReader reader(wire, generous(limits), false, Direction::FromBroker);
    fuzzCheck(reader.next(back, backError) == FrameReader::Item::Message, "ERR built from a parse error does not parse",
              wire);
    fuzzCheck(back == err, "ERR built from a parse error changed on the way", wire);
}

void checkFrame(QByteArrayView frame, const CodecLimits &limits, bool binary, Direction direction)
{
    FrameReader reader(frame, limits, binary, direction);
    Message message;
    ParseError error;
    // Every item consumes at least one byte, so there are at most size + 1 of them.
    qsizetype items = 0;
    for (;;) {
        fuzzCheck(++items <= frame.size() + 1, "FrameReader does not make progress", frame);
        const FrameReader::Item item = reader.next(message, error);
        if (item == FrameReader::Item::End)
            break;
        if (item == FrameReader::Item::Message) {
            fuzzCheck(message.binary == binary, "message lost its frame type", frame);
            fuzzCheck(validateMessage(message, limits, nullptr, direction), "returned message is not valid",
                      frame);
            fuzzCheck(direction == Direction::FromBroker || message.command != Command::Err,
                      "ERR accepted from a peer", frame);
            for (const Header &h : std::as_const(message.headers)) {
                fuzzCheck(!h.name.isEmpty() && !hasLineBreak(h.name) && !hasLineBreak(h.value),
                          "header holds a line break", frame);
                fuzzCheck(h.value == h.value.trimmed(), "header value not trimmed", h.value);
            }
            fuzzCheck(message.headers.size() <= limits.maxHeaders, "more headers than the limit",
                      frame);
            checkRoundTrip(message, limits, direction);
        } else {
            checkError(error, limits);
        }
    }

    // parseOne agrees with the reader on single messages.
    Message one;
    ParseError oneError;
    if (direction == Direction::FromPeer && !binary && parseOne(frame, limits, &one, &oneError)) {
        FrameReader again(frame, limits);
        Message first;
        ParseError firstError;
        fuzzCheck(again.next(first, firstError) == FrameReader::Item::Message && first == one,
                  "parseOne disagrees with FrameReader", frame);
    }
}

// Target rules (target.h) and the pattern tree against the plain matcher.
void checkTargets(QByteArrayView data)
{
    const QByteArrayList lines = data.toByteArray().split('\n');
    QList<QByteArray> patterns;
    QList<QByteArray> literals;
    for (const QByteArray &line : lines) {
        if (patterns.size() + literals.size() >= 16)
            break;
        const bool syntax = Target::checkSyntax(line, Target::DefaultMaxLength);
        const bool literal = Target::isLiteral(line);
        const bool pattern = Target::isPattern(line);
        fuzzCheck(!literal || pattern, "a literal that is not a pattern", line);
        fuzzCheck(!pattern || syntax, "a pattern that fails the syntax check", line);
        QByteArray why;
        if (!Target::isPattern(line, Target::DefaultMaxLength, &why))
            fuzzCheck(!why.isEmpty() && !hasControl(why), "refused target without a clean reason", line);
        if (pattern) {
            fuzzCheck(literal == !Target::hasWildcard(line), "literal and wildcard disagree", line);
            fuzzCheck(Target::covers(line, line), "a pattern does not cover itself", line);
            patterns.append(line);
        }
        if (literal) {
            fuzzCheck(Target::matches(line, line), "a literal does not match itself", line);
            literals.append(line);
        }
    }

    PatternTree<int> tree;
    for (qsizetype i = 0; i < patterns.size(); ++i)
        tree.insert(patterns.at(i), int(i));
    for (const QByteArray &literal : std::as_const(literals)) {
        QList<int> found;
        tree.match(literal, [&found](int v) { found.append(v); });
        for (qsizetype i = 0; i < patterns.size(); ++i) {
            const bool expected = Target::matches(patterns.at(i), literal);
            // The same pattern may come twice (two lines); each was inserted under its own value.
            if (found.count(int(i)) != (expected ? 1 : 0))
                fuzzFail("PatternTree::match disagrees with Target::matches", patterns.at(i) + ' ' + literal);
            for (qsizetype j = 0; j < patterns.size(); ++j) {
                // covers(g, s) promises: every literal s matches, g matches too.
                if (expected && Target::covers(patterns.at(j), patterns.at(i)) && !Target::matches(patterns.at(j), literal))
                    fuzzFail("covers() promised a match that fails",
                             patterns.at(j) + ' ' + patterns.at(i) + ' ' + literal);
            }
        }
    }
    for (qsizetype i = 0; i < patterns.size(); ++i)
        tree.remove(patterns.at(i), int(i));
    fuzzCheck(tree.isEmpty(), "PatternTree not empty after removing everything", data.toByteArray());
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const quint8 mode = data[0];
    const QByteArrayView frame(reinterpret_cast<const char *>(data + 1), qsizetype(size - 1));
    CodecLimits limits;
    if (mode & 4) {
        limits.maxMessageSize = 128;
        limits.maxHeaders = 4;
        limits.maxHeaderBytes = 64;
        limits.maxTargetLength = 16;
    }
    checkFrame(frame, limits, mode & 1, (mode & 2) ? Direction::FromBroker : Direction::FromPeer);
    checkTargets(frame);
    return 0;
}
