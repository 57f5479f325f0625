#include "eventloop.h"

#include "epolldispatcher.h"

#include <QAbstractEventDispatcher>
#include <QCoreApplication>
#include <QMetaObject>
#include <QThread>

#include <memory>

namespace Middleman {

void preferScalableEventDispatcher()
{
    if (!qEnvironmentVariableIsSet("QT_NO_GLIB"))
        qputenv("QT_NO_GLIB", "1");
}

bool installBrokerEventDispatcher(QThread *thread)
{
    if (qEnvironmentVariable("MIDDLEMAN_EVENT_DISPATCHER") == QLatin1String("qt"))
        return false;
    auto dispatcher = std::make_unique<EpollEventDispatcher>();
    if (!dispatcher->isValid())
        return false;
    if (thread)
        thread->setEventDispatcher(dispatcher.release());
    else
        QCoreApplication::setEventDispatcher(dispatcher.release());
    return true;
}

QByteArray eventDispatcherName()
{
    const QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance();
    return dispatcher ? QByteArray(dispatcher->metaObject()->className()) : QByteArray("none");
}

} // namespace Middleman
