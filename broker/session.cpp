#include "session.h"

#include "clock.h"
#include "coalescingsocket.h"
#include "logging.h"

#include <QTimer>
#include <QWebSocket>

namespace Middleman {

namespace {

// Bytes a server frame of this payload takes on the wire (RFC 6455 5.2; unmasked).
qint64 wireSize(qint64 payload)
{
    return payload + 2 + (payload > 125 ? 2 : 0) + (payload > 65535 ? 6 : 0);
}

} // namespace

OutFrame OutFrame::fromBytes(const QByteArray &bytes, bool binary)
{
    OutFrame frame;
    frame.isBinary = binary;
    frame.size = bytes.size();
    frame.bytes = bytes;
    frame.m_text = std::make_shared<QString>();
    return frame;
}

OutFrame OutFrame::fromMixedBytes(const QByteArray &bytes, bool binary)
{
    return fromBytes(bytes, binary || !QByteArrayView(bytes).isValidUtf8());
}

Session::Session(quint64 id, QWebSocket *socket, const BrokerConfig &config, QObject *parent)
    : QObject(parent)
    , m_id(id)
    , m_socket(socket)
    , m_queueLimit(config.outboundQueueBytes)
    , m_peerAddress(socket->peerAddress())
    , m_peerPort(socket->peerPort())
    , m_connectedAt(QDateTime::currentDateTimeUtc())
    , m_ratePerSecond(config.maxMessagesPerSecond)
    , m_burstMilli(qint64(config.messageBurst) * 1000)
    , m_lastSeenMs(monotonicMs())
    , m_milliTokens(m_burstMilli)
    , m_refilledAtMs(m_lastSeenMs)
{
    m_socket->setParent(this);
    m_socket->setMaxAllowedIncomingFrameSize(quint64(config.maxFrameSize));
    m_socket->setMaxAllowedIncomingMessageSize(quint64(config.maxFrameSize));

    connect(m_socket, &QWebSocket::textMessageReceived, this, &Session::onText);
    connect(m_socket, &QWebSocket::binaryMessageReceived, this, &Session::onBinary);
    connect(m_socket, &QWebSocket::bytesWritten, this, &Session::onBytesWritten);
    connect(m_socket, &QWebSocket::pong, this, [this] {
        m_lastSeenMs = monotonicMs();
        m_missedPings = 0;
    });
    connect(m_socket, &QWebSocket::disconnected, this, &Session::onDisconnected);

    // Section 2: the key must arrive within the handshake timeout.
    m_handshakeTimer = new QTimer(this);
    m_handshakeTimer->setSingleShot(true);
    m_handshakeTimer->setTimerType(Qt::PreciseTimer);
    connect(m_handshakeTimer, &QTimer::timeout, this, [this] { Q_EMIT handshakeTimedOut(m_id); });
    m_handshakeTimer->start(config.handshakeTimeoutMs);
}

Session::~Session() = default;

void Session::accept(Role role, const QString &keyName, const QByteArray &clientId)
{
    Q_ASSERT(m_state == State::Handshaking);
    m_role = role;
    m_keyName = keyName;
    m_clientId = clientId;
    m_state = State::Open;
    delete m_handshakeTimer;
    m_handshakeTimer = nullptr;
    const QString ok = QStringLiteral("MM OK");
    m_queued += wireSize(ok.size());
    m_socket->sendTextMessage(ok);
}

bool Session::send(const OutFrame &frame)
{
    if (m_state != State::Open)
        return false;
    const qint64 bytes = wireSize(frame.size);
    if (m_queued + bytes > m_queueLimit) {
        // Everything a frame fans out is queued before the event loop runs again;
        // first hand the kernel what it takes now (bytesWritten() arrives
        // synchronously), so only a peer that really is not reading is closed.
        flushBatch();
        if (m_transport)
            m_transport->sendPending();
        m_socket->flush();
    }
    if (m_queued + bytes > m_queueLimit) {
        // Section 5: a slow consumer is closed; nobody else waits for it.
        Q_EMIT queueOverflow(m_id);
        return false;
    }
    ++m_messagesOut;
    m_bytesOut += quint64(frame.size);
    if (!m_batching) {
        m_queued += bytes;
        write(frame);
        return true;
    }
    // A batch holds one frame type and closes at kMaxBatchBytes; a message that
    // does not fit starts the next one. The frame header is counted at the flush.
    if (m_batchCount > 0 && (frame.isBinary != m_batchFirst.isBinary || m_batchBytes + frame.size > kMaxBatchBytes))
        flushBatch();
    m_queued += frame.size;
    m_batchBytes += frame.size;
    if (++m_batchCount == 1) {
        m_batchFirst = frame;
        Q_EMIT batchStarted(m_id);
        return true;
    }
    if (m_batchCount == 2) {
        m_batch.reserve(m_batchFirst.size + frame.size);
        m_batch.append(m_batchFirst.bytes);
    }
    m_batch.append(frame.bytes);
    return true;
}

void Session::write(const OutFrame &frame)
{
    if (frame.isBinary)
        m_socket->sendBinaryMessage(frame.bytes);
    else
        m_socket->sendTextMessage(frame.text());
}

void Session::setTransport(CoalescingSocket *socket)
{
    m_transport = socket;
}

void Session::setBatching(bool on)
{
    if (!on)
        flushBatch(); // what was batched goes out before anything sent after
    m_batching = on;
}

void Session::flushBatch()
{
    if (m_batchCount == 0)
        return;
    m_queued += wireSize(m_batchBytes) - m_batchBytes;
    if (m_batchCount == 1)
        write(m_batchFirst);
    else if (m_batchFirst.isBinary)
        m_socket->sendBinaryMessage(m_batch);
    else
        m_socket->sendTextMessage(QString::fromUtf8(m_batch));
    // An idle connection keeps no batch buffer.
    m_batch = QByteArray();
    m_batchFirst = OutFrame();
    m_batchCount = 0;
    m_batchBytes = 0;
}

void Session::close(QWebSocketProtocol::CloseCode code, const QString &reason)
{
    if (m_state == State::Closing)
        return;
    flushBatch(); // messages queued before the close go out before it
    m_state = State::Closing;
    m_closedByBroker = true;
    m_closeCode = code;
    m_closeReason = reason;
    delete m_handshakeTimer;
    m_handshakeTimer = nullptr;
    m_socket->close(code, reason);
}

void Session::abort()
{
    m_socket->abort();
}

bool Session::pingIfIdle(qint64 nowMs, qint64 intervalMs, int maxMissed)
{
    if (m_state != State::Open)
        return true;
    // The first ping goes out once the peer has been silent for an interval (a
    // tenth of slack, as the sweep timer may fire early); while pings are
    // outstanding, every sweep without traffic counts one more miss.
    if (m_missedPings == 0 && nowMs - m_lastSeenMs < intervalMs - intervalMs / 10)
        return true;
    if (m_missedPings >= maxMissed)
        return false;
    ++m_missedPings;
    m_socket->ping();
    return true;
}

void Session::onText(const QString &text)
{
    const QByteArray bytes = text.toUtf8();
    m_bytesIn += quint64(bytes.size());
    m_lastSeenMs = monotonicMs();
    m_missedPings = 0;
    if (m_state != State::Closing)
        Q_EMIT frameReceived(m_id, bytes, false);
}

void Session::onBinary(const QByteArray &data)
{
    m_bytesIn += quint64(data.size());
    m_lastSeenMs = monotonicMs();
    m_missedPings = 0;
    if (m_state != State::Closing)
        Q_EMIT frameReceived(m_id, data, true);
}

void Session::onBytesWritten(qint64 bytes)
{
    m_queued = qMax<qint64>(0, m_queued - bytes);
}

void Session::onDisconnected()
{
    if (m_disconnectReported)
        return;
    m_disconnectReported = true;
    if (m_state != State::Closing) {
        // The peer closed (or the network did): record what it said.
        m_closeCode = m_socket->closeCode();
        m_closeReason = m_socket->closeReason();
    }
    m_state = State::Closing;
    Q_EMIT disconnected(m_id);
}

} // namespace Middleman
