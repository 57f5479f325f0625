// The request/reply loop of the reqres scenario and of the flood's bystander.
#pragma once

#include "adapters.h"
#include "harness.h"
#include "histogram.h"
#include "scenarios.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace bench {

// Requesters in a closed loop: each sends its next request as the answer to
// its last one comes (start()); or paced by the caller (send()). Responders
// (Harness::request()) answer at once with the request's payload, which
// carries the time it was sent, or was due.
class RequestLoop {
public:
    RequestLoop(const Adapter& adapter, int payloadBytes) : m_adapter(adapter), m_payload(makePayload(payloadBytes)) {}

    // Subscribes a responder or readies a requester, then syncs it.
    void prepare(Connection& c, Role role) const
    {
        if (role == Role::Responder)
            m_adapter.respondTo(c, kTopic);
        else
            m_adapter.listenForReplies(c);
        m_adapter.sync(c);
    }
    void start(Connection& requester)
    {
        m_running = true;
        send(requester, nowNs());
    }
    // One request, stamped with `dueNs`: the round trip counts from then.
    void send(Connection& requester, int64_t dueNs)
    {
        stamp(m_payload, dueNs);
        m_adapter.request(requester, kTopic, m_payload);
        ++m_outstanding;
    }
    void stop() { m_running = false; }
    // Round trips from now on are timed.
    void record(bool recording) { m_recording = recording; }

    // The answer to `requester`'s request came; false if it had no time stamp.
    bool answered(Connection& requester, std::string_view payload, bool ok)
    {
        --m_outstanding;
        ++m_roundTrips;
        if (!ok)
            ++m_failedAnswers;
        if (m_recording) {
            const int64_t sent = stampOf(payload);
            if (sent < 0)
                return false;
            m_latency.record(nowNs() - sent);
        }
        if (m_running)
            send(requester, nowNs());
        return true;
    }

    int64_t outstanding() const { return m_outstanding; }
    uint64_t roundTrips() const { return m_roundTrips; }

    // The round trips of a measured window, `during` of them, into `m`;
    // false, with m.error, when the run failed.
    bool figures(Measurement& m, uint64_t during, const Timing& timing) const
    {
        if (m_failedAnswers > 0) {
            m.notes.push_back(std::to_string(m_failedAnswers) + " requests answered with an error status");
            if (timing.exact) {
                m.error = m.notes.back();
                return false;
            }
        }
        if (during == 0) {
            m.error = "no round trip completed";
            return false;
        }
        m.roundTripsPerSecond = double(during) / m.wallSeconds;
        m.p50Micros = double(m_latency.percentile(0.50)) / 1e3;
        m.p99Micros = double(m_latency.percentile(0.99)) / 1e3;
        m.messagesMoved = m_roundTrips;
        return true;
    }

private:
    static constexpr std::string_view kTopic = "bench.req";

    const Adapter& m_adapter;
    std::string m_payload;
    bool m_running = false;
    bool m_recording = false;
    int64_t m_outstanding = 0;
    uint64_t m_roundTrips = 0;
    uint64_t m_failedAnswers = 0;
    Histogram m_latency;
};

} // namespace bench
