// Unit tests for the server side of RFC 6455 (shared/websocket.h): the opening
// handshake (section 4.2), server frame headers and close payloads (5.2, 5.5.1),
// unmasking (5.3) and the FrameReader for masked client frames (5.2 to 5.6, 8.1).

#include "websocket.h"

#include <QCryptographicHash>
#include <QRandomGenerator>
#include <QTest>

#include <algorithm>
#include <iterator>
#include <limits>
#include <optional>

using namespace Middleman::WebSocket;

namespace {

using Status = UpgradeRequest::Status;
using Kind = FrameReader::Event::Kind;

// RFC 6455 1.3: the example key; its accept value is computed in acceptKey_data.
const QByteArray kKey = QByteArrayLiteral("dGhlIHNhbXBsZSBub25jZQ==");
const QByteArray kGuid = QByteArrayLiteral("258EAFA5-E914-47DA-95CA-C5AB0DC85B11");

constexpr qint64 kMiB = 1 << 20;

// base64(SHA-1(key + GUID)), computed here independently of the code under test.
QByteArray referenceAccept(const QByteArray &key)
{
    return QCryptographicHash::hash(QByteArray(key + kGuid), QCryptographicHash::Sha1).toBase64();
}

QByteArray statusName(Status status)
{
    switch (status) {
    case Status::Incomplete:
        return QByteArrayLiteral("Incomplete");
    case Status::Complete:
        return QByteArrayLiteral("Complete");
    case Status::Invalid:
        return QByteArrayLiteral("Invalid");
    }
    return QByteArrayLiteral("?");
}

bool isOneLine(QByteArrayView text)
{
    return !text.contains('\n') && !text.contains('\r');
}

// --- Upgrade requests ---------------------------------------------------------

// What Chrome sends, header order and extras included.
QByteArrayList browserLines()
{
    return {
        "GET /chat?room=1 HTTP/1.1",
        "Host: localhost:8080",
        "Connection: Upgrade",
        "Pragma: no-cache",
        "Cache-Control: no-cache",
        "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "Upgrade: websocket",
        "Origin: http://localhost:8080",
        "Sec-WebSocket-Version: 13",
        "Accept-Encoding: gzip, deflate, br",
        "Accept-Language: en-US,en;q=0.9",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
    };
}

// The fewest lines RFC 6455 4.1 requires.
QByteArrayList minimalLines()
{
    return {
        "GET / HTTP/1.1",
        "Host: example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    };
}

QByteArray request(const QByteArrayList &lines, QByteArrayView eol = "\r\n")
{
    QByteArray out;
    for (const QByteArray &line : lines)
        out += line + eol;
    out += eol;
    return out;
}

// `lines` with the header `name` (any case) replaced by `replacement`, or dropped
// when `replacement` is null.
QByteArrayList withHeader(QByteArrayList lines, QByteArrayView name, const QByteArray &replacement = QByteArray())
{
    for (qsizetype i = 1; i < lines.size(); ++i) {
        const qsizetype colon = lines.at(i).indexOf(':');
        if (colon > 0 && lines.at(i).left(colon).compare(name, Qt::CaseInsensitive) == 0) {
            if (replacement.isNull())
                lines.removeAt(i);
            else
                lines[i] = replacement;
            return lines;
        }
    }
    lines.append(replacement);
    return lines;
}

QByteArrayList withRequestLine(QByteArrayList lines, const QByteArray &requestLine)
{
    lines[0] = requestLine;
    return lines;
}

// --- HTTP responses -------------------------------------------------------------

struct Response
{
    bool ok = false;          // a head ending in CRLF CRLF, every line ending in CRLF
    QByteArray statusLine;
    QList<QPair<QByteArray, QByteArray>> headers; // names lower case, values trimmed
    QByteArray body;

    int count(QByteArrayView name) const
    {
        int n = 0;
        for (const auto &h : headers)
            n += h.first == name;
        return n;
    }
    QByteArray value(QByteArrayView name) const
    {
        for (const auto &h : headers) {
            if (h.first == name)
                return h.second;
        }
        return QByteArray();
    }
};

Response parseResponse(const QByteArray &bytes)
{
    Response out;
    const qsizetype end = bytes.indexOf("\r\n\r\n");
    if (end < 0)
        return out;
    const QByteArray head = bytes.left(end + 2);
    out.body = bytes.mid(end + 4);
    // No bare LF and no bare CR in the head.
    if (head.count('\n') != head.count("\r\n") || head.count('\r') != head.count("\r\n"))
        return out;
    qsizetype pos = 0;
    bool first = true;
    while (pos < head.size()) {
        const qsizetype eol = head.indexOf("\r\n", pos);
        const QByteArray line = head.mid(pos, eol - pos);
        pos = eol + 2;
        if (first) {
            out.statusLine = line;
            first = false;
            continue;
        }
        const qsizetype colon = line.indexOf(':');
        if (colon <= 0)
            return out;
        out.headers.append({line.left(colon).toLower(), line.mid(colon + 1).trimmed()});
    }
    out.ok = true;
    return out;
}

// --- Client frames ----------------------------------------------------------------

constexpr quint8 kFin = 0x80;

struct FrameOptions
{
    bool masked = true;
    int lengthBytes = -1;                  // -1: the minimal form; 0: 7 bits, 2: 16 bits, 8: 64 bits
    std::optional<quint64> declaredLength = std::nullopt; // the length the header claims; the payload's size when unset
    quint32 mask = 0x9a3c5e71;
    bool headerOnly = false;               // the header and the mask key, no payload
};

// A client frame: `first` is the byte with FIN, RSV1-3 and the opcode.
QByteArray frame(quint8 first, const QByteArray &payload, const FrameOptions &o = {})
{
    const quint64 length = o.declaredLength.value_or(quint64(payload.size()));
    int lengthBytes = o.lengthBytes;
    if (lengthBytes < 0)
        lengthBytes = length < 126 ? 0 : length <= 0xFFFF ? 2 : 8;
    QByteArray out;
    out += char(first);
    const char maskBit = o.masked ? char(0x80) : char(0);
    if (lengthBytes == 0) {
        out += char(maskBit | char(length));
    } else {
        out += char(maskBit | (lengthBytes == 2 ? 126 : 127));
        for (int i = lengthBytes - 1; i >= 0; --i)
            out += char((length >> (8 * i)) & 0xFF);
    }
    const quint8 key[4] = {quint8(o.mask >> 24), quint8(o.mask >> 16), quint8(o.mask >> 8), quint8(o.mask)};
    if (o.masked)
        out.append(reinterpret_cast<const char *>(key), 4);
    if (o.headerOnly)
        return out;
    for (qsizetype i = 0; i < payload.size(); ++i)
        out += o.masked ? char(payload.at(i) ^ char(key[i % 4])) : payload.at(i);
    return out;
}

QByteArray textFrame(const QByteArray &payload, bool final = true)
{
    return frame((final ? kFin : 0) | 0x1, payload);
}
QByteArray binaryFrame(const QByteArray &payload, bool final = true)
{
    return frame((final ? kFin : 0) | 0x2, payload);
}
QByteArray continuationFrame(const QByteArray &payload, bool final = true)
{
    return frame((final ? kFin : 0) | 0x0, payload);
}
QByteArray pingFrame(const QByteArray &payload = QByteArray())
{
    return frame(kFin | 0x9, payload);
}
QByteArray pongFrame(const QByteArray &payload = QByteArray())
{
    return frame(kFin | 0xA, payload);
}
QByteArray closeBody(quint16 code, const QByteArray &reason = QByteArray())
{
    return QByteArray(1, char(code >> 8)) + char(code & 0xFF) + reason;
}
QByteArray closeFrame(const QByteArray &payload = QByteArray())
{
    return frame(kFin | 0x8, payload);
}

// --- Events as text, so that a whole run compares in one QCOMPARE ----------------------

QByteArray printable(const QByteArray &bytes)
{
    if (bytes.size() > 80) {
        return "<" + QByteArray::number(bytes.size()) + " bytes, sha1 "
               + QCryptographicHash::hash(bytes, QCryptographicHash::Sha1).toHex().left(12) + '>';
    }
    QByteArray out;
    for (const char c : bytes) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7f && c != '\\')
            out += c;
        else
            out += "\\x" + QByteArray::number(u, 16).rightJustified(2, '0');
    }
    return out;
}

QByteArray textEvent(const QByteArray &payload)
{
    return "text " + printable(payload);
}
QByteArray binaryEvent(const QByteArray &payload)
{
    return "binary " + printable(payload);
}
QByteArray pingEvent(const QByteArray &payload = QByteArray())
{
    return "ping " + printable(payload);
}
QByteArray pongEvent(const QByteArray &payload = QByteArray())
{
    return "pong " + printable(payload);
}
QByteArray closeEvent(quint16 code, const QByteArray &reason = QByteArray())
{
    return "close " + QByteArray::number(code) + ' ' + printable(reason);
}
QByteArray errorEvent(quint16 code)
{
    return "error " + QByteArray::number(code);
}

QByteArray describe(const FrameReader::Event &e)
{
    switch (e.kind) {
    case Kind::None:
        return QByteArrayLiteral("none");
    case Kind::Message:
        return e.binary ? binaryEvent(e.payload) : textEvent(e.payload);
    case Kind::Ping:
        return pingEvent(e.payload);
    case Kind::Pong:
        return pongEvent(e.payload);
    case Kind::Close:
        return closeEvent(e.code, e.payload);
    case Kind::Error: {
        QByteArray out = errorEvent(e.code);
        // An error must say why, in one line.
        if (e.reason.isEmpty() || !isOneLine(e.reason))
            out += " with a bad reason [" + printable(e.reason) + ']';
        return out;
    }
    }
    return QByteArrayLiteral("unknown kind");
}

// Feeds `input` in chunks of `chunk` bytes (all at once when 0), takes every event
// after each append, and describes them. Broken reader invariants show up as extra
// lines: finished() out of step with the events, an event after a Close or an Error
// (also when more valid frames come), a reader that never stops giving events.
QByteArrayList trace(const QByteArray &input, qint64 maxMessageSize, qsizetype chunk = 0)
{
    FrameReader reader(maxMessageSize);
    QByteArrayList out;
    bool ended = false;
    qsizetype appended = 0;
    auto drain = [&] {
        for (qsizetype guard = 0; guard <= appended + 1; ++guard) {
            const FrameReader::Event e = reader.next();
            if (reader.bufferedBytes() < 0 || reader.bufferedBytes() > appended)
                out.append("bufferedBytes() out of range: " + QByteArray::number(reader.bufferedBytes()));
            if (e.kind == Kind::None) {
                if (reader.finished() != ended)
                    out.append(ended ? QByteArrayLiteral("not finished() after the end")
                                     : QByteArrayLiteral("finished() without a Close or an Error"));
                return;
            }
            if (ended) {
                out.append("event after the end: " + describe(e));
                return;
            }
            out.append(describe(e));
            ended = e.kind == Kind::Close || e.kind == Kind::Error;
            if (reader.finished() != ended)
                out.append(QByteArrayLiteral("finished() out of step"));
        }
        out.append(QByteArrayLiteral("the reader did not stop giving events"));
    };
    if (chunk <= 0)
        chunk = qMax<qsizetype>(input.size(), 1);
    if (input.isEmpty())
        drain();
    for (qsizetype pos = 0; pos < input.size(); pos += chunk) {
        const QByteArray part = input.mid(pos, chunk);
        reader.append(part);
        appended += part.size();
        drain();
    }
    if (ended) {
        // Nothing more, whatever comes.
        const QByteArray more = textFrame("after") + pingFrame("p") + closeFrame(closeBody(1000));
        reader.append(more);
        appended += more.size();
        drain();
    }
    return out;
}

// `pattern` repeated, cut to exactly `size` bytes.
QByteArray filled(qsizetype size, QByteArrayView pattern = "0123456789abcdef")
{
    QByteArray out;
    out.reserve(size);
    while (out.size() < size)
        out += pattern;
    out.truncate(size);
    return out;
}

QByteArray repeated(QByteArrayView unit, int count)
{
    QByteArray out;
    for (int i = 0; i < count; ++i)
        out += unit;
    return out;
}

} // namespace

class tst_WebSocket : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void wireSizeIsConstexpr();
    void acceptKey_data();
    void acceptKey();
    void parseUpgradeRequest_data();
    void parseUpgradeRequest();
    void parseUpgradeRequestPrefixes_data();
    void parseUpgradeRequestPrefixes();
    void parseUpgradeRequestInvalid_data();
    void parseUpgradeRequestInvalid();
    void parseUpgradeRequestForbiddenBytes_data();
    void parseUpgradeRequestForbiddenBytes();
    void parseUpgradeRequestLimit_data();
    void parseUpgradeRequestLimit();
    void upgradeResponse_data();
    void upgradeResponse();
    void errorResponse_data();
    void errorResponse();
    void frameHeader_data();
    void frameHeader();
    void closePayload_data();
    void closePayload();
    void unmask_data();
    void unmask();
    void frameReader_data();
    void frameReader();
    void frameReaderOneEventAtATime();
    void frameReaderTooBigAtHeader_data();
    void frameReaderTooBigAtHeader();
    void frameReaderLengthMsbSet_data();
    void frameReaderLengthMsbSet();
    void frameReaderNonMinimalLength_data();
    void frameReaderNonMinimalLength();
    void frameReaderAfterEnd_data();
    void frameReaderAfterEnd();
    void frameReaderBufferedBytes();
    void frameReaderRandomStream();
};

void tst_WebSocket::wireSizeIsConstexpr()
{
    static_assert(wireSize(0) == 2);
    static_assert(wireSize(125) == 127);
    static_assert(wireSize(126) == 130);
    static_assert(wireSize(65535) == 65539);
    static_assert(wireSize(65536) == 65546);
    QCOMPARE(wireSize(qint64(1) << 32), (qint64(1) << 32) + 10);
}

// --- acceptKey ------------------------------------------------------------------------

void tst_WebSocket::acceptKey_data()
{
    QTest::addColumn<QByteArray>("key");
    QTest::addColumn<QByteArray>("accept");

    // RFC 6455 1.3. (SHA-1 of the key and the GUID gives s3pPLMBiTxaQ9kYGzzhZRbK+xOo=,
    // the value printed in the RFC.)
    QTest::addRow("RFC 6455 1.3") << kKey << QByteArrayLiteral("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    QTest::addRow("RFC example = reference") << kKey << referenceAccept(kKey);
    // The example of the Wikipedia article on WebSocket.
    QTest::addRow("x3JJ...") << QByteArrayLiteral("x3JJHMbDL1EzLkh9GBhXDw==")
                             << QByteArrayLiteral("HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
    QTest::addRow("all zero key") << QByteArrayLiteral("AAAAAAAAAAAAAAAAAAAAAA==")
                                  << referenceAccept("AAAAAAAAAAAAAAAAAAAAAA==");
    QTest::addRow("all ones key") << QByteArrayLiteral("/////////////////////w==")
                                  << referenceAccept("/////////////////////w==");
}

void tst_WebSocket::acceptKey()
{
    QFETCH(QByteArray, key);
    QFETCH(QByteArray, accept);
    QCOMPARE(Middleman::WebSocket::acceptKey(key), accept);
    QCOMPARE(Middleman::WebSocket::acceptKey(key).size(), 28); // base64 of 20 bytes
}

// --- parseUpgradeRequest: valid requests -------------------------------------------------

void tst_WebSocket::parseUpgradeRequest_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<qsizetype>("size"); // -1: all of bytes
    QTest::addColumn<QByteArray>("path");
    QTest::addColumn<QByteArray>("key");
    QTest::addColumn<QByteArray>("origin");

    const QByteArray origin = QByteArrayLiteral("http://localhost:8080");
    const QByteArray browserPath = QByteArrayLiteral("/chat?room=1");
    const QByteArray crlf = request(browserLines());

    QTest::addRow("browser, CRLF") << crlf << qsizetype(-1) << browserPath << kKey << origin;
    QTest::addRow("browser, LF only") << request(browserLines(), "\n") << qsizetype(-1) << browserPath << kKey
                                      << origin;
    QTest::addRow("minimal, no origin") << request(minimalLines()) << qsizetype(-1) << QByteArrayLiteral("/")
                                        << kKey << QByteArray();
    QTest::addRow("minimal, LF only") << request(minimalLines(), "\n") << qsizetype(-1) << QByteArrayLiteral("/")
                                      << kKey << QByteArray();

    // The client may send frames right after the request, without waiting.
    QTest::addRow("followed by a frame") << crlf + textFrame("hello") << crlf.size() << browserPath << kKey
                                         << origin;
    QTest::addRow("LF only, followed by a frame")
        << request(browserLines(), "\n") + binaryFrame("\n\n\r\n\r\n") << request(browserLines(), "\n").size()
        << browserPath << kKey << origin;
    QTest::addRow("followed by a blank line") << crlf + "\r\n\r\n" << crlf.size() << browserPath << kKey << origin;
    QTest::addRow("followed by another request") << crlf + crlf << crlf.size() << browserPath << kKey << origin;

    QByteArrayList lower;
    for (const QByteArray &line : browserLines()) {
        const qsizetype colon = line.indexOf(':');
        lower.append(lower.isEmpty() || colon < 0 ? line : line.left(colon).toLower() + line.mid(colon));
    }
    QTest::addRow("header names lower case") << request(lower) << qsizetype(-1) << browserPath << kKey << origin;
    QByteArrayList upper;
    for (const QByteArray &line : minimalLines()) {
        const qsizetype colon = line.indexOf(':');
        upper.append(upper.isEmpty() || colon < 0 ? line : line.left(colon).toUpper() + line.mid(colon));
    }
    upper.append("ORIGIN: https://example.com");
    QTest::addRow("header names upper case") << request(upper) << qsizetype(-1) << QByteArrayLiteral("/") << kKey
                                             << QByteArrayLiteral("https://example.com");

    QTest::addRow("Connection: keep-alive, Upgrade (Firefox)")
        << request(withHeader(browserLines(), "Connection", "Connection: keep-alive, Upgrade")) << qsizetype(-1)
        << browserPath << kKey << origin;
    QTest::addRow("Connection: Upgrade, keep-alive")
        << request(withHeader(browserLines(), "Connection", "Connection: Upgrade, keep-alive")) << qsizetype(-1)
        << browserPath << kKey << origin;
    QTest::addRow("Connection: keep-alive,upgrade")
        << request(withHeader(browserLines(), "Connection", "Connection: keep-alive,upgrade")) << qsizetype(-1)
        << browserPath << kKey << origin;
    QTest::addRow("Connection: UPGRADE") << request(withHeader(minimalLines(), "Connection", "Connection: UPGRADE"))
                                         << qsizetype(-1) << QByteArrayLiteral("/") << kKey << QByteArray();
    QTest::addRow("Upgrade: WebSocket") << request(withHeader(browserLines(), "Upgrade", "Upgrade: WebSocket"))
                                        << qsizetype(-1) << browserPath << kKey << origin;
    QTest::addRow("Upgrade: WEBSOCKET") << request(withHeader(minimalLines(), "Upgrade", "Upgrade: WEBSOCKET"))
                                        << qsizetype(-1) << QByteArrayLiteral("/") << kKey << QByteArray();

    // Optional white space around values is not part of them (RFC 7230 3.2).
    QTest::addRow("spaces around the values")
        << request(withHeader(withHeader(withHeader(minimalLines(), "Sec-WebSocket-Key",
                                                    "Sec-WebSocket-Key:   dGhlIHNhbXBsZSBub25jZQ==  "),
                                         "Host", "Host:example.com"),
                              "Origin", "Origin: \thttp://a.example \t"))
        << qsizetype(-1) << QByteArrayLiteral("/") << kKey << QByteArrayLiteral("http://a.example");
    QTest::addRow("another key") << request(withHeader(minimalLines(), "Sec-WebSocket-Key",
                                                       "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw=="))
                                 << qsizetype(-1) << QByteArrayLiteral("/")
                                 << QByteArrayLiteral("x3JJHMbDL1EzLkh9GBhXDw==") << QByteArray();
    QTest::addRow("path as sent") << request(withRequestLine(minimalLines(), "GET /a/b%20c?x=1&y=%2F#f HTTP/1.1"))
                                  << qsizetype(-1) << QByteArrayLiteral("/a/b%20c?x=1&y=%2F#f") << kKey
                                  << QByteArray();
    // Each line ends in CRLF or LF, so a mix is fine too.
    QTest::addRow("CRLF lines, LF blank line") << request(minimalLines()).chopped(2) + "\n" << qsizetype(-1)
                                               << QByteArrayLiteral("/") << kKey << QByteArray();
    QTest::addRow("LF lines, CRLF blank line") << request(minimalLines(), "\n").chopped(1) + "\r\n" << qsizetype(-1)
                                               << QByteArrayLiteral("/") << kKey << QByteArray();
}

void tst_WebSocket::parseUpgradeRequest()
{
    QFETCH(QByteArray, bytes);
    QFETCH(qsizetype, size);
    QFETCH(QByteArray, path);
    QFETCH(QByteArray, key);
    QFETCH(QByteArray, origin);
    if (size < 0)
        size = bytes.size();

    const UpgradeRequest r = Middleman::WebSocket::parseUpgradeRequest(bytes);
    QCOMPARE(statusName(r.status), QByteArrayLiteral("Complete"));
    QCOMPARE(r.size, size);
    QCOMPARE(r.path, path);
    QCOMPARE(r.key, key);
    QCOMPARE(r.origin, origin);
    QCOMPARE(r.origin.isEmpty(), origin.isEmpty());

    // The request alone gives the same.
    const UpgradeRequest alone = Middleman::WebSocket::parseUpgradeRequest(QByteArrayView(bytes).first(size));
    QCOMPARE(statusName(alone.status), QByteArrayLiteral("Complete"));
    QCOMPARE(alone.size, size);
    QCOMPARE(alone.key, key);
}

// --- parseUpgradeRequest: incomplete requests ----------------------------------------------

void tst_WebSocket::parseUpgradeRequestPrefixes_data()
{
    QTest::addColumn<QByteArray>("bytes");

    QTest::addRow("browser, CRLF") << request(browserLines());
    QTest::addRow("browser, LF only") << request(browserLines(), "\n");
    QTest::addRow("minimal, CRLF") << request(minimalLines());
    QTest::addRow("minimal, LF only") << request(minimalLines(), "\n");
}

void tst_WebSocket::parseUpgradeRequestPrefixes()
{
    QFETCH(QByteArray, bytes);

    for (qsizetype n = 0; n < bytes.size(); ++n) {
        const UpgradeRequest r = Middleman::WebSocket::parseUpgradeRequest(QByteArrayView(bytes).first(n));
        if (r.status != Status::Incomplete)
            qWarning("prefix of %lld bytes: [%s], reason [%s]", static_cast<long long>(n),
                     printable(bytes.left(n)).constData(), r.reason.constData());
        QCOMPARE(statusName(r.status), QByteArrayLiteral("Incomplete"));
    }
    const UpgradeRequest whole = Middleman::WebSocket::parseUpgradeRequest(bytes);
    QCOMPARE(statusName(whole.status), QByteArrayLiteral("Complete"));
    QCOMPARE(whole.size, bytes.size());
}

// --- parseUpgradeRequest: refusals -----------------------------------------------------------

void tst_WebSocket::parseUpgradeRequestInvalid_data()
{
    QTest::addColumn<QByteArray>("bytes");
    QTest::addColumn<qsizetype>("maxBytes");
    QTest::addColumn<int>("httpStatus");

    const qsizetype max = kMaxUpgradeRequestBytes;
    const QByteArrayList b = browserLines();
    const QByteArrayList m = minimalLines();

    QTest::addRow("POST") << request(withRequestLine(b, "POST /chat HTTP/1.1")) << max << 405;
    QTest::addRow("PUT") << request(withRequestLine(m, "PUT / HTTP/1.1")) << max << 405;
    QTest::addRow("POST, LF only") << request(withRequestLine(m, "POST / HTTP/1.1"), "\n") << max << 405;

    QTest::addRow("no Upgrade") << request(withHeader(b, "Upgrade")) << max << 400;
    QTest::addRow("Upgrade: h2c") << request(withHeader(b, "Upgrade", "Upgrade: h2c")) << max << 400;
    QTest::addRow("no Connection") << request(withHeader(b, "Connection")) << max << 400;
    QTest::addRow("Connection: keep-alive") << request(withHeader(b, "Connection", "Connection: keep-alive")) << max
                                            << 400;
    QTest::addRow("Connection: close") << request(withHeader(m, "Connection", "Connection: close")) << max << 400;
    QTest::addRow("no Host") << request(withHeader(b, "Host")) << max << 400;
    QTest::addRow("no Host, LF only") << request(withHeader(m, "Host"), "\n") << max << 400;
    // Whether the line without a colon is refused as such or ignored, there is no Host.
    QTest::addRow("Host line without colon") << request(withHeader(m, "Host", "Host example.com")) << max << 400;
    QTest::addRow("no Sec-WebSocket-Key") << request(withHeader(b, "Sec-WebSocket-Key")) << max << 400;
    QTest::addRow("empty key") << request(withHeader(m, "Sec-WebSocket-Key", "Sec-WebSocket-Key:")) << max << 400;
    QTest::addRow("key of 15 bytes")
        << request(withHeader(m, "Sec-WebSocket-Key", "Sec-WebSocket-Key: " + QByteArray(15, 'k').toBase64()))
        << max << 400;
    QTest::addRow("key of 17 bytes")
        << request(withHeader(m, "Sec-WebSocket-Key", "Sec-WebSocket-Key: " + QByteArray(17, 'k').toBase64()))
        << max << 400;
    QTest::addRow("key of 32 bytes")
        << request(withHeader(m, "Sec-WebSocket-Key", "Sec-WebSocket-Key: " + QByteArray(32, 'k').toBase64()))
        << max << 400;
    QTest::addRow("key not base64") << request(withHeader(m, "Sec-WebSocket-Key", "Sec-WebSocket-Key: not a key"))
                                    << max << 400;
    QTest::addRow("key of 16 characters (12 bytes)")
        << request(withHeader(m, "Sec-WebSocket-Key", "Sec-WebSocket-Key: 0123456789abcdef")) << max << 400;

    QTest::addRow("HTTP/1.0") << request(withRequestLine(b, "GET /chat HTTP/1.0")) << max << 400;
    QTest::addRow("HTTP/1.0, LF only") << request(withRequestLine(m, "GET / HTTP/1.0"), "\n") << max << 400;
    QTest::addRow("no HTTP version") << request(withRequestLine(m, "GET /")) << max << 400;
    QTest::addRow("not HTTP") << request(withRequestLine(m, "GET / FTP/1.1")) << max << 400;
    QTest::addRow("garbage") << QByteArrayLiteral("hello there\r\n\r\n") << max << 400;
    QTest::addRow("garbage, LF only") << QByteArrayLiteral("hello\nthere\n\n") << max << 400;
    QTest::addRow("TLS client hello")
        << QByteArray("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8e\r\n\r\n", 16) << max << 400;
    QTest::addRow("a frame instead of a request") << textFrame("hello") + "\r\n\r\n" << max << 400;

    QTest::addRow("version 8") << request(withHeader(b, "Sec-WebSocket-Version", "Sec-WebSocket-Version: 8")) << max
                               << 426;
    QTest::addRow("version 14") << request(withHeader(m, "Sec-WebSocket-Version", "Sec-WebSocket-Version: 14"))
                                << max << 426;
    QTest::addRow("version 0") << request(withHeader(m, "Sec-WebSocket-Version", "Sec-WebSocket-Version: 0")) << max
                               << 426;
    QTest::addRow("version 130") << request(withHeader(m, "Sec-WebSocket-Version", "Sec-WebSocket-Version: 130"))
                                 << max << 426;
    QTest::addRow("no version") << request(withHeader(b, "Sec-WebSocket-Version")) << max << 426;
    QTest::addRow("no version, LF only") << request(withHeader(m, "Sec-WebSocket-Version"), "\n") << max << 426;

    const QByteArray longHeader = "X-Long: " + QByteArray(400, 'a');
    QTest::addRow("long header, no blank line yet") << "GET / HTTP/1.1\r\n" + longHeader << qsizetype(256) << 431;
    QTest::addRow("long header, LF, no blank line yet") << "GET / HTTP/1.1\n" + longHeader << qsizetype(256) << 431;
    QTest::addRow("long header, complete request") << request(m + QByteArrayList{longHeader}) << qsizetype(256)
                                                   << 431;
    QTest::addRow("many short headers, default limit")
        << "GET / HTTP/1.1\r\n" + repeated("X-Filler: 0123456789\r\n", 1000) << max << 431;
    QTest::addRow("request line too long") << "GET /" + QByteArray(300, 'a') << qsizetype(256) << 431;
}

void tst_WebSocket::parseUpgradeRequestInvalid()
{
    QFETCH(QByteArray, bytes);
    QFETCH(qsizetype, maxBytes);
    QFETCH(int, httpStatus);

    const UpgradeRequest r = Middleman::WebSocket::parseUpgradeRequest(bytes, maxBytes);
    QCOMPARE(statusName(r.status), QByteArrayLiteral("Invalid"));
    QCOMPARE(r.httpStatus, httpStatus);
    QVERIFY2(!r.reason.isEmpty(), "an invalid request without a reason");
    QVERIFY2(isOneLine(r.reason), r.reason.constData());

    // More bytes after it change nothing.
    const UpgradeRequest more = Middleman::WebSocket::parseUpgradeRequest(QByteArray(bytes + textFrame("x")), maxBytes);
    QCOMPARE(statusName(more.status), QByteArrayLiteral("Invalid"));
    QCOMPARE(more.httpStatus, httpStatus);
}

void tst_WebSocket::parseUpgradeRequestForbiddenBytes_data()
{
    QTest::addColumn<QByteArray>("bytes");

    const QByteArrayList m = minimalLines();
    QTest::addRow("bare CR in Origin") << request(m + QByteArrayList{"Origin: http://a.example\rX-Injected: 1"});
    QTest::addRow("NUL in Origin") << request(m + QByteArrayList{QByteArray("Origin: http://a.example\0b", 26)});
    QTest::addRow("bare CR in the path") << request(withRequestLine(m, "GET /a\rb HTTP/1.1"));
    QTest::addRow("NUL in the path") << request(withRequestLine(m, QByteArray("GET /a\0b HTTP/1.1", 17)));
    QTest::addRow("bare CR in Origin, LF only") << request(m + QByteArrayList{"Origin: http://a.example\rb"}, "\n");
}

// RFC 9110 5.5: "a recipient of CR, LF, or NUL within a field value MUST either
// reject the message or replace each of those characters with SP"; RFC 9112 3.2
// allows none in the request target either (400). The origin and the path go to
// the broker's log, one line each.
void tst_WebSocket::parseUpgradeRequestForbiddenBytes()
{
    QFETCH(QByteArray, bytes);

    const UpgradeRequest r = Middleman::WebSocket::parseUpgradeRequest(bytes);
    if (r.status == Status::Invalid) {
        QCOMPARE(r.httpStatus, 400);
        QVERIFY(!r.reason.isEmpty());
        return;
    }
    QCOMPARE(statusName(r.status), QByteArrayLiteral("Complete"));
    QVERIFY2(isOneLine(r.origin) && !r.origin.contains('\0'), printable(r.origin).constData());
    QVERIFY2(isOneLine(r.path) && !r.path.contains('\0'), printable(r.path).constData());
}

void tst_WebSocket::parseUpgradeRequestLimit_data()
{
    QTest::addColumn<qsizetype>("requestSize");
    QTest::addColumn<qsizetype>("maxBytes");
    QTest::addColumn<bool>("complete");

    QTest::addRow("one under the limit") << qsizetype(255) << qsizetype(256) << true;
    QTest::addRow("exactly the limit") << qsizetype(256) << qsizetype(256) << true;
    QTest::addRow("one over the limit") << qsizetype(257) << qsizetype(256) << false;
    QTest::addRow("exactly the default limit") << kMaxUpgradeRequestBytes << kMaxUpgradeRequestBytes << true;
    QTest::addRow("one over the default limit") << kMaxUpgradeRequestBytes + 1 << kMaxUpgradeRequestBytes << false;
}

// "Requests larger than this (request line and headers) get 431": a request of
// exactly maxBytes, its blank line included, is still read.
void tst_WebSocket::parseUpgradeRequestLimit()
{
    QFETCH(qsizetype, requestSize);
    QFETCH(qsizetype, maxBytes);
    QFETCH(bool, complete);

    const QByteArray base = request(minimalLines());
    const QByteArray pad = "X-Pad: ";
    const qsizetype fill = requestSize - base.size() - pad.size() - 2;
    QVERIFY(fill >= 0);
    const QByteArray bytes = request(minimalLines() + QByteArrayList{pad + QByteArray(fill, 'p')});
    QCOMPARE(bytes.size(), requestSize);

    const UpgradeRequest r = Middleman::WebSocket::parseUpgradeRequest(bytes, maxBytes);
    if (complete) {
        QCOMPARE(statusName(r.status), QByteArrayLiteral("Complete"));
        QCOMPARE(r.size, requestSize);
        QCOMPARE(r.key, kKey);
    } else {
        QCOMPARE(statusName(r.status), QByteArrayLiteral("Invalid"));
        QCOMPARE(r.httpStatus, 431);
        QVERIFY(!r.reason.isEmpty());
    }
}

// --- Responses ------------------------------------------------------------------------------

void tst_WebSocket::upgradeResponse_data()
{
    QTest::addColumn<QByteArray>("key");

    QTest::addRow("RFC example") << kKey;
    QTest::addRow("x3JJ...") << QByteArrayLiteral("x3JJHMbDL1EzLkh9GBhXDw==");
}

void tst_WebSocket::upgradeResponse()
{
    QFETCH(QByteArray, key);

    const QByteArray bytes = Middleman::WebSocket::upgradeResponse(key);
    QVERIFY2(bytes.startsWith("HTTP/1.1 101"), bytes.constData());
    QVERIFY2(bytes.endsWith("\r\n\r\n"), bytes.constData());
    const Response r = parseResponse(bytes);
    QVERIFY2(r.ok, bytes.constData());
    QVERIFY(r.statusLine.startsWith("HTTP/1.1 101 "));
    QVERIFY2(r.body.isEmpty(), "a 101 response has nothing after its head");
    QCOMPARE(r.count("upgrade"), 1);
    QCOMPARE(r.value("upgrade").toLower(), QByteArrayLiteral("websocket"));
    QCOMPARE(r.count("connection"), 1);
    QCOMPARE(r.value("connection").toLower(), QByteArrayLiteral("upgrade"));
    QCOMPARE(r.count("sec-websocket-accept"), 1);
    QCOMPARE(r.value("sec-websocket-accept"), Middleman::WebSocket::acceptKey(key));
    QCOMPARE(r.value("sec-websocket-accept"), referenceAccept(key));
    // No extension or subprotocol is agreed to.
    QCOMPARE(r.count("sec-websocket-extensions"), 0);
    QCOMPARE(r.count("sec-websocket-protocol"), 0);
}

void tst_WebSocket::errorResponse_data()
{
    QTest::addColumn<int>("httpStatus");
    QTest::addColumn<QByteArray>("reason");

    QTest::addRow("400") << 400 << QByteArrayLiteral("missing Sec-WebSocket-Key");
    QTest::addRow("405") << 405 << QByteArrayLiteral("only GET upgrades to a WebSocket");
    QTest::addRow("426") << 426 << QByteArrayLiteral("unsupported Sec-WebSocket-Version");
    QTest::addRow("431") << 431 << QByteArrayLiteral("request headers too large");
    QTest::addRow("400, non-ASCII reason") << 400 << QByteArrayLiteral("bad key \xe2\x82\xac");
}

void tst_WebSocket::errorResponse()
{
    QFETCH(int, httpStatus);
    QFETCH(QByteArray, reason);

    const QByteArray bytes = Middleman::WebSocket::errorResponse(httpStatus, reason);
    const QByteArray statusPrefix = "HTTP/1.1 " + QByteArray::number(httpStatus) + ' ';
    QVERIFY2(bytes.startsWith(statusPrefix), bytes.constData());
    const Response r = parseResponse(bytes);
    QVERIFY2(r.ok, bytes.constData());
    QCOMPARE(r.count("content-length"), 1);
    bool numeric = false;
    QCOMPARE(r.value("content-length").toLongLong(&numeric), qlonglong(r.body.size()));
    QVERIFY(numeric);
    QCOMPARE(r.count("connection"), 1);
    QCOMPARE(r.value("connection").toLower(), QByteArrayLiteral("close"));
    QVERIFY2(r.body.contains(reason), r.body.constData());
    // One line: the reason and at most a line end.
    QVERIFY2(r.body.size() <= reason.size() + 2, r.body.constData());
    if (httpStatus == 426) {
        QCOMPARE(r.count("sec-websocket-version"), 1);
        QCOMPARE(r.value("sec-websocket-version"), QByteArrayLiteral("13"));
    }
    // RFC 7231 6.5.5: a 405 names the methods that are allowed.
    if (httpStatus == 405) {
        QCOMPARE(r.count("allow"), 1);
        QVERIFY2(r.value("allow").contains("GET"), r.value("allow").constData());
    }
    QCOMPARE(r.count("sec-websocket-accept"), 0);
}

// --- frameHeader ---------------------------------------------------------------------------

void tst_WebSocket::frameHeader_data()
{
    QTest::addColumn<int>("opcode");
    QTest::addColumn<quint64>("payloadSize");
    QTest::addColumn<QByteArray>("bytes");

    struct Size
    {
        const char *name;
        quint64 size;
        QByteArray length; // the second byte onwards
    };
    const Size sizes[] = {
        {"0", 0, QByteArray("\x00", 1)},
        {"1", 1, QByteArray("\x01", 1)},
        {"125", 125, QByteArray("\x7d", 1)},
        {"126", 126, QByteArray("\x7e\x00\x7e", 3)},
        {"127", 127, QByteArray("\x7e\x00\x7f", 3)},
        {"256", 256, QByteArray("\x7e\x01\x00", 3)},
        {"65535", 65535, QByteArray("\x7e\xff\xff", 3)},
        {"65536", 65536, QByteArray("\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 9)},
        {"2^32+1", (quint64(1) << 32) + 1, QByteArray("\x7f\x00\x00\x00\x01\x00\x00\x00\x01", 9)},
        {"0x0102030405060708", 0x0102030405060708ull, QByteArray("\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 9)},
    };
    const struct
    {
        const char *name;
        Opcode opcode;
    } opcodes[] = {
        {"continuation", Opcode::Continuation}, {"text", Opcode::Text}, {"binary", Opcode::Binary},
        {"close", Opcode::Close},               {"ping", Opcode::Ping}, {"pong", Opcode::Pong},
    };
    for (const auto &op : opcodes) {
        for (const Size &s : sizes) {
            QTest::addRow("%s, %s", op.name, s.name)
                << int(op.opcode) << s.size << QByteArray(1, char(0x80 | quint8(op.opcode))) + s.length;
        }
    }
}

void tst_WebSocket::frameHeader()
{
    QFETCH(int, opcode);
    QFETCH(quint64, payloadSize);
    QFETCH(QByteArray, bytes);

    const FrameHeader h = Middleman::WebSocket::frameHeader(Opcode(opcode), payloadSize);
    QCOMPARE(qsizetype(h.size), bytes.size());
    QCOMPARE(h.view().toByteArray(), bytes);
    QCOMPARE(QByteArray(h.bytes, h.size), bytes);
    QVERIFY((h.bytes[1] & 0x80) == 0); // no mask bit from the server
    if (payloadSize < quint64(std::numeric_limits<qint64>::max() - 10))
        QCOMPARE(wireSize(qint64(payloadSize)), qint64(h.size) + qint64(payloadSize));
}

// --- closePayload --------------------------------------------------------------------------

void tst_WebSocket::closePayload_data()
{
    QTest::addColumn<int>("code");
    QTest::addColumn<QByteArray>("reason");
    QTest::addColumn<int>("keptBytes"); // of the reason

    const QByteArray e = QByteArrayLiteral("\xc3\xa9");         // é, 2 bytes
    const QByteArray euro = QByteArrayLiteral("\xe2\x82\xac");  // €, 3 bytes
    const QByteArray smile = QByteArrayLiteral("\xf0\x9f\x98\x80"); // 😀, 4 bytes

    QTest::addRow("1000, no reason") << 1000 << QByteArray() << 0;
    QTest::addRow("1001, bye") << 1001 << QByteArrayLiteral("bye") << 3;
    QTest::addRow("1009, utf-8 reason") << 1009 << QByteArray("too big " + euro) << 11;
    QTest::addRow("3000") << 3000 << QByteArrayLiteral("x") << 1;
    QTest::addRow("4999") << 4999 << QByteArray() << 0;
    QTest::addRow("0x1234") << 0x1234 << QByteArray() << 0;
    QTest::addRow("65535") << 65535 << QByteArray() << 0;
    QTest::addRow("123 ASCII bytes kept") << 1000 << QByteArray(123, 'a') << 123;
    QTest::addRow("124 ASCII bytes cut to 123") << 1000 << QByteArray(124, 'a') << 123;
    QTest::addRow("500 ASCII bytes cut to 123") << 1000 << QByteArray(500, 'a') << 123;
    QTest::addRow("41 euro signs, 123 bytes, kept") << 1000 << repeated(euro, 41) << 123;
    // A cut at 123 bytes would split the last character of each of these.
    QTest::addRow("62 e-acute, 124 bytes") << 1000 << repeated(e, 62) << 122;
    QTest::addRow("a + 41 euro signs, 124 bytes") << 1000 << "a" + repeated(euro, 41) << 121;
    QTest::addRow("aa + 41 euro signs, 125 bytes") << 1000 << "aa" + repeated(euro, 41) << 122;
    QTest::addRow("100 euro signs") << 1002 << repeated(euro, 100) << 123;
    QTest::addRow("31 emoji, 124 bytes") << 1000 << repeated(smile, 31) << 120;
    QTest::addRow("a + 31 emoji, 125 bytes") << 1000 << "a" + repeated(smile, 31) << 121;
    QTest::addRow("aa + 31 emoji, 126 bytes") << 1000 << "aa" + repeated(smile, 31) << 122;
    QTest::addRow("aaa + 31 emoji, 127 bytes") << 1000 << "aaa" + repeated(smile, 31) << 123;
}

void tst_WebSocket::closePayload()
{
    QFETCH(int, code);
    QFETCH(QByteArray, reason);
    QFETCH(int, keptBytes);

    const QByteArray payload = Middleman::WebSocket::closePayload(quint16(code), reason);
    QVERIFY(payload.size() >= 2);
    QVERIFY(payload.size() <= 125);
    QCOMPARE(quint8(payload.at(0)), quint8(code >> 8));
    QCOMPARE(quint8(payload.at(1)), quint8(code & 0xFF));
    const QByteArray kept = payload.mid(2);
    QVERIFY2(reason.startsWith(kept), "the reason sent is not a prefix of the reason given");
    QVERIFY2(QByteArrayView(kept).isValidUtf8(), printable(kept).constData());
    QCOMPARE(kept.size(), keptBytes);
}

// --- unmask ---------------------------------------------------------------------------------

void tst_WebSocket::unmask_data()
{
    QTest::addColumn<qsizetype>("offset");
    for (qsizetype offset = 0; offset < 8; ++offset)
        QTest::addRow("offset %lld", static_cast<long long>(offset)) << offset;
    QTest::addRow("offset 1001") << qsizetype(1001);
    QTest::addRow("offset 2^40+3") << (qsizetype(1) << 40) + 3;
}

void tst_WebSocket::unmask()
{
    QFETCH(qsizetype, offset);

    const quint8 mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    QList<qsizetype> sizes;
    for (qsizetype n = 0; n <= 40; ++n)
        sizes.append(n);
    sizes << 63 << 64 << 65 << 1000 << 4099;

    for (const qsizetype size : std::as_const(sizes)) {
        // Start at every alignment, for implementations that work a word at a time.
        for (int align = 0; align < 4; ++align) {
            QByteArray source(align + size + 1, '\0');
            for (qsizetype i = 0; i < source.size(); ++i)
                source[i] = char((i * 131 + 7) & 0xFF);
            const QByteArray sourceCopy = source;
            const char *from = source.constData() + align;

            QByteArray expected(size, '\0');
            for (qsizetype i = 0; i < size; ++i)
                expected[i] = char(from[i] ^ char(mask[(offset + i) % 4]));

            // Out of place; the byte after the output stays.
            QByteArray out(align + size + 1, '\x5a');
            Middleman::WebSocket::unmask(out.data() + align, from, size, mask, offset);
            QCOMPARE(out.mid(align, size), expected);
            QCOMPARE(out.at(align + size), '\x5a');
            QCOMPARE(out.left(align), QByteArray(align, '\x5a'));
            QCOMPARE(source, sourceCopy);

            // Twice is the identity.
            QByteArray back(size, '\0');
            Middleman::WebSocket::unmask(back.data(), out.constData() + align, size, mask, offset);
            QCOMPARE(back, QByteArray(from, size));

            // In place.
            QByteArray inPlace = source;
            Middleman::WebSocket::unmask(inPlace.data() + align, inPlace.constData() + align, size, mask, offset);
            QCOMPARE(inPlace.mid(align, size), expected);
            QCOMPARE(inPlace.at(align + size), source.at(align + size));
            QCOMPARE(inPlace.left(align), source.left(align));

            // In pieces: each piece starts at its own offset into the mask.
            if (size > 0) {
                QByteArray pieces(size, '\0');
                const qsizetype cut = size / 3 + 1;
                Middleman::WebSocket::unmask(pieces.data(), from, cut, mask, offset);
                Middleman::WebSocket::unmask(pieces.data() + cut, from + cut, size - cut, mask, offset + cut);
                QCOMPARE(pieces, expected);
            }
        }
    }

    // The offset defaults to 0.
    const QByteArray data = QByteArrayLiteral("abcdefg");
    QByteArray a(data.size(), '\0');
    QByteArray b(data.size(), '\0');
    Middleman::WebSocket::unmask(a.data(), data.constData(), data.size(), mask);
    Middleman::WebSocket::unmask(b.data(), data.constData(), data.size(), mask, 0);
    QCOMPARE(a, b);
    QCOMPARE(quint8(a.at(0)), quint8('a' ^ 0x37));
    QCOMPARE(quint8(a.at(4)), quint8('e' ^ 0x37));
}

// --- FrameReader ------------------------------------------------------------------------------

void tst_WebSocket::frameReader_data()
{
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<qint64>("maxMessageSize");
    QTest::addColumn<QByteArrayList>("events");

    const QByteArray euro = QByteArrayLiteral("\xe2\x82\xac");
    const QByteArray smile = QByteArrayLiteral("\xf0\x9f\x98\x80");
    const QByteArray utf8 = "h\xc3\xa9llo " + euro + ' ' + smile;

    // Messages.
    QTest::addRow("text") << textFrame("hello") << kMiB << QByteArrayList{textEvent("hello")};
    QTest::addRow("text, empty") << textFrame("") << kMiB << QByteArrayList{textEvent("")};
    QTest::addRow("text, utf-8") << textFrame(utf8) << kMiB << QByteArrayList{textEvent(utf8)};
    QTest::addRow("text, U+FFFF and U+10FFFF")
        << textFrame("\xef\xbf\xbf\xf4\x8f\xbf\xbf") << kMiB << QByteArrayList{textEvent("\xef\xbf\xbf\xf4\x8f\xbf\xbf")};
    QTest::addRow("binary") << binaryFrame(QByteArray("\x00\xff\x80 bytes", 9)) << kMiB
                            << QByteArrayList{binaryEvent(QByteArray("\x00\xff\x80 bytes", 9))};
    QTest::addRow("binary, empty") << binaryFrame("") << kMiB << QByteArrayList{binaryEvent("")};
    QTest::addRow("binary, not utf-8") << binaryFrame("\xc3\x28\xff") << kMiB
                                       << QByteArrayList{binaryEvent("\xc3\x28\xff")};
    QTest::addRow("all-zero mask") << frame(kFin | 0x1, "plain", {.mask = 0}) << kMiB
                                   << QByteArrayList{textEvent("plain")};
    QTest::addRow("all-ones mask") << frame(kFin | 0x2, "ones", {.mask = 0xFFFFFFFF}) << kMiB
                                   << QByteArrayList{binaryEvent("ones")};
    QTest::addRow("text, 125 bytes") << textFrame(filled(125)) << kMiB << QByteArrayList{textEvent(filled(125))};
    QTest::addRow("text, 126 bytes") << textFrame(filled(126)) << kMiB << QByteArrayList{textEvent(filled(126))};
    QTest::addRow("binary, 65535 bytes") << binaryFrame(filled(65535)) << kMiB
                                         << QByteArrayList{binaryEvent(filled(65535))};
    QTest::addRow("binary, 65536 bytes") << binaryFrame(filled(65536)) << kMiB
                                         << QByteArrayList{binaryEvent(filled(65536))};
    QTest::addRow("two frames") << textFrame("one") + binaryFrame("two") << kMiB
                                << QByteArrayList{textEvent("one"), binaryEvent("two")};
    QTest::addRow("text, ping, pong, binary")
        << textFrame("t") + pingFrame("p") + pongFrame("q") + binaryFrame("b") << kMiB
        << QByteArrayList{textEvent("t"), pingEvent("p"), pongEvent("q"), binaryEvent("b")};

    // Fragments (RFC 6455 5.4).
    QTest::addRow("fragmented text")
        << textFrame("Hel", false) + continuationFrame("lo, ", false) + continuationFrame("world") << kMiB
        << QByteArrayList{textEvent("Hello, world")};
    QTest::addRow("fragmented binary") << binaryFrame(QByteArray("\x00\x01", 2), false) + continuationFrame("\xff")
                                       << kMiB << QByteArrayList{binaryEvent(QByteArray("\x00\x01\xff", 3))};
    QTest::addRow("fragmented, all empty") << textFrame("", false) + continuationFrame("", false)
                                                  + continuationFrame("")
                                           << kMiB << QByteArrayList{textEvent("")};
    QTest::addRow("fragmented, empty first") << binaryFrame("", false) + continuationFrame("abc") << kMiB
                                             << QByteArrayList{binaryEvent("abc")};
    QTest::addRow("fragmented, 16-bit fragments")
        << textFrame(filled(200), false) + continuationFrame(filled(300, "xyz")) << kMiB
        << QByteArrayList{textEvent(filled(200) + filled(300, "xyz"))};
    QTest::addRow("ping between fragments") << textFrame("a", false) + pingFrame("p") + continuationFrame("b")
                                            << kMiB << QByteArrayList{pingEvent("p"), textEvent("ab")};
    QTest::addRow("pong between fragments") << binaryFrame("a", false) + pongFrame("q") + continuationFrame("b")
                                            << kMiB << QByteArrayList{pongEvent("q"), binaryEvent("ab")};
    QTest::addRow("controls between every fragment")
        << textFrame("1", false) + pingFrame("a") + continuationFrame("2", false) + pongFrame("b") + pingFrame()
               + continuationFrame("3", false) + pingFrame("c") + continuationFrame("4")
        << kMiB
        << QByteArrayList{pingEvent("a"), pongEvent("b"), pingEvent(""), pingEvent("c"), textEvent("1234")};
    QTest::addRow("two fragmented messages")
        << textFrame("a", false) + continuationFrame("b") + binaryFrame("c", false) + continuationFrame("d") << kMiB
        << QByteArrayList{textEvent("ab"), binaryEvent("cd")};
    QTest::addRow("euro split between fragments")
        << textFrame("a\xe2\x82", false) + continuationFrame("\xac") << kMiB
        << QByteArrayList{textEvent("a" + euro)};
    QTest::addRow("euro split in three fragments")
        << textFrame("\xe2", false) + continuationFrame("\x82", false) + continuationFrame("\xac") << kMiB
        << QByteArrayList{textEvent(euro)};
    QTest::addRow("emoji split, ping in between")
        << textFrame("\xf0\x9f", false) + pingFrame() + continuationFrame("\x98\x80!") << kMiB
        << QByteArrayList{pingEvent(), textEvent(smile + '!')};

    // Control frames (RFC 6455 5.5).
    QTest::addRow("ping") << pingFrame("are you there") << kMiB << QByteArrayList{pingEvent("are you there")};
    QTest::addRow("ping, empty") << pingFrame() << kMiB << QByteArrayList{pingEvent()};
    QTest::addRow("ping, 125 bytes") << pingFrame(filled(125)) << kMiB << QByteArrayList{pingEvent(filled(125))};
    QTest::addRow("ping, binary payload") << pingFrame(QByteArray("\x00\xff\xfe", 3)) << kMiB
                                          << QByteArrayList{pingEvent(QByteArray("\x00\xff\xfe", 3))};
    QTest::addRow("pong") << pongFrame("1700000000") << kMiB << QByteArrayList{pongEvent("1700000000")};
    QTest::addRow("pong, empty") << pongFrame() << kMiB << QByteArrayList{pongEvent()};
    QTest::addRow("close with code and reason") << closeFrame(closeBody(1000, "bye")) << kMiB
                                                << QByteArrayList{closeEvent(1000, "bye")};
    QTest::addRow("close with code only") << closeFrame(closeBody(1001)) << kMiB
                                          << QByteArrayList{closeEvent(1001)};
    QTest::addRow("close, empty") << closeFrame() << kMiB << QByteArrayList{closeEvent(CloseNoStatus)};
    QTest::addRow("close, utf-8 reason") << closeFrame(closeBody(1000, euro + smile)) << kMiB
                                         << QByteArrayList{closeEvent(1000, euro + smile)};
    QTest::addRow("close, 123-byte reason") << closeFrame(closeBody(4000, filled(123))) << kMiB
                                            << QByteArrayList{closeEvent(4000, filled(123))};
    for (const int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
        QTest::addRow("close code %d", code) << closeFrame(closeBody(quint16(code), "r")) << kMiB
                                             << QByteArrayList{closeEvent(quint16(code), "r")};
    }
    QTest::addRow("close between fragments") << textFrame("a", false) + closeFrame(closeBody(1000)) << kMiB
                                             << QByteArrayList{closeEvent(1000)};
    QTest::addRow("message, close, more") << textFrame("a") + closeFrame(closeBody(1001)) + textFrame("b") << kMiB
                                          << QByteArrayList{textEvent("a"), closeEvent(1001)};

    // Size limit.
    QTest::addRow("message of maxMessageSize") << binaryFrame(filled(100)) << qint64(100)
                                               << QByteArrayList{binaryEvent(filled(100))};
    QTest::addRow("fragments summing to maxMessageSize")
        << textFrame(filled(60), false) + continuationFrame(filled(40)) << qint64(100)
        << QByteArrayList{textEvent(filled(60) + filled(40))};
    QTest::addRow("message over maxMessageSize") << binaryFrame(filled(101)) << qint64(100)
                                                 << QByteArrayList{errorEvent(CloseTooBig)};
    QTest::addRow("text over maxMessageSize") << textFrame(filled(1000)) << qint64(999)
                                              << QByteArrayList{errorEvent(CloseTooBig)};
    QTest::addRow("fragments over maxMessageSize")
        << textFrame(filled(60), false) + continuationFrame(filled(41)) << qint64(100)
        << QByteArrayList{errorEvent(CloseTooBig)};
    QTest::addRow("many fragments over maxMessageSize")
        << binaryFrame(filled(30), false) + continuationFrame(filled(30), false) + pingFrame("p")
               + continuationFrame(filled(30), false) + continuationFrame(filled(30))
        << qint64(100) << QByteArrayList{pingEvent("p"), errorEvent(CloseTooBig)};
    QTest::addRow("a message after a big one") << binaryFrame(filled(100)) + textFrame("x") << qint64(100)
                                               << QByteArrayList{binaryEvent(filled(100)), textEvent("x")};
    QTest::addRow("huge 64-bit length, header only")
        << frame(kFin | 0x2, {}, {.declaredLength = quint64(1) << 32, .headerOnly = true}) << kMiB
        << QByteArrayList{errorEvent(CloseTooBig)};

    // Protocol errors (RFC 6455 5.1 to 5.5, 7.4).
    QTest::addRow("unmasked text") << frame(kFin | 0x1, "hello", {.masked = false}) << kMiB
                                   << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("unmasked ping") << frame(kFin | 0x9, "p", {.masked = false}) << kMiB
                                   << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("unmasked close") << frame(kFin | 0x8, closeBody(1000), {.masked = false}) << kMiB
                                    << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("unmasked, after a message") << textFrame("ok") + frame(kFin | 0x1, "x", {.masked = false})
                                               << kMiB
                                               << QByteArrayList{textEvent("ok"), errorEvent(CloseProtocolError)};
    QTest::addRow("RSV1") << frame(kFin | 0x40 | 0x1, "x") << kMiB << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("RSV2") << frame(kFin | 0x20 | 0x2, "x") << kMiB << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("RSV3") << frame(kFin | 0x10 | 0x1, "x") << kMiB << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("RSV1 on a ping") << frame(kFin | 0x40 | 0x9, "") << kMiB
                                    << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("RSV1 on a continuation") << textFrame("a", false) + frame(kFin | 0x40, "b") << kMiB
                                            << QByteArrayList{errorEvent(CloseProtocolError)};
    for (const int opcode : {3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
        QTest::addRow("opcode 0x%X", opcode) << frame(quint8(kFin | opcode), "x") << kMiB
                                             << QByteArrayList{errorEvent(CloseProtocolError)};
    }
    QTest::addRow("opcode 3 without FIN") << frame(0x3, "x") << kMiB << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("ping, 126 bytes") << pingFrame(filled(126)) << kMiB
                                     << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("pong, 126 bytes") << pongFrame(filled(126)) << kMiB
                                     << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("close, 126 bytes") << closeFrame(closeBody(1000, filled(124))) << kMiB
                                      << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("ping, 64-bit length of 70000") << frame(kFin | 0x9, filled(70000)) << kMiB
                                                  << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("ping without FIN") << frame(0x9, "p") << kMiB << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("pong without FIN") << frame(0xA, "p") << kMiB << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("close without FIN") << frame(0x8, closeBody(1000)) << kMiB
                                       << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("ping without FIN between fragments") << textFrame("a", false) + frame(0x9, "p") << kMiB
                                                        << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("continuation, no message") << continuationFrame("x") << kMiB
                                              << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("continuation without FIN, no message") << continuationFrame("x", false) << kMiB
                                                          << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("continuation after a whole message") << textFrame("a") + continuationFrame("b") << kMiB
                                                        << QByteArrayList{textEvent("a"),
                                                                          errorEvent(CloseProtocolError)};
    QTest::addRow("text while fragmented") << textFrame("a", false) + textFrame("b") << kMiB
                                           << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("binary while fragmented") << textFrame("a", false) + binaryFrame("b", false) << kMiB
                                             << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("text while fragmented, after a ping")
        << binaryFrame("a", false) + pingFrame("p") + textFrame("b") << kMiB
        << QByteArrayList{pingEvent("p"), errorEvent(CloseProtocolError)};
    QTest::addRow("close payload of 1 byte") << closeFrame("\x03") << kMiB
                                             << QByteArrayList{errorEvent(CloseProtocolError)};
    for (const int code : {0, 999, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
        QTest::addRow("close code %d", code) << closeFrame(closeBody(quint16(code), "r")) << kMiB
                                             << QByteArrayList{errorEvent(CloseProtocolError)};
    }
    QTest::addRow("close code 1005, no reason") << closeFrame(closeBody(1005)) << kMiB
                                                << QByteArrayList{errorEvent(CloseProtocolError)};

    // Invalid UTF-8 (RFC 6455 8.1).
    QTest::addRow("close reason not utf-8") << closeFrame(closeBody(1000, "\xff")) << kMiB
                                            << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("close reason, cut character") << closeFrame(closeBody(1000, "ab\xe2\x82")) << kMiB
                                                 << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("text, 0xFF") << textFrame("\xff") << kMiB << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("text, bad continuation byte") << textFrame("\xc3\x28") << kMiB
                                                 << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("text, overlong") << textFrame("\xc0\xaf") << kMiB << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("text, surrogate") << textFrame("\xed\xa0\x80") << kMiB
                                     << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("text, above U+10FFFF") << textFrame("\xf4\x90\x80\x80") << kMiB
                                          << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("text, ends inside a character") << textFrame("ab\xe2\x82") << kMiB
                                                   << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("text, long, invalid at the end") << textFrame(filled(300) + "\xff") << kMiB
                                                    << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("fragments, invalid across the split")
        << textFrame("\xe2\x82", false) + continuationFrame("a") << kMiB
        << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("fragments, last ends inside a character")
        << textFrame("a", false) + continuationFrame("\xe2\x82") << kMiB
        << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("fragments, invalid in the middle")
        << textFrame("a", false) + continuationFrame("\xff", false) + continuationFrame("b") << kMiB
        << QByteArrayList{errorEvent(CloseInvalidPayload)};
    QTest::addRow("valid message, then invalid one") << textFrame("ok") + textFrame("\xff") << kMiB
                                                     << QByteArrayList{textEvent("ok"),
                                                                       errorEvent(CloseInvalidPayload)};

    // Nothing after an error.
    QTest::addRow("error, then valid frames") << frame(kFin | 0x1, "x", {.masked = false}) + textFrame("a")
                                                     + pingFrame()
                                              << kMiB << QByteArrayList{errorEvent(CloseProtocolError)};
    QTest::addRow("empty input") << QByteArray() << kMiB << QByteArrayList{};
    QTest::addRow("incomplete frame") << textFrame("hello").chopped(1) << kMiB << QByteArrayList{};
    QTest::addRow("incomplete header") << textFrame(filled(300)).left(3) << kMiB << QByteArrayList{};
}

// The same events whatever the bytes are appended in: all at once, byte by byte and
// in chunks of several sizes.
void tst_WebSocket::frameReader()
{
    QFETCH(QByteArray, input);
    QFETCH(qint64, maxMessageSize);
    QFETCH(QByteArrayList, events);

    QCOMPARE(trace(input, maxMessageSize), events);
    for (const qsizetype chunk : {1, 2, 3, 5, 7, 14, 64, 1000}) {
        if (chunk < 64 && input.size() > 10000)
            continue;
        const QByteArrayList got = trace(input, maxMessageSize, chunk);
        if (got != events)
            qWarning("appended in chunks of %lld bytes", static_cast<long long>(chunk));
        QCOMPARE(got, events);
    }
}

// One event per next(), in order, with every field the event documents.
void tst_WebSocket::frameReaderOneEventAtATime()
{
    FrameReader reader(kMiB);
    QVERIFY(!reader.finished());
    QCOMPARE(reader.next().kind, Kind::None);
    reader.append(textFrame("one") + binaryFrame("two") + pingFrame("3") + pongFrame("4")
                  + closeFrame(closeBody(1001, "going")));

    FrameReader::Event e = reader.next();
    QCOMPARE(e.kind, Kind::Message);
    QCOMPARE(e.binary, false);
    QCOMPARE(e.payload, QByteArrayLiteral("one"));
    QVERIFY(!reader.finished());

    e = reader.next();
    QCOMPARE(e.kind, Kind::Message);
    QCOMPARE(e.binary, true);
    QCOMPARE(e.payload, QByteArrayLiteral("two"));

    e = reader.next();
    QCOMPARE(e.kind, Kind::Ping);
    QCOMPARE(e.payload, QByteArrayLiteral("3"));

    e = reader.next();
    QCOMPARE(e.kind, Kind::Pong);
    QCOMPARE(e.payload, QByteArrayLiteral("4"));
    QVERIFY(!reader.finished());

    e = reader.next();
    QCOMPARE(e.kind, Kind::Close);
    QCOMPARE(e.code, quint16(1001));
    QCOMPARE(e.payload, QByteArrayLiteral("going"));
    QVERIFY(reader.finished());
    QCOMPARE(reader.next().kind, Kind::None);

    // An error carries the code and a reason.
    FrameReader bad(kMiB);
    bad.append(frame(kFin | 0x1, "x", {.masked = false}));
    e = bad.next();
    QCOMPARE(e.kind, Kind::Error);
    QCOMPARE(e.code, quint16(CloseProtocolError));
    QVERIFY(!e.reason.isEmpty());
    QVERIFY(isOneLine(e.reason));
    QVERIFY(bad.finished());

    // An empty close gives CloseNoStatus and no reason.
    FrameReader empty(kMiB);
    empty.append(closeFrame());
    e = empty.next();
    QCOMPARE(e.kind, Kind::Close);
    QCOMPARE(e.code, quint16(CloseNoStatus));
    QVERIFY(e.payload.isEmpty());
}

void tst_WebSocket::frameReaderTooBigAtHeader_data()
{
    QTest::addColumn<QByteArray>("header"); // a frame's header and mask key, no payload
    QTest::addColumn<qint64>("maxMessageSize");

    QTest::addRow("64-bit length 2^32") << frame(kFin | 0x2, {}, {.declaredLength = quint64(1) << 32, .headerOnly = true})
                                        << kMiB;
    QTest::addRow("64-bit length 2^62") << frame(kFin | 0x1, {}, {.declaredLength = quint64(1) << 62, .headerOnly = true})
                                        << kMiB;
    QTest::addRow("64-bit length, one over") << frame(kFin | 0x2, {}, {.declaredLength = quint64(kMiB) + 1, .headerOnly = true})
                                             << kMiB;
    QTest::addRow("16-bit length 65535") << frame(kFin | 0x2, {}, {.declaredLength = 65535, .headerOnly = true})
                                         << qint64(1000);
    QTest::addRow("7-bit length 125") << frame(kFin | 0x1, {}, {.declaredLength = 125, .headerOnly = true})
                                      << qint64(100);
    QTest::addRow("first fragment too big") << frame(0x1, {}, {.declaredLength = 70000, .headerOnly = true})
                                            << qint64(65536);
}

// A frame that declares more than maxMessageSize fails once its header is in: the
// reader must not wait for (and hold) the payload.
void tst_WebSocket::frameReaderTooBigAtHeader()
{
    QFETCH(QByteArray, header);
    QFETCH(qint64, maxMessageSize);

    FrameReader reader(maxMessageSize);
    reader.append(header);
    const FrameReader::Event e = reader.next();
    QCOMPARE(e.kind, Kind::Error);
    QCOMPARE(e.code, quint16(CloseTooBig));
    QVERIFY(!e.reason.isEmpty());
    QVERIFY(reader.finished());
    QCOMPARE(reader.next().kind, Kind::None);
}

void tst_WebSocket::frameReaderLengthMsbSet_data()
{
    QTest::addColumn<quint64>("length");
    QTest::addColumn<qint64>("maxMessageSize");

    const qint64 unlimited = std::numeric_limits<qint64>::max();
    QTest::addRow("2^63, no limit") << (quint64(1) << 63) << unlimited;
    QTest::addRow("2^63 + 5, no limit") << (quint64(1) << 63) + 5 << unlimited;
    QTest::addRow("2^64 - 1, no limit") << std::numeric_limits<quint64>::max() << unlimited;
    QTest::addRow("2^63, 1 MiB limit") << (quint64(1) << 63) << kMiB;
    QTest::addRow("2^64 - 1, 1 MiB limit") << std::numeric_limits<quint64>::max() << kMiB;
}

// RFC 6455 5.2: "the most significant bit MUST be 0". Refused as a protocol error
// or as too big; never taken for a negative or small size.
void tst_WebSocket::frameReaderLengthMsbSet()
{
    QFETCH(quint64, length);
    QFETCH(qint64, maxMessageSize);

    FrameReader reader(maxMessageSize);
    reader.append(frame(kFin | 0x2, {}, {.declaredLength = length, .headerOnly = true}) + QByteArray(64, 'x'));
    const FrameReader::Event e = reader.next();
    QCOMPARE(e.kind, Kind::Error);
    QVERIFY2(e.code == CloseProtocolError || e.code == CloseTooBig, QByteArray::number(e.code).constData());
    QVERIFY(!e.reason.isEmpty());
    QVERIFY(reader.finished());
}

void tst_WebSocket::frameReaderNonMinimalLength_data()
{
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<QByteArray>("payload");

    QTest::addRow("5 bytes in 16 bits") << frame(kFin | 0x1, "hello", {.lengthBytes = 2}) << QByteArrayLiteral("hello");
    QTest::addRow("5 bytes in 64 bits") << frame(kFin | 0x1, "hello", {.lengthBytes = 8}) << QByteArrayLiteral("hello");
    QTest::addRow("300 bytes in 64 bits") << frame(kFin | 0x1, filled(300), {.lengthBytes = 8}) << filled(300);
}

// RFC 6455 5.2 asks for the minimal length encoding. A reader may refuse the
// others (1002) or read them; it must not misread the payload.
void tst_WebSocket::frameReaderNonMinimalLength()
{
    QFETCH(QByteArray, input);
    QFETCH(QByteArray, payload);

    const QByteArrayList got = trace(input + textFrame("next"), kMiB);
    const QByteArrayList accepted{textEvent(payload), textEvent("next")};
    const QByteArrayList refused{errorEvent(CloseProtocolError)};
    QVERIFY2(got == accepted || got == refused, got.join(" | ").constData());
    for (const qsizetype chunk : {1, 3})
        QCOMPARE(trace(input + textFrame("next"), kMiB, chunk), got);
}

void tst_WebSocket::frameReaderAfterEnd_data()
{
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<int>("kind");
    QTest::addColumn<int>("code");

    QTest::addRow("close") << closeFrame(closeBody(1000)) << int(Kind::Close) << 1000;
    QTest::addRow("empty close") << closeFrame() << int(Kind::Close) << int(CloseNoStatus);
    QTest::addRow("close in a fragmented message") << textFrame("a", false) + closeFrame(closeBody(1001))
                                                   << int(Kind::Close) << 1001;
    QTest::addRow("protocol error") << frame(kFin | 0x3, "x") << int(Kind::Error) << int(CloseProtocolError);
    QTest::addRow("invalid utf-8") << textFrame("\xff") << int(Kind::Error) << int(CloseInvalidPayload);
    QTest::addRow("too big") << binaryFrame(filled(20)) << int(Kind::Error) << int(CloseTooBig);
}

// After a Close or an Error: None for good, whatever is appended, and finished().
void tst_WebSocket::frameReaderAfterEnd()
{
    QFETCH(QByteArray, input);
    QFETCH(int, kind);
    QFETCH(int, code);

    FrameReader reader(10);
    // Valid frames right behind, in the same append.
    reader.append(input + textFrame("a") + pingFrame("b"));
    const FrameReader::Event e = reader.next();
    QCOMPARE(int(e.kind), kind);
    QCOMPARE(int(e.code), code);
    QVERIFY(reader.finished());
    for (int i = 0; i < 3; ++i) {
        QCOMPARE(reader.next().kind, Kind::None);
        QVERIFY(reader.finished());
    }
    // And in later appends.
    reader.append(textFrame("c"));
    reader.append(closeFrame(closeBody(1000)));
    QCOMPARE(reader.next().kind, Kind::None);
    QCOMPARE(reader.next().kind, Kind::None);
    QVERIFY(reader.finished());
}

void tst_WebSocket::frameReaderBufferedBytes()
{
    FrameReader reader(kMiB);
    QCOMPARE(reader.bufferedBytes(), qsizetype(0));

    // A partial frame is held.
    const QByteArray whole = textFrame("hello");
    reader.append(whole.left(3));
    QCOMPARE(reader.next().kind, Kind::None);
    QVERIFY(reader.bufferedBytes() > 0);
    reader.append(whole.mid(3, 4));
    QCOMPARE(reader.next().kind, Kind::None);
    QVERIFY(reader.bufferedBytes() > 0);
    reader.append(whole.mid(7));
    QCOMPARE(reader.next().kind, Kind::Message);
    QCOMPARE(reader.bufferedBytes(), qsizetype(0));
    QCOMPARE(reader.next().kind, Kind::None);
    QCOMPARE(reader.bufferedBytes(), qsizetype(0));

    // Two frames: the second is held until it is read.
    reader.append(textFrame("a") + binaryFrame("b"));
    QCOMPARE(reader.next().kind, Kind::Message);
    QVERIFY(reader.bufferedBytes() > 0);
    QCOMPARE(reader.next().kind, Kind::Message);
    QCOMPARE(reader.bufferedBytes(), qsizetype(0));

    // The fragments of a message so far are held; a ping in between is not.
    reader.append(textFrame("first part ", false));
    QCOMPARE(reader.next().kind, Kind::None);
    QVERIFY(reader.bufferedBytes() >= 11);
    reader.append(pingFrame("p"));
    QCOMPARE(reader.next().kind, Kind::Ping);
    QVERIFY(reader.bufferedBytes() >= 11);
    reader.append(continuationFrame("second part"));
    const FrameReader::Event m = reader.next();
    QCOMPARE(m.kind, Kind::Message);
    QCOMPARE(m.payload, QByteArrayLiteral("first part second part"));
    QCOMPARE(reader.bufferedBytes(), qsizetype(0));

    // Controls alone.
    reader.append(pingFrame("x") + pongFrame("y"));
    QCOMPARE(reader.next().kind, Kind::Ping);
    QCOMPARE(reader.next().kind, Kind::Pong);
    QCOMPARE(reader.bufferedBytes(), qsizetype(0));

    // A large message in pieces: held while partial, nothing once read.
    const QByteArray big = binaryFrame(filled(70000));
    for (qsizetype i = 0; i + 1 < big.size(); i += 1000) {
        reader.append(big.mid(i, qMin<qsizetype>(1000, big.size() - 1 - i)));
        QCOMPARE(reader.next().kind, Kind::None);
        QVERIFY(reader.bufferedBytes() > 0);
    }
    reader.append(big.right(1));
    const FrameReader::Event b = reader.next();
    QCOMPARE(b.kind, Kind::Message);
    QCOMPARE(b.payload, filled(70000));
    QCOMPARE(reader.bufferedBytes(), qsizetype(0));
    QVERIFY(!reader.finished());
}

// A long stream of random messages, fragments, masks and control frames, appended in
// random pieces, reads back as exactly what was sent.
void tst_WebSocket::frameReaderRandomStream()
{
    QRandomGenerator rng(20240611);
    const QByteArray units[] = {"a", "Z", " ", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x7f", QByteArray(1, '\0')};

    QByteArray stream;
    QByteArrayList expected;
    for (int m = 0; m < 300; ++m) {
        const bool binary = rng.bounded(2) == 1;
        const int sizeClass = rng.bounded(10);
        const qsizetype size = sizeClass < 6 ? rng.bounded(20) : sizeClass < 9 ? rng.bounded(400) : 65536 + rng.bounded(1000);
        QByteArray payload;
        if (binary) {
            payload.resize(size);
            for (qsizetype i = 0; i < size; ++i)
                payload[i] = char(rng.bounded(256));
        } else {
            while (payload.size() < size)
                payload += units[rng.bounded(int(std::size(units)))];
        }
        // Cut anywhere, characters included.
        const int pieces = rng.bounded(4) == 0 ? 1 + rng.bounded(5) : 1;
        QList<qsizetype> cuts;
        for (int i = 1; i < pieces; ++i)
            cuts.append(payload.isEmpty() ? 0 : rng.bounded(int(payload.size() + 1)));
        std::sort(cuts.begin(), cuts.end());
        cuts.prepend(0);
        cuts.append(payload.size());
        for (int i = 0; i + 1 < cuts.size(); ++i) {
            const bool first = i == 0;
            const bool last = i + 2 == cuts.size();
            const quint8 opcode = first ? (binary ? 0x2 : 0x1) : 0x0;
            stream += frame((last ? kFin : 0) | opcode, payload.mid(cuts.at(i), cuts.at(i + 1) - cuts.at(i)),
                            {.mask = rng.generate()});
            if (!last && rng.bounded(3) == 0) {
                const QByteArray p = QByteArray::number(rng.generate());
                const bool ping = rng.bounded(2) == 1;
                stream += ping ? pingFrame(p) : pongFrame(p);
                expected.append(ping ? pingEvent(p) : pongEvent(p));
            }
        }
        expected.append(binary ? binaryEvent(payload) : textEvent(payload));
        if (rng.bounded(5) == 0) {
            const QByteArray p = QByteArray::number(m);
            stream += pingFrame(p);
            expected.append(pingEvent(p));
        }
    }
    stream += closeFrame(closeBody(1000, "done"));
    expected.append(closeEvent(1000, "done"));

    FrameReader reader(kMiB);
    QByteArrayList got;
    qsizetype pos = 0;
    while (pos < stream.size()) {
        const qsizetype n = qMin<qsizetype>(1 + rng.bounded(rng.bounded(2) ? 16 : 3000), stream.size() - pos);
        reader.append(stream.mid(pos, n));
        pos += n;
        for (FrameReader::Event e = reader.next(); e.kind != Kind::None; e = reader.next())
            got.append(describe(e));
        QVERIFY(reader.bufferedBytes() >= 0);
    }
    QCOMPARE(got.size(), expected.size());
    QCOMPARE(got, expected);
    QVERIFY(reader.finished());
}

QTEST_APPLESS_MAIN(tst_WebSocket)
#include "tst_websocket.moc"
