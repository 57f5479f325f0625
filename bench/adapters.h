// The three brokers the load generator speaks to, behind one interface: the
// scenarios say "subscribe", "publish", "request" and the adapter writes the
// broker's own wire protocol (middleman's text protocol, the NATS client
// protocol in binary WebSocket frames, MQTT 3.1.1 QoS 0).
//
// Topics are given in dotted form ("bench.fanout"), patterns with middleman's
// and NATS's wildcards (a token `*`: any one token; a last token `>`: the
// rest); the MQTT adapter turns the dots into slashes and those wildcards into
// `+` and `#`. Payloads never hold a line break and never start with '.', so
// every protocol carries them unchanged.
#pragma once

#include "connection.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

// What a connection does in a scenario. A Flooder publishes as a client over
// its message rate (the flood scenario, middleman only); a Publisher is a
// backend's feed; a Churner subscribes and unsubscribes as a user's app does
// while its user moves from view to view (the churn scenario).
enum class Role { Idle, Publisher, Subscriber, Requester, Responder, Flooder, Churner };

struct IncomingRequest {
    std::string_view topic;
    std::string_view replyTo;  // where the answer goes (ReqID, reply subject or reply topic)
    std::string_view payload;  // what the requester sent, as the scenario gave it
};

// What a scenario hears from its connections.
class Sink {
public:
    virtual ~Sink() = default;
    virtual void ready(Connection&) = 0;                                  // logged in
    virtual void synced(Connection&) {}                                   // sync() came back
    virtual void message(Connection&, std::string_view /*topic*/, std::string_view /*payload*/) {}
    virtual void request(Connection&, const IncomingRequest&) {}
    virtual void response(Connection&, std::string_view /*payload*/, bool /*ok*/) {}
    virtual void failed(Connection&, std::string_view why) = 0;           // the scenario cannot go on
    // The broker refused a message (middleman's ERR, with its status): the
    // scenario cannot go on, unless it expects refusals.
    virtual void refused(Connection& c, std::string_view /*status*/, std::string_view message)
    {
        failed(c, "broker said: " + std::string(message));
    }
};

struct Launch {
    std::string configTemplate;  // file name under bench/peers/: the shipped defaults
    std::string openLimits;      // file name under bench/peers/, appended with --open-limits
    std::vector<std::string> arguments;  // {config} and {port} are replaced
};

class Adapter {
public:
    virtual ~Adapter() = default;
    virtual std::string name() const = 0;
    virtual Endpoint endpoint(uint16_t port) const = 0;
    virtual Launch launch() const = 0;
    virtual std::vector<std::string> versionCommand() const = 0;

    virtual void attach(Connection&, Role) const = 0;  // before start(): per-connection state
    virtual void login(Connection&) const = 0;         // once open; Sink::ready when accepted
    virtual void subscribe(Connection&, std::string_view topic) const = 0;
    // Ends the connection's last subscribe() to `topic`.
    virtual void unsubscribe(Connection&, std::string_view topic) const = 0;
    virtual void respondTo(Connection&, std::string_view topic) const = 0;  // one of the load-balanced responders
    virtual void listenForReplies(Connection&) const = 0;                   // requester set-up
    virtual void sync(Connection&) const = 0;  // Sink::synced once all sent before took effect
    virtual void publish(Connection&, std::string_view topic, std::string_view payload) const = 0;
    virtual void request(Connection&, std::string_view topic, std::string_view payload) const = 0;
    virtual void reply(Connection&, const IncomingRequest&, std::string_view payload) const = 0;
    virtual void frame(Connection&, std::string_view frame, Sink&) const = 0;
};

// How the load generator speaks middleman's protocol.
struct MiddlemanOptions {
    bool binaryFrames = false;  // its messages in binary WebSocket frames (the other two protocols are binary)
    bool batch = true;          // every connection sends OPT Batch: on after its key (docs/protocol.md §1, §4.7)
};

// "middleman", "nats-server", "mosquitto".
std::unique_ptr<Adapter> makeAdapter(std::string_view broker, const MiddlemanOptions& middleman = {});
std::vector<std::string> allBrokers();

} // namespace bench
