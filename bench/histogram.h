// Latency histogram with log-linear buckets (about 1 % resolution from 1 µs to
// minutes), constant memory, O(1) per sample, like HdrHistogram's layout.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace bench {

class Histogram {
public:
    void record(int64_t nanoseconds)
    {
        const uint64_t value = nanoseconds < 1 ? 1 : uint64_t(nanoseconds);
        ++m_counts[index(value)];
        ++m_total;
    }
    uint64_t count() const { return m_total; }

    // The value below which the fraction q of the samples lie (middle of its bucket).
    int64_t percentile(double q) const
    {
        if (m_total == 0)
            return 0;
        const uint64_t rank = uint64_t(q * double(m_total - 1)) + 1;
        uint64_t seen = 0;
        for (std::size_t i = 0; i < m_counts.size(); ++i) {
            seen += m_counts[i];
            if (seen >= rank)
                return int64_t(middle(i));
        }
        return 0;
    }

private:
    static constexpr int kSubBits = 7;  // 128 sub-buckets per power of two
    static constexpr std::size_t kSub = std::size_t(1) << kSubBits;

    static std::size_t index(uint64_t value)
    {
        if (value < kSub)
            return std::size_t(value);
        const int magnitude = 63 - std::countl_zero(value);  // >= kSubBits
        const int shift = magnitude - kSubBits;
        const std::size_t sub = std::size_t(value >> shift) - kSub;    // 0 .. kSub-1
        return kSub + std::size_t(shift) * kSub + sub;
    }
    static uint64_t middle(std::size_t i)
    {
        if (i < kSub)
            return i;
        const std::size_t shift = (i - kSub) / kSub;
        const uint64_t sub = (i - kSub) % kSub + kSub;
        return (sub << shift) + ((uint64_t(1) << shift) >> 1);
    }

    std::array<uint64_t, kSub + 57 * kSub> m_counts{};
    uint64_t m_total = 0;
};

} // namespace bench
