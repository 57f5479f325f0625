#pragma once
// Codec: parses WebSocket frames into messages and serialises messages (docs/protocol.md §3).
// Plain functions and a value-type reader; no thread affinity.

#include "message.h"
#include "target.h"

#include <QByteArray>
#include <QByteArrayView>

#include <optional>

namespace Middleman {

struct CodecLimits
{
    qsizetype maxMessageSize = 1024 * 1024; // one message, command line to terminator
    int maxHeaders = 64;
    qsizetype maxHeaderBytes = 16 * 1024; // header lines, line ends included
    int maxTargetLength = Target::DefaultMaxLength;
};

// Why a message was refused; becomes an ERR (section 4.8).
struct ParseError
{
    int status = 400;
    QByteArray reason;        // one human-readable line
    QByteArray command;       // upper-case command name when it was recognised
    QByteArray target;        // when it was read
    QByteArray reqId;         // when the message carried one
};

// Who wrote the frame: peers may not send ERR (section 4.8); the broker does.
enum class Direction { FromPeer, FromBroker };

// Reads the messages of one frame in order. Errors that leave the framing intact
// (a bad header, an unknown command, a too large message) are reported and reading
// goes on after that message's terminator; errors that break the framing (a missing
// terminator, a Content-Length past the end) end the frame.
class FrameReader
{
public:
    enum class Item { Message, Error, End };

    FrameReader(QByteArrayView frame, const CodecLimits &limits, bool binary = false,
                Direction direction = Direction::FromPeer)
        : m_frame(frame), m_limits(limits), m_binary(binary), m_direction(direction) {}

    // Fills `message` or `error` and says which; End once the frame is used up.
    Item next(Message &message, ParseError &error);
    // Where the message (or error) next() returned last begins in the frame.
    qsizetype messageStart() const { return m_start; }

private:
    bool readLine(QByteArrayView &line);
    bool skipToTerminator(ParseError &error);
    Item fail(ParseError &error, int status, QByteArray reason, bool resync);

    QByteArrayView m_frame;
    CodecLimits m_limits;
    bool m_binary;
    Direction m_direction;
    qsizetype m_pos = 0;
    qsizetype m_start = 0; // where the message being read begins
    bool m_done = false;
};

// Rules beyond syntax that every command has (sections 4.1-4.5 and 4.8): literal PUB and REQ
// targets, valid patterns in SUB/UNSUB and grants, ReqID on REQ and RES, ERR only
// from the broker. FrameReader applies it to every message it returns.
bool validateMessage(const Message &message, const CodecLimits &limits, ParseError *error,
                     Direction direction = Direction::FromPeer);

// Wire form of a message: upper-case command, headers as "Name: value", dot-stuffed
// body, or the body as is when a Content-Length header is present (its value is set
// to the body's size). A body that cannot survive dot-stuffing (it holds CR) gets a
// Content-Length header added.
QByteArray serialize(const Message &message);

// A header value echoed back in an ERR (section 4.8: the ReqID, whole, so the peer
// can match it), with control characters (a CR inside the value) replaced by '?'.
QByteArray echoControlsReplaced(QByteArrayView value);

// Peer input quoted in an ERR's reason (section 4.8: one human-readable line):
// control characters replaced by '?', and at most `limit` bytes, cut where no UTF-8
// sequence is split, followed by "..." when shortened.
QByteArray quoteInReason(QByteArrayView text, qsizetype limit = 64);

// A REQ's Timeout header (docs/protocol.md §4.3): milliseconds, a positive
// number as QByteArray::toLongLong() reads it. Too many digits for 64 bits is
// simply over any cap, so it reads as the largest value; anything else that
// is not a positive number is nullopt.
std::optional<qint64> parseTimeoutMs(QByteArrayView text);

// Convenience for one-message frames, used by tests and tools: parses exactly one
// message; false with `error` filled otherwise.
bool parseOne(QByteArrayView frame, const CodecLimits &limits, Message *message, ParseError *error);

} // namespace Middleman
