#include "plainserver.h"

#include "openfiles.h"

namespace Middleman {

PlainServer::PlainServer(QObject *parent)
    : QTcpServer(parent)
{
}

PlainServer::~PlainServer()
{
    // Sockets not taken yet go before the coalescer they point to.
    qDeleteAll(findChildren<CoalescingSocket *>(Qt::FindDirectChildrenOnly));
}

void PlainServer::incomingConnection(qintptr descriptor)
{
    if (nearOpenFileLimit(long(descriptor))) {
        stopAccepting(this);
        Q_EMIT descriptorsLow();
    }
    auto *socket = new CoalescingSocket(&m_coalescer, this);
    if (!socket->setSocketDescriptor(descriptor)) {
        delete socket;
        return;
    }
    Q_EMIT accepted(socket);
}

} // namespace Middleman
