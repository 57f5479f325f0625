#include "tlsserver.h"

#include "openfiles.h"

#include <QSslSocket>
#include <QTimer>

namespace Middleman {

TlsServer::TlsServer(const QSslConfiguration &configuration, int deadlineMs, int maxHandshakes, QObject *parent)
    : QTcpServer(parent)
    , m_configuration(configuration)
    , m_deadlineMs(deadlineMs)
    , m_maxHandshakes(maxHandshakes)
{
}

TlsServer::~TlsServer()
{
    // The sockets are children and go with the server; their destroyed() handlers
    // must not reach a half-destroyed server.
    const QList<QSslSocket *> sockets = m_pending.keys();
    for (QSslSocket *socket : sockets)
        socket->disconnect(this);
}

void TlsServer::incomingConnection(qintptr descriptor)
{
    if (nearOpenFileLimit(long(descriptor))) {
        stopAccepting(this);
        Q_EMIT descriptorsLow();
    }
    auto *socket = new QSslSocket(this);
    if (!socket->setSocketDescriptor(descriptor)) {
        delete socket;
        return;
    }
    const Peer peer{socket->peerAddress(), socket->peerPort()};
    if (m_handshaking >= m_maxHandshakes) {
        socket->abort();
        socket->deleteLater();
        Q_EMIT handshakeFailed(peer.first, peer.second, QStringLiteral("too many TLS handshakes in progress"));
        return;
    }
    ++m_handshaking;
    auto *deadline = new QTimer(socket);
    deadline->setSingleShot(true);
    m_pending.insert(socket, Pending{peer, deadline});

    connect(deadline, &QTimer::timeout, this, [this, socket] {
        fail(socket, QStringLiteral("no TLS handshake within %1 ms").arg(m_deadlineMs));
    });
    connect(socket, &QObject::destroyed, this, [this, socket] {
        // Only the pointer value is used: the socket is being destroyed.
        const auto it = m_pending.constFind(socket);
        if (it == m_pending.cend())
            return;
        if (!it->failed)
            --m_handshaking;
        m_pending.erase(it);
    });
    connect(socket, &QAbstractSocket::errorOccurred, this,
            [this, socket](QAbstractSocket::SocketError) { fail(socket, socket->errorString()); });
    connect(socket, &QAbstractSocket::disconnected, this,
            [this, socket] { fail(socket, QStringLiteral("connection closed during the TLS handshake")); });
    connect(socket, &QSslSocket::encrypted, this, [this, socket] {
        const auto it = m_pending.find(socket);
        if (it == m_pending.end() || it->failed)
            return;
        --m_handshaking;
        const int msLeft = it->deadline->remainingTime();
        delete it->deadline;
        m_pending.erase(it);
        // From here on the socket is the receiver's.
        socket->disconnect(this);
        Q_EMIT encrypted(socket, msLeft);
    });

    socket->setSslConfiguration(m_configuration);
    deadline->start(m_deadlineMs);
    socket->startServerEncryption();
}

void TlsServer::fail(QSslSocket *socket, const QString &reason)
{
    const auto it = m_pending.find(socket);
    if (it == m_pending.end() || it->failed)
        return;
    it->failed = true;
    --m_handshaking;
    const Peer peer = it->peer;
    delete it->deadline;
    it->deadline = nullptr;
    socket->abort();
    socket->deleteLater();
    Q_EMIT handshakeFailed(peer.first, peer.second, reason);
}

} // namespace Middleman
