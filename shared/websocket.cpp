#include "websocket.h"

#include <QCryptographicHash>
#include <QStringBuilder>

#include <cstring>

namespace Middleman::WebSocket {

namespace {

// RFC 6455 1.3.
constexpr QByteArrayView kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool hasToken(QByteArrayView list, QByteArrayView token)
{
    // A comma-separated list of tokens, compared case-insensitively (RFC 9110 5.6.1).
    qsizetype start = 0;
    while (start <= list.size()) {
        qsizetype end = list.indexOf(',', start);
        if (end < 0)
            end = list.size();
        if (list.sliced(start, end - start).trimmed().compare(token, Qt::CaseInsensitive) == 0)
            return true;
        start = end + 1;
    }
    return false;
}

UpgradeRequest invalid(int status, QByteArray reason)
{
    UpgradeRequest request;
    request.status = UpgradeRequest::Status::Invalid;
    request.httpStatus = status;
    request.reason = std::move(reason);
    return request;
}

QByteArrayView statusText(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 405:
        return "Method Not Allowed";
    case 426:
        return "Upgrade Required";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

// Close codes a peer may send (RFC 6455 7.4): the defined ones that are not
// reserved for local use, and the registered and private ranges.
bool isValidCloseCode(quint16 code)
{
    if (code >= 3000 && code <= 4999)
        return true;
    switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014:
        return true;
    default:
        return false;
    }
}

} // namespace

UpgradeRequest parseUpgradeRequest(QByteArrayView bytes, qsizetype maxBytes)
{
    // The request ends at the first empty line.
    qsizetype end = -1;
    qsizetype size = 0;
    for (qsizetype from = 0;;) {
        const qsizetype lf = bytes.indexOf('\n', from);
        if (lf < 0 || lf >= maxBytes)
            break;
        const qsizetype lineStart = from;
        const qsizetype lineLength = lf - lineStart - (lf > lineStart && bytes[lf - 1] == '\r' ? 1 : 0);
        if (lineLength == 0 && lineStart > 0) {
            end = lineStart;
            size = lf + 1;
            break;
        }
        from = lf + 1;
    }
    if (end < 0) {
        if (bytes.size() >= maxBytes)
            return invalid(431, QByteArrayLiteral("upgrade request larger than ") + QByteArray::number(maxBytes) + " bytes");
        return {};
    }

    UpgradeRequest request;
    bool first = true;
    bool hasHost = false;
    bool upgrade = false;
    bool connection = false;
    QByteArrayView version;
    for (qsizetype from = 0; from < end;) {
        const qsizetype lf = bytes.indexOf('\n', from);
        QByteArrayView line = bytes.sliced(from, lf - from);
        if (line.endsWith('\r'))
            line.chop(1);
        from = lf + 1;
        // RFC 9110 5.5: a CR or NUL inside a line is refused, never passed on
        // (into a log line, for one).
        if (line.contains('\r') || line.contains('\0'))
            return invalid(400, "CR or NUL inside a line of the request");
        if (first) {
            first = false;
            // GET <path> HTTP/1.1
            const qsizetype sp1 = line.indexOf(' ');
            const qsizetype sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1);
            if (sp1 <= 0 || sp2 <= sp1 + 1 || line.indexOf(' ', sp2 + 1) >= 0)
                return invalid(400, "malformed request line");
            const QByteArrayView method = line.first(sp1);
            const QByteArrayView httpVersion = line.sliced(sp2 + 1);
            if (!httpVersion.startsWith("HTTP/1.") || httpVersion.size() != 8 || httpVersion[7] < '1'
                || httpVersion[7] > '9')
                return invalid(400, "HTTP/1.1 or later required");
            if (method != "GET")
                return invalid(405, "only GET upgrades to a WebSocket");
            request.path = line.sliced(sp1 + 1, sp2 - sp1 - 1).toByteArray();
            continue;
        }
        const qsizetype colon = line.indexOf(':');
        if (colon <= 0)
            return invalid(400, "malformed header line");
        const QByteArrayView name = line.first(colon);
        const QByteArrayView value = line.sliced(colon + 1).trimmed();
        const auto is = [&name](QByteArrayView wanted) { return name.compare(wanted, Qt::CaseInsensitive) == 0; };
        if (is("Host"))
            hasHost = true;
        else if (is("Upgrade"))
            upgrade = upgrade || hasToken(value, "websocket");
        else if (is("Connection"))
            connection = connection || hasToken(value, "upgrade");
        else if (is("Sec-WebSocket-Key"))
            request.key = value.toByteArray();
        else if (is("Sec-WebSocket-Version"))
            version = value;
        else if (is("Origin"))
            request.origin = value.toByteArray();
    }
    if (!hasHost)
        return invalid(400, "no Host header");
    if (!upgrade || !connection)
        return invalid(400, "not a WebSocket upgrade (Upgrade: websocket and Connection: Upgrade required)");
    if (version != "13")
        return invalid(426, "WebSocket version 13 required");
    const auto decoded = QByteArray::fromBase64Encoding(request.key, QByteArray::AbortOnBase64DecodingErrors);
    if (request.key.isEmpty() || !decoded || decoded.decoded.size() != 16)
        return invalid(400, "Sec-WebSocket-Key must be 16 bytes in base64");
    request.status = UpgradeRequest::Status::Complete;
    request.size = size;
    return request;
}

QByteArray acceptKey(QByteArrayView key)
{
    QCryptographicHash hash(QCryptographicHash::Sha1);
    hash.addData(key);
    hash.addData(kGuid);
    return hash.result().toBase64();
}

QByteArray upgradeResponse(QByteArrayView key)
{
    return QByteArrayLiteral("HTTP/1.1 101 Switching Protocols\r\n"
                             "Upgrade: websocket\r\n"
                             "Connection: Upgrade\r\n"
                             "Sec-WebSocket-Accept: ")
        + acceptKey(key) + "\r\n\r\n";
}

QByteArray errorResponse(int httpStatus, QByteArrayView reason)
{
    QByteArray body = reason.toByteArray() + '\n';
    QByteArray response = QByteArrayLiteral("HTTP/1.1 ") + QByteArray::number(httpStatus) + ' ' + statusText(httpStatus).toByteArray()
        + "\r\n";
    if (httpStatus == 405)
        response += "Allow: GET\r\n"; // RFC 9110 15.5.6
    if (httpStatus == 426)
        response += "Sec-WebSocket-Version: 13\r\n";
    response += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ";
    response += QByteArray::number(body.size());
    response += "\r\nConnection: close\r\n\r\n";
    response += body;
    return response;
}

FrameHeader frameHeader(Opcode opcode, quint64 payloadSize)
{
    FrameHeader header;
    header.bytes[0] = char(0x80 | quint8(opcode));
    if (payloadSize <= 125) {
        header.bytes[1] = char(payloadSize);
        header.size = 2;
    } else if (payloadSize <= 0xFFFF) {
        header.bytes[1] = char(126);
        header.bytes[2] = char(payloadSize >> 8);
        header.bytes[3] = char(payloadSize);
        header.size = 4;
    } else {
        header.bytes[1] = char(127);
        for (int i = 0; i < 8; ++i)
            header.bytes[2 + i] = char(payloadSize >> (56 - 8 * i));
        header.size = 10;
    }
    return header;
}

QByteArray closePayload(quint16 code, QByteArrayView reason)
{
    qsizetype length = qMin<qsizetype>(reason.size(), 123);
    // Never cut inside a character: back up over continuation bytes.
    if (length < reason.size()) {
        while (length > 0 && (quint8(reason[length]) & 0xC0) == 0x80)
            --length;
    }
    QByteArray payload;
    payload.reserve(2 + length);
    payload.append(char(code >> 8));
    payload.append(char(code & 0xFF));
    payload.append(reason.first(length));
    return payload;
}

void unmask(char *to, const char *from, qsizetype size, const quint8 mask[4], qsizetype offset)
{
    quint8 rotated[8];
    for (int i = 0; i < 8; ++i)
        rotated[i] = mask[(offset + i) % 4];
    quint64 wide;
    std::memcpy(&wide, rotated, 8);
    qsizetype i = 0;
    for (; i + 8 <= size; i += 8) {
        quint64 chunk;
        std::memcpy(&chunk, from + i, 8);
        chunk ^= wide;
        std::memcpy(to + i, &chunk, 8);
    }
    for (; i < size; ++i)
        to[i] = char(quint8(from[i]) ^ rotated[i % 8]);
}

void FrameReader::append(const QByteArray &bytes)
{
    if (m_finished || bytes.isEmpty())
        return;
    if (m_pos == m_buffer.size()) {
        m_buffer = bytes; // shared, not copied
        m_pos = 0;
        return;
    }
    if (m_pos > 0) {
        m_buffer.remove(0, m_pos);
        m_pos = 0;
    }
    m_buffer.append(bytes);
}

FrameReader::Event FrameReader::fail(quint16 code, QByteArray reason)
{
    m_finished = true;
    m_buffer = QByteArray();
    m_pos = 0;
    m_fragments = QByteArray();
    Event event;
    event.kind = Event::Kind::Error;
    event.code = code;
    event.reason = std::move(reason);
    return event;
}

FrameReader::Event FrameReader::next()
{
    while (!m_finished) {
        const qsizetype available = m_buffer.size() - m_pos;
        if (available < 2)
            break;
        const auto *head = reinterpret_cast<const quint8 *>(m_buffer.constData() + m_pos);
        const bool fin = head[0] & 0x80;
        const auto opcode = Opcode(head[0] & 0x0F);
        if (head[0] & 0x70)
            return fail(CloseProtocolError, "reserved bits set without an extension");
        if (!(head[1] & 0x80))
            return fail(CloseProtocolError, "client frame not masked");
        const bool control = quint8(opcode) & 0x8;
        switch (opcode) {
        case Opcode::Continuation:
        case Opcode::Text:
        case Opcode::Binary:
        case Opcode::Close:
        case Opcode::Ping:
        case Opcode::Pong:
            break;
        default:
            return fail(CloseProtocolError, QByteArrayLiteral("unknown opcode ") + QByteArray::number(quint8(opcode)));
        }
        quint64 length = head[1] & 0x7F;
        qsizetype headerSize = 2;
        if (length == 126) {
            headerSize = 4;
            if (available < headerSize)
                break;
            length = (quint64(head[2]) << 8) | head[3];
        } else if (length == 127) {
            headerSize = 10;
            if (available < headerSize)
                break;
            length = 0;
            for (int i = 0; i < 8; ++i)
                length = (length << 8) | head[2 + i];
            if (length >> 63)
                return fail(CloseProtocolError, "frame length with the most significant bit set");
        }
        if (control) {
            if (!fin)
                return fail(CloseProtocolError, "fragmented control frame");
            if (length > 125)
                return fail(CloseProtocolError, "control frame payload over 125 bytes");
        } else if (opcode == Opcode::Continuation) {
            if (!m_inMessage)
                return fail(CloseProtocolError, "continuation frame without a message to continue");
        } else if (m_inMessage) {
            return fail(CloseProtocolError, "new data frame before the fragmented message ended");
        }
        if (!control && quint64(m_fragments.size()) + length > quint64(m_maxMessageSize))
            return fail(CloseTooBig, QByteArrayLiteral("message over ") + QByteArray::number(m_maxMessageSize) + " bytes");
        // Wait for the whole frame; the buffer then holds it.
        if (quint64(available) < quint64(headerSize + 4) + length)
            break;
        quint8 mask[4];
        std::memcpy(mask, head + headerSize, 4);
        const char *payloadStart = m_buffer.constData() + m_pos + headerSize + 4;
        m_pos += headerSize + 4 + qsizetype(length);

        QByteArray payload;
        if (!control && !fin) {
            // A fragment: joined with the message so far.
            const qsizetype old = m_fragments.size();
            m_fragments.resize(old + qsizetype(length));
            unmask(m_fragments.data() + old, payloadStart, qsizetype(length), mask);
            if (opcode != Opcode::Continuation) {
                m_inMessage = true;
                m_messageBinary = opcode == Opcode::Binary;
            }
        } else {
            payload.resize(qsizetype(length));
            unmask(payload.data(), payloadStart, qsizetype(length), mask);
        }
        // The buffer is used up: an idle reader holds nothing.
        if (m_pos == m_buffer.size()) {
            m_buffer = QByteArray();
            m_pos = 0;
        }
        if (!control && !fin)
            continue;

        Event event;
        switch (opcode) {
        case Opcode::Continuation:
        case Opcode::Text:
        case Opcode::Binary:
            event.kind = Event::Kind::Message;
            if (opcode == Opcode::Continuation) {
                m_fragments.append(payload);
                event.payload = std::exchange(m_fragments, QByteArray());
                event.binary = m_messageBinary;
                m_inMessage = false;
            } else {
                event.payload = std::move(payload);
                event.binary = opcode == Opcode::Binary;
            }
            if (!event.binary && !QByteArrayView(event.payload).isValidUtf8())
                return fail(CloseInvalidPayload, "text message not valid UTF-8");
            return event;
        case Opcode::Ping:
            event.kind = Event::Kind::Ping;
            event.payload = std::move(payload);
            return event;
        case Opcode::Pong:
            event.kind = Event::Kind::Pong;
            event.payload = std::move(payload);
            return event;
        case Opcode::Close:
            if (payload.size() == 1)
                return fail(CloseProtocolError, "close frame with a 1-byte payload");
            event.kind = Event::Kind::Close;
            event.code = CloseNoStatus;
            if (payload.size() >= 2) {
                event.code = quint16((quint8(payload[0]) << 8) | quint8(payload[1]));
                if (!isValidCloseCode(event.code))
                    return fail(CloseProtocolError, QByteArrayLiteral("invalid close code ") + QByteArray::number(event.code));
                event.payload = payload.sliced(2);
                if (!QByteArrayView(event.payload).isValidUtf8())
                    return fail(CloseInvalidPayload, "close reason not valid UTF-8");
            }
            m_finished = true;
            m_buffer = QByteArray();
            m_pos = 0;
            m_fragments = QByteArray();
            return event;
        default:
            Q_UNREACHABLE();
        }
    }
    return {};
}

} // namespace Middleman::WebSocket
