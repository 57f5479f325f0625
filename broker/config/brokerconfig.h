#pragma once
// BrokerConfig: every setting and limit of the broker, with documented defaults
// (docs/protocol.md sections 2, 6 and 7; docs/configuration.md). A plain value.

#include "codec.h"
#include "message.h"
#include "role.h"

#include <QHostAddress>
#include <QList>
#include <QString>
#include <QStringList>

namespace Middleman {

struct KeyConfig
{
    QString name;   // shown in logs and the console, never the key
    QByteArray key; // the key itself, or "sha256:<64 hex digits>"
};

// What a connection over its message rate gets (docs/protocol.md §7).
enum class RateLimitAction : quint8 {
    // Its input is not read until its token bucket has tokens again: TCP then
    // pushes back on the sender, and nothing it sent is refused or lost.
    Pace,
    // Each message over the rate is answered ERR 429 and not processed; a RES
    // that answers a request already admitted is still delivered.
    Refuse,
};

// The limits that differ by role (docs/configuration.md, "Limits by role"):
// services are trusted backends, clients are browsers and apps. Before its key
// a connection is held to the client limits.
struct RoleLimits
{
    // Token bucket per connection: protocol messages per second, and the burst
    // a full bucket allows. 0 messages per second: no limit.
    int maxMessagesPerSecond = 0;
    int messageBurst = 20000;
    RateLimitAction rateLimitAction = RateLimitAction::Pace;
    int maxPendingRequests = 10000; // per requesting connection; over it: ERR 429
    int maxSubscriptions = 10000;   // per connection; over it: ERR 429
    // Section 6: outbound queue per connection; over it the connection is closed (1013).
    qint64 outboundQueueBytes = 8 * 1024 * 1024;
};

struct GrantConfig
{
    Command kind = Command::Esub; // Epub, Esub or Ereq
    QByteArray pattern;
};

// Section 1: wss://. TLS is on when a certificate and a private key are given
// (docs/configuration.md, [tls]); the files are read and checked at start.
struct TlsConfig
{
    QString certificateFile; // PEM: the server certificate, then any intermediates
    QString privateKeyFile;  // PEM, possibly encrypted
    // Secret: never logged or printed, not even in errors.
    QByteArray privateKeyPassphrase;

    bool enabled() const { return !certificateFile.isEmpty() || !privateKeyFile.isEmpty(); }
};

struct BrokerConfig
{
    // Where to listen (loopback by default).
    QHostAddress listenAddress = QHostAddress(QHostAddress::LocalHost);
    quint16 port = 8765;
    TlsConfig tls; // off by default: ws://

    QList<KeyConfig> serviceKeys;
    QList<KeyConfig> clientKeys;
    QList<GrantConfig> grants; // permanent grants (section 4.5)
    // Section 7: Origin values browsers may connect from (compared ignoring case);
    // empty: any. Connections without an Origin header are not affected.
    QStringList allowedOrigins;

    // Sections 3 and 7: message size, headers, target length.
    CodecLimits codec;
    // A WebSocket message may carry several protocol messages; a larger one is
    // refused by closing with 1009. A single message over codec.maxMessageSize
    // inside an accepted frame gets ERR 413 instead.
    qint64 maxFrameSize = 4 * 1024 * 1024;

    // Per role (section 7). A client is held to its rate without a message
    // refused; a service has no rate limit, and room for a backend's load.
    RoleLimits clientLimits{.maxMessagesPerSecond = 10000,
                            .messageBurst = 20000,
                            .rateLimitAction = RateLimitAction::Pace,
                            .maxPendingRequests = 10000,
                            .maxSubscriptions = 10000,
                            .outboundQueueBytes = 8 * 1024 * 1024};
    RoleLimits serviceLimits{.maxMessagesPerSecond = 0,
                             .messageBurst = 20000,
                             .rateLimitAction = RateLimitAction::Pace,
                             .maxPendingRequests = 100000,
                             .maxSubscriptions = 100000,
                             .outboundQueueBytes = 64 * 1024 * 1024};
    const RoleLimits &limits(Role role) const { return role == Role::Service ? serviceLimits : clientLimits; }
    // Sets a limit for every role, as a key in [limits] itself does.
    template<typename F>
    void forEachRole(F &&set)
    {
        set(clientLimits);
        set(serviceLimits);
    }

    int handshakeTimeoutMs = 10000; // for the API key after the WebSocket upgrade
    // Open WebSockets, in total and from one remote address. Over them a new
    // connection is closed right after the upgrade (1013). 0 per address: no
    // limit, since a load balancer or an office behind NAT is one address.
    int maxConnections = 100000;
    int maxConnectionsPerAddress = 0;
    // Back-off for bad API keys per remote address (KeyBackoff): after this many
    // bad keys, each further one blocks the address for the back-off, doubled each
    // time up to the maximum. While blocked, its connections are closed with 1013.
    // A back-off of 0 (the default) turns it off: behind a proxy or NAT one peer
    // with a stale key would lock out every other peer at that address.
    int failedKeysBeforeBackoff = 10;
    int failedKeyBackoffMs = 0;
    int maxFailedKeyBackoffMs = 60000;
    // Section 4.3: default request timeout and the cap on a REQ's Timeout header.
    int requestTimeoutMs = 30000;
    int maxRequestTimeoutMs = 300000;
    // Section 6: ping idle peers every interval; close after this many missed pongs.
    int pingIntervalMs = 30000;
    int maxMissedPings = 2;
    // Graceful shutdown: how long peers get to complete the close handshake.
    int shutdownGraceMs = 3000;
    // Idle spin (docs/design.md, "Idle spin"): microseconds the broker's event
    // loop polls for input before it sleeps, after a short idle spell; 0: off.
    // Only under the epoll dispatcher.
    int idleSpinUs = 50;
    static constexpr int kMaxIdleSpinUs = 1000;

    // Checks ranges and keys once at start; false with a reason otherwise.
    bool validate(QString *error) const;
};

} // namespace Middleman
