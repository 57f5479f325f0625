#include "adapters.h"

#include "mqttproto.h"
#include "natsproto.h"

#include <functional>
#include <map>
#include <string>

namespace bench {

namespace {

constexpr std::string_view kServiceKey = "bench-service-key";  // bench/peers/middleman.toml
constexpr std::string_view kClientKey = "bench-client-key";

std::string_view nextLine(std::string_view& rest)
{
    const auto end = rest.find('\n');
    std::string_view line = end == std::string_view::npos ? rest : rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    return line;
}

bool equalsNoCase(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if ((a[i] | 0x20) != (b[i] | 0x20))
            return false;
    }
    return true;
}

// --- middleman ---------------------------------------------------------------

struct MiddlemanState : Connection::State {
    Role role;
    bool loggedIn = false;
    uint64_t nextReqId = 1;
    explicit MiddlemanState(Role r) : role(r) {}
};

class MiddlemanAdapter final : public Adapter {
public:
    explicit MiddlemanAdapter(const MiddlemanOptions& options) : m_options(options) {}
    std::string name() const override { return "middleman"; }
    Endpoint endpoint(uint16_t port) const override
    {
        Endpoint e;
        e.port = port;
        e.binary = m_options.binaryFrames;  // the broker forwards each message in the frame type it came in
        return e;
    }
    Launch launch() const override
    {
        return {"middleman.toml",
                "middleman-open.toml",
                {"{bin}/middleman", "--config", "{config}", "--listen", "127.0.0.1:{port}"}};
    }
    std::vector<std::string> versionCommand() const override { return {"{bin}/middleman", "--version"}; }

    void attach(Connection& c, Role role) const override { c.state = std::make_unique<MiddlemanState>(role); }

    void login(Connection& c) const override
    {
        const auto* state = static_cast<MiddlemanState*>(c.state.get());
        // The connections that send stand for backends (a feed, a service
        // calling another) and log in as services, as those would: a
        // client's message rate is limited (10 000 a second by default), a
        // service's is not. Subscribers and idle connections stand for the
        // users' apps and browsers, and log in as clients (subscribing under
        // the config's permanent grants on bench.>), with a client's outbound
        // queue; so do the flooder, a client over its rate, and the churner,
        // a user's app changing its subscriptions.
        c.out() += sendsAsService(state->role) ? kServiceKey : kClientKey;
        c.flush();  // the key is a WebSocket message of its own
    }
    void subscribe(Connection& c, std::string_view topic) const override
    {
        append(c, "SUB", topic, {}, {});
    }
    void unsubscribe(Connection& c, std::string_view topic) const override { append(c, "UNSUB", topic, {}, {}); }
    void respondTo(Connection& c, std::string_view topic) const override { append(c, "SUB", topic, {}, {}); }
    void listenForReplies(Connection&) const override {}
    void sync(Connection& c) const override
    {
        c.out() += "OPT -\n\n.\n";
        c.flush();
    }
    void publish(Connection& c, std::string_view topic, std::string_view payload) const override
    {
        append(c, "PUB", topic, {}, payload);
    }
    void request(Connection& c, std::string_view topic, std::string_view payload) const override
    {
        auto* state = static_cast<MiddlemanState*>(c.state.get());
        const std::string id = std::to_string(state->nextReqId++);
        append(c, "REQ", topic, id, payload);
    }
    void reply(Connection& c, const IncomingRequest& r, std::string_view payload) const override
    {
        append(c, "RES", r.topic, r.replyTo, payload);
    }

    void frame(Connection& c, std::string_view frame, Sink& sink) const override
    {
        auto* state = static_cast<MiddlemanState*>(c.state.get());
        if (!state->loggedIn) {
            if (frame != "MM OK")
                return sink.failed(c, "handshake: unexpected " + std::string(frame.substr(0, 80)));
            state->loggedIn = true;
            if (m_options.batch) {
                // Answered by a RES with this ReqID, which frame() passes over;
                // whatever the scenario sends next is handled after it.
                c.out() += "OPT -\nReqID: " + std::string(kBatchReqId) + "\nBatch: on\n\n.\n";
                c.flush();
            }
            return sink.ready(c);
        }
        // One or more whole messages (several when batching).
        std::string_view rest = frame;
        while (!rest.empty()) {
            if (!message(c, rest, sink))
                return;
        }
    }

private:
    static constexpr std::string_view kBatchReqId = "bench-batch";
    MiddlemanOptions m_options;

    static bool sendsAsService(Role role)
    {
        return role == Role::Publisher || role == Role::Requester || role == Role::Responder;
    }

    // Reads the message at the front of `rest` and hands it to the sink; false
    // when the frame is malformed (the sink was told) or the connection is done.
    static bool message(Connection& c, std::string_view& rest, Sink& sink)
    {
        const std::string_view whole = rest;
        const std::string_view commandLine = nextLine(rest);
        const auto space = commandLine.find(' ');
        const std::string_view command = commandLine.substr(0, space);
        const std::string_view target = space == std::string_view::npos ? std::string_view() : commandLine.substr(space + 1);
        std::string_view reqId;
        std::string_view status;
        size_t contentLength = std::string_view::npos;
        for (;;) {
            if (rest.empty()) {
                sink.failed(c, "truncated message from the broker");
                return false;
            }
            const std::string_view line = nextLine(rest);
            if (line.empty())
                break;
            const auto colon = line.find(':');
            std::string_view name = line.substr(0, colon);
            std::string_view value = colon == std::string_view::npos ? std::string_view() : line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ')
                value.remove_prefix(1);
            if (equalsNoCase(name, "ReqID"))
                reqId = value;
            else if (equalsNoCase(name, "Status"))
                status = value;
            else if (equalsNoCase(name, "Content-Length"))
                contentLength = std::stoul(std::string(value));
        }
        // The body ends at the terminator line (payloads never hold a line break or
        // start with '.'), or after Content-Length bytes and then the terminator.
        std::string_view body;
        if (contentLength != std::string_view::npos) {
            if (rest.size() < contentLength + 3 || rest.substr(contentLength, 3) != "\n.\n") {
                sink.failed(c, "bad Content-Length body from the broker");
                return false;
            }
            body = rest.substr(0, contentLength);
            rest.remove_prefix(contentLength + 3);
        } else if (rest.substr(0, 2) == ".\n") {
            rest.remove_prefix(2);
        } else if (const auto end = rest.find("\n.\n"); end != std::string_view::npos) {
            body = rest.substr(0, end);
            rest.remove_prefix(end + 3);
        } else {
            sink.failed(c, "unterminated message from the broker");
            return false;
        }
        if (command == "PUB") {
            sink.message(c, target, body);
            return true;
        }
        if (command == "REQ") {
            sink.request(c, {target, reqId, body});
            return true;
        }
        if (command == "RES") {
            const bool ok = status.empty() || status == "200";
            if (target != "-") {
                sink.response(c, body, ok);
            } else if (reqId != kBatchReqId) {
                sink.synced(c);
            } else if (!ok) {
                sink.failed(c, "OPT Batch: on refused: " + std::string(whole.substr(0, 200)));
                return false;
            }
            return true;
        }
        if (command == "ERR") {
            // The rest of the WebSocket message is read on: a flooder's
            // refusals come batched with each other.
            sink.refused(c, status, whole.substr(0, whole.size() - rest.size()).substr(0, 200));
            return true;
        }
        sink.failed(c, "broker said: " + std::string(whole.substr(0, 200)));
        return false;
    }

    static void append(Connection& c, std::string_view command, std::string_view target, std::string_view reqId,
                       std::string_view payload)
    {
        std::string& out = c.out();
        out += command;
        out += ' ';
        out += target;
        out += '\n';
        if (!reqId.empty()) {
            out += "ReqID: ";
            out += reqId;
            out += '\n';
        }
        out += '\n';
        if (!payload.empty()) {
            out += payload;
            out += '\n';
        }
        out += ".\n";
        c.flush();
    }
};

// --- nats-server -------------------------------------------------------------

struct NatsState : Connection::State {
    Role role;
    bool loggedIn = false;
    uint64_t nextSid = 1;
    // subscribe()'s subscriptions by subject, the last of each: an UNSUB
    // names its sid
    std::map<std::string, uint64_t, std::less<>> sids;
    std::string inbox;
    nats::Parser parser;
    explicit NatsState(Role r) : role(r) {}
};

class NatsAdapter final : public Adapter {
public:
    std::string name() const override { return "nats-server"; }
    Endpoint endpoint(uint16_t port) const override
    {
        Endpoint e;
        e.port = port;
        e.binary = true;
        return e;
    }
    Launch launch() const override { return {"nats.conf", "nats-open.conf", {"nats-server", "-c", "{config}"}}; }
    std::vector<std::string> versionCommand() const override { return {"nats-server", "--version"}; }

    void attach(Connection& c, Role role) const override
    {
        auto state = std::make_unique<NatsState>(role);
        state->inbox = "_INBOX.bench." + std::to_string(c.index());
        c.state = std::move(state);
    }
    void login(Connection& c) const override
    {
        // The server's INFO comes first; CONNECT then PING, and the PONG says we are in.
        c.out() += nats::connectCommand("bench-" + std::to_string(c.index()));
        c.flush();
    }
    void subscribe(Connection& c, std::string_view topic) const override
    {
        auto* state = static_cast<NatsState*>(c.state.get());
        const uint64_t sid = state->nextSid++;
        nats::appendSub(c.out(), topic, {}, sid);
        state->sids.insert_or_assign(std::string(topic), sid);
        c.flush();
    }
    void unsubscribe(Connection& c, std::string_view topic) const override
    {
        auto* state = static_cast<NatsState*>(c.state.get());
        const auto subscription = state->sids.find(topic);
        if (subscription == state->sids.end())
            return;
        nats::appendUnsub(c.out(), subscription->second);
        state->sids.erase(subscription);
        c.flush();
    }
    void respondTo(Connection& c, std::string_view topic) const override
    {
        auto* state = static_cast<NatsState*>(c.state.get());
        nats::appendSub(c.out(), topic, "bench-responders", state->nextSid++);
        c.flush();
    }
    void listenForReplies(Connection& c) const override
    {
        auto* state = static_cast<NatsState*>(c.state.get());
        nats::appendSub(c.out(), state->inbox, {}, state->nextSid++);
        c.flush();
    }
    void sync(Connection& c) const override
    {
        c.out() += "PING\r\n";
        c.flush();
    }
    void publish(Connection& c, std::string_view topic, std::string_view payload) const override
    {
        nats::appendPub(c.out(), topic, {}, payload);
        c.flush();
    }
    void request(Connection& c, std::string_view topic, std::string_view payload) const override
    {
        auto* state = static_cast<NatsState*>(c.state.get());
        nats::appendPub(c.out(), topic, state->inbox, payload);
        c.flush();
    }
    void reply(Connection& c, const IncomingRequest& r, std::string_view payload) const override
    {
        nats::appendPub(c.out(), r.replyTo, {}, payload);
        c.flush();
    }

    void frame(Connection& c, std::string_view frame, Sink& sink) const override
    {
        auto* state = static_cast<NatsState*>(c.state.get());
        state->parser.feed(frame);
        nats::Event event;
        while (state->parser.next(event)) {
            switch (event.kind) {
            case nats::Event::Kind::Msg:
                if (state->role == Role::Responder)
                    sink.request(c, {event.subject, event.replyTo, event.payload});
                else if (state->role == Role::Requester)
                    sink.response(c, event.payload, true);
                else
                    sink.message(c, event.subject, event.payload);
                break;
            case nats::Event::Kind::Ping:
                nats::appendPong(c.out());
                c.flush();
                break;
            case nats::Event::Kind::Pong:
                if (!state->loggedIn) {
                    state->loggedIn = true;
                    sink.ready(c);
                } else {
                    sink.synced(c);
                }
                break;
            case nats::Event::Kind::Err:
                return sink.failed(c, "nats-server said: -ERR " + std::string(event.text));
            case nats::Event::Kind::Info:
            case nats::Event::Kind::Ok:
                break;
            }
        }
        if (state->parser.failed())
            sink.failed(c, "unreadable NATS stream: " + state->parser.error());
    }
};

// --- mosquitto ---------------------------------------------------------------

struct MqttState : Connection::State {
    Role role;
    bool loggedIn = false;
    uint16_t nextPacketId = 1;
    std::string replyTopic;
    mqtt::Parser parser;
    std::string scratch;
    explicit MqttState(Role r) : role(r) {}
};

// Dots to slashes, and a token that is `*` or `>` alone to MQTT's `+` or `#`.
std::string mqttTopic(std::string_view dotted)
{
    std::string topic(dotted);
    for (size_t i = 0; i < topic.size(); ++i) {
        char& ch = topic[i];
        const bool wholeToken = (i == 0 || dotted[i - 1] == '.') && (i + 1 == topic.size() || dotted[i + 1] == '.');
        if (ch == '.')
            ch = '/';
        else if (wholeToken && ch == '*')
            ch = '+';
        else if (wholeToken && ch == '>')
            ch = '#';
    }
    return topic;
}

class MqttAdapter final : public Adapter {
public:
    std::string name() const override { return "mosquitto"; }
    Endpoint endpoint(uint16_t port) const override
    {
        Endpoint e;
        e.port = port;
        e.binary = true;
        e.subprotocol = "mqtt";
        return e;
    }
    Launch launch() const override
    {
        return {"mosquitto.conf", "mosquitto-open.conf", {"mosquitto", "-c", "{config}"}};
    }
    std::vector<std::string> versionCommand() const override { return {"mosquitto", "-h"}; }

    void attach(Connection& c, Role role) const override
    {
        auto state = std::make_unique<MqttState>(role);
        state->replyTopic = "bench/reply/" + std::to_string(c.index());
        c.state = std::move(state);
    }
    void login(Connection& c) const override
    {
        // Keep-alive 0: idle connections are never dropped by the broker.
        c.out() += mqtt::connectPacket("bench-" + std::to_string(c.index()), 0);
        c.flush();
    }
    void subscribe(Connection& c, std::string_view topic) const override
    {
        auto* state = static_cast<MqttState*>(c.state.get());
        mqtt::appendSubscribe(c.out(), packetId(*state), mqttTopic(topic));
        c.flush();
    }
    void unsubscribe(Connection& c, std::string_view topic) const override
    {
        auto* state = static_cast<MqttState*>(c.state.get());
        mqtt::appendUnsubscribe(c.out(), packetId(*state), mqttTopic(topic));
        c.flush();
    }
    void respondTo(Connection& c, std::string_view topic) const override
    {
        // A shared subscription: each message goes to one member of the group.
        auto* state = static_cast<MqttState*>(c.state.get());
        mqtt::appendSubscribe(c.out(), packetId(*state), "$share/bench-responders/" + mqttTopic(topic));
        c.flush();
    }
    void listenForReplies(Connection& c) const override
    {
        auto* state = static_cast<MqttState*>(c.state.get());
        mqtt::appendSubscribe(c.out(), packetId(*state), state->replyTopic);
        c.flush();
    }
    void sync(Connection& c) const override
    {
        mqtt::appendPingreq(c.out());
        c.flush();
    }
    void publish(Connection& c, std::string_view topic, std::string_view payload) const override
    {
        mqtt::appendPublish(c.out(), mqttTopic(topic), payload);
        c.flush();
    }
    void request(Connection& c, std::string_view topic, std::string_view payload) const override
    {
        // MQTT 3.1.1 has no reply address: the request carries its reply topic
        // in front of the payload.
        auto* state = static_cast<MqttState*>(c.state.get());
        state->scratch.assign(state->replyTopic);
        state->scratch += ' ';
        state->scratch += payload;
        mqtt::appendPublish(c.out(), mqttTopic(topic), state->scratch);
        c.flush();
    }
    void reply(Connection& c, const IncomingRequest& r, std::string_view payload) const override
    {
        mqtt::appendPublish(c.out(), r.replyTo, payload);
        c.flush();
    }

    void frame(Connection& c, std::string_view frame, Sink& sink) const override
    {
        auto* state = static_cast<MqttState*>(c.state.get());
        state->parser.feed(frame);
        mqtt::Packet packet;
        while (state->parser.next(packet)) {
            switch (packet.type) {
            case mqtt::CONNACK:
                if (packet.returnCode != 0)
                    return sink.failed(c, "mosquitto refused the connection: code " + std::to_string(packet.returnCode));
                state->loggedIn = true;
                sink.ready(c);
                break;
            case mqtt::SUBACK:
                if (packet.returnCode == 0x80)
                    return sink.failed(c, "mosquitto refused a subscription");
                break;
            case mqtt::PINGRESP:
                sink.synced(c);
                break;
            case mqtt::PUBLISH:
                if (state->role == Role::Responder) {
                    const auto space = packet.payload.find(' ');
                    if (space == std::string_view::npos)
                        return sink.failed(c, "request without a reply topic");
                    sink.request(c, {packet.topic, packet.payload.substr(0, space), packet.payload.substr(space + 1)});
                } else if (state->role == Role::Requester) {
                    sink.response(c, packet.payload, true);
                } else {
                    sink.message(c, packet.topic, packet.payload);
                }
                break;
            default:
                break;
            }
        }
        if (state->parser.failed())
            sink.failed(c, "unreadable MQTT stream: " + state->parser.error());
    }

private:
    static uint16_t packetId(MqttState& state)
    {
        if (state.nextPacketId == 0)
            state.nextPacketId = 1;
        return state.nextPacketId++;
    }
};

} // namespace

std::unique_ptr<Adapter> makeAdapter(std::string_view broker, const MiddlemanOptions& middleman)
{
    if (broker == "middleman")
        return std::make_unique<MiddlemanAdapter>(middleman);
    if (broker == "nats-server")
        return std::make_unique<NatsAdapter>();
    if (broker == "mosquitto")
        return std::make_unique<MqttAdapter>();
    return nullptr;
}

std::vector<std::string> allBrokers()
{
    return {"middleman", "nats-server", "mosquitto"};
}

} // namespace bench
