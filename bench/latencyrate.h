// The publish rates at which fanout and topics measure latency: a fraction of
// one broker's own maximum, and the common rate of a case, the same for every
// broker of the run.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bench {

// `load` of a maximum publish rate, at least one message a second.
inline double latencyRate(double maxPublishedPerSecond, double load)
{
    return std::max(1.0, maxPublishedPerSecond * load);
}

struct CommonRate {
    double publishedPerSecond = 0;
    std::string setBy;        // the broker with the lowest maximum
    double setByMaximum = 0;  // its maximum, messages published a second
};

// `load` of the lowest maximum publish rate among the brokers that measured
// one (broker, messages published a second; a failed run is left out), so that
// every broker's latency is taken at the same offered load. No common rate
// with fewer than two maxima: there is nothing to compare, and one broker's
// own rate is measured already. Of equal maxima, the first sets the rate.
inline std::optional<CommonRate> commonRate(const std::vector<std::pair<std::string, double>>& maxPublishedPerSecond,
                                            double load)
{
    const std::pair<std::string, double>* lowest = nullptr;
    int measured = 0;
    for (const auto& maximum : maxPublishedPerSecond) {
        if (!std::isfinite(maximum.second) || maximum.second < 0)
            continue;
        ++measured;
        if (!lowest || maximum.second < lowest->second)
            lowest = &maximum;
    }
    if (measured < 2)
        return std::nullopt;
    return CommonRate{latencyRate(lowest->second, load), lowest->first, lowest->second};
}

// Pacing at `perSecond`: message k (from 0) is due k / perSecond after the
// start, so after `elapsedNs` this many have fallen due (the first at once).
inline uint64_t messagesDue(int64_t elapsedNs, double perSecond)
{
    return uint64_t(double(elapsedNs) * perSecond / 1e9) + 1;
}
// When message k falls due, to the nanosecond at or after k / perSecond.
inline int64_t dueAfterNs(uint64_t k, double perSecond)
{
    return int64_t(std::ceil(double(k) * 1e9 / perSecond));
}

} // namespace bench
