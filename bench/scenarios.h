// The six scenarios of middleman-bench. Each runs against one broker that is
// already listening, on one io_context in this thread, and returns its figures.
#pragma once

#include "adapters.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace bench {

struct Timing {
    double warmupSeconds = 1.0;
    double measureSeconds = 3.0;
    double latencySeconds = 3.0;
    // latency is measured at this fraction of the measured maximum rate (the
    // report says "half own max"), and at this fraction of the lowest maximum
    // of a case's brokers (the common rate)
    double latencyLoad = 0.5;
    // fanout, topics, churn: > 0 measures no maximum, only latency at this many
    // messages published a second (the common rate of a case, latencyrate.h)
    double publishRate = 0;
    bool exact = false;        // smoke: every message must arrive, nothing may stall
};

struct Measurement {
    bool ok = false;
    std::string error;                 // why not ok
    std::vector<std::string> notes;    // ok, but worth knowing (losses, caps)
    // fanout, topics, churn
    double deliveredPerSecond = 0;
    double publishedPerSecond = 0;  // deliveredPerSecond / deliveries per message
    double p50Micros = 0, p99Micros = 0;
    // how long after its due time the paced publisher sent a message (counted
    // in the latencies above); NaN where nothing was paced
    double sentLateP50Micros = std::numeric_limits<double>::quiet_NaN();
    double sentLateP99Micros = std::numeric_limits<double>::quiet_NaN();
    // of benchCpuSeconds, the time the load generator polled for the last few
    // µs before a paced message fell due; NaN where nothing was paced
    double benchPollSeconds = std::numeric_limits<double>::quiet_NaN();
    // churn, over the measured window: SUB+UNSUB pairs the churner sent a second
    double churnedPerSecond = 0;
    // reqres; flood: the bystander's
    double roundTripsPerSecond = 0;
    // flood, over the measured window: messages the flooder sent, those
    // delivered to its subscriber, and the ERR 429s it got, a second; and
    // over the whole run, counted once every answer came: messages neither
    // delivered nor refused, and deliveries that came before one sent earlier
    double floodSentPerSecond = 0;
    double floodDeliveredPerSecond = 0;
    double refusedPerSecond = 0;
    double floodLost = 0;
    double floodOutOfOrder = 0;
    // connections
    int connections = 0;
    double openSeconds = 0;
    double kibPerConnection = 0;
    // what the run cost
    double wallSeconds = 0;
    double benchCpuSeconds = 0;
    double brokerCpuSeconds = 0;
    uint64_t messagesMoved = 0;  // deliveries or round trips counted in total
};

// What the scenarios need to know of the broker process.
struct BrokerProbe {
    int pid = -1;
    double (*cpuSeconds)(int pid) = nullptr;
    long (*rssKiB)(int pid) = nullptr;
};

Measurement runFanout(const Adapter&, uint16_t port, const BrokerProbe&, int subscribers, int payloadBytes,
                      const Timing&);
Measurement runReqRes(const Adapter&, uint16_t port, const BrokerProbe&, int requesters, int responders,
                      int payloadBytes, const Timing&);
Measurement runConnections(const Adapter&, uint16_t port, const BrokerProbe&, int connections, const Timing&);
Measurement runTopics(const Adapter&, uint16_t port, const BrokerProbe&, int topics, int payloadBytes, const Timing&);

// Fanout while the subscriptions change: `subscribers` subscribers each on a
// wildcard over `topics` topics, which one publisher goes round as fanout's
// publishes, while one more client, the churner, subscribes and unsubscribes
// `churnRate` times a second (SUB+UNSUB pairs, paced by the clock; 0: no
// churner) to patterns none of those topics match.
Measurement runChurn(const Adapter&, uint16_t port, const BrokerProbe&, int subscribers, int topics,
                     double churnRate, int payloadBytes, const Timing&);

// A bystander's round trips, one at a time, while a client floods the broker
// with `floodRate` messages a second to a subscriber of its own (0: no flood,
// the bystander alone); every message of either `payloadBytes` long. Whether
// the broker paces or refuses the flood is its config's business.
// The flood's bystander: requests a second, paced by the clock.
constexpr double kFloodBystanderRate = 1000;
Measurement runFlood(const Adapter&, uint16_t port, const BrokerProbe&, double floodRate, int payloadBytes,
                     const Timing&);

} // namespace bench
