#pragma once
// The one clock of the broker: monotonic milliseconds, for request deadlines and
// peer liveness alike. Plain functions.

#include <QtGlobal>

#include <chrono>

namespace Middleman {

inline qint64 monotonicMs()
{
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

} // namespace Middleman
