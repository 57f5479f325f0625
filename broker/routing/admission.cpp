// Broker, admission: an upgraded connection is refused or becomes a Session;
// its key gives it a role (docs/protocol.md §2); its end is counted and
// cleans up after it.

#include "broker.h"

#include "brokerdetail.h"
#include "clock.h"
#include "logging.h"
#include "session.h"
#include "status.h"

#include <QRandomGenerator>
#include <QTcpSocket>

namespace Middleman {

using BrokerDetail::describe;
using BrokerDetail::roleName;

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

QString Broker::backoffReason(const QHostAddress &address, qint64 nowMs) const
{
    const qint64 waitMs = m_keyBackoff.blockedFor(address, nowMs);
    if (waitMs == 0)
        return {};
    return QStringLiteral("too many invalid API keys from this address: retry in %1 s").arg((waitMs + 999) / 1000);
}

} // namespace Middleman
