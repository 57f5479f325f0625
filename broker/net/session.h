#pragma once
// Session: one peer's WebSocket, its handshake state, counters and outbound queue
// accounting (docs/protocol.md sections 1, 2 and 6). Lives on the broker's thread.
//
// The WebSocket framing is the shared WebSocket::FrameReader and frame headers
// over the upgraded socket (docs/design.md, "WebSocket layer").

#include "brokerconfig.h"
#include "clock.h"
#include "epolldispatcher.h"
#include "websocket.h"

#include <QByteArray>
#include <QDateTime>
#include <QHostAddress>
#include <QObject>
#include <QPointer>
#include <QString>

#include <memory>
#include <utility>

class QSocketNotifier;
class QTcpSocket;
class QTimer;

namespace Middleman {

class CoalescingSocket;

// One outbound message, serialised once and shared by every receiver (implicit
// sharing): each writes a frame header of its own and then these bytes.
struct OutFrame
{
    QByteArray bytes;
    bool isBinary = false;
    qint64 size = 0; // payload bytes

    // Bytes in the frame type given: for forwarded messages, whose text frames are
    // UTF-8 already and gain only ASCII headers (the hot path: no check).
    static OutFrame fromBytes(const QByteArray &bytes, bool binary);
    // For messages that mix bytes from other frames (a ReqID restored on a RES, a
    // value echoed in an ERR): text unless the bytes are not UTF-8 (RFC 6455 5.6),
    // then binary rather than with bytes replaced.
    static OutFrame fromMixedBytes(const QByteArray &bytes, bool binary);
};

class Session : public QObject, private DirectReader
{
    Q_OBJECT
public:
    enum class State { Handshaking, Open, Closing };

    // Takes the upgraded socket (it becomes the session's child).
    Session(quint64 id, QTcpSocket *socket, const BrokerConfig &config, QObject *parent = nullptr);
    ~Session() override;

    quint64 id() const { return m_id; }
    State state() const { return m_state; }
    Role role() const { return m_role; }
    const QString &keyName() const { return m_keyName; }
    const QByteArray &clientId() const { return m_clientId; }
    QHostAddress peerAddress() const { return m_peerAddress; }
    quint16 peerPort() const { return m_peerPort; }
    QDateTime connectedAt() const { return m_connectedAt; }
    // Section 1: a connection that opted in (OPT Batch: on) gets the messages
    // queued for it in one event-loop turn packed into as few WebSocket messages
    // as the frame type and kMaxBatchBytes allow. batchStarted() asks the broker
    // to call flushBatch() once the turn's frames are handled.
    static constexpr qint64 kMaxBatchBytes = 64 * 1024;
    bool batching() const { return m_batching; }
    void setBatching(bool on);
    void flushBatch();

    // Reads the bytes that came with the upgrade request, then the socket's.
    // Call once the session's signals are connected.
    void start(const QByteArray &pending);

    // Handshake accepted (section 2): replies "MM OK" and starts routing under
    // the role's limits (section 7).
    void accept(Role role, const QString &keyName, const QByteArray &clientId, const RoleLimits &limits);

    // Queues a frame. Returns false when the connection is not open or when this
    // frame takes its outbound queue over the limit (section 6); in the latter case
    // queueOverflow() has been emitted and the session is closing.
    bool send(const OutFrame &frame);

    // Closes with a code and a reason; the reason is sent in the close frame.
    void close(WebSocket::CloseCode code, const QString &reason);
    // Drops the TCP connection without a close handshake (shutdown fallback).
    void abort();

    // Ping sweep (section 6): returns false if the peer missed too many pongs.
    bool pingIfIdle(qint64 nowMs, qint64 intervalMs, int maxMissed);

    // Counters, for the console and the stats.
    quint64 messagesIn() const { return m_messagesIn; }
    quint64 messagesOut() const { return m_messagesOut; }
    quint64 bytesIn() const { return m_bytesIn; }
    quint64 bytesOut() const { return m_bytesOut; }
    qint64 bytesQueued() const { return m_queued; }
    qint64 queueLimit() const { return m_queueLimit; }
    void countMessageIn() { ++m_messagesIn; }

    // Section 7: the message rate limit, a token bucket refilled lazily on use.
    bool rateLimited() const { return m_ratePerSecond > 0; }
    RateLimitAction rateLimitAction() const { return m_rateLimitAction; }
    // Takes one token; false when the bucket is empty (or rate 0: always true).
    bool takeToken(qint64 nowMs)
    {
        if (m_ratePerSecond == 0)
            return true;
        refill(nowMs);
        if (m_milliTokens < 1000)
            return false;
        m_milliTokens -= 1000;
        return true;
    }

    // Pacing (rate_limit_action "pace", docs/design.md "Pacing"): a connection
    // out of tokens is not read until its bucket holds enough for a few
    // milliseconds of its rate again; TCP pushes back on the sender meanwhile.
    // The rest of the frame being routed waits here, from `offset`; ping
    // misses are not counted meanwhile (the peer's pongs wait unread).
    struct HeldFrame
    {
        QByteArray frame;
        qsizetype offset = 0;
        bool binary = false;
    };
    // Returns when (monotonicMs()) the bucket holds those tokens: then the
    // broker routes the held frame on and calls resumeInput().
    qint64 holdInput(const QByteArray &frame, bool binary, qsizetype offset, qint64 nowMs);
    bool inputHeld() const { return m_hold != nullptr; }
    // The time holdInput() last returned; -1 when the input is not held.
    qint64 resumeAtMs() const { return m_hold ? m_hold->resumeAtMs : -1; }
    // The frame held by holdInput(), to route on when it is time; the input
    // stays held until resumeInput().
    HeldFrame takeHeldFrame() { return std::exchange(m_hold->frame, HeldFrame()); }
    // Reads on: the frames read already, then the socket; stops at once if
    // one of them holds the input again.
    void resumeInput();
    quint64 inputPauses() const { return m_inputPauses; }

    // A number: a peer may close with any code from 3000 to 4999, which
    // WebSocket::CloseCode does not name.
    int closeCode() const { return m_closeCode; }
    // True when the peer broke RFC 6455 (closed with 1002, 1007 or 1009).
    bool protocolError() const { return m_protocolError; }
    QString closeReason() const { return m_closeReason; }

Q_SIGNALS:
    // Every WebSocket message, first the key and then protocol frames.
    void frameReceived(quint64 id, const QByteArray &frame, bool binary);
    void handshakeTimedOut(quint64 id);
    void queueOverflow(quint64 id);
    // A batch was started; flushBatch() is due before the event loop waits again.
    void batchStarted(quint64 id);
    // The socket is gone; the broker forgets the session and deletes it.
    void disconnected(quint64 id);

private:
    void refill(qint64 nowMs)
    {
        if (nowMs > m_refilledAtMs) {
            // Tokens in thousandths, so that every millisecond counts.
            m_milliTokens = qMin(m_burstMilli, m_milliTokens + (nowMs - m_refilledAtMs) * m_ratePerSecond);
            m_refilledAtMs = nowMs;
        }
    }
    // Ends a hold: the socket may be read again.
    void releaseInput();
    void onReadyRead();
    // ws:// under the broker's dispatcher: the input is read here, one read()
    // per readiness, instead of through Qt's read buffer (docs/design.md,
    // "Direct reads").
    void startDirectReads();
    void stopDirectReads();
    bool readReady(char *buffer, qsizetype size) override;
    void readEvents();
    // Any frame from the peer shows it is alive (section 6, pings).
    void markAlive()
    {
        m_lastSeenMs = monotonicMs();
        m_missedPings = 0;
    }
    void onPeerClose(quint16 code, const QByteArray &reason);
    void onBytesWritten(qint64 bytes);
    void onDisconnected();
    void write(const OutFrame &frame);
    void writeFrame(WebSocket::Opcode opcode, QByteArrayView payload);
    void sendClose(quint16 code, QByteArrayView reason);

    // Static after construction.
    const quint64 m_id;
    QTcpSocket *const m_socket;
    CoalescingSocket *const m_transport; // the ws:// socket; none for wss://
    QHostAddress m_peerAddress;
    quint16 m_peerPort = 0;
    QDateTime m_connectedAt;

    // Set once by accept(); before it, the client limits hold.
    Role m_role = Role::None;
    QString m_keyName;
    QByteArray m_clientId;
    qint64 m_queueLimit;
    qint64 m_ratePerSecond = 0;
    qint64 m_burstMilli = 0;
    RateLimitAction m_rateLimitAction = RateLimitAction::Pace;

    State m_state = State::Handshaking;
    bool m_batching = false;
    // The batch not yet handed to the socket: its first message, sent as it is
    // when no other joins it, and from the second on all its bytes.
    int m_batchCount = 0;
    qint64 m_batchBytes = 0;
    OutFrame m_batchFirst;
    QByteArray m_batch;
    WebSocket::FrameReader m_reader;
    EpollEventDispatcher *m_readDispatcher = nullptr; // while reading directly
    int m_directFd = -1;
    QTimer *m_handshakeTimer = nullptr;
    qint64 m_lastSeenMs = 0;
    int m_missedPings = 0;
    qint64 m_queued = 0;
    quint64 m_messagesIn = 0;
    quint64 m_messagesOut = 0;
    quint64 m_bytesIn = 0;
    qint64 m_milliTokens = 0; // starts full (accept())
    qint64 m_refilledAtMs = 0;
    // While the input is held, from holdInput() to resumeInput() or close():
    // made then, so that the other connections pay one pointer for it.
    struct Hold
    {
        HeldFrame frame;
        QPointer<QSocketNotifier> notifier; // turned off meanwhile
        qint64 resumeAtMs = 0;
    };
    std::unique_ptr<Hold> m_hold;
    quint64 m_inputPauses = 0;
    quint64 m_bytesOut = 0;
    quint16 m_closeCode = WebSocket::CloseNormal;
    QString m_closeReason;
    bool m_disconnectReported = false;
    bool m_protocolError = false;
    bool m_closeSent = false;
};

} // namespace Middleman
