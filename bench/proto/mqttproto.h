#pragma once

// MQTT 3.1.1 client packets (QoS 0 only) for the load generator: encoders that
// append to a caller-owned buffer and a streaming parser for server packets.
// Standard library only; no per-message heap allocation in the hot path.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "streambuffer.h"

namespace bench::mqtt {

// Control packet types (high nibble of the first byte).
enum PacketType : uint8_t {
    CONNECT = 1,
    CONNACK = 2,
    PUBLISH = 3,
    PUBACK = 4,
    PUBREC = 5,
    PUBREL = 6,
    PUBCOMP = 7,
    SUBSCRIBE = 8,
    SUBACK = 9,
    UNSUBSCRIBE = 10,
    UNSUBACK = 11,
    PINGREQ = 12,
    PINGRESP = 13,
    DISCONNECT = 14,
};

// Largest value a four-byte remaining-length field can hold.
inline constexpr uint32_t kMaxRemainingLength = 268'435'455;

// Appends the variable-length encoding of `length` (1 to 4 bytes).
// Throws std::length_error above kMaxRemainingLength.
void appendRemainingLength(std::string& out, uint32_t length);

enum class DecodeResult { Ok, NeedMore, Malformed };
// Decodes a remaining-length field at the start of `bytes`. On Ok, `value` and
// `consumed` (1 to 4) are set; NeedMore when `bytes` ends inside the field;
// Malformed when a fourth byte still has its continuation bit set.
DecodeResult decodeRemainingLength(std::string_view bytes, uint32_t& value, std::size_t& consumed);

// CONNECT: protocol name "MQTT", level 4, no will, no user name or password.
// Throws std::length_error for a client id longer than 65535 bytes.
std::string connectPacket(std::string_view clientId, uint16_t keepAliveSeconds,
                          bool cleanSession = true);
// SUBSCRIBE to one filter with requested QoS 0.
void appendSubscribe(std::string& out, uint16_t packetId, std::string_view topicFilter);
// UNSUBSCRIBE from one filter.
void appendUnsubscribe(std::string& out, uint16_t packetId, std::string_view topicFilter);
// PUBLISH at QoS 0, no DUP, no RETAIN, hence no packet id.
void appendPublish(std::string& out, std::string_view topic, std::string_view payload);
void appendPingreq(std::string& out);
void appendDisconnect(std::string& out);
// The encoders throw std::length_error for a topic over 65535 bytes or a packet
// whose remaining length exceeds kMaxRemainingLength.

struct Packet {
    uint8_t type = 0;             // PacketType
    uint8_t flags = 0;            // low nibble of the first byte (PUBLISH: DUP, QoS, RETAIN)
    std::string_view topic;       // PUBLISH
    std::string_view payload;     // PUBLISH: application message; SUBACK: all return codes;
                                  // client-only types: the whole body; others: empty
    uint16_t packetId = 0;        // PUBLISH with QoS > 0, PUBACK..PUBCOMP, SUBACK, UNSUBACK
    uint8_t returnCode = 0;       // CONNACK return code, or the first SUBACK return code
    bool sessionPresent = false;  // CONNACK

    uint8_t qos() const { return (flags >> 1) & 0x3; }
};

// Streaming parser of server-to-client packets. Bytes may arrive in chunks of any
// size; views in a Packet point into the parser's buffer and stay valid until the
// next feed(). After malformed input failed() is true and next() returns false.
class Parser : public StreamBuffer {
public:
    void feed(std::string_view bytes);
    bool next(Packet& p);
    // Forget all buffered bytes and any error (for a new connection).
    void reset() { clear(); }
};

} // namespace bench::mqtt
