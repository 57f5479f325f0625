#include "epolldispatcher.h"

#include "turnend.h"

#include <QCoreApplication>
#include <QSocketNotifier>
#include <QThread>
#include <QTimerEvent>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <cstring>

namespace Middleman {

namespace {

// What wakes each notifier type, as Qt's own dispatcher maps poll() results.
constexpr quint32 kWakes[3] = {
    EPOLLIN | EPOLLHUP | EPOLLERR,  // QSocketNotifier::Read
    EPOLLOUT | EPOLLHUP | EPOLLERR, // QSocketNotifier::Write
    EPOLLPRI | EPOLLHUP | EPOLLERR, // QSocketNotifier::Exception
};
constexpr quint32 kInterest[3] = {EPOLLIN, EPOLLOUT, EPOLLPRI};

// Ready descriptors taken per epoll_wait(); more are reported on the next turn.
constexpr int kMaxEvents = 1024;

} // namespace

quint32 EpollEventDispatcher::Socket::wanted() const
{
    quint32 events = 0;
    for (int type = 0; type < 3; ++type) {
        if (notifiers[type])
            events |= kInterest[type];
    }
    return events;
}

EpollEventDispatcher::EpollEventDispatcher(QObject *parent)
    : QAbstractEventDispatcher(parent)
    , m_epoll(::epoll_create1(EPOLL_CLOEXEC))
    , m_wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
    if (m_epoll < 0 || m_wake < 0) {
        qWarning("EpollEventDispatcher: %s", std::strerror(errno));
        return;
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = m_wake;
    if (::epoll_ctl(m_epoll, EPOLL_CTL_ADD, m_wake, &event) != 0) {
        qWarning("EpollEventDispatcher: %s", std::strerror(errno));
        ::close(m_wake);
        m_wake = -1;
    }
}

EpollEventDispatcher::~EpollEventDispatcher()
{
    for (TurnEnd *task : m_turnEnds) {
        if (task) {
            task->m_scheduled = false;
            task->m_dispatcher = nullptr;
        }
    }
    if (m_wake >= 0)
        ::close(m_wake);
    if (m_epoll >= 0)
        ::close(m_epoll);
}

// --- Socket notifiers --------------------------------------------------------

void EpollEventDispatcher::registerSocketNotifier(QSocketNotifier *notifier)
{
    const int fd = int(notifier->socket());
    const int type = int(notifier->type());
    if (fd < 0 || type < 0 || type > 2)
        return;
    Socket &socket = m_sockets[fd];
    if (socket.notifiers[type] && socket.notifiers[type] != notifier)
        qWarning("EpollEventDispatcher: a second notifier of type %d for socket %d replaces the first", type, fd);
    socket.notifiers[type] = notifier;
    socket.serials[type] = ++m_serial;
    const quint32 wanted = socket.wanted();
    if (wanted & ~socket.inEpoll)
        updateEpoll(fd, socket, socket.inEpoll | wanted);
}

void EpollEventDispatcher::unregisterSocketNotifier(QSocketNotifier *notifier)
{
    const int fd = int(notifier->socket());
    const int type = int(notifier->type());
    const auto it = m_sockets.find(fd);
    if (it == m_sockets.end() || type < 0 || type > 2 || it->notifiers[type] != notifier)
        return;
    it->notifiers[type] = nullptr;
    it->serials[type] = 0; // a pending activation of it is passed over
    const quint32 wanted = it->wanted();
    if (wanted == 0) {
        updateEpoll(fd, *it, 0);
        m_sockets.erase(it);
        return;
    }
    // Write interest goes lazily (see the header); the others at once.
    const quint32 keep = wanted | (it->inEpoll & EPOLLOUT);
    if (keep != it->inEpoll)
        updateEpoll(fd, *it, keep);
}

void EpollEventDispatcher::updateEpoll(int fd, Socket &socket, quint32 events)
{
    if (events == socket.inEpoll)
        return;
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    const int op = socket.inEpoll == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    int result = ::epoll_ctl(m_epoll, op, fd, &event);
    if (result != 0) {
        // A descriptor closed while in the set left it by itself, and its number
        // may have come back for a new socket.
        if (op == EPOLL_CTL_MOD && errno == ENOENT)
            result = ::epoll_ctl(m_epoll, EPOLL_CTL_ADD, fd, &event);
        else if (op == EPOLL_CTL_ADD && errno == EEXIST)
            result = ::epoll_ctl(m_epoll, EPOLL_CTL_MOD, fd, &event);
        else if (op == EPOLL_CTL_DEL)
            result = 0;
    }
    if (result != 0) {
        qWarning("EpollEventDispatcher: cannot watch descriptor %d: %s", fd, std::strerror(errno));
        return;
    }
    socket.inEpoll = events;
}

int EpollEventDispatcher::activateSocketNotifiers()
{
    // Handlers may run a nested event loop, which goes on with this same list.
    int activated = 0;
    QEvent event(QEvent::SockAct);
    while (m_pendingHead < m_pending.size()) {
        const Pending pending = m_pending[m_pendingHead++];
        auto it = m_sockets.constFind(pending.fd);
        if (it == m_sockets.cend() || it->serials[pending.type] != pending.serial)
            continue; // unregistered (or replaced) since it was found ready
        if (pending.type == QSocketNotifier::Read && !m_readers.isEmpty()) {
            if (DirectReader *reader = m_readers.value(pending.fd)) {
                ++activated;
                if (!m_readBuffer)
                    m_readBuffer = std::make_unique<char[]>(size_t(kReadBufferSize));
                if (reader->readReady(m_readBuffer.get(), kReadBufferSize)) {
                    ++m_directReads;
                    continue;
                }
                // Left to the notifier; the reader may have changed the sets.
                it = m_sockets.constFind(pending.fd);
                if (it != m_sockets.cend() && it->serials[pending.type] == pending.serial)
                    QCoreApplication::sendEvent(it->notifiers[pending.type], &event);
                continue;
            }
        }
        QCoreApplication::sendEvent(it->notifiers[pending.type], &event);
        ++activated;
    }
    m_pending.clear();
    m_pendingHead = 0;
    return activated;
}

void EpollEventDispatcher::setDirectReader(int fd, DirectReader *reader)
{
    Q_ASSERT(reader);
    m_readers.insert(fd, reader);
}

void EpollEventDispatcher::clearDirectReader(int fd, DirectReader *reader)
{
    const auto it = m_readers.find(fd);
    if (it != m_readers.end() && *it == reader)
        m_readers.erase(it);
}

// --- Timers ------------------------------------------------------------------

void EpollEventDispatcher::registerTimer(int timerId, qint64 interval, Qt::TimerType timerType, QObject *object)
{
    if (timerId <= 0 || interval < 0 || !object)
        return;
    unregisterTimer(timerId);
    Timer timer;
    timer.id = timerId;
    timer.intervalMs = interval;
    timer.type = timerType;
    timer.object = object;
    timer.deadline = Clock::now() + std::chrono::milliseconds(interval);
    Timer &stored = m_timers.emplace(timerId, timer).first->second;
    stored.queued = m_queue.emplace(stored.deadline, timerId);
}

bool EpollEventDispatcher::unregisterTimer(int timerId)
{
    const auto it = m_timers.find(timerId);
    if (it == m_timers.end())
        return false;
    m_queue.erase(it->second.queued);
    m_timers.erase(it);
    return true;
}

bool EpollEventDispatcher::unregisterTimers(QObject *object)
{
    bool found = false;
    for (auto it = m_timers.begin(); it != m_timers.end();) {
        if (it->second.object == object) {
            m_queue.erase(it->second.queued);
            it = m_timers.erase(it);
            found = true;
        } else {
            ++it;
        }
    }
    return found;
}

QList<QAbstractEventDispatcher::TimerInfo> EpollEventDispatcher::registeredTimers(QObject *object) const
{
    QList<TimerInfo> timers;
    for (const auto &[id, timer] : m_timers) {
        if (timer.object == object)
            timers.append(TimerInfo(id, int(timer.intervalMs), timer.type));
    }
    return timers;
}

int EpollEventDispatcher::remainingTime(int timerId)
{
    const auto it = m_timers.find(timerId);
    if (it == m_timers.end())
        return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(it->second.deadline - Clock::now());
    return int(qMax<qint64>(0, left.count()));
}

int EpollEventDispatcher::timeUntilNextTimerMs() const
{
    if (m_queue.empty())
        return -1;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(m_queue.begin()->first - Clock::now());
    return int(std::clamp<qint64>(left.count(), 0, std::numeric_limits<int>::max()));
}

int EpollEventDispatcher::activateTimers()
{
    if (m_queue.empty())
        return 0;
    const Clock::time_point now = Clock::now();
    const quint64 pass = ++m_pass;
    int activated = 0;
    for (;;) {
        // Each timer fires at most once per call (a zero interval is due again at
        // once), and never inside its own handler's nested event loop.
        auto it = m_queue.begin();
        while (it != m_queue.end() && it->first <= now) {
            const Timer &timer = m_timers.at(it->second);
            if (timer.pass != pass && !timer.active)
                break;
            ++it;
        }
        if (it == m_queue.end() || it->first > now)
            break;
        Timer &timer = m_timers.at(it->second);
        timer.pass = pass;
        // Rearmed before its handler runs, which may stop or restart it. A late
        // timer skips the intervals it missed rather than firing in a burst.
        const auto interval = std::chrono::milliseconds(timer.intervalMs);
        timer.deadline += interval;
        if (timer.deadline < now)
            timer.deadline = now + interval;
        m_queue.erase(it);
        timer.queued = m_queue.emplace(timer.deadline, timer.id);
        const int id = timer.id;
        QObject *object = timer.object;
        timer.active = true;
        QTimerEvent event(id);
        QCoreApplication::sendEvent(object, &event);
        ++activated;
        if (const auto still = m_timers.find(id); still != m_timers.end())
            still->second.active = false;
    }
    return activated;
}

// --- The end of a turn ---------------------------------------------------------

void EpollEventDispatcher::scheduleTurnEnd(TurnEnd *task)
{
    m_turnEnds.push_back(task);
}

void EpollEventDispatcher::cancelTurnEnd(TurnEnd *task)
{
    // Mostly among the last scheduled.
    const auto it = std::find(m_turnEnds.rbegin(), m_turnEnds.rend(), task);
    if (it != m_turnEnds.rend())
        *it = nullptr;
}

void EpollEventDispatcher::runTurnEnds()
{
    // By index: a task may schedule others (run in this pass) or cancel them.
    for (size_t i = 0; i < m_turnEnds.size(); ++i) {
        if (TurnEnd *task = std::exchange(m_turnEnds[i], nullptr))
            task->run();
    }
    m_turnEnds.clear();
}

// --- The loop ----------------------------------------------------------------

void EpollEventDispatcher::wakeUp()
{
    if (QThread::currentThreadId() == m_loopThread.load(std::memory_order_relaxed)) {
        m_wokenFromLoop = true; // seen by processEvents() before it waits
        return;
    }
    if (m_woken.exchange(true))
        return; // a wake-up is pending already
    m_wakeUpWrites.fetch_add(1, std::memory_order_relaxed);
    const quint64 one = 1;
    while (::write(m_wake, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void EpollEventDispatcher::interrupt()
{
    m_interrupted.store(true);
    wakeUp();
}

void EpollEventDispatcher::drainWakeUps()
{
    m_woken.store(false); // before reading: a wake-up from now on writes again
    quint64 count = 0;
    while (::read(m_wake, &count, sizeof count) < 0 && errno == EINTR) {
    }
}

void EpollEventDispatcher::setIdleSpin(std::chrono::nanoseconds spin)
{
    m_idleSpin = spin;
    m_waitsToSkip = 0; // a new spin starts without a miss
    m_skipAfterMiss = 0;
}

bool EpollEventDispatcher::spinDue()
{
    if (m_idleSpin.count() <= 0 || m_lastIdle > kSpinAfterIdle * m_idleSpin)
        return false;
    if (m_waitsToSkip > 0) {
        --m_waitsToSkip;
        return false;
    }
    return true;
}

int EpollEventDispatcher::waitForEvents(epoll_event *events, int timeoutMs, bool withTimers)
{
    if (timeoutMs == 0)
        return ::epoll_wait(m_epoll, events, kMaxEvents, 0);
    const Clock::time_point idleFrom = Clock::now();
    int ready = 0;
    if (spinDue()) {
        Clock::time_point spinUntil = idleFrom + m_idleSpin;
        if (timeoutMs > 0)
            spinUntil = std::min(spinUntil, idleFrom + std::chrono::milliseconds(timeoutMs));
        // The first poll finds what is ready already (a busy loop's every
        // turn): only a wait that found nothing is a spin.
        ready = ::epoll_wait(m_epoll, events, kMaxEvents, 0);
        if (ready == 0) {
            ++m_idleSpins;
            while (ready == 0 && !m_interrupted.load(std::memory_order_relaxed) && Clock::now() < spinUntil)
                ready = ::epoll_wait(m_epoll, events, kMaxEvents, 0);
            // Misses double the waits skipped after them; catches halve them.
            // (A spin cut short by interrupt() or a signal is neither.)
            if (ready > 0) {
                ++m_idleSpinsCaught;
                m_skipAfterMiss /= 2;
            } else if (ready == 0 && !m_interrupted.load(std::memory_order_relaxed)) {
                m_skipAfterMiss = std::clamp(2 * m_skipAfterMiss, 1, kMaxWaitsAfterMiss);
                m_waitsToSkip = m_skipAfterMiss;
                if (withTimers)
                    timeoutMs = timeUntilNextTimerMs(); // the spin took part of the wait
            }
        }
    }
    if (ready == 0 && !m_interrupted.load(std::memory_order_relaxed))
        ready = ::epoll_wait(m_epoll, events, kMaxEvents, timeoutMs);
    m_lastIdle = Clock::now() - idleFrom;
    return ready;
}

bool EpollEventDispatcher::processEvents(QEventLoop::ProcessEventsFlags flags)
{
    m_loopThread.store(QThread::currentThreadId(), std::memory_order_relaxed);
    m_interrupted.store(false);
    Q_EMIT awake();
    m_wokenFromLoop = false;
    QCoreApplication::sendPostedEvents();
    runTurnEnds(); // what posted events scheduled goes out before the wait

    const bool withTimers = !(flags & QEventLoop::X11ExcludeTimers);
    const bool withSockets = !(flags & QEventLoop::ExcludeSocketNotifiers);
    int timeoutMs = 0;
    if ((flags & QEventLoop::WaitForMoreEvents) && !m_interrupted.load()) {
        Q_EMIT aboutToBlock();
        // Posting an event calls wakeUp(), so a posted event ends the wait at
        // once: from another thread through the eventfd, from this one here.
        timeoutMs = withTimers ? timeUntilNextTimerMs() : -1;
        if (m_wokenFromLoop)
            timeoutMs = 0;
    }
    if (m_interrupted.load())
        return false;

    int handled = 0;
    if (withSockets) {
        epoll_event events[kMaxEvents];
        const int ready = waitForEvents(events, timeoutMs, withTimers);
        if (ready < 0 && errno != EINTR)
            qWarning("EpollEventDispatcher: epoll_wait: %s", std::strerror(errno));
        for (int i = 0; i < ready; ++i) {
            const int fd = events[i].data.fd;
            if (fd == m_wake) {
                drainWakeUps();
                ++handled;
                continue;
            }
            const auto it = m_sockets.find(fd);
            if (it == m_sockets.end())
                continue;
            const quint32 what = events[i].events;
            for (int type = 0; type < 3; ++type) {
                if (it->notifiers[type] && (what & kWakes[type]))
                    m_pending.push_back(Pending{fd, type, it->serials[type]});
            }
            // Write interest kept after its notifier went off: dropped now that
            // the kernel says the socket is writable and nobody asks.
            if ((what & EPOLLOUT) && !it->notifiers[QSocketNotifier::Write])
                updateEpoll(fd, *it, it->wanted());
        }
        handled += activateSocketNotifiers();
    } else {
        pollfd wake{m_wake, POLLIN, 0};
        if (::poll(&wake, 1, timeoutMs) > 0) {
            drainWakeUps();
            ++handled;
        }
    }
    if (withTimers)
        handled += activateTimers();
    runTurnEnds();
    return handled > 0;
}

} // namespace Middleman
