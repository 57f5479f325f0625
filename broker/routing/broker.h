#pragma once
// Broker: accepts WebSocket peers and routes the middleman protocol between them
// (docs/protocol.md, all sections). Lives on the thread that creates it; every call and
// signal is on that thread.

#include "brokerconfig.h"
#include "brokertypes.h"
#include "clock.h"
#include "granttable.h"
#include "keybackoff.h"
#include "keystore.h"
#include "requesttracker.h"
#include "subscriptiontable.h"
#include "turnend.h"
#include "websocket.h"

#include <QHash>
#include <QObject>
#include <QTimer>
#include <QUrl>

#include <atomic>
#include <map>
#include <limits>
#include <optional>

class QTcpServer;
class QTcpSocket;

namespace Middleman {

class Session;
class PlainServer;
class TlsServer;
class Upgrader;
struct OutFrame;

class Broker : public QObject
{
    Q_OBJECT
public:
    // The config should have passed BrokerConfig::validate(). No I/O happens here.
    explicit Broker(const BrokerConfig &config, QObject *parent = nullptr);
    ~Broker() override;

    // Starts listening on config().listenAddress and port (0 picks a free port);
    // with config().tls, reads the certificate and key and serves wss:// only.
    bool listen();
    QString errorString() const { return m_errorString; }
    bool isListening() const;
    quint16 serverPort() const;
    QUrl serverUrl() const;

    // Graceful stop (section 6, issue notes): stop accepting, answer pending
    // requests with 503, close every peer with 1001; stopped() follows once all
    // peers are gone (or after config().shutdownGraceMs).
    void shutdown();
    bool isShuttingDown() const { return m_shuttingDown; }

    const BrokerConfig &config() const { return m_config; }
    BrokerStats stats() const { return m_stats; }

    // Snapshots.
    QList<PeerInfo> peers() const;
    std::optional<PeerInfo> peer(quint64 id) const;
    QList<QByteArray> subscriptionsOf(quint64 id) const;
    QList<GrantTable::Grant> grants() const { return m_grants.all(); }
    QList<GrantTable::Grant> grantsOf(quint64 id) const { return m_grants.grantsOf(id); }
    QList<RequestInfo> pendingRequests() const;
    // Connections whose WebSocket is open, in the handshake or past it.
    qsizetype connectionCount() const { return m_sessions.size(); }

    // Closes a peer with 1000 and the given reason (operator action).
    bool disconnectPeer(quint64 id, const QString &reason);

Q_SIGNALS:
    void peerConnected(const Middleman::PeerInfo &peer);   // after MM OK
    void peerDisconnected(quint64 id, int closeCode, const QString &reason);
    // SUB and UNSUB, and subscriptions revoked with their grant. A disconnect
    // removes a peer's subscriptions without a signal per pattern.
    void subscriptionAdded(quint64 id, const QByteArray &pattern);
    void subscriptionRemoved(quint64 id, const QByteArray &pattern);
    // A grant made by a service (granter 0: configuration), and a grant that no
    // connected service holds any more.
    void grantAdded(Middleman::Command kind, const QByteArray &pattern, quint64 granter);
    void grantRemoved(Middleman::Command kind, const QByteArray &pattern);
    void requestStarted(const Middleman::RequestInfo &request);
    // status: the answer's Status (200 when it has none), or 503/504 from the broker;
    // 0 when the answer was discarded because the requester had gone.
    void requestFinished(const QByteArray &token, int status);
    // One routed message: who sent it, what, and how many peers it reached.
    void messageRouted(quint64 from, Middleman::Command command, const QByteArray &target, int deliveries);
    // Every message a peer sends that parses, and every message the broker makes
    // (TraceEvent). Built only while something is connected to this signal, so a
    // broker nobody watches pays one flag check per message for it.
    void messageTraced(const Middleman::TraceEvent &event);
    void stopped();

protected:
    void connectNotify(const QMetaMethod &signal) override;
    void disconnectNotify(const QMetaMethod &signal) override;

private:
    void onUpgraded(QTcpSocket *socket, const QByteArray &origin, const QByteArray &pending);
    void onUpgradeTimedOut(const QHostAddress &address, quint16 port);
    // Accepting stopped (an accept error, or few descriptors left): resumes later.
    void pauseAccepting(const QString &why);
    bool listenTls();
    QTcpServer *listener() const; // the ws:// or wss:// listening socket
    void onFrame(quint64 id, const QByteArray &frame, bool binary);
    // Routes the messages of a frame from `offset` on; false when the peer
    // was out of tokens and the rest waits (Session::holdInput()).
    bool routeFrame(Session *session, const QByteArray &frame, bool binary, qsizetype offset);
    // Pacing (section 7): the held sessions whose time has come go on.
    void resumeHeldInput();
    void scheduleResume();
    void onDisconnected(quint64 id);
    void onPingSweep();
    void onExpiry();

    // Closes a new WebSocket that gets no session (limits, shutdown), and frees it.
    void refuse(QTcpSocket *socket, const QByteArray &pending, WebSocket::CloseCode code,
                const QString &reason);
    void handleKey(Session *session, const QByteArray &frame);
    // The close for an address backing off after bad keys (section 7); empty when it may try.
    QString backoffReason(const QHostAddress &address, qint64 nowMs) const;
    void dispatch(Session *session, Message &message);
    // ERR 429 for a message over the connection's message rate (section 7).
    void refuseRate(Session *session, ParseError error);
    void handleSub(Session *session, const Message &message);
    void handleUnsub(Session *session, const Message &message);
    void handlePub(Session *session, Message &message);
    void handleReq(Session *session, Message &message);
    // The open service subscribed to `target` with the fewest outstanding
    // requests, ties taken in turn (section 4.3); nullptr when there is none.
    Session *chooseResponder(const QByteArray &target);
    void handleRes(Session *session, Message &message);
    void handleGrant(Session *session, const Message &message);
    void handleOpt(Session *session, const Message &message);

    // The one exit for refusals: ERR with a status and reason (section 4.8).
    void sendError(Session *session, int status, const QByteArray &reason, Command command,
                   const QByteArray &target, const QByteArray &reqId);
    void sendError(Session *session, const ParseError &error);
    // Broker-made RES with a Status (503, 504, OPT's 200).
    void sendStatus(quint64 id, const QByteArray &target, const QByteArray &reqId, int status,
                    const QByteArray &reason);
    bool deliver(Session *session, const OutFrame &frame);
    // Batched output (OPT Batch: on) goes out once per event-loop turn.
    void scheduleBatchFlush(quint64 id);
    void flushBatches();
    // One relaxed load per message instead of isSignalConnected(), which locks.
    bool tracing() const { return m_tracing.load(std::memory_order_relaxed); }
    void trace(quint64 peer, TraceEvent::Direction direction, const Message &message);
    // The one exit for closes: records the reason, counts, and aborts if the peer
    // does not finish the close handshake in time.
    void closeSession(Session *session, WebSocket::CloseCode code, const QString &reason,
                      quint64 *counter);

    void answerRequests(const QList<PendingRequest> &requests, int status, const QByteArray &reason,
                        quint64 *counter);
    void revokeUncoveredSubscriptions();
    void scheduleExpiry();
    QByteArray newClientId();
    static qint64 now() { return monotonicMs(); }
    Session *openSession(quint64 id) const;
    PeerInfo peerInfo(const Session *session) const;
    RequestInfo requestInfo(const PendingRequest &request) const;
    void finishShutdownIfIdle();

    // Static after construction.
    const BrokerConfig m_config;
    KeyStore m_keys;
    KeyBackoff m_keyBackoff;

    Upgrader *m_upgrader = nullptr; // the WebSocket upgrade of every new connection
    PlainServer *m_plainServer = nullptr; // accepts ws://
    TlsServer *m_tlsServer = nullptr; // accepts wss:// when TLS is configured
    QString m_errorString;
    int m_maxConnections = 0; // max_connections, within the open-file limit (listen())
    QTimer m_acceptRetryTimer;
    int m_acceptRetryMs = 0;
    qint64 m_lastAcceptPauseMs = std::numeric_limits<qint64>::min() / 2;
    QHash<quint64, Session *> m_sessions;
    QHash<QByteArray, quint64> m_clientIds; // Client-Id -> connection
    QHash<QHostAddress, int> m_connectionsFrom; // open sessions per remote address
    quint64 m_nextId = 0;

    SubscriptionTable m_subscriptions;
    GrantTable m_grants;
    RequestTracker m_requests;
    QHash<QByteArray, quint64> m_lastResponder; // round robin among ties, per target

    // Sessions whose input is held (section 7), by when they go on: one timer
    // for them all, and nothing per session that is not held.
    std::multimap<qint64, quint64> m_resumes;
    QTimer m_resumeTimer;
    QTimer m_pingTimer;
    QTimer m_expiryTimer;
    qint64 m_expiryAt = -1;
    QTimer m_shutdownTimer;
    bool m_shuttingDown = false;
    bool m_stopped = false;
    bool m_closingAll = false; // inside shutdown()'s loop
    BrokerStats m_stats;
    QList<quint64> m_batchesDue; // sessions holding a batch this turn
    QList<quint64> m_batchesFlushing; // the ones flushBatches() is sending (kept for its capacity)
    TurnEnd m_batchFlush; // runs flushBatches() at the end of a turn that started a batch
    std::atomic<bool> m_tracing = false; // something is connected to messageTraced
};

} // namespace Middleman
