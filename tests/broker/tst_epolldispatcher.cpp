// EpollEventDispatcher: the contract of QAbstractEventDispatcher on epoll(7):
// timers, socket notifiers (including ones turned off or deleted while ready),
// wake-ups from other threads, nested event loops, and real TCP traffic.

#include "epolldispatcher.h"
#include "eventloop.h"
#include "turnend.h"

#include <QElapsedTimer>
#include <QFile>
#include <QSignalSpy>
#include <QSocketNotifier>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTest>
#include <QThread>
#include <QTimer>

#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <functional>
#include <memory>

using namespace Middleman;

namespace {

// A connected pair of local stream sockets, closed at the end.
struct SocketPair
{
    SocketPair() { QVERIFY(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds.data()) == 0); }
    ~SocketPair()
    {
        for (const int fd : fds) {
            if (fd >= 0)
                ::close(fd);
        }
    }
    void write(int side, const QByteArray &bytes) { QCOMPARE(::write(fds[side], bytes.constData(), bytes.size()), bytes.size()); }
    QByteArray readAll(int side)
    {
        QByteArray out;
        char buffer[4096];
        for (;;) {
            const ssize_t n = ::read(fds[side], buffer, sizeof buffer);
            if (n <= 0)
                return out;
            out.append(buffer, n);
        }
    }
    std::array<int, 2> fds{-1, -1};
};

// A DirectReader whose readReady() runs `onReady`.
struct Reader : DirectReader
{
    std::function<bool(char *, qsizetype)> onReady;
    int calls = 0;
    bool readReady(char *buffer, qsizetype size) override
    {
        ++calls;
        return onReady(buffer, size);
    }
};

// Counts timer events.
class TimerTarget : public QObject
{
public:
    QList<int> fired;
    std::function<void(int)> onTimer;

protected:
    void timerEvent(QTimerEvent *event) override
    {
        fired.append(event->timerId());
        if (onTimer)
            onTimer(event->timerId());
    }
};

// Runs the loop until a timer started now, `ms` long, fires. The dispatcher
// fires timers in the order they fall due, so any timer due before it has
// fired by then.
void passTimersDueWithin(int ms)
{
    QTimer later;
    later.setSingleShot(true);
    later.setTimerType(Qt::PreciseTimer);
    QSignalSpy fired(&later, &QTimer::timeout);
    later.start(ms);
    QVERIFY(fired.wait(5000));
}

// Runs the loop through `turns` turns that each saw input on a pair of their
// own. A notifier whose socket was ready all along and that was wrongly
// enabled would have been activated in those turns: epoll reports every
// ready descriptor at once.
void passTurnsWithInput(int turns = 2)
{
    SocketPair barrier;
    QSocketNotifier notifier(barrier.fds[1], QSocketNotifier::Read);
    int seen = 0;
    QObject::connect(&notifier, &QSocketNotifier::activated, &notifier, [&] {
        barrier.readAll(1);
        ++seen;
    });
    for (int turn = 1; turn <= turns; ++turn) {
        barrier.write(0, "b");
        QTRY_COMPARE(seen, turn);
    }
}

// True once the thread `tid` of this process is blocked in epoll_wait(),
// as /proc tells (the first field of its syscall file is the call's number);
// false after five seconds.
bool waitUntilBlockedInPoll(pid_t tid)
{
    const QByteArray path = "/proc/self/task/" + QByteArray::number(tid) + "/syscall";
    QElapsedTimer clock;
    clock.start();
    while (clock.elapsed() < 5000) {
        QFile file(QString::fromLatin1(path));
        if (file.open(QIODevice::ReadOnly)) {
            const QByteArray call = file.readAll().split(' ').value(0).trimmed();
            if (call == QByteArray::number(SYS_epoll_wait) || call == QByteArray::number(SYS_epoll_pwait))
                return true;
        }
        QThread::yieldCurrentThread();
    }
    return false;
}

} // namespace

class tst_EpollDispatcher : public QObject
{
    Q_OBJECT
public:
    static void initMain() { installBrokerEventDispatcher(); } // checked by installed()

private Q_SLOTS:
    void installed();
    void singleShotTimerFiresOnTime();
    void repeatingTimerAndRemainingTime();
    void zeroTimerOncePerCall();
    void timerKilledInItsHandler();
    void registeredTimersListed();
    void readNotifier();
    void disabledNotifierStaysQuiet();
    void writeNotifierOffMeansQuiet();
    void notifierDeletedWhileReady();
    void hangUpWakesReader();
    void wakeUpFromAnotherThread();
    void postedEventFromAnotherThread();
    void nestedLoopInsideNotifier();
    void tcpEchoThroughQtSockets();
    void qtDispatcherOnRequest();
    void postedOnLoopThreadWritesNoWakeUp();
    void turnEndAfterTheTurnsNotifiers();
    void turnEndOnceCancelledDeleted();
    void turnEndScheduledByPostedEvent();
    void turnEndUnderQtDispatcher();
    void directReaderTakesInput();
    void directReaderLeavesEndToNotifier();
    void directReaderOnlyWhileNotifierEnabled();
    void directReaderCleared();
    void directReaderDeletesTheNotifier();
    void idleSpinOffUnlessSet();
    void idleSpinCatchesInput();
    void idleSpinBacksOffAfterMisses();
    void idleSpinNotAfterALongIdleSpell();
    void idleSpinEndsForATimer();
};

void tst_EpollDispatcher::installed()
{
    QCOMPARE(eventDispatcherName(), QByteArray("Middleman::EpollEventDispatcher"));
    QVERIFY(qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance()));
}

void tst_EpollDispatcher::singleShotTimerFiresOnTime()
{
    QTimer timer;
    timer.setSingleShot(true);
    timer.setTimerType(Qt::PreciseTimer);
    QSignalSpy timeout(&timer, &QTimer::timeout);
    QElapsedTimer clock;
    clock.start();
    timer.start(50);
    QVERIFY(timeout.wait(5000));
    QVERIFY2(clock.elapsed() >= 50, qPrintable(QString::number(clock.elapsed())));
    QVERIFY(!timer.isActive());
    passTimersDueWithin(80);
    QCOMPARE(timeout.size(), 1); // single shot: once
}

void tst_EpollDispatcher::repeatingTimerAndRemainingTime()
{
    QTimer timer;
    timer.setTimerType(Qt::PreciseTimer);
    QSignalSpy timeout(&timer, &QTimer::timeout);
    timer.start(1000);
    const int remaining = timer.remainingTime();
    QVERIFY2(remaining > 900 && remaining <= 1000, qPrintable(QString::number(remaining)));
    timer.start(20);
    QElapsedTimer clock;
    clock.start();
    QTRY_VERIFY_WITH_TIMEOUT(timeout.size() >= 5, 5000);
    QVERIFY2(clock.elapsed() >= 4 * 20, qPrintable(QString::number(clock.elapsed())));
    timer.stop();
    QCOMPARE(timer.remainingTime(), -1);
}

void tst_EpollDispatcher::zeroTimerOncePerCall()
{
    TimerTarget target;
    const int id = target.startTimer(0);
    QVERIFY(id > 0);
    QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance();
    QVERIFY(dispatcher->processEvents(QEventLoop::AllEvents));
    QCOMPARE(target.fired.size(), 1);
    QVERIFY(dispatcher->processEvents(QEventLoop::AllEvents));
    QCOMPARE(target.fired.size(), 2);
    target.killTimer(id);
    (void)dispatcher->processEvents(QEventLoop::AllEvents);
    QCOMPARE(target.fired.size(), 2);
}

void tst_EpollDispatcher::timerKilledInItsHandler()
{
    TimerTarget target;
    TimerTarget other;
    int first = 0;
    int second = 0;
    // Both due in the same call; the first one's handler kills both.
    target.onTimer = [&](int id) {
        target.killTimer(id);
        other.killTimer(second);
    };
    first = target.startTimer(5, Qt::PreciseTimer);
    second = other.startTimer(5, Qt::PreciseTimer);
    QTRY_COMPARE(target.fired, QList<int>{first});
    passTimersDueWithin(20); // past a second round of both, were they alive
    QCOMPARE(target.fired, QList<int>{first});
    QVERIFY(other.fired.isEmpty() || other.fired == QList<int>{second}); // it may have fired first
    const qsizetype otherFired = other.fired.size();
    passTimersDueWithin(20);
    QCOMPARE(target.fired.size(), 1);
    QCOMPARE(other.fired.size(), otherFired);
}

void tst_EpollDispatcher::registeredTimersListed()
{
    TimerTarget target;
    const int a = target.startTimer(100, Qt::PreciseTimer);
    const int b = target.startTimer(200, Qt::CoarseTimer);
    const QList<QAbstractEventDispatcher::TimerInfo> timers =
        QAbstractEventDispatcher::instance()->registeredTimers(&target);
    QCOMPARE(timers.size(), 2);
    for (const auto &timer : timers) {
        QVERIFY(timer.timerId == a || timer.timerId == b);
        QCOMPARE(timer.interval, timer.timerId == a ? 100 : 200);
        QCOMPARE(timer.timerType, timer.timerId == a ? Qt::PreciseTimer : Qt::CoarseTimer);
    }
    QVERIFY(QAbstractEventDispatcher::instance()->unregisterTimers(&target));
    QVERIFY(QAbstractEventDispatcher::instance()->registeredTimers(&target).isEmpty());
}

void tst_EpollDispatcher::readNotifier()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.fds[1], QSocketNotifier::Read);
    QByteArray got;
    connect(&notifier, &QSocketNotifier::activated, this, [&] { got += pair.readAll(1); });
    pair.write(0, "hello");
    QTRY_COMPARE(got, QByteArray("hello"));
    pair.write(0, " again");
    QTRY_COMPARE(got, QByteArray("hello again"));
}

void tst_EpollDispatcher::disabledNotifierStaysQuiet()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.fds[1], QSocketNotifier::Read);
    QSignalSpy activated(&notifier, &QSocketNotifier::activated);
    notifier.setEnabled(false);
    pair.write(0, "x");
    passTurnsWithInput();
    QCOMPARE(activated.size(), 0);
    notifier.setEnabled(true);
    QTRY_VERIFY(activated.size() >= 1);
    QCOMPARE(pair.readAll(1), QByteArray("x"));
}

void tst_EpollDispatcher::writeNotifierOffMeansQuiet()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.fds[0], QSocketNotifier::Write);
    int activations = 0;
    connect(&notifier, &QSocketNotifier::activated, this, [&] {
        ++activations;
        notifier.setEnabled(false); // as QTcpSocket does once its buffer is empty
    });
    QTRY_COMPARE(activations, 1);
    // The socket stays writable; the notifier is off and must not be activated again.
    passTurnsWithInput();
    QCOMPARE(activations, 1);
    notifier.setEnabled(true);
    QTRY_COMPARE(activations, 2);
    passTurnsWithInput();
    QCOMPARE(activations, 2);
}

void tst_EpollDispatcher::notifierDeletedWhileReady()
{
    // Two notifiers ready in the same turn; the first one's handler deletes the
    // second, which must then not be activated.
    SocketPair one;
    SocketPair two;
    auto first = std::make_unique<QSocketNotifier>(one.fds[1], QSocketNotifier::Read);
    auto second = std::make_unique<QSocketNotifier>(two.fds[1], QSocketNotifier::Read);
    int firstCount = 0;
    int secondCount = 0;
    connect(first.get(), &QSocketNotifier::activated, this, [&] {
        ++firstCount;
        one.readAll(1);
        second.reset();
    });
    connect(second.get(), &QSocketNotifier::activated, this, [&] {
        ++secondCount;
        two.readAll(1);
        first.reset();
    });
    one.write(0, "a");
    two.write(0, "b");
    QTRY_COMPARE(firstCount + secondCount, 1);
    passTurnsWithInput();
    QCOMPARE(firstCount + secondCount, 1); // the other was deleted before its turn
}

void tst_EpollDispatcher::hangUpWakesReader()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.fds[1], QSocketNotifier::Read);
    bool sawEnd = false;
    connect(&notifier, &QSocketNotifier::activated, this, [&] {
        char byte;
        if (::read(pair.fds[1], &byte, 1) == 0) {
            sawEnd = true;
            notifier.setEnabled(false);
        }
    });
    ::close(pair.fds[0]);
    pair.fds[0] = -1;
    QTRY_VERIFY(sawEnd);
}

void tst_EpollDispatcher::wakeUpFromAnotherThread()
{
    // A blocking processEvents() with nothing to do returns once another thread
    // calls wakeUp().
    QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance();
    const pid_t loopThread = ::gettid();
    bool blocked = false;
    std::unique_ptr<QThread> waker(QThread::create([dispatcher, loopThread, &blocked] {
        blocked = waitUntilBlockedInPoll(loopThread);
        dispatcher->wakeUp();
    }));
    QElapsedTimer clock;
    clock.start();
    waker->start();
    (void)dispatcher->processEvents(QEventLoop::WaitForMoreEvents);
    QVERIFY2(clock.elapsed() < 4000, qPrintable(QString::number(clock.elapsed())));
    QVERIFY(waker->wait(5000));
    QVERIFY(blocked); // woken from inside epoll_wait(), not before it
}

void tst_EpollDispatcher::postedEventFromAnotherThread()
{
    // A call posted from another thread while the loop waits in epoll_wait()
    // runs, and QEventLoop::exit() from it ends exec(). A timer ends a loop
    // that is never woken, so that the test fails rather than hangs.
    const pid_t loopThread = ::gettid();
    for (const bool fromCall : {true, false}) {
        QEventLoop loop;
        bool delivered = false;
        bool blocked = false;
        QTimer::singleShot(10000, &loop, [&loop] { loop.exit(-1); });
        std::unique_ptr<QThread> poster(QThread::create([&, this] {
            blocked = waitUntilBlockedInPoll(loopThread);
            if (fromCall) {
                QMetaObject::invokeMethod(
                    this,
                    [&] {
                        delivered = true;
                        loop.exit(7);
                    },
                    Qt::QueuedConnection);
            } else {
                QMetaObject::invokeMethod(&loop, [&loop] { loop.exit(7); }, Qt::QueuedConnection);
            }
        }));
        poster->start();
        QCOMPARE(loop.exec(), 7);
        QVERIFY(poster->wait(5000));
        QVERIFY(blocked); // posted while the loop waited, not before
        QCOMPARE(delivered, fromCall);
    }
}

void tst_EpollDispatcher::nestedLoopInsideNotifier()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.fds[1], QSocketNotifier::Read);
    bool timerFiredInside = false;
    int activations = 0;
    connect(&notifier, &QSocketNotifier::activated, this, [&] {
        ++activations;
        pair.readAll(1);
        // A nested loop in a handler keeps serving timers (and this notifier is
        // not activated again for the same data).
        QEventLoop nested;
        QTimer::singleShot(20, &nested, [&] {
            timerFiredInside = true;
            nested.quit();
        });
        nested.exec();
    });
    pair.write(0, "n");
    QTRY_VERIFY(timerFiredInside);
    QCOMPARE(activations, 1);
}

void tst_EpollDispatcher::tcpEchoThroughQtSockets()
{
    QTcpServer server;
    QVERIFY(server.listen(QHostAddress::LocalHost, 0));
    QList<QTcpSocket *> accepted;
    connect(&server, &QTcpServer::newConnection, this, [&] {
        while (QTcpSocket *socket = server.nextPendingConnection()) {
            accepted.append(socket);
            connect(socket, &QTcpSocket::readyRead, socket, [socket] { socket->write(socket->readAll()); });
        }
    });
    // Several clients, and more bytes than one socket buffer, so that the server
    // side waits to write and its write notifier turns on and off.
    constexpr int kClients = 8;
    const QByteArray payload(1024 * 1024, 'e');
    std::vector<std::unique_ptr<QTcpSocket>> clients;
    std::vector<QByteArray> echoed(kClients);
    for (int i = 0; i < kClients; ++i) {
        auto client = std::make_unique<QTcpSocket>();
        QTcpSocket *raw = client.get();
        connect(raw, &QTcpSocket::readyRead, this, [raw, &echoed, i] { echoed[i] += raw->readAll(); });
        client->connectToHost(QHostAddress::LocalHost, server.serverPort());
        client->write(payload);
        clients.push_back(std::move(client));
    }
    for (int i = 0; i < kClients; ++i)
        QTRY_COMPARE_WITH_TIMEOUT(echoed[i].size(), payload.size(), 20000);
    for (int i = 0; i < kClients; ++i)
        QVERIFY(echoed[i] == payload);
    // Closing from the client side reaches the server's sockets.
    QList<QTcpSocket *> gone;
    for (QTcpSocket *socket : std::as_const(accepted))
        connect(socket, &QTcpSocket::disconnected, this, [&gone, socket] { gone.append(socket); });
    for (auto &client : clients)
        client->disconnectFromHost();
    QTRY_COMPARE(gone.size(), qsizetype(kClients));
    qDeleteAll(accepted);
}

void tst_EpollDispatcher::qtDispatcherOnRequest()
{
    // MIDDLEMAN_EVENT_DISPATCHER=qt keeps Qt's dispatcher: nothing is installed.
    qputenv("MIDDLEMAN_EVENT_DISPATCHER", "qt");
    QThread thread;
    QVERIFY(!installBrokerEventDispatcher(&thread));
    qunsetenv("MIDDLEMAN_EVENT_DISPATCHER");
    QVERIFY(installBrokerEventDispatcher(&thread));
    thread.start();
    QByteArray name;
    QMetaObject::invokeMethod(
        QAbstractEventDispatcher::instance(&thread), [&name] { name = eventDispatcherName(); },
        Qt::BlockingQueuedConnection);
    thread.quit();
    QVERIFY(thread.wait(5000));
    QCOMPARE(name, QByteArray("Middleman::EpollEventDispatcher"));
}

// Runs one processEvents(WaitForMoreEvents) and returns the milliseconds it
// took; a timer (5 s unless told) ends a wait that nothing else would.
qint64 oneBlockingTurn(int guardMs = 5000)
{
    QTimer guard;
    guard.setSingleShot(true);
    guard.start(guardMs);
    QElapsedTimer clock;
    clock.start();
    QAbstractEventDispatcher::instance()->processEvents(QEventLoop::WaitForMoreEvents);
    return clock.elapsed();
}

void tst_EpollDispatcher::postedOnLoopThreadWritesNoWakeUp()
{
    auto *dispatcher = qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance());
    QVERIFY(dispatcher);
    QCoreApplication::processEvents(); // nothing left over from earlier tests
    const quint64 writesBefore = dispatcher->wakeUpWrites();
    int delivered = 0;
    // Posted on the loop's thread, by a handler that posts another.
    QMetaObject::invokeMethod(
        this,
        [this, &delivered] {
            ++delivered;
            QMetaObject::invokeMethod(this, [&delivered] { ++delivered; }, Qt::QueuedConnection);
        },
        Qt::QueuedConnection);
    // Neither may leave the call waiting: only the guard's 5 s would end it.
    QVERIFY(oneBlockingTurn() < 2000);
    QCoreApplication::processEvents();
    QCOMPARE(delivered, 2);
    QCOMPARE(dispatcher->wakeUpWrites(), writesBefore);

    // A wake-up from another thread still writes.
    std::unique_ptr<QThread> poster(QThread::create([this, &delivered] {
        QMetaObject::invokeMethod(this, [&delivered] { ++delivered; }, Qt::QueuedConnection);
    }));
    poster->start();
    QVERIFY(poster->wait(5000));
    QCOMPARE(dispatcher->wakeUpWrites(), writesBefore + 1);
    QTRY_COMPARE(delivered, 3);
}

void tst_EpollDispatcher::turnEndAfterTheTurnsNotifiers()
{
    SocketPair first;
    SocketPair second;
    QStringList order;
    TurnEnd turnEnd([&order] { order.append(QStringLiteral("end")); });
    QSocketNotifier a(first.fds[1], QSocketNotifier::Read);
    QSocketNotifier b(second.fds[1], QSocketNotifier::Read);
    connect(&a, &QSocketNotifier::activated, this, [&] {
        first.readAll(1);
        order.append(QStringLiteral("a"));
        turnEnd.schedule();
    });
    connect(&b, &QSocketNotifier::activated, this, [&] {
        second.readAll(1);
        order.append(QStringLiteral("b"));
        turnEnd.schedule();
    });
    first.write(0, "x");
    second.write(0, "y");
    // Both are ready before the turn: one epoll_wait() reports both, and the
    // task runs once, after both handlers, within that same call.
    QAbstractEventDispatcher::instance()->processEvents(QEventLoop::AllEvents);
    order.sort(); // the notifiers' order is the kernel's
    QCOMPARE(order, (QStringList{QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("end")}));
    QVERIFY(!turnEnd.isScheduled());
}

void tst_EpollDispatcher::turnEndOnceCancelledDeleted()
{
    int runs = 0;
    int chained = 0;
    TurnEnd second([&chained] { ++chained; });
    TurnEnd first([&] {
        ++runs;
        second.schedule(); // scheduled while the turn's tasks run: runs in the same pass
    });
    QTimer::singleShot(0, this, [&] {
        first.schedule();
        first.schedule();
    });
    QTRY_COMPARE(runs, 1);
    QCOMPARE(chained, 1);
    QCoreApplication::processEvents();
    QCOMPARE(runs, 1); // twice asked in one turn is once

    int cancelledRuns = 0;
    TurnEnd cancelled([&cancelledRuns] { ++cancelledRuns; });
    auto deleted = std::make_unique<TurnEnd>([&cancelledRuns] { ++cancelledRuns; });
    bool timerRan = false;
    QTimer::singleShot(0, this, [&] {
        cancelled.schedule();
        deleted->schedule();
        cancelled.cancel();
        deleted.reset(); // deleted while scheduled: passed over
        first.schedule();
        timerRan = true;
    });
    QTRY_VERIFY(timerRan);
    QTRY_COMPARE(runs, 2);
    QCoreApplication::processEvents();
    QCOMPARE(cancelledRuns, 0);
    QVERIFY(!cancelled.isScheduled());
}

void tst_EpollDispatcher::turnEndScheduledByPostedEvent()
{
    QCoreApplication::processEvents();
    QElapsedTimer clock;
    qint64 ranAtMs = -1;
    TurnEnd turnEnd([&] { ranAtMs = clock.elapsed(); });
    QMetaObject::invokeMethod(this, [&turnEnd] { turnEnd.schedule(); }, Qt::QueuedConnection);
    // The posted event runs first in the call and schedules the task, which
    // must run before the call waits (which only the guard's second ends).
    clock.start();
    QVERIFY(oneBlockingTurn(1000) >= 0);
    QVERIFY2(ranAtMs >= 0 && ranAtMs < 500, qPrintable(QString::number(ranAtMs)));
}

void tst_EpollDispatcher::turnEndUnderQtDispatcher()
{
    // A thread with Qt's own dispatcher: the task goes as a posted call.
    QThread thread;
    QObject on;
    on.moveToThread(&thread);
    QObject *context = &on;
    thread.start();
    int runs = 0;
    bool cancelledRan = false;
    QByteArray dispatcherName;
    TurnEnd *turnEnd = nullptr;
    TurnEnd *cancelled = nullptr;
    QMetaObject::invokeMethod(
        context,
        [&] {
            dispatcherName = eventDispatcherName();
            turnEnd = new TurnEnd([&runs] { ++runs; });
            cancelled = new TurnEnd([&cancelledRan] { cancelledRan = true; });
            turnEnd->schedule();
            turnEnd->schedule();
            cancelled->schedule();
            cancelled->cancel();
        },
        Qt::BlockingQueuedConnection);
    // A blocking call behind the posted ones returns after they ran.
    QMetaObject::invokeMethod(context, [] {}, Qt::BlockingQueuedConnection);
    QMetaObject::invokeMethod(
        context,
        [&] {
            delete turnEnd;
            delete cancelled;
        },
        Qt::BlockingQueuedConnection);
    thread.quit();
    QVERIFY(thread.wait(5000));
    QVERIFY(dispatcherName != QByteArray("Middleman::EpollEventDispatcher"));
    QCOMPARE(runs, 1);
    QVERIFY(!cancelledRan);
}


// The dispatcher is this thread's (initMain()).
static EpollEventDispatcher *epoll()
{
    return qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance());
}

void tst_EpollDispatcher::directReaderTakesInput()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.fds[1], QSocketNotifier::Read);
    QSignalSpy activated(&notifier, &QSocketNotifier::activated);
    QByteArray got;
    qsizetype bufferSize = 0;
    Reader reader;
    reader.onReady = [&](char *buffer, qsizetype size) {
        bufferSize = size;
        const ssize_t n = ::read(pair.fds[1], buffer, size_t(size));
        if (n > 0)
            got.append(buffer, n);
        return n > 0;
    };
    epoll()->setDirectReader(pair.fds[1], &reader);
    const quint64 before = epoll()->directReads();
    pair.write(0, "hello");
    QTRY_COMPARE(got, QByteArray("hello"));
    QCOMPARE(reader.calls, 1);
    QVERIFY(bufferSize >= 64 * 1024); // room for a large read at once
    pair.write(0, " again");
    QTRY_COMPARE(got, QByteArray("hello again"));
    QCOMPARE(reader.calls, 2);
    QCOMPARE(epoll()->directReads(), before + 2);
    QCOMPARE(activated.size(), 0); // the reader took the input, not the notifier
    epoll()->clearDirectReader(pair.fds[1], &reader);
}

void tst_EpollDispatcher::directReaderLeavesEndToNotifier()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.fds[1], QSocketNotifier::Read);
    QStringList order;
    connect(&notifier, &QSocketNotifier::activated, this, [&] {
        order.append(QStringLiteral("notifier"));
        char byte;
        if (::read(pair.fds[1], &byte, 1) == 0)
            notifier.setEnabled(false); // as a socket does at its end
    });
    Reader reader;
    reader.onReady = [&](char *buffer, qsizetype size) {
        order.append(QStringLiteral("reader"));
        return ::read(pair.fds[1], buffer, size_t(size)) > 0; // the end is the notifier's
    };
    epoll()->setDirectReader(pair.fds[1], &reader);
    const quint64 before = epoll()->directReads();
    ::close(pair.fds[0]);
    pair.fds[0] = -1;
    // One call: the reader finds the end, the notifier is activated right after.
    epoll()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(order, (QStringList{QStringLiteral("reader"), QStringLiteral("notifier")}));
    QCOMPARE(epoll()->directReads(), before);
    epoll()->clearDirectReader(pair.fds[1], &reader);
}

void tst_EpollDispatcher::directReaderOnlyWhileNotifierEnabled()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.fds[1], QSocketNotifier::Read);
    Reader reader;
    reader.onReady = [&](char *buffer, qsizetype size) { return ::read(pair.fds[1], buffer, size_t(size)) > 0; };
    epoll()->setDirectReader(pair.fds[1], &reader);
    notifier.setEnabled(false); // as QTcpSocket does once it is closing
    pair.write(0, "x");
    epoll()->processEvents(QEventLoop::AllEvents); // does not wait
    QCOMPARE(reader.calls, 0);
    notifier.setEnabled(true);
    epoll()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(reader.calls, 1);
    QCOMPARE(pair.readAll(1), QByteArray()); // taken by the reader
    epoll()->clearDirectReader(pair.fds[1], &reader);
}

void tst_EpollDispatcher::directReaderCleared()
{
    SocketPair pair;
    QSocketNotifier notifier(pair.fds[1], QSocketNotifier::Read);
    QByteArray byNotifier;
    connect(&notifier, &QSocketNotifier::activated, this, [&] { byNotifier += pair.readAll(1); });
    Reader reader;
    reader.onReady = [&](char *buffer, qsizetype size) { return ::read(pair.fds[1], buffer, size_t(size)) > 0; };
    Reader other;
    other.onReady = [](char *, qsizetype) { return true; };
    epoll()->setDirectReader(pair.fds[1], &reader);
    // Clearing for another reader (one of a closed socket whose descriptor
    // number came back) leaves this one in place.
    epoll()->clearDirectReader(pair.fds[1], &other);
    pair.write(0, "a");
    QTRY_COMPARE(reader.calls, 1);
    QCOMPARE(byNotifier, QByteArray());
    epoll()->clearDirectReader(pair.fds[1], &reader);
    pair.write(0, "b");
    QTRY_COMPARE(byNotifier, QByteArray("b"));
    QCOMPARE(reader.calls, 1);
    QCOMPARE(other.calls, 0);
}

void tst_EpollDispatcher::directReaderDeletesTheNotifier()
{
    // A reader that leaves the input to the notifier but deleted it meanwhile:
    // nothing is activated, and the next notifier ready in the turn still is.
    SocketPair one;
    SocketPair two;
    auto first = std::make_unique<QSocketNotifier>(one.fds[1], QSocketNotifier::Read);
    QSignalSpy firstActivated(first.get(), &QSocketNotifier::activated);
    QSocketNotifier second(two.fds[1], QSocketNotifier::Read);
    int secondCount = 0;
    connect(&second, &QSocketNotifier::activated, this, [&] {
        ++secondCount;
        two.readAll(1);
    });
    Reader reader;
    reader.onReady = [&](char *, qsizetype) {
        first.reset();
        return false;
    };
    epoll()->setDirectReader(one.fds[1], &reader);
    one.write(0, "a");
    two.write(0, "b");
    epoll()->processEvents(QEventLoop::AllEvents);
    QCOMPARE(reader.calls, 1);
    QCOMPARE(firstActivated.size(), 0);
    QCOMPARE(secondCount, 1);
    epoll()->clearDirectReader(one.fds[1], &reader);
}

namespace {

// Turns the idle spin on for a test and off again after it.
struct IdleSpin
{
    explicit IdleSpin(std::chrono::nanoseconds spin) { epoll()->setIdleSpin(spin); }
    ~IdleSpin() { epoll()->setIdleSpin({}); }
};

// A notifier on its own pair that reads what comes.
struct Input
{
    SocketPair pair;
    QSocketNotifier notifier{pair.fds[1], QSocketNotifier::Read};
    QByteArray got;
    Input()
    {
        QObject::connect(&notifier, &QSocketNotifier::activated, &notifier, [this] { got += pair.readAll(1); });
    }
    // Writes `bytes` from another thread after `delayMs`.
    std::unique_ptr<QThread> writeLater(int delayMs, const QByteArray &bytes)
    {
        std::unique_ptr<QThread> writer(QThread::create([this, delayMs, bytes] {
            QThread::msleep(delayMs);
            (void)!::write(pair.fds[0], bytes.constData(), size_t(bytes.size()));
        }));
        writer->start();
        return writer;
    }
};

// A blocking turn that finds input ready at once: the last idle spell is short.
void shortIdleSpell()
{
    Input input;
    input.pair.write(0, "!");
    oneBlockingTurn();
    QCOMPARE(input.got, QByteArray("!"));
}

} // namespace

void tst_EpollDispatcher::idleSpinOffUnlessSet()
{
    QCOMPARE(epoll()->idleSpin(), std::chrono::nanoseconds(0));
    shortIdleSpell();
    const quint64 spins = epoll()->idleSpins();
    Input input;
    auto writer = input.writeLater(20, "late");
    oneBlockingTurn();
    QVERIFY(writer->wait(5000));
    QTRY_COMPARE(input.got, QByteArray("late"));
    QCOMPARE(epoll()->idleSpins(), spins);
}

void tst_EpollDispatcher::idleSpinCatchesInput()
{
    // A spin long enough to outlast the writer's delay on any machine.
    const IdleSpin spin(std::chrono::seconds(3));
    shortIdleSpell();
    const quint64 spins = epoll()->idleSpins();
    const quint64 caught = epoll()->idleSpinsCaught();
    // Input already there when the loop turns is no spin.
    Input input;
    input.pair.write(0, "now");
    oneBlockingTurn();
    QCOMPARE(input.got, QByteArray("now"));
    QCOMPARE(epoll()->idleSpins(), spins);
    // Input that comes while the loop spins is taken by the spin.
    auto writer = input.writeLater(20, " later");
    const qint64 ms = oneBlockingTurn();
    QVERIFY(writer->wait(5000));
    QCOMPARE(input.got, QByteArray("now later"));
    QVERIFY2(ms < 2000, qPrintable(QString::number(ms)));
    QCOMPARE(epoll()->idleSpins(), spins + 1);
    QCOMPARE(epoll()->idleSpinsCaught(), caught + 1);
}

void tst_EpollDispatcher::idleSpinBacksOffAfterMisses()
{
    const IdleSpin spin(std::chrono::milliseconds(100));
    shortIdleSpell();
    const quint64 spins = epoll()->idleSpins();
    const quint64 caught = epoll()->idleSpinsCaught();
    Input input;
    QByteArray expected;
    // A wait for input `delayMs` away (10 ms: a spin catches it; 250 ms: it
    // misses, the loop sleeps, and the input still comes through).
    const auto wait = [&](int delayMs) {
        auto writer = input.writeLater(delayMs, "x");
        oneBlockingTurn();
        QVERIFY(writer->wait(5000));
        expected += 'x';
        QTRY_COMPARE(input.got, expected);
    };
    wait(250); // a miss
    QCOMPARE(epoll()->idleSpins(), spins + 1);
    QCOMPARE(epoll()->idleSpinsCaught(), caught);
    wait(10); // after one miss, one wait sleeps at once
    QCOMPARE(epoll()->idleSpins(), spins + 1);
    wait(250); // the next spins, and misses again
    QCOMPARE(epoll()->idleSpins(), spins + 2);
    QCOMPARE(epoll()->idleSpinsCaught(), caught);
    wait(10); // after a second miss, two waits sleep at once
    wait(10);
    QCOMPARE(epoll()->idleSpins(), spins + 2);
    wait(10); // then the loop spins again and catches
    QCOMPARE(epoll()->idleSpins(), spins + 3);
    QCOMPARE(epoll()->idleSpinsCaught(), caught + 1);
    wait(10); // no miss since: it spins on
    QCOMPARE(epoll()->idleSpins(), spins + 4);
    QCOMPARE(epoll()->idleSpinsCaught(), caught + 2);
    // Two catches halved the skip to nothing. Misses in a row double it
    // again, up to kMaxWaitsAfterMiss.
    for (const int skip : {1, 2, 4, 8, 16, 32, 32}) {
        const quint64 before = epoll()->idleSpins();
        wait(250);
        QCOMPARE(epoll()->idleSpins(), before + 1);
        for (int i = 0; i < skip; ++i)
            wait(10);
        QCOMPARE(epoll()->idleSpins(), before + 1);
    }
    QCOMPARE(EpollEventDispatcher::kMaxWaitsAfterMiss, 32);
    QCOMPARE(epoll()->idleSpinsCaught(), caught + 2);
}

void tst_EpollDispatcher::idleSpinNotAfterALongIdleSpell()
{
    Input input;
    // An idle spell of 600 ms, with the spin off.
    auto writer = input.writeLater(600, "a");
    oneBlockingTurn();
    QVERIFY(writer->wait(5000));
    QTRY_COMPARE(input.got, QByteArray("a"));
    // 600 ms is more than 4 spins of 100 ms: the next wait sleeps at once...
    const IdleSpin spin(std::chrono::milliseconds(100));
    const quint64 spins = epoll()->idleSpins();
    writer = input.writeLater(10, "b");
    oneBlockingTurn();
    QVERIFY(writer->wait(5000));
    QTRY_COMPARE(input.got, QByteArray("ab"));
    QCOMPARE(epoll()->idleSpins(), spins);
    // ...and after that short one (10 ms), the next spins and catches.
    const quint64 caught = epoll()->idleSpinsCaught();
    writer = input.writeLater(10, "c");
    oneBlockingTurn();
    QVERIFY(writer->wait(5000));
    QCOMPARE(input.got, QByteArray("abc"));
    QCOMPARE(epoll()->idleSpins(), spins + 1);
    QCOMPARE(epoll()->idleSpinsCaught(), caught + 1);
}

void tst_EpollDispatcher::idleSpinEndsForATimer()
{
    const IdleSpin spin(std::chrono::seconds(3));
    shortIdleSpell();
    const quint64 spins = epoll()->idleSpins();
    bool fired = false;
    QTimer::singleShot(20, Qt::PreciseTimer, this, [&] { fired = true; });
    // Blocking turns (QTRY_ waits would sleep between non-blocking ones).
    QElapsedTimer clock;
    clock.start();
    while (!fired && clock.elapsed() < 10000)
        oneBlockingTurn();
    QVERIFY(fired);
    // The timer fired when due, not after the spin's 3 s.
    QVERIFY2(clock.elapsed() < 2000, qPrintable(QString::number(clock.elapsed())));
    QCOMPARE(epoll()->idleSpins(), spins + 1);
}

QTEST_GUILESS_MAIN(tst_EpollDispatcher)
#include "tst_epolldispatcher.moc"
