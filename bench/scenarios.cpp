#include "scenarios.h"

#include "harness.h"
#include "histogram.h"
#include "inflight.h"
#include "latencyrate.h"
#include "pacer.h"
#include "requestloop.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bench {

namespace {

// How the subscribers of PubSub are subscribed.
enum class Shape {
    Fanout,  // all on one topic: each message delivered to every subscriber
    Topics,  // each on its own, the publisher going round all topics: each message once
    Churn,   // all on one wildcard over the topics the publisher goes round: as fanout
};

// One publisher and its subscribers, and in churn a churner: one more client
// that subscribes and unsubscribes, a pair every 1 / churnRate seconds, paced
// by the clock, from the first warm-up to the end. Its patterns match none of
// the published topics, so it changes no delivery, only the subscriptions a
// broker matches each message against: what it costs is the broker's own
// (middleman caches the subscribers of each published target, and must keep
// that cache right through every change). They are wildcards, the kind a
// broker can tell least about (a literal one can change a single topic's
// subscribers), and a new one each time, as a user's views come and go.
class PubSub final : public Harness {
public:
    PubSub(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, Shape shape, int subscribers, int topics,
           int payloadBytes, double churnRate = 0)
        : Harness(adapter, port, probe), m_subscribers(subscribers), m_ownTopics(shape == Shape::Topics),
          m_churnRate(churnRate), m_payload(makePayload(payloadBytes))
    {
        if (shape == Shape::Fanout)
            m_topics.push_back("bench.fanout");
        for (int i = 0; shape != Shape::Fanout && i < topics; ++i)
            m_topics.push_back((shape == Shape::Topics ? "bench.topic." : "bench.churn.") + std::to_string(i));
        m_subscription = shape == Shape::Churn ? "bench.churn.*" : m_topics.front();
        m_perMessage = m_ownTopics ? 1 : uint64_t(subscribers);
        const uint64_t perDelivery = uint64_t(m_payload.size()) + 64;
        m_window = publishWindow(perDelivery, m_perMessage);
        m_subscriberWindow = subscriberWindow(perDelivery);
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
        if (m_churnRate > 0) {
            m_churner = add(Role::Churner);
            if (!openAll(30))
                return failure(m, "churner not ready");
            m_churning.emplace(m_churnRate, nowNs());
        }

        if (timing.publishRate > 0) {
            publishPaced(timing.publishRate, timing.warmupSeconds, timing);
            m_recording = true;
            const Window window = beginWindow();
            const uint64_t churned = m_churned;
            publishPaced(timing.publishRate, timing.latencySeconds, timing);
            endWindow(window, m, true);
            m.churnedPerSecond = double(m_churned - churned) / m.wallSeconds;
        } else {
            if (!measureMaximum(m, timing))
                return failure(m, "deliveries did not finish");
            m_recording = true;
            publishPaced(latencyRate(m.publishedPerSecond, timing.latencyLoad), timing.latencySeconds, timing);
        }
        if (!drain(timing))
            return failure(m, "deliveries did not finish");
        m_recording = false;
        if (!stopChurning())
            return failure(m, "the churner's SUBs and UNSUBs were not all taken");
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

    void message(Connection& c, std::string_view topic, std::string_view payload) override
    {
        if (c.index() == m_churner)
            return fail("the churner got a message on " + std::string(topic) + ", which none of its patterns match");
        ++m_delivered;
        m_fewest.delivered(size_t(c.index()));
        // A delivery counted as lost may still come, late: then it was not lost.
        if (m_lost > 0 && m_delivered + m_lost > m_sent * m_perMessage)
            --m_lost;
        if (m_recording) {
            const int64_t sent = stampOf(payload);
            if (sent < 0)
                return fail("a delivery without its time stamp");
            m_latency.record(nowNs() - sent);
        }
        // Refilled once half of it is free.
        if (m_pumping && outstanding() * 2 <= m_window * m_perMessage
            && inFlightToSlowest() * 2 <= m_subscriberWindow)
            pump();
    }

protected:
    void onReady(Connection& c) override
    {
        if (role(c) != Role::Subscriber)
            return;
        m_adapter.subscribe(c, m_ownTopics ? m_topics[size_t(c.index())] : m_subscription);
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
        uint64_t before = 0, churned = 0;
        warmUpAndMeasure(timing, m, [&] {
            before = m_delivered;
            churned = m_churned;
        }, false, [this, &timing] { tick(timing); });
        const uint64_t during = m_delivered - before;
        m.churnedPerSecond = double(m_churned - churned) / m.wallSeconds;
        m_pumping = false;
        if (!drain(timing))
            return false;
        m.deliveredPerSecond = double(during) / m.wallSeconds;
        m.publishedPerSecond = m.deliveredPerSecond / double(m_perMessage);
        return true;
    }
    // Publishes `perSecond` messages a second for `seconds`, paced by the
    // clock (Pacer), within the window as pump() is: a subscriber that falls
    // behind for a moment (the load generator's one thread busy) is not sent
    // more than a subscriber's defaults allow; what is held back counts as
    // latency. Those due by the end go out after it.
    void publishPaced(double perSecond, double seconds, const Timing& timing)
    {
        const int64_t start = nowNs();
        Pacer pacer(perSecond, start);
        m_lastProgressNs = start;
        const auto room = [this] { return roomInWindow(); };
        const auto publishDue = [&] {
            pacer.sendDue(connection(m_publisher), room, [this](int64_t dueNs) {
                if (m_recording)
                    m_sentLate.record(nowNs() - dueNs);
                publishOne(dueNs);
            });
            tick(timing);
        };
        runFor(seconds, [&] {
            pacer.update(nowNs());
            publishDue();
        }, [&] { return pacer.nextDueNs(connection(m_publisher), roomInWindow()); });
        runUntil([&] { return pacer.caughtUp(); }, 10, publishDue);
    }
    uint64_t outstanding() const { return m_sent * m_perMessage - m_delivered - m_lost; }
    // What the publisher has sent each subscriber, at most: every message in
    // fanout and churn, every T-th going round T topics.
    uint64_t sentToEach() const
    {
        return m_ownTopics ? (m_sent + m_topics.size() - 1) / m_topics.size() : m_sent;
    }
    // The most any one subscriber has in flight.
    uint64_t inFlightToSlowest() const
    {
        return sentToEach() > m_fewest.fewest() ? sentToEach() - m_fewest.fewest() : 0;
    }
    bool roomInWindow() const
    {
        return outstanding() < m_window * m_perMessage && inFlightToSlowest() < m_subscriberWindow;
    }

    // Keeps the window full while the socket takes it; more goes out when a
    // write completes or deliveries free the window.
    void pump()
    {
        Connection& publisher = connection(m_publisher);
        while (roomInWindow() && publisher.unsent() < kMaxUnsent)
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
    // What the loop does between handlers, at least every
    // HandlerWait::kMaxWait: the churn that fell due, which needs no wake-up
    // of its own (it is there for its rate, not for when each pair goes), and
    // the watch for a stall.
    void tick(const Timing& timing)
    {
        if (m_churning) {
            m_churning->update(nowNs());
            m_churning->sendDue(connection(m_churner), [] { return true; }, [this](int64_t) { churnOnce(); });
        }
        watchStall(timing);
    }
    void churnOnce()
    {
        const std::string pattern = "bench.other." + std::to_string(m_churned) + ".*";
        Connection& churner = connection(m_churner);
        m_adapter.subscribe(churner, pattern);
        m_adapter.unsubscribe(churner, pattern);
        ++m_churned;
    }
    // Stops the churn; true once the broker has taken all of it (it refusing
    // any fails the run: middleman's ERR, NATS's -ERR, a failed SUBACK).
    bool stopChurning()
    {
        if (!m_churning)
            return true;
        m_churning.reset();
        const int synced = m_synced;
        m_adapter.sync(connection(m_churner));
        return runUntil([this, synced] { return m_synced > synced; }, 30);
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
            countMissingAsLost();
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
        if (runUntil([this] { return outstanding() == 0; }, 10, [this, &timing] { tick(timing); }))
            return true;
        if (!error().empty() || timing.exact)
            return false;
        countMissingAsLost();
        return true;
    }
    void countMissingAsLost()
    {
        m_lost += outstanding();
        m_fewest.raiseTo(sentToEach());
    }

    int m_subscribers;
    bool m_ownTopics;
    double m_churnRate;
    std::string m_payload;
    std::vector<std::string> m_topics;  // published, in turn
    std::string m_subscription;         // every subscriber's, unless each has its own topic
    uint64_t m_perMessage = 1;
    uint64_t m_window = 1;            // messages in flight, at most
    uint64_t m_subscriberWindow = 1;  // messages in flight to any one subscriber, at most
    FewestDelivered m_fewest{size_t(m_subscribers)};
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
    int m_churner = -1;
    std::optional<Pacer> m_churning;  // while the churn goes on
    uint64_t m_churned = 0;           // SUB+UNSUB pairs sent
};

// Requesters in a closed loop (one request outstanding each) against
// load-balanced responders.
class ReqRes final : public Harness {
public:
    ReqRes(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, int requesters, int responders,
           int payloadBytes)
        : Harness(adapter, port, probe), m_requesters(requesters), m_responders(responders),
          m_loop(adapter, payloadBytes)
    {
    }

    Measurement run(const Timing& timing)
    {
        Measurement m;
        for (int i = 0; i < m_responders; ++i)
            add(Role::Responder);
        for (int i = 0; i < m_requesters; ++i)
            add(Role::Requester);
        if (!openAll(120) || !runUntil([this] { return m_synced == m_requesters + m_responders; }, 60))
            return failure(m, "peers not ready");
        for (int i = m_responders; i < m_responders + m_requesters; ++i)
            m_loop.start(connection(i));
        uint64_t before = 0;
        warmUpAndMeasure(timing, m, [this, &before] {
            before = m_loop.roundTrips();
            m_loop.record(true);
        });
        const uint64_t during = m_loop.roundTrips() - before;
        m_loop.record(false);
        m_loop.stop();
        if (!runUntil([this] { return m_loop.outstanding() == 0; }, 30))
            return failure(m, std::to_string(m_loop.outstanding()) + " requests never answered");
        if (!error().empty())
            return failure(m, error());
        m.ok = m_loop.figures(m, during, timing);
        return m;
    }

    void response(Connection& c, std::string_view payload, bool ok) override
    {
        if (!m_loop.answered(c, payload, ok))
            fail("an answer without its time stamp");
    }

protected:
    void onReady(Connection& c) override { m_loop.prepare(c, role(c)); }

private:
    int m_requesters;
    int m_responders;
    RequestLoop m_loop;
};

// A bystander, one requester and one responder (services), sends
// kFloodBystanderRate requests a second, paced by the clock, while a client floods
// the broker: it publishes at the flood rate, paced too, to a subscriber of
// its own (a client). The bystander's requests go when due whether or not
// the last was answered, each stamped with its due time, so a broker slow to
// answer shows in the latencies and does not lower the load; and at a fixed
// rate, rather than as fast as answers come, the broker's CPU is mostly the
// flood's, not the bystander's (which, unpaced, keeps the broker's core busy
// by itself, its idle spin included). A
// broker that paces the flood stops reading the flooder's socket while it is
// over its rate, and the flooder's unsent bytes stay at kMaxUnsent; one that
// refuses answers ERR 429 for each message over the rate. Every flood message
// carries the time it was due, which rises from one to the next: the
// subscriber checks they come in order.
class Flood final : public Harness {
public:
    Flood(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, double floodRate, int payloadBytes)
        : Harness(adapter, port, probe), m_floodRate(floodRate), m_loop(adapter, payloadBytes),
          m_payload(makePayload(payloadBytes))
    {
    }

    Measurement run(const Timing& timing)
    {
        Measurement m;
        add(Role::Responder);
        const int requester = add(Role::Requester);
        const bool flooding = m_floodRate > 0;
        if (flooding) {
            add(Role::Subscriber);
            m_flooder = add(Role::Flooder);
        }
        const int syncs = flooding ? 3 : 2;  // all but the flooder
        if (!openAll(60) || !runUntil([this, syncs] { return m_synced == syncs; }, 60))
            return failure(m, "peers not ready");
        const int64_t start = nowNs();
        Pacer asking(kFloodBystanderRate, start);
        Pacer publishing(m_floodRate, start);
        const auto due = [&] {
            const int64_t now = nowNs();
            asking.update(now);
            asking.sendDue(connection(requester), [] { return true; },
                           [&](int64_t dueNs) { m_loop.send(connection(requester), dueNs); });
            if (m_flooder < 0)
                return;
            publishing.update(now);
            publishing.sendDue(connection(m_flooder), [] { return true; }, [this](int64_t dueNs) {
                stamp(m_payload, dueNs);
                m_adapter.publish(connection(m_flooder), kTopic, m_payload);
                ++m_sent;
            });
        };
        const auto nextDue = [&] {
            const int64_t ask = asking.nextDueNs(connection(requester), true);
            const int64_t flood = m_flooder < 0 ? -1 : publishing.nextDueNs(connection(m_flooder), true);
            return ask < 0 ? flood : flood < 0 ? ask : std::min(ask, flood);
        };
        uint64_t roundTrips = 0, sent = 0, delivered = 0, refused = 0;
        warmUpAndMeasure(timing, m, [&] {
            roundTrips = m_loop.roundTrips();
            sent = m_sent;
            delivered = m_delivered;
            refused = m_refused;
            m_loop.record(true);
        }, true, due, nextDue);
        m.floodSentPerSecond = double(m_sent - sent) / m.wallSeconds;
        m.floodDeliveredPerSecond = double(m_delivered - delivered) / m.wallSeconds;
        m.refusedPerSecond = double(m_refused - refused) / m.wallSeconds;
        const uint64_t during = m_loop.roundTrips() - roundTrips;
        m_loop.record(false);
        // What the broker had not read of the flood when it stopped comes
        // now, at the rate it paces it to.
        runUntil([this] { return m_loop.outstanding() == 0 && m_delivered + m_refused == m_sent; }, 60);
        if (!error().empty())
            return failure(m, error());
        if (m_loop.outstanding() > 0)
            return failure(m, std::to_string(m_loop.outstanding()) + " requests never answered");
        m.floodLost = double(m_sent - m_delivered - m_refused);
        m.floodOutOfOrder = double(m_outOfOrder);
        if (!m_loop.figures(m, during, timing))
            return m;
        if (m_sent > m_delivered + m_refused || m_outOfOrder > 0) {
            m.notes.push_back(std::to_string(m_sent - m_delivered - m_refused) + " of " + std::to_string(m_sent)
                              + " flood messages neither delivered nor refused, "
                              + std::to_string(m_outOfOrder) + " delivered out of order");
            if (timing.exact)
                return failure(m, m.notes.back());
        }
        m.ok = true;
        return m;
    }

    void response(Connection& c, std::string_view payload, bool ok) override
    {
        if (!m_loop.answered(c, payload, ok))
            fail("an answer without its time stamp");
    }
    void message(Connection&, std::string_view, std::string_view payload) override
    {
        const int64_t due = stampOf(payload);
        if (due < 0)
            return fail("a flood message without its time stamp");
        ++m_delivered;
        if (due <= m_lastDue)
            ++m_outOfOrder;
        m_lastDue = due;
    }
    void refused(Connection& c, std::string_view status, std::string_view message) override
    {
        if (c.index() != m_flooder || status != "429")
            return Harness::refused(c, status, message);
        ++m_refused;
    }

protected:
    void onReady(Connection& c) override
    {
        switch (role(c)) {
        case Role::Subscriber:
            m_adapter.subscribe(c, kTopic);
            m_adapter.sync(c);
            break;
        case Role::Flooder:
            break;
        default:
            m_loop.prepare(c, role(c));
        }
    }

private:
    static constexpr std::string_view kTopic = "bench.flood";

    double m_floodRate;
    RequestLoop m_loop;
    std::string m_payload;
    int m_flooder = -1;
    uint64_t m_sent = 0;
    uint64_t m_delivered = 0;
    uint64_t m_refused = 0;
    uint64_t m_outOfOrder = 0;
    int64_t m_lastDue = -1;
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
    PubSub scenario(adapter, port, probe, Shape::Fanout, subscribers, 1, payloadBytes);
    return scenario.run(timing);
}

Measurement runTopics(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, int topics, int payloadBytes,
                      const Timing& timing)
{
    PubSub scenario(adapter, port, probe, Shape::Topics, topics, topics, payloadBytes);
    return scenario.run(timing);
}

Measurement runChurn(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, int subscribers, int topics,
                     double churnRate, int payloadBytes, const Timing& timing)
{
    PubSub scenario(adapter, port, probe, Shape::Churn, subscribers, topics, payloadBytes, churnRate);
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

Measurement runFlood(const Adapter& adapter, uint16_t port, const BrokerProbe& probe, double floodRate,
                     int payloadBytes, const Timing& timing)
{
    Flood scenario(adapter, port, probe, floodRate, payloadBytes);
    return scenario.run(timing);
}

} // namespace bench
