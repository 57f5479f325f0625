// Running an io_context one handler at a time, as the load generator's loop
// does, without sleeping past the time the caller has work of its own.
#pragma once

#include <sys/prctl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

namespace bench {

class HandlerWait {
public:
    using Clock = std::chrono::steady_clock;

    // The longest wait for a handler: the caller's loop checks its deadlines
    // at least this often.
    static constexpr std::chrono::nanoseconds kMaxWait{500'000};
    // How long before the caller's work the timer wakes the thread: a
    // sleeping thread takes tens of µs to run again after its timer fires.
    // Until the work is due, the thread polls for handlers without sleeping.
    static constexpr std::chrono::nanoseconds kWakeEarly{50'000};

    // While it exists, the thread's timers wake when asked: Linux lets a
    // timer of an ordinary thread fire up to 50 µs late (its "timer slack"),
    // which a paced publisher would count as sending late. The slack is put
    // back after, so that a broker the load generator starts later (a child
    // inherits it) runs with the default.
    explicit HandlerWait(boost::asio::io_context& io)
        : m_io(io), m_timer(io), m_slackBefore(::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0))
    {
        ::prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0);
    }
    ~HandlerWait()
    {
        if (m_slackBefore > 0)
            ::prctl(PR_SET_TIMERSLACK, m_slackBefore, 0, 0, 0);
    }
    HandlerWait(const HandlerWait&) = delete;
    HandlerWait& operator=(const HandlerWait&) = delete;

    // Runs one handler, waiting for it at most kMaxWait, and, when the caller
    // has work of its own at `workAt`, not past that (no wait at all when it
    // is due already). run_one_for() cannot end a wait on time: the reactor
    // waits in epoll_wait(), which counts whole milliseconds, so a paced
    // publisher that slept on it sent up to a millisecond late whenever no
    // socket woke it. A timer (a timerfd) wakes on time.
    //
    // The timer stays armed across calls while it would wake the loop no
    // later than `workAt`: a loop that socket handlers wake many times before
    // its work falls due sets it once per kMaxWait at most, and once per new
    // `workAt`, not once per wake (each setting is a system call, and
    // replacing a pending wait runs its aborted handler as the next "one").
    void runOne(std::optional<Clock::time_point> workAt = std::nullopt)
    {
        if (!workAt) {
            m_io.run_one_for(kMaxWait);
            return;
        }
        const Clock::time_point now = Clock::now();
        if (*workAt <= now)
            return;
        if (*workAt - now <= kWakeEarly) {
            // Close to due: poll until a handler runs or the work falls due.
            Clock::time_point polledUntil = now;
            while (m_io.poll_one() == 0) {
                polledUntil = Clock::now();
                if (polledUntil >= *workAt)
                    break;
            }
            m_polled += polledUntil - now;
            return;
        }
        const Clock::time_point wakeFor = *workAt - kWakeEarly;
        if (!m_armed || m_armedAt > wakeFor) {
            const Clock::time_point wakeAt = std::min(wakeFor, now + kMaxWait);
            m_timer.expires_at(wakeAt);
            m_armed = true;
            m_armedAt = wakeAt;
            m_timer.async_wait([this, generation = ++m_generation](const boost::system::error_code&) {
                // A wait replaced by a later setting ends aborted: the timer
                // is armed for that setting still.
                if (generation == m_generation)
                    m_armed = false;
            });
            ++m_timerSettings;
        }
        m_io.run_one();
    }

    // How long the thread polled for work that was close, in all: time it
    // had to spare, spent awake.
    std::chrono::nanoseconds polled() const { return m_polled; }

    // How many times the timer was set.
    uint64_t timerSettings() const { return m_timerSettings; }

private:
    boost::asio::io_context& m_io;
    boost::asio::steady_timer m_timer;
    int m_slackBefore;
    Clock::time_point m_armedAt{};
    uint64_t m_generation = 0;
    uint64_t m_timerSettings = 0;
    std::chrono::nanoseconds m_polled{};
    bool m_armed = false;
};

} // namespace bench
