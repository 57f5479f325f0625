#include "broker.h"
#include "status.h"

#include "clock.h"
#include "coalescingsocket.h"
#include "plainserver.h"
#include "epolldispatcher.h"
#include "logging.h"
#include "openfiles.h"
#include "session.h"
#include "tlscredentials.h"
#include "tlsserver.h"
#include "upgrader.h"

#include <QMetaMethod>
#include <QRandomGenerator>
#include <QTcpSocket>
#include <QSslSocket>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

namespace Middleman {

namespace {

QString roleName(Role role)
{
    switch (role) {
    case Role::Service: return QStringLiteral("service");
    case Role::Client: return QStringLiteral("client");
    case Role::None: break;
    }
    return QStringLiteral("unauthenticated");
}

QString describe(const Session *session)
{
    return QStringLiteral("%1:%2").arg(session->peerAddress().toString()).arg(session->peerPort());
}

// Descriptors kept for what is not a connection (listening sockets, the event
// loop's, log files, a console's window) when the open-file limit caps
// max_connections; a quarter of a smaller limit.
constexpr long kReservedDescriptors = 100;
// Accepting again after an accept error: first after this long, then twice as
// long while errors go on, up to the maximum.
constexpr int kAcceptRetryMs = 10;
constexpr int kMaxAcceptRetryMs = 1000;

// Caps on the round-robin memory: one entry per REQ target, cleared when full.
constexpr qsizetype kRoundRobinCapacity = 65536;

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

void Broker::onUpgradeTimedOut(const QHostAddress &address, quint16 port)
{
    ++m_stats.upgradeTimeouts;
    qCInfo(lcSession).noquote() << "connection from" << address.toString() + QLatin1Char(':') + QString::number(port)
                                << "closed: no WebSocket upgrade in time";
}

void Broker::onUpgraded(QTcpSocket *socket, const QByteArray &origin, const QByteArray &pending)
{
    const QHostAddress address = socket->peerAddress();
    // Every refusal is counted and logged, and closes with a code and a reason.
    const auto refuseAs = [&](quint64 *counter, WebSocket::CloseCode code, const QString &reason,
                              const QString &detail = QString()) {
        if (counter)
            ++*counter;
        qCInfo(lcSession).noquote() << "connection from" << address.toString() << "refused:"
                                    << (detail.isEmpty() ? reason : reason + QStringLiteral(": ") + detail);
        refuse(socket, pending, code, reason);
    };
    if (m_shuttingDown) {
        refuseAs(nullptr, WebSocket::CloseGoingAway, QStringLiteral("broker shutting down"));
        return;
    }
    // Section 7: browsers only from the allowed origins.
    if (!m_config.allowedOrigins.isEmpty() && !origin.isEmpty()
        && !m_config.allowedOrigins.contains(QString::fromUtf8(origin), Qt::CaseInsensitive)) {
        refuseAs(&m_stats.originsRefused, WebSocket::ClosePolicyViolated,
                 QStringLiteral("origin not allowed"), QString::fromUtf8(origin.left(256)));
        return;
    }
    // Section 7: an address backing off after bad keys gets no chance to try another.
    if (const QString reason = backoffReason(address, now()); !reason.isEmpty()) {
        refuseAs(&m_stats.keyBackoffRefused, WebSocket::CloseTryAgainLater, reason);
        return;
    }
    // Section 7: connections in total and per remote address.
    if (m_sessions.size() >= m_maxConnections) {
        refuseAs(&m_stats.connectionsRefused, WebSocket::CloseTryAgainLater, QStringLiteral("too many connections"));
        return;
    }
    if (m_config.maxConnectionsPerAddress > 0
        && m_connectionsFrom.value(address) >= m_config.maxConnectionsPerAddress) {
        refuseAs(&m_stats.connectionsRefused, WebSocket::CloseTryAgainLater,
                 QStringLiteral("too many connections from this address"));
        return;
    }
    ++m_connectionsFrom[address];
    const quint64 id = ++m_nextId;
    auto *session = new Session(id, socket, m_config, this);
    connect(session, &Session::frameReceived, this, &Broker::onFrame);
    connect(session, &Session::disconnected, this, &Broker::onDisconnected);
    connect(session, &Session::batchStarted, this, &Broker::scheduleBatchFlush);
    connect(session, &Session::queueOverflow, this, [this](quint64 sid) {
        // Section 6: a slow consumer is closed; nobody else waits for it.
        if (Session *s = m_sessions.value(sid)) {
            qCInfo(lcSession).noquote() << "peer" << sid << "closed as slow consumer with" << s->bytesQueued()
                                        << "bytes queued";
            closeSession(s, WebSocket::CloseTryAgainLater,
                         QStringLiteral("slow consumer: outbound queue over %1 bytes").arg(s->queueLimit()),
                         &m_stats.slowConsumersClosed);
        }
    });
    connect(session, &Session::handshakeTimedOut, this, [this](quint64 sid) {
        if (Session *s = m_sessions.value(sid)) {
            qCInfo(lcSession).noquote() << "peer" << sid << "from" << describe(s) << "sent no key in time";
            closeSession(s, WebSocket::ClosePolicyViolated,
                         QStringLiteral("no API key within the handshake timeout"), &m_stats.handshakeTimeouts);
        }
    });
    m_sessions.insert(id, session);
    ++m_stats.connectionsAccepted;
    qCDebug(lcSession).noquote() << "peer" << id << "upgraded from" << describe(session);
    // The key may have come with the upgrade request.
    session->start(pending);
}

void Broker::refuse(QTcpSocket *socket, const QByteArray &pending, WebSocket::CloseCode code,
                    const QString &reason)
{
    // A session of its own, outside m_sessions, so that the close handshake runs
    // and the close frame reaches the peer; cut off after the grace period if the
    // peer does not answer.
    auto *session = new Session(0, socket, m_config, this);
    connect(session, &Session::disconnected, session, &QObject::deleteLater);
    QTimer::singleShot(m_config.shutdownGraceMs, session, [session] {
        session->abort();
        session->deleteLater();
    });
    session->close(code, reason);
    session->start(pending);
}

void Broker::handleKey(Session *session, const QByteArray &frame)
{
    // Section 7: a connection opened before its address began to back off may not
    // try either; its key is not even looked at.
    const qint64 nowMs = now();
    if (const QString reason = backoffReason(session->peerAddress(), nowMs); !reason.isEmpty()) {
        qCInfo(lcSession).noquote() << "peer" << session->id() << "from" << describe(session) << "refused:"
                                    << reason;
        closeSession(session, WebSocket::CloseTryAgainLater, reason, &m_stats.keyBackoffRefused);
        return;
    }
    // Section 2: the whole first frame is the key; surrounding white space ignored.
    const std::optional<KeyStore::Match> match = m_keys.lookup(frame);
    if (!match) {
        qCInfo(lcSession).noquote() << "peer" << session->id() << "from" << describe(session)
                                    << "refused: invalid key";
        if (const qint64 blockMs = m_keyBackoff.recordFailure(session->peerAddress(), nowMs)) {
            qCWarning(lcSession).noquote() << "address" << session->peerAddress().toString()
                                           << "backs off for" << blockMs << "ms after repeated invalid keys";
        }
        closeSession(session, WebSocket::ClosePolicyViolated, QStringLiteral("invalid API key"),
                     &m_stats.keysRefused);
        return;
    }
    const QByteArray clientId = newClientId();
    m_clientIds.insert(clientId, session->id());
    session->accept(match->role, match->name, clientId, m_config.limits(match->role));
    ++m_stats.handshakesCompleted;
    qCInfo(lcSession).noquote() << "peer" << session->id() << "connected from" << describe(session) << "as"
                                << roleName(match->role) << QLatin1Char('\'') + match->name + QLatin1Char('\'');
    Q_EMIT peerConnected(peerInfo(session));
}

QByteArray Broker::newClientId()
{
    // Section 5: unique for the broker's lifetime and not guessable.
    for (;;) {
        quint64 words[2];
        QRandomGenerator::system()->fillRange(words);
        QByteArray id = QByteArray(reinterpret_cast<const char *>(words), sizeof(words))
                            .toBase64(QByteArray::Base64UrlEncoding | QByteArray::OmitTrailingEquals);
        if (!m_clientIds.contains(id))
            return id;
    }
}

void Broker::onDisconnected(quint64 id)
{
    Session *session = m_sessions.take(id);
    if (!session)
        return;
    ++m_stats.disconnects;
    // The WebSocket layer closes on its own for protocol violations (section 1:
    // a frame over max_frame_size gives 1009, invalid UTF-8 1007).
    if (session->protocolError())
        ++m_stats.protocolCloses;
    m_clientIds.remove(session->clientId());
    if (auto it = m_connectionsFrom.find(session->peerAddress()); it != m_connectionsFrom.end() && --*it <= 0)
        m_connectionsFrom.erase(it);
    if (session->role() != Role::None) {
        m_subscriptions.removeAll(id);
        // Section 4.3: the responder leaving answers its requests with 503; the
        // requester leaving drops its requests silently.
        answerRequests(m_requests.takeByResponder(id), Status::Unavailable, "responder disconnected",
                       &m_stats.requestsResponderGone);
        m_stats.requestsOrphaned += quint64(m_requests.orphan(id));
        scheduleExpiry();
        // Section 4.5: grants live while one granting service stays connected.
        const QList<GrantTable::Grant> gone = m_grants.removeGranter(id);
        bool subGrantGone = false;
        for (const GrantTable::Grant &grant : gone) {
            subGrantGone = subGrantGone || grant.kind == Command::Esub;
            Q_EMIT grantRemoved(grant.kind, grant.pattern);
        }
        if (subGrantGone)
            revokeUncoveredSubscriptions();
    }
    qCInfo(lcSession).noquote() << "peer" << id << "from" << describe(session) << "disconnected:"
                                << session->closeCode() << session->closeReason();
    Q_EMIT peerDisconnected(id, session->closeCode(), session->closeReason());
    session->disconnect(this);
    session->deleteLater();
    finishShutdownIfIdle();
}

void Broker::closeSession(Session *session, WebSocket::CloseCode code, const QString &reason,
                          quint64 *counter)
{
    if (session->state() == Session::State::Closing)
        return;
    if (counter)
        ++*counter;
    const quint64 id = session->id();
    session->close(code, reason);
    // A closing responder answers nothing more: its requesters get their 503 now,
    // not only once the close handshake ends (section 4.3).
    answerRequests(m_requests.takeByResponder(id), Status::Unavailable, "responder disconnected", &m_stats.requestsResponderGone);
    scheduleExpiry();
    // A peer that never completes the close handshake (it may not be reading at
    // all) is cut off after the grace period.
    if (m_sessions.contains(id))
        QTimer::singleShot(m_config.shutdownGraceMs, session, [session] { session->abort(); });
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

QString Broker::backoffReason(const QHostAddress &address, qint64 nowMs) const
{
    const qint64 waitMs = m_keyBackoff.blockedFor(address, nowMs);
    if (waitMs == 0)
        return {};
    return QStringLiteral("too many invalid API keys from this address: retry in %1 s").arg((waitMs + 999) / 1000);
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

void Broker::onFrame(quint64 id, const QByteArray &frame, bool binary)
{
    Session *session = m_sessions.value(id);
    if (!session)
        return;
    if (session->state() == Session::State::Handshaking) {
        handleKey(session, frame);
        return;
    }
    routeFrame(session, frame, binary, 0);
}

void Broker::resumeHeldInput()
{
    const qint64 nowMs = now();
    while (!m_resumes.empty() && m_resumes.begin()->first <= nowMs) {
        const auto [atMs, id] = *m_resumes.begin();
        m_resumes.erase(m_resumes.begin());
        // Passed over: a session gone, closing (its input read on for its
        // close frame) or held again since with a time of its own.
        Session *session = openSession(id);
        if (!session || session->resumeAtMs() != atMs)
            continue;
        const Session::HeldFrame held = session->takeHeldFrame();
        if (routeFrame(session, held.frame, held.binary, held.offset))
            session->resumeInput();
    }
    scheduleResume();
}

void Broker::scheduleResume()
{
    if (m_resumes.empty()) {
        m_resumeTimer.stop();
        return;
    }
    const qint64 waitMs = qMax<qint64>(0, m_resumes.begin()->first - now());
    if (!m_resumeTimer.isActive() || m_resumeTimer.remainingTime() > waitMs)
        m_resumeTimer.start(int(qMin<qint64>(waitMs, std::numeric_limits<int>::max())));
}

bool Broker::routeFrame(Session *session, const QByteArray &frame, bool binary, qsizetype offset)
{
    // Section 3.6: one frame, one or more whole messages.
    FrameReader reader(QByteArrayView(frame).sliced(offset), m_config.codec, binary);
    Message message;
    ParseError error;
    // One clock reading per frame for the rate limit (section 7).
    const qint64 frameMs = session->rateLimited() ? now() : 0;
    while (session->state() == Session::State::Open) {
        const FrameReader::Item item = reader.next(message, error);
        if (item == FrameReader::Item::End)
            return true;
        const bool overRate = !session->takeToken(frameMs);
        if (overRate && session->rateLimitAction() == RateLimitAction::Pace) {
            // Section 7: this message and the rest wait, unread, for tokens.
            if (!session->inputHeld())
                ++m_stats.inputPauses;
            m_resumes.emplace(session->holdInput(frame, binary, offset + reader.messageStart(), frameMs),
                              session->id());
            scheduleResume();
            return false;
        }
        session->countMessageIn();
        ++m_stats.messagesIn;
        const bool parsed = item == FrameReader::Item::Message;
        if (parsed && tracing())
            trace(session->id(), TraceEvent::Direction::In, message);
        if (overRate) {
            // Section 7: a RES is never refused for the rate, since refusing an
            // answer would make its request's 504 certain; one that answers
            // nothing gets its 404 as before, at the cost a 429 would have.
            if (parsed && message.command == Command::Res) {
                ++m_stats.answersOverRate;
            } else {
                refuseRate(session, parsed ? ParseError{Status::LimitReached, {}, commandName(message.command).toByteArray(),
                                                        message.target, message.header(HeaderName::ReqId)}
                                           : error);
                continue;
            }
        }
        if (parsed)
            dispatch(session, message);
        else
            sendError(session, error);
    }
    return true;
}

void Broker::refuseRate(Session *session, ParseError error)
{
    // Echoes what was read of the message, like any other ERR.
    const RoleLimits &limits = m_config.limits(session->role());
    ++m_stats.rateLimited;
    error.status = Status::LimitReached;
    error.reason = "message rate limit exceeded (" + QByteArray::number(limits.maxMessagesPerSecond)
        + " per second, burst " + QByteArray::number(limits.messageBurst) + ")";
    sendError(session, error);
}

void Broker::dispatch(Session *session, Message &message)
{
    switch (message.command) {
    case Command::Sub: return handleSub(session, message);
    case Command::Unsub: return handleUnsub(session, message);
    case Command::Pub: return handlePub(session, message);
    case Command::Req: return handleReq(session, message);
    case Command::Res: return handleRes(session, message);
    case Command::Epub:
    case Command::Esub:
    case Command::Ereq: return handleGrant(session, message);
    case Command::Opt: return handleOpt(session, message);
    case Command::Err: break; // refused by validateMessage()
    }
}

// --- Commands --------------------------------------------------------------

void Broker::handleSub(Session *session, const Message &message)
{
    // Section 4.1: a client needs an ESUB grant covering the whole pattern.
    if (session->role() == Role::Client && !m_grants.covers(Command::Esub, message.target)) {
        sendError(session, Status::NotAllowed, "no ESUB grant covers " + message.target, message.command, message.target,
                  message.header(HeaderName::ReqId));
        return;
    }
    const int maxSubscriptions = m_config.limits(session->role()).maxSubscriptions;
    switch (m_subscriptions.add(session->id(), message.target, maxSubscriptions)) {
    case SubscriptionTable::AddResult::Added:
        Q_EMIT subscriptionAdded(session->id(), message.target);
        break;
    case SubscriptionTable::AddResult::Exists:
        break; // repeating a SUB changes nothing
    case SubscriptionTable::AddResult::LimitReached:
        sendError(session, Status::LimitReached,
                  "subscription limit reached (" + QByteArray::number(maxSubscriptions) + ")",
                  message.command, message.target, message.header(HeaderName::ReqId));
        break;
    }
}

void Broker::handleUnsub(Session *session, const Message &message)
{
    // Removes exactly that subscription; unknown ones are ignored, like a repeated SUB.
    if (m_subscriptions.remove(session->id(), message.target))
        Q_EMIT subscriptionRemoved(session->id(), message.target);
}

void Broker::handlePub(Session *session, Message &message)
{
    if (session->role() == Role::Client && !m_grants.allows(Command::Epub, message.target)) {
        sendError(session, Status::NotAllowed, "no EPUB grant for " + message.target, message.command, message.target,
                  message.header(HeaderName::ReqId));
        return;
    }
    ++m_stats.publishes;
    const QList<quint64> ids = m_subscriptions.match(message.target);
    if (ids.isEmpty())
        ++m_stats.publishesUnrouted;

    // Section 5: Client-Id is reserved; clients get the message without it and
    // services with the sender's id. Each form is serialised once and shared.
    message.removeHeader(HeaderName::ClientId);
    std::optional<OutFrame> forClients;
    std::optional<OutFrame> forServices;
    int deliveries = 0;
    for (const quint64 id : ids) {
        Session *receiver = openSession(id);
        if (!receiver) {
            ++m_stats.deliveriesDropped; // closing: section 6, nothing lost silently
            continue;
        }
        if (receiver->role() == Role::Service) {
            if (!forServices) {
                Message copy = message;
                copy.headers.append(Header{staticBytes(HeaderName::ClientId), session->clientId()});
                forServices = OutFrame::fromBytes(serialize(copy), message.binary);
            }
            deliveries += deliver(receiver, *forServices);
        } else {
            if (!forClients)
                forClients = OutFrame::fromBytes(serialize(message), message.binary);
            deliveries += deliver(receiver, *forClients);
        }
    }
    if (isSignalConnected(QMetaMethod::fromSignal(&Broker::messageRouted)))
        Q_EMIT messageRouted(session->id(), Command::Pub, message.target, deliveries);
}

void Broker::handleReq(Session *session, Message &message)
{
    const QByteArray reqId = message.header(HeaderName::ReqId);
    if (session->role() == Role::Client && !m_grants.allows(Command::Ereq, message.target)) {
        sendError(session, Status::NotAllowed, "no EREQ grant for " + message.target, message.command, message.target, reqId);
        return;
    }
    const int maxPending = m_config.limits(session->role()).maxPendingRequests;
    if (m_requests.pendingOf(session->id()) >= maxPending) {
        sendError(session, Status::LimitReached, "pending request limit reached (" + QByteArray::number(maxPending) + ")",
                  message.command, message.target, reqId);
        return;
    }
    // Section 4.3: Timeout overrides the default, capped by configuration.
    qint64 timeoutMs = m_config.requestTimeoutMs;
    const QByteArray timeoutText = message.header(HeaderName::Timeout);
    if (!timeoutText.isNull()) {
        const std::optional<qint64> asked = parseTimeoutMs(timeoutText);
        if (!asked) {
            sendError(session, Status::Malformed, "invalid Timeout '" + quoteInReason(timeoutText, 32) + "'",
                      message.command, message.target, reqId);
            return;
        }
        timeoutMs = qMin<qint64>(*asked, m_config.maxRequestTimeoutMs);
    }
    Session *chosen = chooseResponder(message.target);
    if (!chosen) {
        ++m_stats.requestsNoResponder;
        sendStatus(session->id(), message.target, reqId, Status::Unavailable, "no responder for " + message.target);
        return;
    }

    const QByteArray token =
        m_requests.add(session->id(), reqId, chosen->id(), message.target, now(), timeoutMs);
    ++m_stats.requests;
    message.setHeader(HeaderName::ReqId, token);
    message.removeHeader(HeaderName::ClientId);
    message.headers.append(Header{staticBytes(HeaderName::ClientId), session->clientId()});
    deliver(chosen, OutFrame::fromBytes(serialize(message), message.binary));
    // If the delivery failed the responder is closing: its disconnect answers 503.
    scheduleExpiry();
    if (isSignalConnected(QMetaMethod::fromSignal(&Broker::requestStarted))) {
        if (const PendingRequest *pending = m_requests.find(token))
            Q_EMIT requestStarted(requestInfo(*pending));
    }
    if (isSignalConnected(QMetaMethod::fromSignal(&Broker::messageRouted)))
        Q_EMIT messageRouted(session->id(), Command::Req, message.target, 1);
}

Session *Broker::chooseResponder(const QByteArray &target)
{
    // Least outstanding first; ties in turn, per target: of the least loaded,
    // in id order, the first after the one chosen last time, else the first.
    // One hash of the target when it was seen before (hashing QByteArray keys
    // is a few percent of the broker's time at full request load).
    auto lastIt = m_lastResponder.find(target);
    const quint64 last = lastIt == m_lastResponder.end() ? 0 : *lastIt;
    int fewest = std::numeric_limits<int>::max();
    Session *firstTied = nullptr;
    Session *nextInTurn = nullptr;
    for (const quint64 id : m_subscriptions.match(target)) {
        Session *candidate = openSession(id);
        if (!candidate || candidate->role() != Role::Service)
            continue;
        const int load = m_requests.outstanding(id);
        if (load < fewest) {
            fewest = load;
            firstTied = candidate;
            nextInTurn = nullptr;
        } else if (load > fewest) {
            continue;
        }
        if (!nextInTurn && id > last)
            nextInTurn = candidate;
    }
    if (!firstTied)
        return nullptr;
    Session *chosen = nextInTurn ? nextInTurn : firstTied;
    if (lastIt != m_lastResponder.end()) {
        *lastIt = chosen->id();
    } else {
        if (m_lastResponder.size() >= kRoundRobinCapacity)
            m_lastResponder.clear();
        m_lastResponder.insert(target, chosen->id());
    }
    return chosen;
}

void Broker::handleRes(Session *session, Message &message)
{
    const QByteArray reqId = message.header(HeaderName::ReqId);
    if (session->role() != Role::Service) {
        sendError(session, Status::NotAllowed, "only services answer requests", message.command, message.target, reqId);
        return;
    }
    // Section 4.4: only the connection the request went to may answer, once.
    const PendingRequest *pending = m_requests.find(reqId);
    if (!pending || pending->responder != session->id()) {
        ++m_stats.responsesUnknown;
        sendError(session, Status::UnknownRequest, "unknown request " + quoteInReason(reqId), message.command, message.target, reqId);
        return;
    }
    const PendingRequest request = *m_requests.take(reqId);
    scheduleExpiry();
    Session *requester = request.requester ? openSession(request.requester) : nullptr;
    if (!requester) {
        ++m_stats.responsesDiscarded;
        Q_EMIT requestFinished(request.token, 0);
        return;
    }
    message.setHeader(HeaderName::ReqId, request.requesterReqId);
    message.removeHeader(HeaderName::ClientId);
    ++m_stats.responses;
    deliver(requester, OutFrame::fromMixedBytes(serialize(message), message.binary));
    bool ok = false;
    const int status = message.header(HeaderName::Status).toInt(&ok);
    Q_EMIT requestFinished(request.token, ok ? status : Status::Ok);
    if (isSignalConnected(QMetaMethod::fromSignal(&Broker::messageRouted)))
        Q_EMIT messageRouted(session->id(), Command::Res, message.target, 1);
}

void Broker::handleGrant(Session *session, const Message &message)
{
    // Section 4.5: grants come from services only.
    if (session->role() != Role::Service) {
        sendError(session, Status::NotAllowed, "only services grant", message.command, message.target,
                  message.header(HeaderName::ReqId));
        return;
    }
    if (m_grants.add(message.command, message.target, session->id()))
        Q_EMIT grantAdded(message.command, message.target, session->id());
}

void Broker::handleOpt(Session *session, const Message &message)
{
    // Section 4.7: every option is checked before any is applied.
    std::optional<bool> batch;
    for (const Header &header : message.headers) {
        if (headerNameEquals(header.name, HeaderName::ReqId))
            continue;
        if (headerNameEquals(header.name, HeaderName::Batch)) {
            const QByteArray value = header.value.toLower();
            if (value != "on" && value != "off") {
                sendError(session, Status::Malformed, "Batch must be on or off", message.command, message.target,
                          message.header(HeaderName::ReqId));
                return;
            }
            batch = value == "on";
            continue;
        }
        sendError(session, Status::Malformed, "unknown option '" + quoteInReason(header.name) + "'", message.command,
                  message.target, message.header(HeaderName::ReqId));
        return;
    }
    if (batch)
        session->setBatching(*batch);
    sendStatus(session->id(), message.target, message.header(HeaderName::ReqId), Status::Ok, QByteArray());
}

// --- Requests --------------------------------------------------------------

void Broker::answerRequests(const QList<PendingRequest> &requests, int status, const QByteArray &reason,
                            quint64 *counter)
{
    for (const PendingRequest &request : requests) {
        if (request.requester != 0) {
            ++*counter;
            sendStatus(request.requester, request.target, request.requesterReqId, status, reason);
        }
        Q_EMIT requestFinished(request.token, request.requester ? status : 0);
    }
}

void Broker::onExpiry()
{
    m_expiryAt = -1;
    QList<PendingRequest> expired = m_requests.takeExpired(now());
    for (const PendingRequest &request : std::as_const(expired)) {
        const QByteArray reason =
            "request timed out after " + QByteArray::number(request.deadlineMs - request.startedMs) + " ms";
        answerRequests({request}, Status::TimedOut, reason, &m_stats.requestsTimedOut);
    }
    scheduleExpiry();
}

void Broker::scheduleExpiry()
{
    const std::optional<qint64> next = m_requests.nextDeadline();
    if (!next) {
        // A running timer is left to fire once and find nothing: stopping and
        // starting it around every request of a lone requester costs more.
        return;
    }
    if (m_expiryAt >= 0 && m_expiryAt <= *next && m_expiryTimer.isActive())
        return; // already due no later than needed
    m_expiryAt = *next;
    m_expiryTimer.start(int(qBound(qint64(0), *next - now(), qint64(std::numeric_limits<int>::max()))));
}

// --- Output ----------------------------------------------------------------

bool Broker::deliver(Session *session, const OutFrame &frame)
{
    if (session->send(frame)) {
        ++m_stats.messagesOut;
        return true;
    }
    ++m_stats.deliveriesDropped;
    return false;
}

void Broker::scheduleBatchFlush(quint64 id)
{
    m_batchesDue.append(id);
    // At the end of the turn, after this turn's sockets and timers: every frame
    // read in this turn is routed first.
    m_batchFlush.schedule();
}

void Broker::flushBatches()
{
    m_batchFlush.cancel();
    m_batchesFlushing.swap(m_batchesDue);
    for (const quint64 id : std::as_const(m_batchesFlushing)) {
        if (Session *session = m_sessions.value(id))
            session->flushBatch();
    }
    m_batchesFlushing.clear();
    // The batches just written are sent in this turn too.
    if (m_plainServer)
        m_plainServer->coalescer()->flush();
}

void Broker::connectNotify(const QMetaMethod &signal)
{
    if (signal == QMetaMethod::fromSignal(&Broker::messageTraced))
        m_tracing.store(true, std::memory_order_relaxed);
}

void Broker::disconnectNotify(const QMetaMethod &signal)
{
    // An invalid method: everything was disconnected at once.
    static const QMetaMethod traced = QMetaMethod::fromSignal(&Broker::messageTraced);
    if (!signal.isValid() || signal == traced)
        m_tracing.store(isSignalConnected(traced), std::memory_order_relaxed);
}

void Broker::trace(quint64 peer, TraceEvent::Direction direction, const Message &message)
{
    TraceEvent event;
    event.atMs = QDateTime::currentMSecsSinceEpoch();
    event.peer = peer;
    event.direction = direction;
    event.command = message.command;
    event.target = message.target;
    event.headers = message.headers;
    event.bodySize = message.body.size();
    event.body = message.body.size() > TraceEvent::kBodyPreview ? message.body.left(TraceEvent::kBodyPreview)
                                                                : message.body;
    event.binary = message.binary;
    Q_EMIT messageTraced(event);
}

void Broker::sendError(Session *session, int status, const QByteArray &reason, Command command,
                       const QByteArray &target, const QByteArray &reqId)
{
    ParseError error{status, reason, commandName(command).toByteArray(), target, reqId};
    sendError(session, error);
}

void Broker::sendError(Session *session, const ParseError &error)
{
    Message err;
    err.command = Command::Err;
    err.target = error.target.isEmpty() ? QByteArray("-") : error.target;
    if (!Target::checkSyntax(err.target, m_config.codec.maxTargetLength))
        err.target = "-";
    err.headers.append(Header{HeaderName::Status.toByteArray(), QByteArray::number(error.status)});
    if (!error.reqId.isEmpty())
        err.headers.append(Header{HeaderName::ReqId.toByteArray(), echoControlsReplaced(error.reqId)});
    if (!error.command.isEmpty())
        err.headers.append(Header{HeaderName::Command.toByteArray(), error.command});
    err.body = error.reason;
    ++m_stats.errorsSent;
    if (error.status == Status::TooLarge)
        ++m_stats.messagesTooLarge;
    else if (error.status == Status::LimitReached)
        ++m_stats.limitRefusals;
    if (tracing())
        trace(session->id(), TraceEvent::Direction::Out, err);
    deliver(session, OutFrame::fromMixedBytes(serialize(err), false));
}

void Broker::sendStatus(quint64 id, const QByteArray &target, const QByteArray &reqId, int status,
                        const QByteArray &reason)
{
    Session *session = openSession(id);
    if (!session) {
        ++m_stats.deliveriesDropped;
        return;
    }
    Message res;
    res.command = Command::Res;
    res.target = target;
    if (!reqId.isEmpty())
        res.headers.append(Header{HeaderName::ReqId.toByteArray(), reqId});
    res.headers.append(Header{HeaderName::Status.toByteArray(), QByteArray::number(status)});
    res.body = reason;
    if (tracing())
        trace(id, TraceEvent::Direction::Out, res);
    deliver(session, OutFrame::fromMixedBytes(serialize(res), false));
}

// --- Grants ----------------------------------------------------------------

void Broker::revokeUncoveredSubscriptions()
{
    // Section 4.5: a client subscription no grant covers any more is removed, and
    // the client is told with ERR 403.
    // A copy: sending an ERR may close a slow consumer, which changes m_sessions.
    const QList<Session *> sessions = m_sessions.values();
    for (Session *session : sessions) {
        if (session->role() != Role::Client)
            continue;
        const QList<QByteArray> patterns = m_subscriptions.patternsOf(session->id());
        for (const QByteArray &pattern : patterns) {
            if (m_grants.covers(Command::Esub, pattern))
                continue;
            m_subscriptions.remove(session->id(), pattern);
            ++m_stats.subscriptionsRevoked;
            if (session->state() == Session::State::Open)
                sendError(session, Status::NotAllowed, "the grant for this subscription was withdrawn", Command::Sub, pattern,
                          QByteArray());
            Q_EMIT subscriptionRemoved(session->id(), pattern);
        }
    }
}

// --- Snapshots -------------------------------------------------------------

PeerInfo Broker::peerInfo(const Session *session) const
{
    PeerInfo info;
    info.id = session->id();
    info.role = session->role();
    info.keyName = session->keyName();
    info.clientId = session->clientId();
    info.address = session->peerAddress();
    info.port = session->peerPort();
    info.connectedAt = session->connectedAt();
    info.messagesIn = session->messagesIn();
    info.messagesOut = session->messagesOut();
    info.bytesIn = session->bytesIn();
    info.bytesOut = session->bytesOut();
    info.bytesQueued = session->bytesQueued();
    info.subscriptions = int(m_subscriptions.countOf(session->id()));
    info.pendingRequests = m_requests.pendingOf(session->id());
    info.inputPauses = session->inputPauses();
    return info;
}

QList<PeerInfo> Broker::peers() const
{
    QList<PeerInfo> out;
    out.reserve(m_sessions.size());
    for (const Session *session : m_sessions)
        out.append(peerInfo(session));
    std::sort(out.begin(), out.end(), [](const PeerInfo &a, const PeerInfo &b) { return a.id < b.id; });
    return out;
}

std::optional<PeerInfo> Broker::peer(quint64 id) const
{
    const Session *session = m_sessions.value(id);
    if (!session)
        return std::nullopt;
    return peerInfo(session);
}

QList<QByteArray> Broker::subscriptionsOf(quint64 id) const
{
    return m_subscriptions.patternsOf(id);
}

RequestInfo Broker::requestInfo(const PendingRequest &request) const
{
    const qint64 nowMs = now();
    return RequestInfo{request.token,      request.requesterReqId, request.target,
                       request.requester,  request.responder,      nowMs - request.startedMs,
                       qMax<qint64>(0, request.deadlineMs - nowMs), request.startedMs, request.deadlineMs};
}

QList<RequestInfo> Broker::pendingRequests() const
{
    QList<RequestInfo> out;
    const QList<PendingRequest> all = m_requests.all();
    for (const PendingRequest &request : all)
        out.append(requestInfo(request));
    return out;
}

} // namespace Middleman
