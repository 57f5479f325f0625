// How many messages the fanout and topics publisher keeps in flight (sent,
// not yet received): across all subscribers, and to any one subscriber, the
// slowest, whose deliveries FewestDelivered follows.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace bench {

// Across all subscribers, in messages, when each goes to `perMessage`
// subscribers and each delivery is about `deliveryBytes` (payload and
// framing): about 16 MiB of deliveries, 8 to 2000 messages. Enough to keep
// every broker busy, and a backlog any of them clears within a fraction of a
// second.
inline uint64_t publishWindow(uint64_t deliveryBytes, uint64_t perMessage)
{
    return std::clamp<uint64_t>((16u << 20) / (deliveryBytes * perMessage), 8, 2000);
}

// To any one subscriber: fewer messages than Mosquitto's default
// max_queued_messages (1000: it drops a QoS 0 message for a client with that
// many waiting to be written), and no more bytes than half of middleman's
// default client outbound queue (8 MiB: it closes a client whose queue would
// pass that). A subscribing app has no more in flight than its reading lets
// it; a publisher that pumps further ahead of its slowest subscriber would
// make the load generator, not the brokers' defaults, the cause of what they
// then drop or close. One message at least, of any size.
constexpr uint64_t kMaxInFlightPerSubscriber = 1000 - 1;
constexpr uint64_t kMaxInFlightBytesPerSubscriber = 4u << 20;
inline uint64_t subscriberWindow(uint64_t deliveryBytes)
{
    return std::max<uint64_t>(1, std::min(kMaxInFlightPerSubscriber, kMaxInFlightBytesPerSubscriber / deliveryBytes));
}

// The fewest messages any one subscriber has had, kept up to date as each
// delivery comes (O(1) amortized, however many subscribers). What the
// publisher has sent each subscriber, less this, is what the slowest has in
// flight.
class FewestDelivered {
public:
    explicit FewestDelivered(size_t subscribers) : m_counts(subscribers, 0), m_atLevel(1, subscribers) {}

    void delivered(size_t subscriber)
    {
        const uint64_t level = m_counts[subscriber]++ - m_fewest;
        if (level + 1 == m_atLevel.size())
            m_atLevel.push_back(0);
        --m_atLevel[level];
        ++m_atLevel[level + 1];
        while (m_atLevel.front() == 0) {
            m_atLevel.pop_front();
            ++m_fewest;
        }
    }

    // Every subscriber counts as having had `count` at least: what it had not
    // was counted lost.
    void raiseTo(uint64_t count)
    {
        if (m_counts.empty())
            return;
        for (uint64_t& c : m_counts)
            c = std::max(c, count);
        const auto [lowest, highest] = std::minmax_element(m_counts.begin(), m_counts.end());
        m_fewest = *lowest;
        m_atLevel.assign(*highest - m_fewest + 1, 0);
        for (uint64_t c : m_counts)
            ++m_atLevel[c - m_fewest];
    }

    uint64_t fewest() const { return m_fewest; }

private:
    std::vector<uint64_t> m_counts;  // per subscriber
    std::deque<uint64_t> m_atLevel;  // [i]: how many subscribers have had m_fewest + i
    uint64_t m_fewest = 0;
};

} // namespace bench
