// fuzz_session: a whole session's message handling through the real broker
// (docs/fuzzing.md). Bytes in: WebSocket messages from a service and a client that
// are past the handshake; out: the broker's replies and tables, checked by
// SessionHarness after every input.
//
// Input: records of one header byte, a two-byte big-endian length and that many
// payload bytes (fewer at the end of the input):
//   header bit 0: 0 the fuzz service sends, 1 the fuzz client sends
//   header bit 1: 0 a text frame (which may break UTF-8: the broker then closes
//                 with 1007), 1 a binary frame

#include "sessionharness.h"

#include <cstdint>

using namespace Middleman;
using namespace Middleman::Fuzz;

namespace {

constexpr int kMaxFrames = 64;

// RFC 6455 7.4.1: 1007 for text that is not UTF-8, 1009 for a message over
// max_frame_size. Nothing else may end a session that only sends well-formed frames.
bool allowedClose(int code)
{
    return code == 1007 || code == 1009;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    SessionHarness::instance();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SessionHarness &harness = SessionHarness::instance();
    size_t pos = 0;
    for (int frames = 0; pos < size && frames < kMaxFrames; ++frames) {
        const quint8 header = data[pos++];
        size_t length = 0;
        if (pos < size)
            length = size_t(data[pos++]) << 8;
        if (pos < size)
            length |= data[pos++];
        length = std::min(length, size - pos);
        const QByteArrayView payload(reinterpret_cast<const char *>(data + pos), qsizetype(length));
        pos += length;
        SessionHarness::Slot &slot = (header & 1) ? harness.client() : harness.service();
        if (header & 2)
            slot.peer->sendBinary(payload);
        else
            slot.peer->sendText(payload);
    }
    harness.settle(allowedClose);
    harness.reset();
    return 0;
}
