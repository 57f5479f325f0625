// Running an io_context one handler at a time, as the load generator's loop
// does, without sleeping past the time the caller has work of its own.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <optional>

namespace bench {

class HandlerWait {
public:
    // The longest wait for a handler: the caller's loop checks its deadlines
    // at least this often.
    static constexpr std::chrono::nanoseconds kMaxWait{500'000};

    explicit HandlerWait(boost::asio::io_context& io) : m_io(io), m_timer(io) {}

    // Runs one handler, waiting at most kMaxWait for it, or at most `workIn`
    // when the caller has work of its own that soon (none at all when it is
    // due already). run_one_for() alone cannot wait less than a millisecond:
    // the reactor waits in epoll_wait(), which counts whole milliseconds, so
    // a paced publisher that slept on it sent up to a millisecond late
    // whenever no socket woke it. A timer (a timerfd) wakes on time.
    void runOne(std::optional<std::chrono::nanoseconds> workIn = std::nullopt)
    {
        if (!workIn || *workIn >= kMaxWait) {
            m_io.run_one_for(kMaxWait);
            return;
        }
        if (workIn->count() <= 0)
            return;
        // Setting the expiry cancels the wait of an earlier call whose
        // handler a socket's beat: that wait ends as aborted, harmlessly.
        m_timer.expires_after(*workIn);
        m_timer.async_wait([](const boost::system::error_code&) {});
        m_io.run_one();
    }

private:
    boost::asio::io_context& m_io;
    boost::asio::steady_timer m_timer;
};

} // namespace bench
