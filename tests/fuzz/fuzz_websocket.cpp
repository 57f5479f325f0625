// fuzz_websocket: the server side of RFC 6455 (shared/websocket.h) under
// libFuzzer, and the same properties replayed from files in the normal build:
// the upgrade request parser, FrameReader on masked client frames, unmask,
// closePayload and frameHeader. Pure functions, no broker.
//
// Input: one mode byte, then the bytes a client sends.
//   bits 0-4: the size of the chunks FrameReader gets them in (0: all at once)
//   bit 5:    small limits (200-byte messages, 256-byte upgrade requests), so that
//             1009 and 431 are reachable with short inputs
//   bit 6:    the frames start after the upgrade request, when it is complete
//             (as the broker reads them: request, then frames in the same bytes)
//
// Every property violated ends in fuzzCheck(), which aborts: libFuzzer reports it
// as a crash, and the replay test fails.

#include "fuzzcheck.h"
#include "websocket.h"

#include <QByteArrayList>

#include <cstdint>

using namespace Middleman;
using namespace Middleman::WebSocket;

namespace {

using Kind = FrameReader::Event::Kind;

bool isOneLine(QByteArrayView text)
{
    return !text.contains('\n') && !text.contains('\r');
}

// RFC 9110 5.5: CR, LF and NUL in a field value are refused or replaced by SP; a
// request target holds none either (RFC 9112 3.2).
bool isClean(QByteArrayView text)
{
    return isOneLine(text) && !text.contains('\0');
}

// Close codes a close event may carry: CloseNoStatus for an empty close frame,
// otherwise one a peer may send (RFC 6455 7.4): never 1005, 1006, 1015, nothing
// below 1000, in the reserved 1016-2999 or above 4999.
bool isReceivableCloseCode(quint16 code)
{
    return (code >= 1000 && code <= 1014 && code != 1005 && code != 1006) || (code >= 3000 && code <= 4999);
}

void checkUpgradeRequest(QByteArrayView bytes, qsizetype maxBytes)
{
    const UpgradeRequest r = parseUpgradeRequest(bytes, maxBytes);
    switch (r.status) {
    case UpgradeRequest::Status::Complete: {
        fuzzCheck(r.size > 0 && r.size <= bytes.size(), "complete request with a size out of range", bytes);
        fuzzCheck(r.size <= maxBytes, "complete request larger than maxBytes", bytes);
        fuzzCheck(bytes.at(r.size - 1) == '\n', "complete request does not end with a line end", bytes);
        fuzzCheck(!r.key.isEmpty(), "complete request without a key", bytes);
        fuzzCheck(QByteArray::fromBase64(r.key).size() == 16, "accepted key is not 16 bytes in base64", r.key);
        fuzzCheck(!r.path.isEmpty(), "complete request without a path", bytes);
        fuzzCheck(isClean(r.path) && isClean(r.key) && isClean(r.origin), "path, key or origin holds CR, LF or NUL",
                  bytes);
        // The bytes after the request do not matter, and the request needs all of its own.
        const UpgradeRequest alone = parseUpgradeRequest(bytes.first(r.size), maxBytes);
        fuzzCheck(alone.status == UpgradeRequest::Status::Complete && alone.size == r.size && alone.key == r.key
                      && alone.path == r.path && alone.origin == r.origin,
                  "the request alone reads differently", bytes);
        const UpgradeRequest cut = parseUpgradeRequest(bytes.first(r.size - 1), maxBytes);
        fuzzCheck(cut.status == UpgradeRequest::Status::Incomplete, "a complete request minus its last byte is not incomplete",
                  bytes);
        const QByteArray response = upgradeResponse(r.key);
        fuzzCheck(response.startsWith("HTTP/1.1 101 ") && response.endsWith("\r\n\r\n")
                      && response.contains(acceptKey(r.key)),
                  "bad 101 response", response);
        break;
    }
    case UpgradeRequest::Status::Invalid: {
        fuzzCheck(r.httpStatus == 400 || r.httpStatus == 405 || r.httpStatus == 426 || r.httpStatus == 431,
                  "invalid request with an unexpected status", QByteArray::number(r.httpStatus));
        fuzzCheck(!r.reason.isEmpty() && isOneLine(r.reason), "invalid request without a one-line reason",
                  r.reason);
        // The reason is the body, one line.
        const QByteArray response = errorResponse(r.httpStatus, r.reason);
        const qsizetype head = response.indexOf("\r\n\r\n");
        const QByteArray body = head < 0 ? QByteArray() : response.mid(head + 4);
        fuzzCheck(response.startsWith(QByteArray("HTTP/1.1 " + QByteArray::number(r.httpStatus) + ' ')) && head > 0
                      && body.startsWith(r.reason) && body.size() <= r.reason.size() + 2,
                  "bad error response", response);
        break;
    }
    case UpgradeRequest::Status::Incomplete:
        // Past the limit the parser must have decided (431 at the latest).
        fuzzCheck(bytes.size() <= maxBytes, "incomplete request past maxBytes", bytes);
        break;
    }

    // A decision stands when more bytes come: a prefix that was decided decides the
    // whole the same way.
    if (bytes.size() > 1) {
        const UpgradeRequest half = parseUpgradeRequest(bytes.first(bytes.size() / 2), maxBytes);
        if (half.status == UpgradeRequest::Status::Complete)
            fuzzCheck(r.status == UpgradeRequest::Status::Complete && r.size == half.size,
                      "more bytes changed a complete request", bytes);
        if (half.status == UpgradeRequest::Status::Invalid)
            fuzzCheck(r.status == UpgradeRequest::Status::Invalid, "more bytes made an invalid request valid", bytes);
    }
}

QByteArray describe(const FrameReader::Event &e)
{
    QByteArray out = QByteArray::number(int(e.kind)) + ' ' + QByteArray::number(e.code) + ' '
        + (e.binary ? "b " : "t ");
    return out + e.payload.toHex();
}

// Reads `bytes` in chunks of `chunk` (all at once when 0), checking every event;
// returns the events, described.
QByteArrayList readFrames(QByteArrayView bytes, qint64 maxMessageSize, qsizetype chunk)
{
    FrameReader reader(maxMessageSize);
    QByteArrayList events;
    bool ended = false;
    qsizetype appended = 0;
    const QByteArray input = bytes.toByteArray();

    auto drain = [&] {
        for (;;) {
            fuzzCheck(qsizetype(events.size()) <= appended + 1, "FrameReader does not make progress", input);
            const FrameReader::Event e = reader.next();
            const qsizetype held = reader.bufferedBytes();
            fuzzCheck(held >= 0 && held <= appended, "bufferedBytes() out of range", input);
            if (e.kind == Kind::None) {
                fuzzCheck(reader.finished() == ended, "finished() out of step with the events", input);
                return;
            }
            fuzzCheck(!ended, "an event after a Close or an Error", input);
            switch (e.kind) {
            case Kind::None:
                break;
            case Kind::Message:
                fuzzCheck(e.payload.size() <= maxMessageSize, "message over maxMessageSize", input);
                fuzzCheck(e.binary || QByteArrayView(e.payload).isValidUtf8(), "text message not valid UTF-8",
                          e.payload);
                break;
            case Kind::Ping:
            case Kind::Pong:
                fuzzCheck(e.payload.size() <= 125, "control payload over 125 bytes", e.payload);
                break;
            case Kind::Close:
                if (e.code == CloseNoStatus)
                    fuzzCheck(e.payload.isEmpty(), "close without a code but with a reason", input);
                else
                    fuzzCheck(isReceivableCloseCode(e.code), "close code not allowed on the wire",
                              QByteArray::number(e.code));
                fuzzCheck(e.payload.size() <= 123, "close reason over 123 bytes", e.payload);
                fuzzCheck(QByteArrayView(e.payload).isValidUtf8(), "close reason not valid UTF-8", e.payload);
                ended = true;
                break;
            case Kind::Error:
                fuzzCheck(e.code == CloseProtocolError || e.code == CloseInvalidPayload || e.code == CloseTooBig,
                          "error with an unexpected close code", QByteArray::number(e.code));
                fuzzCheck(!e.reason.isEmpty() && isOneLine(e.reason), "error without a one-line reason", e.reason);
                ended = true;
                break;
            }
            fuzzCheck(reader.finished() == ended, "finished() out of step with the events", input);
            events.append(describe(e));
        }
    };

    if (chunk <= 0)
        chunk = qMax<qsizetype>(input.size(), 1);
    for (qsizetype pos = 0; pos < input.size(); pos += chunk) {
        const QByteArray part = input.mid(pos, chunk);
        reader.append(part);
        appended += part.size();
        drain();
    }
    if (ended) {
        // Nothing after the end, whatever comes: a valid masked text frame.
        reader.append(QByteArray("\x81\x81\x00\x00\x00\x00x", 7));
        fuzzCheck(reader.next().kind == Kind::None, "an event after a Close or an Error", input);
        fuzzCheck(reader.finished(), "not finished() after the end", input);
    }
    return events;
}

void checkFrames(QByteArrayView bytes, qint64 maxMessageSize, qsizetype chunk)
{
    const QByteArrayList events = readFrames(bytes, maxMessageSize, chunk);
    // How the bytes are cut does not change the events.
    const QByteArrayList again = readFrames(bytes, maxMessageSize, chunk == 0 ? 1 : 0);
    fuzzCheck(events == again, "the events depend on how the bytes are appended", bytes);
}

void checkUnmask(QByteArrayView bytes, qsizetype offset)
{
    if (bytes.size() < 4)
        return;
    const quint8 mask[4] = {quint8(bytes[0]), quint8(bytes[1]), quint8(bytes[2]), quint8(bytes[3])};
    const QByteArrayView data = bytes.sliced(4);
    QByteArray expected(data.size(), '\0');
    for (qsizetype i = 0; i < data.size(); ++i)
        expected[i] = char(quint8(data[i]) ^ mask[(offset + i) % 4]);
    QByteArray out(data.size(), '\0');
    unmask(out.data(), data.data(), data.size(), mask, offset);
    fuzzCheck(out == expected, "unmask differs from the byte-wise reference", bytes);
    QByteArray inPlace = data.toByteArray();
    unmask(inPlace.data(), inPlace.constData(), inPlace.size(), mask, offset);
    fuzzCheck(inPlace == expected, "unmask in place differs", bytes);
}

void checkClosePayload(QByteArrayView bytes)
{
    if (bytes.size() < 2)
        return;
    const quint16 code = quint16((quint8(bytes[0]) << 8) | quint8(bytes[1]));
    const QByteArrayView reason = bytes.sliced(2);
    const QByteArray payload = closePayload(code, reason);
    fuzzCheck(payload.size() >= 2 && payload.size() <= 125, "close payload size out of range", bytes);
    fuzzCheck(payload.first(2) == bytes.first(2), "close payload does not start with the code", bytes);
    const QByteArrayView kept = QByteArrayView(payload).sliced(2);
    fuzzCheck(reason.startsWith(kept), "close reason is not a prefix of the one given", bytes);
    if (reason.size() <= 123)
        fuzzCheck(kept == reason, "a close reason that fits was cut", bytes);
    if (reason.isValidUtf8()) {
        fuzzCheck(kept.isValidUtf8(), "close reason cut inside a character", bytes);
        // At most one character (4 bytes) short of the limit.
        fuzzCheck(kept.size() >= qMin<qsizetype>(reason.size(), 120), "close reason cut too short", bytes);
    }
}

// A server frame header, read back by hand: FIN, the opcode, no mask, the
// shortest length form, big-endian; wireSize agrees.
void checkFrameHeader(Opcode opcode, quint64 payloadSize)
{
    const FrameHeader h = frameHeader(opcode, payloadSize);
    const QByteArray detail = QByteArray::number(payloadSize);
    fuzzCheck(h.size == (payloadSize < 126 ? 2 : payloadSize <= 0xFFFF ? 4 : 10), "frame header of the wrong size",
              detail);
    const auto *b = reinterpret_cast<const quint8 *>(h.bytes);
    fuzzCheck(b[0] == (0x80 | quint8(opcode)), "frame header: bad first byte", detail);
    fuzzCheck((b[1] & 0x80) == 0, "frame header: mask bit set", detail);
    quint64 length = b[1];
    if (h.size == 4)
        length = (quint64(b[2]) << 8) | b[3];
    if (h.size == 10) {
        length = 0;
        for (int i = 2; i < 10; ++i)
            length = (length << 8) | b[i];
    }
    fuzzCheck(length == payloadSize, "frame header: length reads back differently", detail);
    if (payloadSize < (quint64(1) << 62))
        fuzzCheck(wireSize(qint64(payloadSize)) == h.size + qint64(payloadSize), "wireSize disagrees with frameHeader",
                  detail);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const quint8 mode = data[0];
    const QByteArrayView bytes(reinterpret_cast<const char *>(data + 1), qsizetype(size - 1));
    const qsizetype chunk = mode & 0x1F;
    const bool small = mode & 0x20;
    const qint64 maxMessageSize = small ? 200 : 64 * 1024;
    const qsizetype maxRequestBytes = small ? 256 : kMaxUpgradeRequestBytes;

    checkUpgradeRequest(bytes, maxRequestBytes);
    QByteArrayView frames = bytes;
    if (mode & 0x40) {
        const UpgradeRequest r = parseUpgradeRequest(bytes, maxRequestBytes);
        if (r.status == UpgradeRequest::Status::Complete)
            frames = bytes.sliced(r.size);
    }
    checkFrames(frames, maxMessageSize, chunk);
    checkUnmask(bytes, mode);
    checkClosePayload(bytes);
    const Opcode opcodes[] = {Opcode::Continuation, Opcode::Text, Opcode::Binary,
                              Opcode::Close,        Opcode::Ping, Opcode::Pong};
    checkFrameHeader(opcodes[mode % 6], quint64(bytes.size()));
    if (bytes.size() >= 8) {
        quint64 n = 0;
        for (int i = 0; i < 8; ++i)
            n = (n << 8) | quint8(bytes[i]);
        checkFrameHeader(opcodes[mode % 6], n >> (n & 63)); // all magnitudes
    }
    return 0;
}
