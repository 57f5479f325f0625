#pragma once
// EpollEventDispatcher: a Linux event dispatcher for the broker's thread, built on
// epoll(7), so that one turn of the event loop costs what the ready sockets cost,
// not what the open ones do. Qt's own dispatcher hands the kernel the whole
// pollfd array of every socket on every turn; with 10 000 connections that was
// 38 % of the broker's time in middleman-bench's topics scenario (docs/design.md,
// "Event loop").
//
// It keeps Qt's contract for QAbstractEventDispatcher: posted events first, then
// the ready socket notifiers (one QEvent::SockAct each, Read for input, hang-up or
// error, Write for output, hang-up or error, Exception for urgent data), then the
// timers that are due, each at most once per call. Timers of every type fire at
// their precise time (coarse timers may fire that precisely). wakeUp() and
// interrupt() may be called from any thread.
//
// A wake-up from the loop's own thread (an event posted by a handler, such as
// the write coalescer's end-of-turn flush) writes nothing to the eventfd: the
// next processEvents() sends posted events before it waits, and does not block
// in that wait when more were posted meanwhile. That saves an eventfd write, an
// eventfd read and an epoll_wait() per turn in which something was posted.
//
// TurnEnd objects (turnend.h) scheduled during a turn run at its end, after the
// socket notifiers and timers, directly and without an event; also before the
// loop waits, for those scheduled by posted events.
//
// A socket's input may be taken by a DirectReader instead of its read notifier
// (setDirectReader()): the dispatcher calls it when the socket is readable and
// its read notifier is enabled, and sends the notifier its event only when the
// reader leaves the input to it (end of stream, an error). The ws:// sessions
// read this way, without Qt's FIONREAD ioctl and read buffer per read.
//
// Idle spin (setIdleSpin(); off unless set): when the loop has nothing to do
// and its last idle spell was short, it polls epoll for input for a moment
// before it sleeps. A message that comes meanwhile is handled without the
// wake-up of a sleeping thread, and its sender's send() wakes nobody: on the
// machine of docs/benchmarks.md that halves the time of a request's round
// trip when requests go one at a time (docs/design.md, "Idle spin").
//
// Socket notifiers are level-triggered. A write notifier that is turned off stays
// in the epoll set until the kernel reports the socket writable while it is off:
// sockets written every turn (QTcpSocket turns its write notifier on for each
// write and off when its buffer is empty) then cost no epoll_ctl() call at all.

#include <QAbstractEventDispatcher>
#include <QHash>
#include <QList>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

class QSocketNotifier;
struct epoll_event;

namespace Middleman {

class TurnEnd;

class DirectReader
{
public:
    // The socket is readable; `buffer` (`size` bytes, the dispatcher's) may be
    // read into for the length of the call. True: the input was taken (or
    // there was none after all). False: it is left to the socket's read
    // notifier, which is then activated as usual: end of stream or an error,
    // which the socket must see for itself.
    virtual bool readReady(char *buffer, qsizetype size) = 0;

protected:
    ~DirectReader() = default;
};

class EpollEventDispatcher final : public QAbstractEventDispatcher
{
    Q_OBJECT
public:
    explicit EpollEventDispatcher(QObject *parent = nullptr);
    ~EpollEventDispatcher() override;

    // False when the kernel refused an epoll instance or an eventfd; the
    // dispatcher must not be installed then.
    bool isValid() const { return m_epoll >= 0 && m_wake >= 0; }

    bool processEvents(QEventLoop::ProcessEventsFlags flags) override;

    void registerSocketNotifier(QSocketNotifier *notifier) override;
    void unregisterSocketNotifier(QSocketNotifier *notifier) override;

    void registerTimer(int timerId, qint64 interval, Qt::TimerType timerType, QObject *object) override;
    bool unregisterTimer(int timerId) override;
    bool unregisterTimers(QObject *object) override;
    QList<TimerInfo> registeredTimers(QObject *object) const override;
    int remainingTime(int timerId) override;

    void wakeUp() override;
    void interrupt() override;
    // Wake-ups written to the eventfd so far (those from other threads).
    quint64 wakeUpWrites() const { return m_wakeUpWrites.load(std::memory_order_relaxed); }

    // `reader` takes the input of descriptor `fd` from now on, in place of its
    // read notifier (loop thread only). Clearing removes it only if `reader` is
    // still the one set: the number of a closed descriptor comes back for new
    // sockets.
    void setDirectReader(int fd, DirectReader *reader);
    void clearDirectReader(int fd, DirectReader *reader);
    // Readiness events whose input a DirectReader took.
    quint64 directReads() const { return m_directReads; }

    // Idle spin: before sleeping, poll for up to `spin` (0: never), if the
    // last idle spell, from the end of one turn's work to the next event,
    // lasted at most kSpinAfterIdle times that. After a spin that ended at its
    // limit (a miss), the next waits sleep at once: 1 after a miss, twice as
    // many after each further miss, up to kMaxWaitsAfterMiss, half as many
    // after a spin that caught something. Traffic whose gaps are longer than
    // a spin so costs about one spin in kMaxWaitsAfterMiss + 1 waits, while a
    // lone miss in a run of catches costs one wait's spin. The spin ends early
    // for a timer that falls due, and for a wake-up or interrupt().
    void setIdleSpin(std::chrono::nanoseconds spin);
    std::chrono::nanoseconds idleSpin() const { return m_idleSpin; }
    static constexpr int kSpinAfterIdle = 4;
    static constexpr int kMaxWaitsAfterMiss = 32;
    // Spins (waits that found nothing at once and polled), and those that
    // ended with something to do rather than at their limit.
    quint64 idleSpins() const { return m_idleSpins; }
    quint64 idleSpinsCaught() const { return m_idleSpinsCaught; }

    // For TurnEnd: runs `task` once at the end of this turn (loop thread only).
    void scheduleTurnEnd(TurnEnd *task);
    void cancelTurnEnd(TurnEnd *task);

private:
    using Clock = std::chrono::steady_clock;
    using Queue = std::multimap<Clock::time_point, int>; // deadline -> timer id

    struct Socket
    {
        QSocketNotifier *notifiers[3] = {nullptr, nullptr, nullptr}; // by QSocketNotifier::Type
        quint64 serials[3] = {0, 0, 0}; // which registration each notifier is
        quint32 inEpoll = 0; // the events the epoll set holds for this descriptor
        quint32 wanted() const;
    };
    // A notifier found ready, named so that one unregistered (or replaced) before
    // its turn is passed over without being touched.
    struct Pending
    {
        int fd;
        int type;
        quint64 serial;
    };
    struct Timer
    {
        int id = 0;
        qint64 intervalMs = 0;
        Qt::TimerType type = Qt::CoarseTimer;
        QObject *object = nullptr;
        Clock::time_point deadline;
        Queue::iterator queued;
        quint64 pass = 0;    // the last activateTimers() pass that fired it
        bool active = false; // its handler is running
    };

    // Brings the epoll set's events for `fd` to `events` (0: out of the set).
    void updateEpoll(int fd, Socket &socket, quint32 events);
    int activateSocketNotifiers();
    int activateTimers();
    // Milliseconds until the first timer is due (0 when one is), -1 without timers.
    int timeUntilNextTimerMs() const;
    // epoll_wait() for this turn: spinning first when that is on and the last
    // idle spell was short; `timeoutMs` as epoll_wait() takes it.
    int waitForEvents(epoll_event *events, int timeoutMs, bool withTimers);
    // Whether this wait spins (setIdleSpin()); counts the waits after a miss.
    bool spinDue();
    void drainWakeUps();
    // Runs the scheduled TurnEnds, those they schedule included.
    void runTurnEnds();

    int m_epoll = -1;
    int m_wake = -1; // eventfd: wakeUp() and interrupt() write, processEvents() reads
    std::atomic<bool> m_interrupted = false;
    std::atomic<bool> m_woken = false; // a wake-up is written and not read yet
    std::atomic<quint64> m_wakeUpWrites = 0;
    std::atomic<Qt::HANDLE> m_loopThread = nullptr; // the thread processEvents() runs on
    bool m_wokenFromLoop = false; // wakeUp() on the loop's thread since posted events were sent
    std::vector<TurnEnd *> m_turnEnds; // scheduled, in order; null: cancelled
    QHash<int, Socket> m_sockets;
    QHash<int, DirectReader *> m_readers;
    std::unique_ptr<char[]> m_readBuffer; // for the DirectReaders, made for the first
    static constexpr qsizetype kReadBufferSize = 256 * 1024;
    quint64 m_directReads = 0;
    std::chrono::nanoseconds m_idleSpin{0};
    std::chrono::nanoseconds m_lastIdle{0}; // the last wait that could block, spin and sleep
    int m_skipAfterMiss = 0; // waits to skip after the last miss: 0, then 1, 2, 4 ... up to kMaxWaitsAfterMiss
    int m_waitsToSkip = 0;   // of those, still to come
    quint64 m_idleSpins = 0;
    quint64 m_idleSpinsCaught = 0;
    std::vector<Pending> m_pending; // ready, to be activated in order
    size_t m_pendingHead = 0;
    quint64 m_serial = 0;
    std::unordered_map<int, Timer> m_timers;
    Queue m_queue;
    quint64 m_pass = 0;
};

} // namespace Middleman
