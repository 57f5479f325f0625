#pragma once

// NATS client protocol (text, CRLF-framed) for the load generator: encoders that
// append to a caller-owned buffer and a streaming parser for server messages.
// Standard library only; no per-message heap allocation in the hot path.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "streambuffer.h"

namespace bench::nats {

// CONNECT with verbose off (no +OK per command), headers off (the server then
// never sends HMSG), followed by PING so the PONG confirms the CONNECT was accepted.
std::string connectCommand(std::string_view name);

// "SUB <subject> [queue group] <sid>\r\n"; the queue group is left out when empty.
void appendSub(std::string& out, std::string_view subject, std::string_view queueGroup,
               uint64_t sid);
// "UNSUB <sid>\r\n"
void appendUnsub(std::string& out, uint64_t sid);
// "PUB <subject> [reply-to] <#bytes>\r\n<payload>\r\n"; reply-to left out when empty.
void appendPub(std::string& out, std::string_view subject, std::string_view replyTo,
               std::string_view payload);
// "PONG\r\n"
void appendPong(std::string& out);

struct Event {
    enum class Kind { Info, Msg, Ping, Pong, Ok, Err };
    Kind kind = Kind::Ping;
    std::string_view subject; // Msg
    std::string_view replyTo; // Msg, empty when absent
    std::string_view payload; // Msg
    std::string_view text;    // Info: the JSON object; Err: the message without its quotes
    uint64_t sid = 0;         // Msg
};

// Streaming parser of server-to-client messages. Bytes may arrive in chunks of any
// size; views in an Event point into the parser's buffer and stay valid until the
// next feed(). After a protocol error failed() is true and next() returns false.
class Parser : public StreamBuffer {
public:
    // A control line longer than this without CRLF is an error (INFO with long
    // cluster URL lists stays far below it).
    static constexpr std::size_t kMaxControlLine = 1u << 20;
    // Larger than any server max_payload; guards against absurd lengths.
    static constexpr uint64_t kMaxPayload = uint64_t(1) << 30;

    void feed(std::string_view bytes);
    bool next(Event& e);
    // Forget all buffered bytes and any error (for a new connection).
    void reset();

private:
    std::size_t scanned_ = 0; // no '\n' in [pos_, scanned_): resume the search there
};

} // namespace bench::nats
