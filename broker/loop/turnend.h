#pragma once
// TurnEnd: runs a function once at the end of the event-loop turn in which it
// was asked for, after that turn's sockets and timers and before the loop waits
// again. The broker routes every frame a turn read before it sends batches and
// socket writes (docs/design.md, "Socket writes").
//
// Under the broker's EpollEventDispatcher the dispatcher calls it directly: no
// event is allocated, posted or dispatched. Under any other dispatcher (Qt's,
// the console's GUI one) it posts a queued call, which Qt runs when the loop
// comes back from the turn, before it waits.

#include <QObject>

#include <functional>

namespace Middleman {

class EpollEventDispatcher;

class TurnEnd : public QObject
{
    Q_OBJECT
public:
    explicit TurnEnd(std::function<void()> run, QObject *parent = nullptr);
    ~TurnEnd() override;

    // Asks for one run at the end of this turn; more calls before it runs are
    // one run. Call on the object's thread.
    void schedule();
    // Drops a scheduled run (the owner runs the work itself now).
    void cancel();
    bool isScheduled() const { return m_scheduled; }

private:
    friend class EpollEventDispatcher;
    void run(); // called once per schedule(), not scheduled any more when it runs

    std::function<void()> m_run;
    bool m_scheduled = false;
    bool m_posted = false;                     // a queued call is on its way (other dispatchers)
    EpollEventDispatcher *m_dispatcher = nullptr; // the one it is scheduled with
};

} // namespace Middleman
