// Sending paced by the clock, as the latency rounds of fanout, topics and
// churn, the churner and the flood's flooder do.
#pragma once

#include "connection.h"
#include "latencyrate.h"

#include <cstddef>
#include <cstdint>

namespace bench {

// A publisher holds at most 64 KiB that its socket has not taken yet, as a
// client library's bounded send buffer would; more goes out as writes
// complete.
constexpr size_t kMaxUnsent = 64u << 10;

// Publishing paced by the clock: message k is due dueAfterNs(k) after the
// start, and carries that time, so a late send counts as latency (no
// coordinated omission). At most kMaxUnsent bytes wait for the socket, and
// the caller may keep a window of its own (`room`); messages due beyond
// either go out as the socket takes them and the window frees, still
// carrying the time they were due (a broker slower than the rate would
// otherwise get them all as one WebSocket message of any size).
class Pacer {
public:
    Pacer(double perSecond, int64_t startNs) : m_perSecond(perSecond), m_startNs(startNs) {}

    // Every message due by `now` is due.
    void update(int64_t now) { m_due = messagesDue(now - m_startNs, m_perSecond); }
    // Sends the messages due while the connection takes them and room()
    // holds: send(due time) each.
    template <typename Room, typename Send>
    void sendDue(const Connection& c, Room&& room, Send&& send)
    {
        for (; m_sent < m_due && c.unsent() < kMaxUnsent && room(); ++m_sent)
            send(m_startNs + dueAfterNs(m_sent, m_perSecond));
    }
    // When the loop has work next: when the next message falls due, unless
    // the socket is full or there is no `room`: then a completed write or a
    // delivery is what lets it go on (-1).
    int64_t nextDueNs(const Connection& c, bool room) const
    {
        return c.unsent() < kMaxUnsent && room ? m_startNs + dueAfterNs(m_due, m_perSecond) : -1;
    }
    bool caughtUp() const { return m_sent == m_due; }

private:
    double m_perSecond;
    int64_t m_startNs;
    uint64_t m_due = 0;
    uint64_t m_sent = 0;
};

} // namespace bench
