// What every scenario of middleman-bench shares (Harness): the clock, the
// time stamp every payload carries, and the loop with its connections.
#pragma once

#include "adapters.h"
#include "brokerprocess.h"
#include "handlerwait.h"
#include "scenarios.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

namespace asio = boost::asio;

using Clock = std::chrono::steady_clock;

inline const Clock::time_point& epoch()
{
    static const Clock::time_point start = Clock::now();
    return start;
}

inline int64_t nowNs()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - epoch()).count();
}

// When the caller has work at `atNs` (a nowNs() time; negative: none).
inline std::optional<Clock::time_point> workAt(int64_t atNs)
{
    if (atNs < 0)
        return std::nullopt;
    return epoch() + std::chrono::nanoseconds(atNs);
}

// The send time rides in the first 16 bytes of every payload, as hex.
inline void stamp(std::string& payload, int64_t ns)
{
    static constexpr char digits[] = "0123456789abcdef";
    auto value = uint64_t(ns);
    for (int i = 15; i >= 0; --i) {
        payload[size_t(i)] = digits[value & 15];
        value >>= 4;
    }
}

inline int64_t stampOf(std::string_view payload)
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

inline std::string makePayload(int bytes)
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

    // A warm-up, then the measured window, whose wall and CPU figures go
    // into `m`; `opening` runs as the window opens. `paced`, `tick` and
    // `wakeAtNs` as for endWindow() and runUntil().
    void warmUpAndMeasure(const Timing& timing, Measurement& m, const std::function<void()>& opening,
                          bool paced = false, const std::function<void()>& tick = {},
                          const std::function<int64_t()>& wakeAtNs = {})
    {
        runFor(timing.warmupSeconds, tick, wakeAtNs);
        opening();
        const Window window = beginWindow();
        runFor(timing.measureSeconds, tick, wakeAtNs);
        endWindow(window, m, paced);
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
    // A responder answers at once with the request's payload.
    void request(Connection& c, const IncomingRequest& r) override { m_adapter.reply(c, r, r.payload); }

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
        // Polling is timed on the wall clock: on a loaded machine, time the
        // thread spent taken off the CPU while it polled counts as polled.
        // No more than the CPU time it used can have gone on polling.
        if (paced)
            m.benchPollSeconds = std::min(m.benchCpuSeconds,
                                          std::chrono::duration<double>(m_wait.polled() - w.polled).count());
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

} // namespace bench
