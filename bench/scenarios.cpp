#include "scenarios.h"

#include "brokerprocess.h"
#include "handlerwait.h"
#include "histogram.h"
#include "latencyrate.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

namespace bench {

namespace asio = boost::asio;

namespace {

using Clock = std::chrono::steady_clock;

const Clock::time_point& epoch()
{
    static const Clock::time_point start = Clock::now();
    return start;
}

int64_t nowNs()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - epoch()).count();
}

// When the caller has work at `atNs` (a nowNs() time; negative: none).
std::optional<Clock::time_point> workAt(int64_t atNs)
{
    if (atNs < 0)
        return std::nullopt;
    return epoch() + std::chrono::nanoseconds(atNs);
}

// The send time rides in the first 16 bytes of every payload, as hex.
void stamp(std::string& payload, int64_t ns)
{
    static constexpr char digits[] = "0123456789abcdef";
    auto value = uint64_t(ns);
    for (int i = 15; i >= 0; --i) {
        payload[size_t(i)] = digits[value & 15];
        value >>= 4;
    }
}

int64_t stampOf(std::string_view payload)
{
    if (payload.size() < 16)
        return -1;
    uint64_t value = 0;
    for (int i = 0; i < 16; ++i) {
        const char ch = payload[size_t(i)];
        const int digit = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (digit < 0)
            return -1;
        value = value << 4 | uint64_t(digit);
    }
    return int64_t(value);
}

std::string makePayload(int bytes)
{
    std::string payload(size_t(std::max(bytes, 16)), 'x');
    stamp(payload, 0);
    return payload;
}

// What every scenario shares: the io_context, opening connections a few
// hundred at a time from several loopback source addresses, running the loop
// until something is true, and the CPU figures of a measured window.
class Harness : public Sink {
public:
    Harness(const Adapter& adapter, uint16_t port, const BrokerProbe& probe)
        : m_adapter(adapter), m_endpoint(adapter.endpoint(port)), m_probe(probe), m_work(m_io.get_executor())
    {
    }
    ~Harness() override
    {
        for (auto& connection : m_connections)
            connection->close();
        m_work.reset();
        // Let the close handshakes go out; whatever is left is cut off with the io_context.
        m_io.run_for(std::chrono::milliseconds(200));
    }

    int add(Role role)
    {
        const int index = int(m_connections.size());
        Connection::Handlers handlers;
        handlers.opened = [this](Connection& c) { m_adapter.login(c); };
        handlers.frame = [this](Connection& c, std::string_view frame) { m_adapter.frame(c, frame, *this); };
        handlers.failed = [this](Connection& c, std::string_view why) { failed(c, why); };
        handlers.written = [this](Connection& c) { onWritten(c); };
        auto connection = std::make_shared<Connection>(m_io, m_endpoint, std::move(handlers), index);
        m_adapter.attach(*connection, role);
        m_connections.push_back(connection);
        m_roles.push_back(role);
        m_waiting.push_back(index);
        return index;
    }
    Connection& connection(int index) { return *m_connections[size_t(index)]; }
    Role role(const Connection& c) const { return m_roles[size_t(c.index())]; }
    size_t size() const { return m_connections.size(); }

    // Opens every added connection not started yet, at most `parallel` in the
    // handshake at once; true when all are logged in.
    bool openAll(double timeoutSeconds, int parallel = 256)
    {
        m_parallel = parallel;
        while (m_starting < m_parallel && startNext()) {
        }
        return runUntil([this] { return m_ready == int(m_connections.size()); }, timeoutSeconds);
    }

    // `wakeAtNs`, when given, tells when `tick` has work next (a nowNs() time;
    // negative: none): the loop then waits no longer than that.
    bool runUntil(const std::function<bool()>& done, double timeoutSeconds, const std::function<void()>& tick = {},
                  const std::function<int64_t()>& wakeAtNs = {})
    {
        const int64_t deadline = nowNs() + int64_t(timeoutSeconds * 1e9);
        while (m_error.empty()) {
            if (done())
                return true;
            if (nowNs() > deadline)
                return false;
            // Ready handlers first, in a bounded batch, without reading the clock
            // for each; wait briefly only when there is nothing to do.
            int ran = 0;
            while (ran < 256 && m_io.poll_one() > 0)
                ++ran;
            if (ran == 0)
                m_wait.runOne(workAt(wakeAtNs ? wakeAtNs() : -1));
            if (tick)
                tick();
        }
        return false;
    }
    void runFor(double seconds, const std::function<void()>& tick = {}, const std::function<int64_t()>& wakeAtNs = {})
    {
        runUntil([] { return false; }, seconds, tick, wakeAtNs);
    }

    const std::string& error() const { return m_error; }
    void fail(const std::string& why)
    {
        if (m_error.empty())
            m_error = why;
    }

    // Sink
    void ready(Connection& c) override
    {
        ++m_ready;
        --m_starting;
        onReady(c);
        while (m_starting < m_parallel && startNext()) {
        }
    }
    void synced(Connection&) override { ++m_synced; }
    void failed(Connection& c, std::string_view why) override
    {
        fail(m_adapter.name() + " connection " + std::to_string(c.index()) + ": " + std::string(why));
    }

    struct Window {
        int64_t startNs = 0;
        double benchCpu = 0, brokerCpu = 0;
        std::chrono::nanoseconds polled{};
    };
    Window beginWindow() const
    {
        return {nowNs(), selfCpuSeconds(), m_probe.cpuSeconds ? m_probe.cpuSeconds(m_probe.pid) : 0,
                m_wait.polled()};
    }
    // `paced`: the window's messages were published paced, so the load
    // generator polled before they fell due.
    void endWindow(const Window& w, Measurement& m, bool paced = false) const
    {
        m.wallSeconds = double(nowNs() - w.startNs) / 1e9;
        m.benchCpuSeconds = selfCpuSeconds() - w.benchCpu;
        if (paced)
            m.benchPollSeconds = std::chrono::duration<double>(m_wait.polled() - w.polled).count();
        m.brokerCpuSeconds = (m_probe.cpuSeconds ? m_probe.cpuSeconds(m_probe.pid) : 0) - w.brokerCpu;
    }
    // `m` failed: with the connections' error if there was one, else with `what`.
    Measurement& failure(Measurement& m, const std::string& what) const
    {
        m.error = error().empty() ? what : error();
        return m;
    }

protected:
    virtual void onReady(Connection&) {}
    virtual void onWritten(Connection&) {}

    const Adapter& m_adapter;
    Endpoint m_endpoint;
    const BrokerProbe& m_probe;
    int m_ready = 0;
    int m_synced = 0;

private:
    bool startNext()
    {
        if (m_nextWaiting >= m_waiting.size())
            return false;
        const int index = m_waiting[m_nextWaiting++];
        ++m_starting;
        // 16 source addresses: more than one address's worth of ephemeral ports.
        const auto source = asio::ip::make_address_v4(0x7f000001u + uint32_t(index % 16));
        m_connections[size_t(index)]->start(source);
        return true;
    }

    // One thread only: no locking in the scheduler or the reactor.
    asio::io_context m_io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE};
    asio::executor_work_guard<asio::io_context::executor_type> m_work;
    HandlerWait m_wait{m_io};
    std::vector<std::shared_ptr<Connection>> m_connections;
    std::vector<Role> m_roles;
    std::vector<int> m_waiting;
    size_t m_nextWaiting = 0;
    int m_starting = 0;
    int m_parallel = 256;
    std::string m_error;
};

// One publisher; subscribers either all on one topic (fanout: each message is
// delivered `subscribers` times) or each on its own (topics: each message once,
// the publisher going round all topics).
class PubSub final : public Harness {
public:
    PubSub(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, int subscribers, bool ownTopics,
           int payloadBytes)
        : Harness(adapter, port, probe), m_subscribers(subscribers), m_ownTopics(ownTopics),
          m_payload(makePayload(payloadBytes))
    {
        if (ownTopics) {
            for (int i = 0; i < subscribers; ++i)
                m_topics.push_back("bench.topic." + std::to_string(i));
        } else {
            m_topics.push_back("bench.fanout");
        }
        m_perMessage = ownTopics ? 1 : uint64_t(subscribers);
        // In flight at once: about 16 MiB across all subscribers, 8 to 2000
        // messages: enough to keep every broker busy, and a backlog any of them
        // clears within a fraction of a second.
        const uint64_t perDelivery = uint64_t(m_payload.size()) + 64;
        m_window = std::clamp<uint64_t>((16u << 20) / (perDelivery * m_perMessage), 8, 2000);
    }

    // Without timing.publishRate: the maximum rate, then latency at
    // timing.latencyLoad of it. With it: latency only, at that rate, after a
    // warm-up at the same rate; the CPU figures are then those of the latency
    // window.
    Measurement run(const Timing& timing)
    {
        Measurement m;
        for (int i = 0; i < m_subscribers; ++i)
            add(Role::Subscriber);
        if (!openAll(120) || !runUntil([this] { return m_synced == m_subscribers; }, 60))
            return failure(m, "subscribers not ready");
        m_publisher = add(Role::Publisher);
        if (!openAll(30))
            return failure(m, "publisher not ready");

        if (timing.publishRate > 0) {
            publishPaced(timing.publishRate, timing.warmupSeconds, timing);
            m_recording = true;
            const Window window = beginWindow();
            publishPaced(timing.publishRate, timing.latencySeconds, timing);
            endWindow(window, m, true);
        } else {
            if (!measureMaximum(m, timing))
                return failure(m, "deliveries did not finish");
            m_recording = true;
            publishPaced(latencyRate(m.publishedPerSecond, timing.latencyLoad), timing.latencySeconds, timing);
        }
        if (!drain(timing))
            return failure(m, "deliveries did not finish");
        m_recording = false;
        m.p50Micros = double(m_latency.percentile(0.50)) / 1e3;
        m.p99Micros = double(m_latency.percentile(0.99)) / 1e3;
        m.sentLateP50Micros = double(m_sentLate.percentile(0.50)) / 1e3;
        m.sentLateP99Micros = double(m_sentLate.percentile(0.99)) / 1e3;
        m.messagesMoved = m_delivered;
        if (m_lost > 0) {
            m.notes.push_back(std::to_string(m_lost) + " of " + std::to_string(m_sent * m_perMessage)
                              + " deliveries did not arrive (lost after a second without any delivery, or 10 s"
                                " after publishing stopped)");
            if (timing.exact)
                return failure(m, "deliveries lost");
        }
        m.ok = true;
        return m;
    }

    void message(Connection&, std::string_view, std::string_view payload) override
    {
        ++m_delivered;
        // A delivery counted as lost may still come, late: then it was not lost.
        if (m_lost > 0 && m_delivered + m_lost > m_sent * m_perMessage)
            --m_lost;
        if (m_recording) {
            const int64_t sent = stampOf(payload);
            if (sent < 0)
                return fail("a delivery without its time stamp");
            m_latency.record(nowNs() - sent);
        }
        if (m_pumping && outstanding() * 2 <= m_window * m_perMessage)
            pump();
    }

protected:
    void onReady(Connection& c) override
    {
        if (role(c) != Role::Subscriber)
            return;
        m_adapter.subscribe(c, m_topics[m_ownTopics ? size_t(c.index()) : 0]);
        m_adapter.sync(c);
    }

private:
    // Keeps the window full; deliveries per second over the measured window
    // after a warm-up, and the CPU figures of that window.
    bool measureMaximum(Measurement& m, const Timing& timing)
    {
        m_pumping = true;
        m_lastProgressNs = nowNs();
        pump();
        const auto watch = [this, &timing] { watchStall(timing); };
        runFor(timing.warmupSeconds, watch);
        const uint64_t before = m_delivered;
        const Window window = beginWindow();
        runFor(timing.measureSeconds, watch);
        const uint64_t during = m_delivered - before;
        endWindow(window, m);
        m_pumping = false;
        if (!drain(timing))
            return false;
        m.deliveredPerSecond = double(during) / m.wallSeconds;
        m.publishedPerSecond = m.deliveredPerSecond / double(m_perMessage);
        return true;
    }
    // Publishes `perSecond` messages a second for `seconds`, paced by the
    // clock: each message carries the time it was due, so a late send counts
    // as latency. As in pump(), at most kMaxUnsent bytes wait for the
    // publisher's socket; messages due beyond that go out as it takes them
    // (a broker slower than the rate would otherwise get them all as one
    // WebSocket message of any size). Those due by the end go out after it.
    void publishPaced(double perSecond, double seconds, const Timing& timing)
    {
        const int64_t start = nowNs();
        m_lastProgressNs = start;
        uint64_t paced = 0;
        uint64_t due = 0;
        const auto publishDue = [&] {
            Connection& publisher = connection(m_publisher);
            for (; paced < due && publisher.unsent() < kMaxUnsent; ++paced) {
                const int64_t dueNs = start + dueAfterNs(paced, perSecond);
                if (m_recording)
                    m_sentLate.record(nowNs() - dueNs);
                publishOne(dueNs);
            }
            watchStall(timing);
        };
        // Wakes when the next message falls due, unless the socket is full:
        // then a completed write is what lets it go on.
        const auto nextDue = [&]() -> int64_t {
            return connection(m_publisher).unsent() < kMaxUnsent ? start + dueAfterNs(due, perSecond) : -1;
        };
        runFor(seconds, [&] {
            due = messagesDue(nowNs() - start, perSecond);
            publishDue();
        }, nextDue);
        runUntil([&] { return paced == due; }, 10, publishDue);
    }
    uint64_t outstanding() const { return m_sent * m_perMessage - m_delivered - m_lost; }

    // The publisher holds at most 64 KiB that the socket has not taken yet;
    // more goes out when a write completes or deliveries free the window.
    static constexpr size_t kMaxUnsent = 64u << 10;
    void pump()
    {
        Connection& publisher = connection(m_publisher);
        while (outstanding() < m_window * m_perMessage && publisher.unsent() < kMaxUnsent)
            publishOne(nowNs());
    }
    void onWritten(Connection& c) override
    {
        if (m_pumping && c.index() == m_publisher)
            pump();
    }
    void publishOne(int64_t due)
    {
        stamp(m_payload, due);
        m_adapter.publish(connection(m_publisher), m_topics[m_sent % m_topics.size()], m_payload);
        ++m_sent;
    }
    // A broker may drop messages (QoS 0 allows it): after a second without any
    // delivery, what is missing counts as lost, and the window opens again.
    void watchStall(const Timing& timing)
    {
        const int64_t now = nowNs();
        if (m_delivered != m_lastDelivered || outstanding() == 0) {
            m_lastDelivered = m_delivered;
            m_lastProgressNs = now;
            return;
        }
        if (now - m_lastProgressNs > 1'000'000'000) {
            m_lost += outstanding();
            m_lastProgressNs = now;
            if (timing.exact)
                fail(std::to_string(m_lost) + " deliveries missing");
            if (m_pumping)
                pump();
        }
    }
    // Waits for what is still on its way. A broker that trickles (Mosquitto
    // over WebSockets with 4 KiB messages sends a little every half second)
    // gets 10 s; what has not come by then counts as lost, and the run goes on
    // unless every message must arrive.
    bool drain(const Timing& timing)
    {
        if (runUntil([this] { return outstanding() == 0; }, 10, [this, &timing] { watchStall(timing); }))
            return true;
        if (!error().empty() || timing.exact)
            return false;
        m_lost += outstanding();
        return true;
    }

    int m_subscribers;
    bool m_ownTopics;
    std::string m_payload;
    std::vector<std::string> m_topics;
    uint64_t m_perMessage = 1;
    uint64_t m_window = 1;
    int m_publisher = -1;
    bool m_pumping = false;
    bool m_recording = false;
    uint64_t m_sent = 0;
    uint64_t m_delivered = 0;
    uint64_t m_lost = 0;
    uint64_t m_lastDelivered = 0;
    int64_t m_lastProgressNs = 0;
    Histogram m_latency;
    Histogram m_sentLate; // paced messages: send time after due time
};

// Requesters in a closed loop (one request outstanding each) against
// load-balanced responders that answer at once with the request's payload.
class ReqRes final : public Harness {
public:
    ReqRes(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, int requesters, int responders,
           int payloadBytes)
        : Harness(adapter, port, probe), m_requesters(requesters), m_responders(responders),
          m_payload(makePayload(payloadBytes))
    {
    }

    Measurement run(const Timing& timing)
    {
        Measurement m;
        for (int i = 0; i < m_responders; ++i)
            add(Role::Responder);
        for (int i = 0; i < m_requesters; ++i)
            add(Role::Requester);
        if (!openAll(120) || !runUntil([this] { return m_synced == m_requesters + m_responders; }, 60)) {
            return failure(m, "peers not ready");
        }
        m_running = true;
        for (int i = m_responders; i < m_responders + m_requesters; ++i)
            send(connection(i));
        runFor(timing.warmupSeconds);
        const uint64_t before = m_roundTrips;
        m_recording = true;
        const Window window = beginWindow();
        runFor(timing.measureSeconds);
        const uint64_t during = m_roundTrips - before;
        endWindow(window, m);
        m_recording = false;
        m_running = false;
        if (!runUntil([this] { return m_outstanding == 0; }, 30)) {
            return failure(m, std::to_string(m_outstanding) + " requests never answered");
        }
        if (!error().empty()) {
            m.error = error();
            return m;
        }
        if (m_failedAnswers > 0) {
            m.notes.push_back(std::to_string(m_failedAnswers) + " requests answered with an error status");
            if (timing.exact) {
                m.error = m.notes.back();
                return m;
            }
        }
        m.roundTripsPerSecond = double(during) / m.wallSeconds;
        m.p50Micros = double(m_latency.percentile(0.50)) / 1e3;
        m.p99Micros = double(m_latency.percentile(0.99)) / 1e3;
        m.messagesMoved = m_roundTrips;
        m.ok = during > 0;
        if (!m.ok)
            m.error = "no round trip completed";
        return m;
    }

    void request(Connection& c, const IncomingRequest& r) override { m_adapter.reply(c, r, r.payload); }

    void response(Connection& c, std::string_view payload, bool ok) override
    {
        --m_outstanding;
        ++m_roundTrips;
        if (!ok)
            ++m_failedAnswers;
        if (m_recording) {
            const int64_t sent = stampOf(payload);
            if (sent < 0)
                return fail("an answer without its time stamp");
            m_latency.record(nowNs() - sent);
        }
        if (m_running)
            send(c);
    }

protected:
    void onReady(Connection& c) override
    {
        if (role(c) == Role::Responder)
            m_adapter.respondTo(c, "bench.req");
        else
            m_adapter.listenForReplies(c);
        m_adapter.sync(c);
    }

private:
    void send(Connection& c)
    {
        stamp(m_payload, nowNs());
        m_adapter.request(c, "bench.req", m_payload);
        ++m_outstanding;
    }

    int m_requesters;
    int m_responders;
    std::string m_payload;
    bool m_running = false;
    bool m_recording = false;
    int64_t m_outstanding = 0;
    uint64_t m_roundTrips = 0;
    uint64_t m_failedAnswers = 0;
    Histogram m_latency;
};

class Idle final : public Harness {
public:
    using Harness::Harness;

    Measurement run(int connections, const Timing& timing)
    {
        Measurement m;
        const long rssBefore = m_probe.rssKiB ? m_probe.rssKiB(m_probe.pid) : 0;
        for (int i = 0; i < connections; ++i)
            add(Role::Idle);
        const Window window = beginWindow();
        if (!openAll(300, 512)) {
            return failure(m, std::to_string(m_ready) + " of " + std::to_string(connections) + " opened");
        }
        endWindow(window, m);
        m.openSeconds = m.wallSeconds;
        // Let the broker settle (buffers of the handshakes released), then read its memory.
        runFor(std::min(1.0, timing.warmupSeconds));
        if (!error().empty()) {
            m.error = error();
            return m;
        }
        const long rssAfter = m_probe.rssKiB ? m_probe.rssKiB(m_probe.pid) : 0;
        m.connections = connections;
        m.kibPerConnection = double(rssAfter - rssBefore) / connections;
        m.messagesMoved = uint64_t(connections);
        m.ok = true;
        return m;
    }
};

} // namespace

Measurement runFanout(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, int subscribers,
                      int payloadBytes, const Timing& timing)
{
    PubSub scenario(adapter, port, probe, subscribers, false, payloadBytes);
    return scenario.run(timing);
}

Measurement runTopics(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, int topics, int payloadBytes,
                      const Timing& timing)
{
    PubSub scenario(adapter, port, probe, topics, true, payloadBytes);
    return scenario.run(timing);
}

Measurement runReqRes(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, int requesters,
                      int responders, int payloadBytes, const Timing& timing)
{
    ReqRes scenario(adapter, port, probe, requesters, responders, payloadBytes);
    return scenario.run(timing);
}

Measurement runConnections(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, int connections,
                           const Timing& timing)
{
    Idle scenario(adapter, port, probe);
    return scenario.run(connections, timing);
}

} // namespace bench
