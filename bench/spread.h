// What several runs of one case measured, as one figure: the median, with the
// lowest and highest beside it (middleman-bench --repeat).
#pragma once

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

namespace bench {

struct Spread {
    double median = 0;
    double lowest = 0;
    double highest = 0;
};

// Over the finite values; none: no spread. With an even count the median is
// the mean of the two middle values.
inline std::optional<Spread> spreadOf(std::vector<double> values)
{
    std::erase_if(values, [](double value) { return !std::isfinite(value); });
    if (values.empty())
        return std::nullopt;
    std::sort(values.begin(), values.end());
    const size_t middle = values.size() / 2;
    const double median = values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
    return Spread{median, values.front(), values.back()};
}

} // namespace bench
