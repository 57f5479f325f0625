#include "upgrader.h"

#include "websocket.h"

#include <QTcpSocket>
#include <QTimer>

namespace Middleman {

Upgrader::Upgrader(QObject *parent)
    : QObject(parent)
{
}

Upgrader::~Upgrader()
{
    // The waiting sockets are children and go with the upgrader; their handlers
    // must not reach it half destroyed.
    for (auto it = m_waiting.cbegin(); it != m_waiting.cend(); ++it)
        it.key()->disconnect(this);
}

void Upgrader::take(QTcpSocket *socket, int deadlineMs)
{
    socket->setParent(this);
    auto *deadline = new QTimer(socket);
    deadline->setSingleShot(true);
    m_waiting.insert(socket, deadline);
    connect(deadline, &QTimer::timeout, this, [this, socket] {
        const QHostAddress address = socket->peerAddress();
        const quint16 port = socket->peerPort();
        release(socket);
        socket->abort();
        socket->deleteLater();
        Q_EMIT timedOut(address, port);
    });
    connect(socket, &QTcpSocket::readyRead, this, [this, socket] { onReadyRead(socket); });
    connect(socket, &QTcpSocket::disconnected, this, [this, socket] {
        // Gone before it upgraded: nothing to answer.
        release(socket);
        socket->deleteLater();
    });
    deadline->start(qMax(0, deadlineMs));
    if (socket->bytesAvailable() > 0)
        onReadyRead(socket);
}

void Upgrader::release(QTcpSocket *socket)
{
    if (QTimer *deadline = m_waiting.take(socket))
        delete deadline;
    socket->disconnect(this);
}

void Upgrader::onReadyRead(QTcpSocket *socket)
{
    if (!m_waiting.contains(socket))
        return;
    // The request stays in the socket's buffer until it is complete.
    const WebSocket::UpgradeRequest request =
        WebSocket::parseUpgradeRequest(socket->peek(WebSocket::kMaxUpgradeRequestBytes));
    switch (request.status) {
    case WebSocket::UpgradeRequest::Status::Incomplete:
        return;
    case WebSocket::UpgradeRequest::Status::Invalid: {
        release(socket);
        const QHostAddress address = socket->peerAddress();
        const quint16 port = socket->peerPort();
        socket->write(WebSocket::errorResponse(request.httpStatus, request.reason));
        connect(socket, &QTcpSocket::disconnected, socket, &QObject::deleteLater);
        socket->disconnectFromHost();
        Q_EMIT refused(address, port, request.httpStatus, request.reason);
        return;
    }
    case WebSocket::UpgradeRequest::Status::Complete:
        break;
    }
    release(socket);
    // Taken whole (see Session::onReadyRead): the socket keeps no read chunk.
    const QByteArray bytes = socket->read(socket->bytesAvailable());
    const QByteArray pending = bytes.sliced(request.size);
    socket->write(WebSocket::upgradeResponse(request.key));
    Q_EMIT upgraded(socket, request.origin, pending);
}

} // namespace Middleman
