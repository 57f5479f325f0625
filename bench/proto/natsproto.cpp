#include "natsproto.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

namespace bench::nats {

namespace {

void appendNumber(std::string& out, uint64_t value)
{
    char digits[20];
    const auto result = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, result.ptr);
}

void appendJsonString(std::string& out, std::string_view text)
{
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (byte < 0x20) {
                out += "\\u00";
                out += kHex[byte >> 4];
                out += kHex[byte & 0xF];
            } else {
                out += c; // UTF-8 passes through unchanged
            }
        }
    }
    out += '"';
}

bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view trimLeft(std::string_view s)
{
    std::size_t i = 0;
    while (i < s.size() && isBlank(s[i]))
        ++i;
    return s.substr(i);
}

std::string_view trimRight(std::string_view s)
{
    std::size_t n = s.size();
    while (n > 0 && isBlank(s[n - 1]))
        --n;
    return s.substr(0, n);
}

// Splits off the first blank-separated token; `rest` keeps what follows it.
std::string_view takeToken(std::string_view& rest)
{
    rest = trimLeft(rest);
    std::size_t end = 0;
    while (end < rest.size() && !isBlank(rest[end]))
        ++end;
    const std::string_view token = rest.substr(0, end);
    rest = rest.substr(end);
    return token;
}

// Operations are case-insensitive; `upper` is the canonical upper-case name.
bool opEquals(std::string_view token, std::string_view upper)
{
    if (token.size() != upper.size())
        return false;
    for (std::size_t i = 0; i < token.size(); ++i) {
        char c = token[i];
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
        if (c != upper[i])
            return false;
    }
    return true;
}

bool parseNumber(std::string_view token, uint64_t& value)
{
    if (token.empty())
        return false;
    const auto result = std::from_chars(token.data(), token.data() + token.size(), value);
    return result.ec == std::errc() && result.ptr == token.data() + token.size();
}

} // namespace

std::string connectCommand(std::string_view name)
{
    std::string out;
    out.reserve(160 + name.size());
    out += "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":";
    appendJsonString(out, name);
    out += ",\"lang\":\"cpp\",\"version\":\"1\",\"protocol\":1,\"echo\":true,"
           "\"headers\":false,\"no_responders\":false}\r\nPING\r\n";
    return out;
}

void appendSub(std::string& out, std::string_view subject, std::string_view queueGroup,
               uint64_t sid)
{
    out += "SUB ";
    out += subject;
    out += ' ';
    if (!queueGroup.empty()) {
        out += queueGroup;
        out += ' ';
    }
    appendNumber(out, sid);
    out += "\r\n";
}

void appendUnsub(std::string& out, uint64_t sid)
{
    out += "UNSUB ";
    appendNumber(out, sid);
    out += "\r\n";
}

void appendPub(std::string& out, std::string_view subject, std::string_view replyTo,
               std::string_view payload)
{
    out += "PUB ";
    out += subject;
    out += ' ';
    if (!replyTo.empty()) {
        out += replyTo;
        out += ' ';
    }
    appendNumber(out, payload.size());
    out += "\r\n";
    out += payload;
    out += "\r\n";
}

void appendPong(std::string& out) { out += "PONG\r\n"; }

void Parser::reset()
{
    clear();
    scanned_ = 0;
}

void Parser::feed(std::string_view bytes)
{
    if (failed())
        return;
    // scanned_ stays at or after pos_: what was dropped lay before it.
    scanned_ -= append(bytes);
}

bool Parser::next(Event& e)
{
    if (failed() || pos_ == buf_.size())
        return false;

    const char* const data = buf_.data();
    const std::size_t from = std::max(scanned_, pos_);
    const void* found = std::memchr(data + from, '\n', buf_.size() - from);
    if (!found) {
        scanned_ = buf_.size();
        if (buf_.size() - pos_ > kMaxControlLine)
            return fail("control line longer than " + std::to_string(kMaxControlLine) + " bytes");
        return false;
    }
    const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(found) - data);
    scanned_ = lf; // a later call (payload still incomplete) finds this LF at once
    if (lf == pos_ || data[lf - 1] != '\r')
        return fail("control line not terminated by CRLF");
    if (lf - 1 - pos_ > kMaxControlLine)
        return fail("control line longer than " + std::to_string(kMaxControlLine) + " bytes");

    std::string_view rest(data + pos_, lf - 1 - pos_);
    const std::string_view op = takeToken(rest);
    const std::size_t afterLine = lf + 1;

    e.subject = {};
    e.replyTo = {};
    e.payload = {};
    e.text = {};
    e.sid = 0;

    if (opEquals(op, "MSG")) {
        // MSG <subject> <sid> [reply-to] <#bytes>
        std::array<std::string_view, 5> args;
        std::size_t count = 0;
        for (;;) {
            const std::string_view token = takeToken(rest);
            if (token.empty())
                break;
            if (count == args.size())
                return fail("MSG with too many arguments");
            args[count++] = token;
        }
        if (count != 3 && count != 4)
            return fail("MSG with " + std::to_string(count) + " arguments, expected 3 or 4");
        uint64_t sid = 0;
        uint64_t size = 0;
        if (!parseNumber(args[1], sid))
            return fail("MSG with a bad sid: " + std::string(args[1]));
        if (!parseNumber(args[count - 1], size))
            return fail("MSG with a bad payload length: " + std::string(args[count - 1]));
        if (size > kMaxPayload)
            return fail("MSG payload length " + std::to_string(size) + " too large");
        const std::size_t payloadEnd = afterLine + static_cast<std::size_t>(size);
        if (buf_.size() < payloadEnd + 2)
            return false; // payload still incomplete
        if (data[payloadEnd] != '\r' || data[payloadEnd + 1] != '\n')
            return fail("MSG payload not followed by CRLF");
        e.kind = Event::Kind::Msg;
        e.subject = args[0];
        e.sid = sid;
        if (count == 4)
            e.replyTo = args[2];
        e.payload = std::string_view(data + afterLine, static_cast<std::size_t>(size));
        pos_ = payloadEnd + 2;
        scanned_ = pos_;
        return true;
    }

    if (opEquals(op, "PING") || opEquals(op, "PONG") || opEquals(op, "+OK")) {
        if (!trimLeft(rest).empty())
            return fail(std::string(op) + " with unexpected arguments");
        e.kind = opEquals(op, "PING") ? Event::Kind::Ping
               : opEquals(op, "PONG") ? Event::Kind::Pong
                                      : Event::Kind::Ok;
    } else if (opEquals(op, "INFO")) {
        e.kind = Event::Kind::Info;
        e.text = trimRight(trimLeft(rest));
    } else if (opEquals(op, "-ERR")) {
        e.kind = Event::Kind::Err;
        std::string_view text = trimRight(trimLeft(rest));
        // The server quotes the message: -ERR 'Unknown Protocol Operation'
        if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'')
            text = text.substr(1, text.size() - 2);
        e.text = text;
    } else if (opEquals(op, "HMSG")) {
        return fail("HMSG received although CONNECT disabled headers");
    } else if (op.empty()) {
        return fail("empty control line");
    } else {
        return fail("unknown operation: " + std::string(op.substr(0, 32)));
    }
    pos_ = afterLine;
    scanned_ = pos_;
    return true;
}

} // namespace bench::nats
