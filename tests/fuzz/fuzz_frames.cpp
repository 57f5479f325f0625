// fuzz_frames: the WebSocket frame layer and the handshake (docs/fuzzing.md).
// Each input is written as raw bytes on a new TCP connection right after a valid
// WebSocket upgrade (RFC 6455 5.2 frames, masked or not, the API key frame first
// when the input has one), then the connection ends. The broker must take it all,
// forget the connection, and go on serving the harness's peers with its tables
// back where they were (SessionHarness).

#include "sessionharness.h"

#include <cstdint>

using namespace Middleman;
using namespace Middleman::Fuzz;

extern "C" int LLVMFuzzerInitialize(int *, char ***)
{
    SessionHarness::instance();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SessionHarness &harness = SessionHarness::instance();
    Broker &broker = harness.broker();
    {
        FuzzPeer raw;
        raw.open(harness.url());
        fuzzCheck(harness.waitUntil([&raw] { return raw.upgraded || raw.failed(); }) && raw.upgraded,
                  "the WebSocket upgrade failed", raw.protocolErrors.join(' '));
        fuzzCheck(harness.waitUntil([&broker] { return broker.connectionCount() == 4; }),
                  "the broker does not count the new connection");
        raw.sendRaw(QByteArrayView(reinterpret_cast<const char *>(data), qsizetype(size)));
        raw.finish();
        // The broker has read everything once it has let the connection go.
        fuzzCheck(harness.waitUntil([&broker] { return broker.connectionCount() == 3; }),
                  "the broker keeps a connection its peer has closed");
        fuzzCheck(raw.badMessages.isEmpty(), "the broker sent a message the codec refuses",
                  raw.badMessages.isEmpty() ? QByteArray() : raw.badMessages.first().reason);
        fuzzCheck(raw.protocolErrors.isEmpty(), "the broker broke RFC 6455", raw.protocolErrors.join(' '));
    }
    harness.settle([](int) { return false; });
    harness.reset();
    return 0;
}
