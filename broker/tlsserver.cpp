#include "tlsserver.h"

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

    connect(deadline, &QTimer::timeout, this, [this, socket] { onDeadline(socket); });
    connect(socket, &QObject::destroyed, this, [this, socket, peer] {
        // Only the pointer value is used: the socket is being destroyed.
        const auto it = m_pending.constFind(socket);
        if (it == m_pending.cend())
            return;
        if (!it->encrypted && !it->failed)
            --m_handshaking;
        if (m_awaitingUpgrade.value(peer) == socket)
            m_awaitingUpgrade.remove(peer);
        m_pending.erase(it);
    });
    connect(socket, &QAbstractSocket::errorOccurred, this, [this, socket](QAbstractSocket::SocketError) {
        const auto it = m_pending.constFind(socket);
        if (it != m_pending.cend() && !it->encrypted)
            fail(socket, socket->errorString());
    });
    connect(socket, &QAbstractSocket::disconnected, this, [this, socket] {
        const auto it = m_pending.constFind(socket);
        if (it != m_pending.cend() && !it->encrypted)
            fail(socket, QStringLiteral("connection closed during the TLS handshake"));
    });
    connect(socket, &QSslSocket::encrypted, this, [this, socket] {
        const auto it = m_pending.find(socket);
        if (it == m_pending.end() || it->failed)
            return;
        it->encrypted = true;
        --m_handshaking;
        m_awaitingUpgrade.insert(it->peer, socket);
        addPendingConnection(socket);
        Q_EMIT encryptedConnectionReady();
    });

    socket->setSslConfiguration(m_configuration);
    deadline->start(m_deadlineMs);
    socket->startServerEncryption();
}

void TlsServer::fail(QSslSocket *socket, const QString &reason)
{
    const auto it = m_pending.find(socket);
    if (it == m_pending.end() || it->failed || it->encrypted)
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

void TlsServer::onDeadline(QSslSocket *socket)
{
    const auto it = m_pending.find(socket);
    if (it == m_pending.end())
        return;
    if (!it->encrypted) {
        fail(socket, QStringLiteral("no TLS handshake within %1 ms").arg(m_deadlineMs));
        return;
    }
    // Encrypted and handed on, but no WebSocket upgrade: the WebSocket layer
    // deletes the socket once it is closed.
    const Peer peer = it->peer;
    it->deadline = nullptr; // deletes itself with the socket
    socket->abort();
    Q_EMIT upgradeTimedOut(peer.first, peer.second);
}

void TlsServer::upgraded(const QHostAddress &address, quint16 port)
{
    QSslSocket *socket = m_awaitingUpgrade.take(Peer{address, port});
    if (!socket)
        return;
    if (const auto it = m_pending.find(socket); it != m_pending.end()) {
        delete it->deadline;
        m_pending.erase(it);
    }
    // From here on the socket belongs to its QWebSocket.
    socket->disconnect(this);
}

} // namespace Middleman
