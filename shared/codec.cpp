#include "codec.h"
#include "status.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <cstring>
#include <utility>

namespace Middleman {

namespace {

// ParseError::target becomes the target of an ERR line (docs/protocol.md §4.8): echoed only
// when it is a valid target, so the peer can match it; otherwise left empty ("-").
QByteArray echoTarget(QByteArrayView text, int maxLength)
{
    return Target::checkSyntax(text, maxLength) ? text.toByteArray() : QByteArray();
}

// What echoControlsReplaced() replaces: C0 controls and DEL.
bool isControl(char c)
{
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

bool hasControls(QByteArrayView value)
{
    return std::any_of(value.begin(), value.end(), isControl);
}

bool validHeaderName(QByteArrayView name)
{
    if (name.isEmpty())
        return false;
    for (const char c : name) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f)
            return false;
    }
    return true;
}

// A header name as read. The well-known names (sections 3.5, 4 and 5), spelt as documented,
// share static bytes instead of a copy per message.
QByteArray headerNameOf(QByteArrayView name)
{
    for (const QByteArrayView known : {HeaderName::ReqId, HeaderName::Status, HeaderName::Timeout,
                                       HeaderName::ContentLength, HeaderName::ClientId}) {
        if (name == known)
            return staticBytes(known);
    }
    return name.toByteArray();
}

bool parseLength(QByteArrayView text, qsizetype *out)
{
    if (text.isEmpty() || text.size() > 18)
        return false;
    qint64 value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value < 0)
        return false;
    *out = static_cast<qsizetype>(value);
    return true;
}

} // namespace

bool FrameReader::readLine(QByteArrayView &line)
{
    if (m_pos >= m_frame.size())
        return false;
    const auto *found = static_cast<const char *>(
        std::memchr(m_frame.data() + m_pos, '\n', size_t(m_frame.size() - m_pos)));
    const qsizetype nl = found ? found - m_frame.data() : -1;
    const qsizetype end = nl < 0 ? m_frame.size() : nl;
    line = m_frame.sliced(m_pos, end - m_pos);
    if (line.endsWith('\r'))
        line.chop(1);
    m_pos = nl < 0 ? m_frame.size() : nl + 1;
    return true;
}

// Skips the rest of a refused message so that later messages in the frame are still
// read (section 3.8). The header section is read again from the message's start: a
// Content-Length there says where the body ends, since a byte-exact body may hold a
// "." line that is not the terminator. An unreadable Content-Length breaks the framing.
bool FrameReader::skipToTerminator(ParseError &error)
{
    m_pos = m_start;
    QByteArrayView line;
    readLine(line); // the command line
    qsizetype length = -1;
    for (;;) {
        if (!readLine(line))
            return false;
        if (line == ".")
            return true;
        if (line.isEmpty())
            break;
        const qsizetype colon = line.indexOf(':');
        if (colon < 0)
            continue;
        // Section 4.8: the ERR carries the ReqID whenever the message had one,
        // even when the error came before that header was read.
        if (error.reqId.isNull() && headerNameEquals(line.first(colon), HeaderName::ReqId))
            error.reqId = echoControlsReplaced(line.sliced(colon + 1).trimmed());
        if (!headerNameEquals(line.first(colon), HeaderName::ContentLength))
            continue;
        qsizetype value = 0;
        if (!parseLength(line.sliced(colon + 1).trimmed(), &value) || (length >= 0 && value != length))
            return false;
        length = value;
    }
    if (length >= 0) {
        if (length > m_frame.size() - m_pos)
            return false;
        m_pos += length;
        return readLine(line) && line.isEmpty() && readLine(line) && line == ".";
    }
    while (readLine(line)) {
        if (line == ".")
            return true;
    }
    return false;
}

FrameReader::Item FrameReader::fail(ParseError &error, int status, QByteArray reason, bool resync)
{
    error.status = status;
    error.reason = std::move(reason);
    if (!resync || !skipToTerminator(error))
        m_done = true;
    return Item::Error;
}

FrameReader::Item FrameReader::next(Message &message, ParseError &error)
{
    if (m_done)
        return Item::End;

    // Blank lines between messages carry nothing.
    qsizetype start = m_pos;
    QByteArrayView line;
    for (;;) {
        start = m_pos;
        if (!readLine(line)) {
            m_done = true;
            return Item::End;
        }
        if (!line.trimmed().isEmpty())
            break;
    }
    m_start = start;
    const bool commandLineEnded = m_pos <= m_frame.size() && m_frame.at(m_pos - 1) == '\n';

    message = Message();
    message.binary = m_binary;
    error = ParseError();

    // COMMAND SP TARGET (section 3.2). Trailing blanks are forgiven.
    while (!line.isEmpty() && (line.back() == ' ' || line.back() == '\t'))
        line.chop(1);
    const qsizetype sp = line.indexOf(' ');
    const QByteArrayView commandText = sp < 0 ? line : line.first(sp);
    const QByteArrayView targetText = sp < 0 ? QByteArrayView() : line.sliced(sp + 1);
    const std::optional<Command> command = commandFromName(commandText);
    // The target is echoed in an ERR only when valid (echoTarget()); checked
    // once, and the echo shares the message's copy.
    QByteArray why;
    const bool validTarget = command && Target::checkSyntax(targetText, m_limits.maxTargetLength, &why);
    if (command) {
        error.command = staticBytes(commandName(*command));
        if (validTarget) {
            message.target = targetText.toByteArray();
            error.target = message.target;
        }
    }
    if (!commandLineEnded)
        return fail(error, Status::Malformed, "message not terminated", false);
    if (!command)
        return fail(error, Status::Malformed, "unknown command '" + quoteInReason(commandText) + "'", true);
    if (!validTarget)
        return fail(error, Status::Malformed, why, true);
    message.command = *command;

    // Headers until the blank line; a lone "." here ends a message without body.
    qsizetype headerBytes = 0;
    bool terminated = false;
    for (;;) {
        const qsizetype lineStart = m_pos;
        if (!readLine(line))
            return fail(error, Status::Malformed, "message not terminated", false);
        if (line.isEmpty())
            break;
        if (line == ".") {
            terminated = true;
            break;
        }
        headerBytes += m_pos - lineStart; // line end included, CR too
        if (headerBytes > m_limits.maxHeaderBytes)
            return fail(error, Status::TooLarge, "header section too large", true);
        if (message.headers.size() >= m_limits.maxHeaders)
            return fail(error, Status::TooLarge, "too many headers", true);
        const qsizetype colon = line.indexOf(':');
        if (colon < 0)
            return fail(error, Status::Malformed, "malformed header line '" + quoteInReason(line) + "'", true);
        const QByteArrayView name = line.first(colon);
        if (!validHeaderName(name))
            return fail(error, Status::Malformed, "invalid header name '" + quoteInReason(name) + "'", true);
        Header header{headerNameOf(name), line.sliced(colon + 1).trimmed().toByteArray()};
        if (error.reqId.isNull() && headerNameEquals(header.name, HeaderName::ReqId))
            error.reqId = hasControls(header.value) ? echoControlsReplaced(header.value) : header.value;
        message.headers.append(std::move(header));
    }

    if (!terminated) {
        // Content-Length: the body is exactly the next N bytes, then LF "." LF.
        qsizetype length = -1;
        for (const Header &h : std::as_const(message.headers)) {
            if (!headerNameEquals(h.name, HeaderName::ContentLength))
                continue;
            qsizetype value = 0;
            if (!parseLength(h.value, &value) || (length >= 0 && value != length))
                return fail(error, Status::Malformed, "invalid Content-Length", false);
            length = value;
        }
        if (length >= 0) {
            if (length > m_frame.size() - m_pos)
                return fail(error, Status::Malformed, "Content-Length runs past the end of the frame", false);
            message.body = m_frame.sliced(m_pos, length).toByteArray();
            m_pos += length;
            QByteArrayView rest;
            if (!readLine(rest) || !rest.isEmpty() || !readLine(rest) || rest != ".")
                return fail(error, Status::Malformed, "body does not end where Content-Length says", false);
        } else {
            // Dot-stuffed body lines until a lone ".". A body none of whose
            // lines starts with '.' or ends in CR is its bytes as they stand:
            // one copy (most bodies); otherwise it is read again, line by line.
            const qsizetype bodyStart = m_pos;
            qsizetype bodyEnd = bodyStart;
            bool asItStands = true;
            for (;;) {
                const qsizetype lineStart = m_pos;
                if (!readLine(line))
                    return fail(error, Status::Malformed, "message not terminated", false);
                if (line == ".")
                    break;
                // A body line is followed by another line, so it ends in LF.
                asItStands = asItStands && !line.startsWith('.') && lineStart + line.size() == m_pos - 1;
                bodyEnd = lineStart + line.size();
            }
            if (asItStands) {
                if (bodyEnd > bodyStart)
                    message.body = m_frame.sliced(bodyStart, bodyEnd - bodyStart).toByteArray();
            } else {
                m_pos = bodyStart;
                bool first = true;
                for (readLine(line); line != "."; readLine(line)) {
                    if (line.startsWith('.'))
                        line = line.sliced(1);
                    if (!first)
                        message.body += '\n';
                    message.body += line;
                    first = false;
                }
            }
        }
    }

    if (m_pos - start > m_limits.maxMessageSize) {
        // Already read past its terminator: the next message starts here.
        error.status = Status::TooLarge;
        error.reason = "message too large";
        return Item::Error;
    }
    if (!validateMessage(message, m_limits, &error, m_direction))
        return Item::Error;
    return Item::Message;
}

bool validateMessage(const Message &message, const CodecLimits &limits, ParseError *error, Direction direction)
{
    auto refuse = [&](int status, QByteArray reason) {
        if (error) {
            error->status = status;
            error->reason = std::move(reason);
            error->command = commandName(message.command).toByteArray();
            error->target = echoTarget(message.target, limits.maxTargetLength);
            error->reqId = echoControlsReplaced(message.header(HeaderName::ReqId));
            if (error->reqId.isEmpty())
                error->reqId = QByteArray();
        }
        return false;
    };
    QByteArray why;
    switch (message.command) {
    case Command::Pub:
    case Command::Req:
        if (!Target::isLiteral(message.target, limits.maxTargetLength, &why))
            return refuse(Status::Malformed, why);
        break;
    case Command::Sub:
    case Command::Unsub:
    case Command::Epub:
    case Command::Esub:
    case Command::Ereq:
        if (!Target::isPattern(message.target, limits.maxTargetLength, &why))
            return refuse(Status::Malformed, why);
        break;
    case Command::Res:
    case Command::Opt:
        if (!Target::checkSyntax(message.target, limits.maxTargetLength, &why))
            return refuse(Status::Malformed, why);
        break;
    case Command::Err:
        if (direction == Direction::FromPeer)
            return refuse(Status::Malformed, "ERR is sent by the broker only");
        if (!Target::checkSyntax(message.target, limits.maxTargetLength, &why))
            return refuse(Status::Malformed, why);
        break;
    }
    // A RES from the broker may lack a ReqID: its answer to an OPT that carried none
    // (docs/protocol.md §4.7). From a peer, a RES always answers a REQ and needs one.
    const bool needsReqId = message.command == Command::Req
        || (message.command == Command::Res && direction == Direction::FromPeer);
    if (needsReqId && message.header(HeaderName::ReqId).isEmpty())
        return refuse(Status::Malformed, "missing ReqID header");
    return true;
}

// Exact size first, then one pass of copies into a buffer of that size: no
// growth, no reallocation (serialize() runs once per message the broker sends).
QByteArray serialize(const Message &message)
{
    const QByteArrayView body(message.body);
    char lengthText[24];
    const QByteArrayView length(lengthText, std::to_chars(lengthText, lengthText + sizeof lengthText, body.size()).ptr - lengthText);
    const QByteArrayView command = commandName(message.command);

    qsizetype size = command.size() + 1 + message.target.size() + 1;
    bool lengthWritten = false;
    for (const Header &h : message.headers) {
        if (headerNameEquals(h.name, HeaderName::ContentLength)) {
            if (lengthWritten)
                continue; // written once, in the place of the first
            lengthWritten = true;
            size += h.name.size() + 2 + length.size() + 1;
        } else {
            size += h.name.size() + 2 + h.value.size() + 1;
        }
    }
    // A body holding CR cannot survive dot-stuffing (section 3.5): Content-Length.
    const bool useLength = lengthWritten || body.contains('\r');
    const bool lengthAdded = useLength && !lengthWritten;
    if (lengthAdded)
        size += HeaderName::ContentLength.size() + 2 + length.size() + 1;
    size += 1; // the blank line
    qsizetype dots = 0; // body lines starting with '.', each written with one more
    if (useLength) {
        size += body.size() + 3;
    } else {
        if (!body.isEmpty()) {
            for (qsizetype pos = 0; pos < body.size();) {
                dots += body[pos] == '.';
                const qsizetype nl = body.indexOf('\n', pos);
                if (nl < 0)
                    break;
                pos = nl + 1;
            }
            size += body.size() + 1 + dots;
        }
        size += 2;
    }

    QByteArray out(size, Qt::Uninitialized);
    char *p = out.data();
    const auto put = [&p](QByteArrayView bytes) {
        if (!bytes.isEmpty())
            std::memcpy(p, bytes.data(), size_t(bytes.size()));
        p += bytes.size();
    };
    put(command);
    *p++ = ' ';
    put(message.target);
    *p++ = '\n';
    bool lengthPut = false;
    for (const Header &h : message.headers) {
        const bool isLength = headerNameEquals(h.name, HeaderName::ContentLength);
        if (isLength && std::exchange(lengthPut, true))
            continue;
        put(h.name);
        *p++ = ':';
        *p++ = ' ';
        put(isLength ? length : QByteArrayView(h.value));
        *p++ = '\n';
    }
    if (lengthAdded) {
        put(HeaderName::ContentLength);
        *p++ = ':';
        *p++ = ' ';
        put(length);
        *p++ = '\n';
    }
    *p++ = '\n';
    if (useLength) {
        put(body);
        put("\n.\n");
    } else {
        if (dots == 0) {
            if (!body.isEmpty()) {
                put(body);
                *p++ = '\n';
            }
        } else {
            for (qsizetype pos = 0; pos <= body.size();) {
                qsizetype nl = body.indexOf('\n', pos);
                if (nl < 0)
                    nl = body.size();
                if (pos < nl && body[pos] == '.')
                    *p++ = '.'; // dot-stuffing (section 3.4)
                put(body.sliced(pos, nl - pos));
                *p++ = '\n';
                pos = nl + 1;
            }
        }
        put(".\n");
    }
    Q_ASSERT(p == out.constData() + out.size());
    return out;
}

bool parseOne(QByteArrayView frame, const CodecLimits &limits, Message *message, ParseError *error)
{
    FrameReader reader(frame, limits);
    Message m;
    ParseError e;
    switch (reader.next(m, e)) {
    case FrameReader::Item::Message:
        break;
    case FrameReader::Item::Error:
        if (error)
            *error = e;
        return false;
    case FrameReader::Item::End:
        if (error)
            *error = ParseError{Status::Malformed, "empty frame", {}, {}, {}};
        return false;
    }
    Message extra;
    if (reader.next(extra, e) != FrameReader::Item::End) {
        if (error)
            *error = ParseError{Status::Malformed, "more than one message in the frame", {}, {}, {}};
        return false;
    }
    if (message)
        *message = std::move(m);
    return true;
}

std::optional<qint64> parseTimeoutMs(QByteArrayView text)
{
    bool ok = false;
    const qint64 value = text.toLongLong(&ok);
    if (ok)
        return value > 0 ? std::optional<qint64>(value) : std::nullopt;
    const bool allDigits =
        !text.isEmpty() && std::all_of(text.cbegin(), text.cend(), [](char c) { return c >= '0' && c <= '9'; });
    if (allDigits)
        return std::numeric_limits<qint64>::max();
    return std::nullopt;
}

QByteArray quoteInReason(QByteArrayView text, qsizetype limit)
{
    qsizetype size = qMin(text.size(), limit);
    if (size < text.size()) {
        // Never cut a UTF-8 sequence in two: the reason of an answer to a text
        // frame must stay valid UTF-8, or the ERR would have to leave as a binary
        // frame (section 10, decision 13). A sequence has at most 3 continuation bytes.
        for (int i = 0; i < 3 && size > 0 && (static_cast<unsigned char>(text.at(size)) & 0xc0) == 0x80; ++i)
            --size;
    }
    QByteArray out = echoControlsReplaced(text.first(size));
    if (size < text.size())
        out += "...";
    return out;
}

QByteArray echoControlsReplaced(QByteArrayView value)
{
    QByteArray out = value.toByteArray();
    std::replace_if(out.begin(), out.end(), isControl, '?');
    return out;
}

} // namespace Middleman
