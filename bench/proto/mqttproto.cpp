#include "mqttproto.h"

#include <stdexcept>

namespace bench::mqtt {

namespace {

void appendU16(std::string& out, uint16_t value)
{
    out += static_cast<char>(value >> 8);
    out += static_cast<char>(value & 0xFF);
}

uint16_t readU16(const char* p)
{
    return static_cast<uint16_t>((static_cast<unsigned char>(p[0]) << 8)
                                 | static_cast<unsigned char>(p[1]));
}

// A length-prefixed UTF-8 string field (topic, filter, client id).
void appendString(std::string& out, std::string_view text)
{
    if (text.size() > 0xFFFF)
        throw std::length_error("MQTT string longer than 65535 bytes");
    appendU16(out, static_cast<uint16_t>(text.size()));
    out += text;
}

// Fixed header: type and flags, then the remaining length of the variable part.
void appendFixedHeader(std::string& out, uint8_t firstByte, std::size_t remaining)
{
    if (remaining > kMaxRemainingLength)
        throw std::length_error("MQTT packet larger than the remaining-length limit");
    out += static_cast<char>(firstByte);
    appendRemainingLength(out, static_cast<uint32_t>(remaining));
}

// Flags the fixed header must carry (MQTT 3.1.1, 2.2.2); PUBLISH is checked apart.
bool fixedFlagsValid(uint8_t type, uint8_t flags)
{
    switch (type) {
    case PUBREL:
    case SUBSCRIBE:
    case UNSUBSCRIBE:
        return flags == 0x2;
    default:
        return flags == 0;
    }
}

} // namespace

void appendRemainingLength(std::string& out, uint32_t length)
{
    if (length > kMaxRemainingLength)
        throw std::length_error("MQTT remaining length above 268435455");
    do {
        uint8_t byte = length & 0x7F;
        length >>= 7;
        if (length > 0)
            byte |= 0x80;
        out += static_cast<char>(byte);
    } while (length > 0);
}

DecodeResult decodeRemainingLength(std::string_view bytes, uint32_t& value, std::size_t& consumed)
{
    uint32_t result = 0;
    for (std::size_t i = 0; i < 4; ++i) {
        if (i == bytes.size())
            return DecodeResult::NeedMore;
        const auto byte = static_cast<unsigned char>(bytes[i]);
        result |= static_cast<uint32_t>(byte & 0x7F) << (7 * i);
        if ((byte & 0x80) == 0) {
            value = result;
            consumed = i + 1;
            return DecodeResult::Ok;
        }
    }
    return DecodeResult::Malformed;
}

std::string connectPacket(std::string_view clientId, uint16_t keepAliveSeconds, bool cleanSession)
{
    if (clientId.size() > 0xFFFF)
        throw std::length_error("MQTT client id longer than 65535 bytes");
    // Variable header: protocol name (6), level (1), flags (1), keep alive (2).
    const std::size_t remaining = 10 + 2 + clientId.size();
    std::string out;
    out.reserve(5 + remaining);
    appendFixedHeader(out, CONNECT << 4, remaining);
    appendString(out, "MQTT");
    out += static_cast<char>(4); // protocol level 3.1.1
    out += static_cast<char>(cleanSession ? 0x02 : 0x00);
    appendU16(out, keepAliveSeconds);
    appendString(out, clientId);
    return out;
}

void appendSubscribe(std::string& out, uint16_t packetId, std::string_view topicFilter)
{
    if (topicFilter.size() > 0xFFFF)
        throw std::length_error("MQTT topic filter longer than 65535 bytes");
    appendFixedHeader(out, (SUBSCRIBE << 4) | 0x2, 2 + 2 + topicFilter.size() + 1);
    appendU16(out, packetId);
    appendString(out, topicFilter);
    out += '\0'; // requested QoS 0
}

void appendUnsubscribe(std::string& out, uint16_t packetId, std::string_view topicFilter)
{
    if (topicFilter.size() > 0xFFFF)
        throw std::length_error("MQTT topic filter longer than 65535 bytes");
    appendFixedHeader(out, (UNSUBSCRIBE << 4) | 0x2, 2 + 2 + topicFilter.size());
    appendU16(out, packetId);
    appendString(out, topicFilter);
}

void appendPublish(std::string& out, std::string_view topic, std::string_view payload)
{
    if (topic.size() > 0xFFFF)
        throw std::length_error("MQTT topic longer than 65535 bytes");
    appendFixedHeader(out, PUBLISH << 4, 2 + topic.size() + payload.size());
    appendString(out, topic);
    out += payload;
}

void appendPingreq(std::string& out)
{
    out += static_cast<char>(PINGREQ << 4);
    out += '\0';
}

void appendDisconnect(std::string& out)
{
    out += static_cast<char>(DISCONNECT << 4);
    out += '\0';
}

void Parser::feed(std::string_view bytes)
{
    if (!failed())
        append(bytes);
}

bool Parser::next(Packet& p)
{
    if (failed() || pos_ == buf_.size())
        return false;

    const std::string_view avail(buf_.data() + pos_, buf_.size() - pos_);
    uint32_t remaining = 0;
    std::size_t lengthBytes = 0;
    switch (decodeRemainingLength(avail.substr(1), remaining, lengthBytes)) {
    case DecodeResult::NeedMore:
        return false;
    case DecodeResult::Malformed:
        return fail("remaining length longer than four bytes");
    case DecodeResult::Ok:
        break;
    }
    const std::size_t headerSize = 1 + lengthBytes;
    if (avail.size() < headerSize + remaining)
        return false; // packet still incomplete

    const auto first = static_cast<unsigned char>(avail[0]);
    const uint8_t type = first >> 4;
    const uint8_t flags = first & 0x0F;
    const std::string_view body = avail.substr(headerSize, remaining);
    const char* const b = body.data();

    p.type = type;
    p.flags = flags;
    p.topic = {};
    p.payload = {};
    p.packetId = 0;
    p.returnCode = 0;
    p.sessionPresent = false;

    if (type == 0 || type == 15)
        return fail("reserved packet type " + std::to_string(type));

    if (type == PUBLISH) {
        const uint8_t qos = (flags >> 1) & 0x3;
        if (qos == 3)
            return fail("PUBLISH with QoS 3");
        if (body.size() < 2)
            return fail("PUBLISH too short for its topic length");
        const std::size_t topicLength = readU16(b);
        std::size_t offset = 2 + topicLength;
        if (offset > body.size())
            return fail("PUBLISH topic length " + std::to_string(topicLength)
                        + " beyond the packet (" + std::to_string(body.size()) + " bytes)");
        p.topic = body.substr(2, topicLength);
        if (qos > 0) {
            if (offset + 2 > body.size())
                return fail("PUBLISH with QoS > 0 too short for its packet id");
            p.packetId = readU16(b + offset);
            offset += 2;
        }
        p.payload = body.substr(offset);
    } else {
        if (!fixedFlagsValid(type, flags))
            return fail("packet type " + std::to_string(type) + " with reserved flags "
                        + std::to_string(flags));
        switch (type) {
        case CONNACK:
            if (body.size() != 2)
                return fail("CONNACK remaining length " + std::to_string(body.size())
                            + ", expected 2");
            if ((static_cast<unsigned char>(b[0]) & 0xFE) != 0)
                return fail("CONNACK with reserved acknowledge flags");
            p.sessionPresent = (b[0] & 0x01) != 0;
            p.returnCode = static_cast<uint8_t>(b[1]);
            break;
        case PUBACK:
        case PUBREC:
        case PUBREL:
        case PUBCOMP:
        case UNSUBACK:
            if (body.size() != 2)
                return fail("packet type " + std::to_string(type) + " remaining length "
                            + std::to_string(body.size()) + ", expected 2");
            p.packetId = readU16(b);
            break;
        case SUBACK:
            if (body.size() < 3)
                return fail("SUBACK remaining length " + std::to_string(body.size())
                            + ", expected at least 3");
            p.packetId = readU16(b);
            p.payload = body.substr(2);
            p.returnCode = static_cast<uint8_t>(b[2]);
            break;
        case PINGRESP:
        case PINGREQ:
        case DISCONNECT:
            if (!body.empty())
                return fail("packet type " + std::to_string(type) + " with a non-empty body");
            break;
        default: // CONNECT, SUBSCRIBE, UNSUBSCRIBE: only clients send them
            p.payload = body;
            break;
        }
    }
    pos_ += headerSize + remaining;
    return true;
}

} // namespace bench::mqtt
