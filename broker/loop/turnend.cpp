#include "turnend.h"

#include "epolldispatcher.h"

#include <QAbstractEventDispatcher>
#include <QThread>

#include <utility>

namespace Middleman {

TurnEnd::TurnEnd(std::function<void()> run, QObject *parent)
    : QObject(parent)
    , m_run(std::move(run))
{
}

TurnEnd::~TurnEnd()
{
    cancel();
}

void TurnEnd::schedule()
{
    if (m_scheduled)
        return;
    m_scheduled = true;
    if (auto *epoll = qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance(thread()))) {
        m_dispatcher = epoll;
        epoll->scheduleTurnEnd(this);
        return;
    }
    if (m_posted)
        return; // the call already on its way runs it
    m_posted = true;
    QMetaObject::invokeMethod(
        this,
        [this] {
            m_posted = false;
            if (m_scheduled)
                run();
        },
        Qt::QueuedConnection);
}

void TurnEnd::cancel()
{
    if (!m_scheduled)
        return;
    m_scheduled = false;
    if (m_dispatcher)
        std::exchange(m_dispatcher, nullptr)->cancelTurnEnd(this);
}

void TurnEnd::run()
{
    m_scheduled = false;
    m_dispatcher = nullptr;
    m_run();
}

} // namespace Middleman
