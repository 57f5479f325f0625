// Broker: construction, the listeners, the ping sweep and shutdown. The
// rest of the class is in admission.cpp, dispatch.cpp, requests.cpp and
// snapshots.cpp.

#include "broker.h"

#include "clock.h"
#include "coalescingsocket.h"
#include "epolldispatcher.h"
#include "logging.h"
#include "openfiles.h"
#include "plainserver.h"
#include "session.h"
#include "status.h"
#include "tlscredentials.h"
#include "tlsserver.h"
#include "upgrader.h"

#include <QSslSocket>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

namespace Middleman {

namespace {

// Descriptors kept for what is not a connection (listening sockets, the event
// loop's, log files, a console's window) when the open-file limit caps
// max_connections; a quarter of a smaller limit.
constexpr long kReservedDescriptors = 100;
// Accepting again after an accept error: first after this long, then twice as
// long while errors go on, up to the maximum.
constexpr int kAcceptRetryMs = 10;
constexpr int kMaxAcceptRetryMs = 1000;

// Settings of the listening socket. TCP_NODELAY: Linux and the BSDs copy it to
// every socket accepted from it (Stevens, UNP 7.9), so no message waits for the
// peer's delayed ACK behind an unacknowledged one (Nagle); the broker writes
// whole frames, and batches where peers ask for them, so it never needs the
// kernel to coalesce. The accept backlog: Qt listens with 50, and a burst of
// connections beyond that has its SYNs dropped and retried a second later;
// listen() again raises it on a listening socket (the kernel caps it at
// net.core.somaxconn).
void tuneListeningSocket(qintptr descriptor)
{
    const int fd = int(descriptor);
    const int on = 1;
    if (::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) != 0)
        qCWarning(lcBroker) << "TCP_NODELAY on the listening socket failed:" << qt_error_string(errno);
    if (::listen(fd, SOMAXCONN) != 0)
        qCWarning(lcBroker) << "raising the accept backlog failed:" << qt_error_string(errno);
}

} // namespace

Broker::Broker(const BrokerConfig &config, QObject *parent)
    : QObject(parent)
    , m_config(config)
    , m_keyBackoff(config.failedKeysBeforeBackoff, config.failedKeyBackoffMs, config.maxFailedKeyBackoffMs)
    , m_maxConnections(config.maxConnections)
    , m_batchFlush([this] { flushBatches(); }, this)
{
    qRegisterMetaType<PeerInfo>();
    qRegisterMetaType<RequestInfo>();
    for (const KeyConfig &key : m_config.serviceKeys)
        m_keys.add(Role::Service, key);
    for (const KeyConfig &key : m_config.clientKeys)
        m_keys.add(Role::Client, key);
    for (const GrantConfig &grant : m_config.grants)
        m_grants.add(grant.kind, grant.pattern, GrantTable::Permanent);

    m_pingTimer.setInterval(m_config.pingIntervalMs);
    m_pingTimer.setTimerType(Qt::PreciseTimer);
    m_expiryTimer.setTimerType(Qt::PreciseTimer);
    connect(&m_pingTimer, &QTimer::timeout, this, &Broker::onPingSweep);
    m_expiryTimer.setSingleShot(true);
    connect(&m_expiryTimer, &QTimer::timeout, this, &Broker::onExpiry);
    m_resumeTimer.setSingleShot(true);
    m_resumeTimer.setTimerType(Qt::PreciseTimer);
    connect(&m_resumeTimer, &QTimer::timeout, this, &Broker::resumeHeldInput);
    m_acceptRetryTimer.setSingleShot(true);
    connect(&m_acceptRetryTimer, &QTimer::timeout, this, [this] {
        QTcpServer *server = listener();
        if (!server || m_shuttingDown)
            return;
        // Accepting into the limit itself would start Qt's retry loop.
        if (openFilesNearLimit(int(server->socketDescriptor())))
            pauseAccepting(QStringLiteral("near the open-file limit"));
        else
            startAccepting(server);
    });
    m_shutdownTimer.setSingleShot(true);
    connect(&m_shutdownTimer, &QTimer::timeout, this, [this] {
        // Peers that did not finish the close handshake are cut off.
        const QList<Session *> left = m_sessions.values();
        for (Session *session : left)
            session->abort();
        finishShutdownIfIdle();
    });
}

Broker::~Broker()
{
    // Sessions are children; make sure their signals no longer reach us. They
    // and the connections still upgrading go first: their sockets write through
    // the listener's coalescer.
    for (Session *session : std::as_const(m_sessions))
        session->disconnect(this);
    qDeleteAll(findChildren<Session *>(Qt::FindDirectChildrenOnly));
    delete m_upgrader;
}

bool Broker::listen()
{
    // The loop of the broker's thread spins before it sleeps (docs/design.md,
    // "Idle spin"), when it is the broker's epoll one.
    if (auto *epoll = qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance(thread())))
        epoll->setIdleSpin(std::chrono::microseconds(m_config.idleSpinUs));
    // docs/protocol.md §7: beyond the open-file limit a connection could not even be
    // told "too many connections" (1013); it would wait unaccepted.
    m_maxConnections = m_config.maxConnections;
    const long files = openFileLimit();
    if (const long room = files - qMin(kReservedDescriptors, files / 4); files > 0 && room < m_maxConnections) {
        m_maxConnections = int(room);
        qCWarning(lcBroker).noquote()
            << "max_connections" << m_config.maxConnections << "is above what the open-file limit of" << files
            << "allows: at most" << m_maxConnections
            << "connections (raise it with ulimit -n, or LimitNOFILE= in a systemd unit)";
    }
    if (!m_upgrader) {
        // PlainServer (ws://) or TlsServer (wss://) accepts; the upgrader reads
        // each connection's WebSocket upgrade within handshake_timeout_ms.
        m_upgrader = new Upgrader(this);
        connect(m_upgrader, &Upgrader::upgraded, this, &Broker::onUpgraded);
        connect(m_upgrader, &Upgrader::timedOut, this, &Broker::onUpgradeTimedOut);
        connect(m_upgrader, &Upgrader::refused, this,
                [this](const QHostAddress &address, quint16 port, int status, const QByteArray &reason) {
                    ++m_stats.upgradesRefused;
                    qCInfo(lcSession).noquote()
                        << "connection from" << address.toString() + QLatin1Char(':') + QString::number(port)
                        << "refused with HTTP" << status << QString::fromUtf8(reason);
                });
    }
    if (m_config.tls.enabled())
        return listenTls();
    if (!m_plainServer) {
        m_plainServer = new PlainServer(this);
        connect(m_plainServer, &PlainServer::accepted, this, [this](CoalescingSocket *socket) {
            // Section 7: connections that have not upgraded yet are capped too
            // (as TlsServer caps TLS handshakes), so that silent TCP connections
            // cannot take every file descriptor until their deadline.
            if (m_upgrader->waiting() >= m_maxConnections) {
                ++m_stats.connectionsRefused;
                qCInfo(lcSession).noquote() << "connection from" << socket->peerAddress().toString()
                                            << "dropped: too many connections waiting for their upgrade";
                socket->abort();
                socket->deleteLater();
                return;
            }
            m_upgrader->take(socket, m_config.handshakeTimeoutMs);
        });
        connect(m_plainServer, &QTcpServer::acceptError, this,
                [this] { pauseAccepting(m_plainServer->errorString()); });
        connect(m_plainServer, &PlainServer::descriptorsLow, this,
                [this] { pauseAccepting(QStringLiteral("near the open-file limit")); });
    }
    if (!m_plainServer->listen(m_config.listenAddress, m_config.port)) {
        m_errorString = QStringLiteral("cannot listen on %1:%2: %3")
                            .arg(m_config.listenAddress.toString())
                            .arg(m_config.port)
                            .arg(m_plainServer->errorString());
        return false;
    }
    tuneListeningSocket(m_plainServer->socketDescriptor());
    m_pingTimer.start();
    qCInfo(lcBroker).noquote() << "listening on" << serverUrl().toString();
    return true;
}

bool Broker::listenTls()
{
    // Section 1, wss://: the TLS server accepts and completes the handshake; the
    // upgrader reads the WebSocket upgrade of the encrypted sockets it hands on.
    if (!m_tlsServer) {
        TlsCredentials credentials;
        QString why;
        if (!credentials.load(m_config.tls, &why)) {
            m_errorString = why;
            return false;
        }
        qCInfo(lcBroker).noquote() << "TLS with" << credentials.summary();
        if (const QString problem = credentials.validityProblem(QDateTime::currentDateTimeUtc()); !problem.isEmpty())
            qCWarning(lcBroker).noquote() << "tls.certificate:" << problem << "- clients will refuse it";
        m_tlsServer = new TlsServer(credentials.serverConfiguration(), m_config.handshakeTimeoutMs,
                                    m_maxConnections, this);
        connect(m_tlsServer, &TlsServer::encrypted, this,
                [this](QSslSocket *socket, int msLeft) { m_upgrader->take(socket, msLeft); });
        connect(m_tlsServer, &TlsServer::handshakeFailed, this,
                [this](const QHostAddress &address, quint16 port, const QString &reason) {
                    // A failed handshake touches no session: other peers never notice.
                    ++m_stats.tlsHandshakeFailures;
                    qCInfo(lcSession).noquote() << "TLS handshake with" << address.toString() + QLatin1Char(':')
                            + QString::number(port) << "failed:" << reason;
                });
        connect(m_tlsServer, &QTcpServer::acceptError, this, [this] { pauseAccepting(m_tlsServer->errorString()); });
        connect(m_tlsServer, &TlsServer::descriptorsLow, this,
                [this] { pauseAccepting(QStringLiteral("near the open-file limit")); });
    }
    if (!m_tlsServer->listen(m_config.listenAddress, m_config.port)) {
        m_errorString = QStringLiteral("cannot listen on %1:%2: %3")
                            .arg(m_config.listenAddress.toString())
                            .arg(m_config.port)
                            .arg(m_tlsServer->errorString());
        return false;
    }
    tuneListeningSocket(m_tlsServer->socketDescriptor());
    m_pingTimer.start();
    qCInfo(lcBroker).noquote() << "listening on" << serverUrl().toString();
    return true;
}

QTcpServer *Broker::listener() const
{
    if (m_tlsServer)
        return m_tlsServer;
    return m_plainServer;
}

bool Broker::isListening() const
{
    return listener() && listener()->isListening();
}

quint16 Broker::serverPort() const
{
    return isListening() ? listener()->serverPort() : 0;
}

QUrl Broker::serverUrl() const
{
    if (!isListening())
        return {};
    QUrl url;
    url.setScheme(m_tlsServer ? QStringLiteral("wss") : QStringLiteral("ws"));
    url.setHost(listener()->serverAddress().toString());
    url.setPort(listener()->serverPort());
    return url;
}

// --- Connections -----------------------------------------------------------

void Broker::pauseAccepting(const QString &why)
{
    // The listener has stopped accepting: after an accept error (QTcpServer
    // never starts again by itself), or near the open-file limit. It accepts
    // again after a pause, 10 ms doubling up to 1 s while this goes on, as
    // nats-server does; meanwhile new connections wait in the listen backlog.
    const qint64 nowMs = now();
    if (nowMs - m_lastAcceptPauseMs > kMaxAcceptRetryMs)
        m_acceptRetryMs = kAcceptRetryMs;
    m_lastAcceptPauseMs = nowMs;
    ++m_stats.acceptPauses;
    qCWarning(lcBroker).noquote() << "not accepting for" << m_acceptRetryMs << "ms:" << why;
    m_acceptRetryTimer.start(m_acceptRetryMs);
    m_acceptRetryMs = qMin(2 * m_acceptRetryMs, kMaxAcceptRetryMs);
}

bool Broker::disconnectPeer(quint64 id, const QString &reason)
{
    Session *session = m_sessions.value(id);
    if (!session || session->state() == Session::State::Closing)
        return false;
    closeSession(session, WebSocket::CloseNormal,
                 reason.isEmpty() ? QStringLiteral("disconnected by operator") : reason, nullptr);
    return true;
}

void Broker::onPingSweep()
{
    const qint64 nowMs = now();
    m_keyBackoff.prune(nowMs);
    const QList<Session *> sessions = m_sessions.values();
    for (Session *session : sessions) {
        if (!session->pingIfIdle(nowMs, m_config.pingIntervalMs, m_config.maxMissedPings)) {
            qCInfo(lcSession).noquote() << "peer" << session->id() << "missed" << m_config.maxMissedPings
                                        << "pongs";
            closeSession(session, WebSocket::CloseGoingAway, QStringLiteral("ping timeout"),
                         &m_stats.idleClosed);
        }
    }
}

// --- Shutdown --------------------------------------------------------------

void Broker::shutdown()
{
    if (m_shuttingDown)
        return;
    m_shuttingDown = true;
    qCInfo(lcBroker) << "shutting down with" << m_sessions.size() << "connections and" << m_requests.size()
                     << "pending requests";
    if (QTcpServer *server = listener())
        server->close();
    m_pingTimer.stop();
    m_expiryTimer.stop();
    answerRequests(m_requests.takeAll(), Status::Unavailable, "broker shutting down", &m_stats.requestsShutdown);
    m_shutdownTimer.start(m_config.shutdownGraceMs + 500);
    // A close can disconnect synchronously; stopped() still only comes from the
    // event loop, after shutdown() has returned.
    m_closingAll = true;
    const QList<Session *> sessions = m_sessions.values();
    for (Session *session : sessions)
        closeSession(session, WebSocket::CloseGoingAway, QStringLiteral("broker shutting down"),
                     nullptr);
    m_closingAll = false;
    QTimer::singleShot(0, this, &Broker::finishShutdownIfIdle);
}

void Broker::finishShutdownIfIdle()
{
    if (!m_shuttingDown || m_stopped || m_closingAll || !m_sessions.isEmpty())
        return;
    m_stopped = true;
    m_shutdownTimer.stop();
    qCInfo(lcBroker) << "stopped";
    Q_EMIT stopped();
}

// --- Frames ----------------------------------------------------------------

Session *Broker::openSession(quint64 id) const
{
    Session *session = m_sessions.value(id);
    return session && session->state() == Session::State::Open ? session : nullptr;
}

} // namespace Middleman
