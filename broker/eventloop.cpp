#include "eventloop.h"

#include <QAbstractEventDispatcher>
#include <QMetaObject>

namespace Middleman {

void preferScalableEventDispatcher()
{
    if (!qEnvironmentVariableIsSet("QT_NO_GLIB"))
        qputenv("QT_NO_GLIB", "1");
}

QByteArray eventDispatcherName()
{
    const QAbstractEventDispatcher *dispatcher = QAbstractEventDispatcher::instance();
    return dispatcher ? QByteArray(dispatcher->metaObject()->className()) : QByteArray("none");
}

} // namespace Middleman
