#pragma once
// The server side of RFC 6455: the opening handshake and the framing, as pure
// functions and a value-type frame reader. No QObject, no sockets: the broker
// feeds the bytes it reads and writes the bytes these return.
//
// Why not Qt WebSockets on the server side: per connection, QWebSocket and its
// helpers hold about 9.5 KiB on the heap even when idle, most of a connection's
// cost (docs/design.md, "WebSocket layer"). Clients (the console, the tests, the
// benchmark's peers) still use QWebSocket.

#include <QByteArray>
#include <QByteArrayView>

#include <cstdint>

namespace Middleman::WebSocket {

enum class Opcode : quint8 {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
};

// Close codes: those of RFC 6455 7.4.1 the framing and the broker give, and
// 1013 from the IANA registry, which the broker sends when it cannot take a
// peer now (docs/protocol.md section 8).
enum CloseCode : quint16 {
    CloseNormal = 1000,
    CloseGoingAway = 1001,
    CloseProtocolError = 1002,
    CloseNoStatus = 1005,   // a close frame without a code; never sent
    CloseAbnormal = 1006,   // the connection ended without a close frame; never sent
    CloseInvalidPayload = 1007, // text that is not UTF-8
    ClosePolicyViolated = 1008,
    CloseTooBig = 1009,
    CloseTryAgainLater = 1013,
};

// --- The opening handshake (RFC 6455 4.2) ----------------------------------

// Requests larger than this (request line and headers) get 431.
constexpr qsizetype kMaxUpgradeRequestBytes = 16 * 1024;

struct UpgradeRequest
{
    enum class Status { Incomplete, Complete, Invalid };
    Status status = Status::Incomplete;
    qsizetype size = 0;     // bytes of the request, the empty line included (Complete)
    QByteArray path;        // request target, as sent
    QByteArray key;         // Sec-WebSocket-Key
    QByteArray origin;      // Origin; empty when the request has none
    int httpStatus = 0;     // Invalid: 400, 405, 426 or 431
    QByteArray reason;      // Invalid: one line, for the response body and the log
};

// Reads an upgrade request from the start of `bytes`, which may hold more (the
// first frames, sent without waiting for the response). Lines end in CRLF or LF.
UpgradeRequest parseUpgradeRequest(QByteArrayView bytes, qsizetype maxBytes = kMaxUpgradeRequestBytes);

// Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC's GUID)).
QByteArray acceptKey(QByteArrayView key);

// The 101 response that completes the upgrade.
QByteArray upgradeResponse(QByteArrayView key);

// A complete HTTP error response that refuses the upgrade (405 names the
// method allowed, 426 the version the server speaks). The reason is the body,
// one line.
QByteArray errorResponse(int httpStatus, QByteArrayView reason);

// --- Frames (RFC 6455 5) ----------------------------------------------------

// The header of an unmasked server frame: 2, 4 or 10 bytes.
struct FrameHeader
{
    char bytes[10];
    int size = 0;
    QByteArrayView view() const { return QByteArrayView(bytes, size); }
};
FrameHeader frameHeader(Opcode opcode, quint64 payloadSize);

// Bytes a whole server frame with this payload takes on the wire.
constexpr qint64 wireSize(qint64 payload)
{
    return payload + 2 + (payload > 125 ? 2 : 0) + (payload > 65535 ? 6 : 0);
}

// A close frame's payload: the code and as much of the reason as fits in a
// control frame (123 bytes, cut at a UTF-8 character boundary).
QByteArray closePayload(quint16 code, QByteArrayView reason);

// XORs `size` bytes from `from` into `to` with the 4-byte mask, starting at
// mask byte `offset % 4`. `to` may be `from`.
void unmask(char *to, const char *from, qsizetype size, const quint8 mask[4], qsizetype offset = 0);

// Reads client frames (masked, as RFC 6455 requires) from the bytes appended,
// joins fragmented messages, checks text for UTF-8 and gives one event at a time.
// Control frames may arrive between the fragments of a message.
class FrameReader
{
public:
    struct Event
    {
        enum class Kind { None, Message, Ping, Pong, Close, Error };
        Kind kind = Kind::None;
        bool binary = false;   // Message: the frame type it came in
        QByteArray payload;    // Message, Ping, Pong: the payload; Close: the reason
        quint16 code = 0;      // Close: the peer's code (CloseNoStatus when none);
                               // Error: the code to close with
        QByteArray reason;     // Error: why, one line
    };

    // `maxMessageSize` bounds one message, all its fragments together; over it
    // the reader stops with CloseTooBig.
    explicit FrameReader(qint64 maxMessageSize) : m_maxMessageSize(maxMessageSize) {}

    void append(const QByteArray &bytes);
    // The next event, or Kind::None when the bytes so far hold none. After an
    // Error or a Close it returns None for good.
    Event next();

    // Bytes held: the unread part of what was appended and a message's fragments
    // so far. An idle reader holds no memory.
    qsizetype bufferedBytes() const { return m_buffer.size() - m_pos + m_fragments.size(); }
    bool finished() const { return m_finished; }

private:
    Event fail(quint16 code, QByteArray reason);

    const qint64 m_maxMessageSize;
    QByteArray m_buffer;
    qsizetype m_pos = 0;          // first unread byte of m_buffer
    QByteArray m_fragments;       // the fragmented message so far
    bool m_inMessage = false;     // between a non-final data frame and its last fragment
    bool m_messageBinary = false;
    bool m_finished = false;
};

} // namespace Middleman::WebSocket
