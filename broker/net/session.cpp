#include "session.h"

#include "clock.h"
#include "coalescingsocket.h"
#include "logging.h"

#include <QAbstractEventDispatcher>
#include <QSocketNotifier>
#include <QTimer>
#include <QTcpSocket>

#include <cerrno>
#include <unistd.h>

namespace Middleman {

using WebSocket::Opcode;
using WebSocket::wireSize;

namespace {

// A held connection goes on once its bucket holds this long's worth of its
// rate (at least one token, at most a full bucket): a sender kept at its rate
// costs a timer about every kPaceSliceMs, not one per message.
constexpr qint64 kPaceSliceMs = 10;

} // namespace

OutFrame OutFrame::fromBytes(const QByteArray &bytes, bool binary)
{
    OutFrame frame;
    frame.isBinary = binary;
    frame.size = bytes.size();
    frame.bytes = bytes;
    return frame;
}

OutFrame OutFrame::fromMixedBytes(const QByteArray &bytes, bool binary)
{
    return fromBytes(bytes, binary || !QByteArrayView(bytes).isValidUtf8());
}

Session::Session(quint64 id, QTcpSocket *socket, const BrokerConfig &config, QObject *parent)
    : QObject(parent)
    , m_id(id)
    , m_socket(socket)
    , m_transport(qobject_cast<CoalescingSocket *>(socket))
    , m_peerAddress(socket->peerAddress())
    , m_peerPort(socket->peerPort())
    , m_connectedAt(QDateTime::currentDateTimeUtc())
    , m_queueLimit(config.clientLimits.outboundQueueBytes)
    , m_reader(config.maxFrameSize)
    , m_lastSeenMs(monotonicMs())
{
    m_socket->setParent(this);
    connect(m_socket, &QTcpSocket::readyRead, this, &Session::onReadyRead);
    connect(m_socket, &QTcpSocket::bytesWritten, this, &Session::onBytesWritten);
    connect(m_socket, &QTcpSocket::disconnected, this, &Session::onDisconnected);

    // docs/protocol.md §2: the key must arrive within the handshake timeout.
    m_handshakeTimer = new QTimer(this);
    m_handshakeTimer->setSingleShot(true);
    m_handshakeTimer->setTimerType(Qt::PreciseTimer);
    connect(m_handshakeTimer, &QTimer::timeout, this, [this] { Q_EMIT handshakeTimedOut(m_id); });
    m_handshakeTimer->start(config.handshakeTimeoutMs);
}

Session::~Session()
{
    stopDirectReads();
}

void Session::start(const QByteArray &pending)
{
    m_reader.append(pending);
    onReadyRead();
    startDirectReads();
}

void Session::startDirectReads()
{
    // wss:// reads through QSslSocket, and only the broker's own dispatcher
    // can hand the input over; Qt's read buffer is empty here (onReadyRead()).
    if (!m_transport || m_socket->state() != QAbstractSocket::ConnectedState)
        return;
    auto *dispatcher = qobject_cast<EpollEventDispatcher *>(QAbstractEventDispatcher::instance(thread()));
    const int fd = int(m_socket->socketDescriptor());
    if (!dispatcher || fd < 0)
        return;
    m_readDispatcher = dispatcher;
    m_directFd = fd;
    dispatcher->setDirectReader(fd, this);
}

void Session::stopDirectReads()
{
    if (!m_readDispatcher)
        return;
    m_readDispatcher->clearDirectReader(m_directFd, this);
    m_readDispatcher = nullptr;
}

bool Session::readReady(char *buffer, qsizetype size)
{
    // Level-triggered: what one read() leaves comes in the next turn.
    ssize_t got;
    do {
        got = ::read(m_directFd, buffer, size_t(size));
    } while (got < 0 && errno == EINTR);
    if (got > 0) {
        m_reader.append(QByteArray(buffer, got));
        readEvents();
        return true;
    }
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return true;
    // End of stream or an error: the socket reads it again and closes as usual.
    return false;
}

qint64 Session::holdInput(const QByteArray &frame, bool binary, qsizetype offset, qint64 nowMs)
{
    if (!m_hold) {
        m_hold = std::make_unique<Hold>();
        ++m_inputPauses;
        stopDirectReads();
        // The socket's read notifier (its engine's; for wss://, the one of the
        // TCP socket inside QSslSocket) goes off: nothing more is read from
        // the kernel, whose buffers fill until TCP flow control stops the
        // sender. Qt turns it on again only when read from, which nothing
        // does meanwhile. (A capped read buffer would not do: QSslSocket goes
        // on emptying its inner socket's buffer, and so reading.)
        const QList<QSocketNotifier *> notifiers = m_socket->findChildren<QSocketNotifier *>();
        for (QSocketNotifier *notifier : notifiers) {
            if (notifier->type() == QSocketNotifier::Read && notifier->isEnabled()) {
                notifier->setEnabled(false);
                m_hold->notifier = notifier;
                break;
            }
        }
    }
    m_hold->frame = HeldFrame{frame, offset, binary};
    const qint64 wanted = qBound<qint64>(1, m_ratePerSecond * kPaceSliceMs / 1000, m_burstMilli / 1000) * 1000;
    refill(nowMs);
    const qint64 missing = qMax<qint64>(0, wanted - m_milliTokens);
    m_hold->resumeAtMs = nowMs + (missing + m_ratePerSecond - 1) / m_ratePerSecond;
    return m_hold->resumeAtMs;
}

void Session::resumeInput()
{
    if (!m_hold)
        return;
    releaseInput();
    // What was read before the hold comes first, then what the socket's buffer
    // took meanwhile, then the socket.
    onReadyRead();
    if (!m_hold)
        startDirectReads();
}

void Session::releaseInput()
{
    if (m_hold->notifier)
        m_hold->notifier->setEnabled(true);
    m_hold.reset();
}

void Session::accept(Role role, const QString &keyName, const QByteArray &clientId, const RoleLimits &limits)
{
    Q_ASSERT(m_state == State::Handshaking);
    m_role = role;
    m_keyName = keyName;
    m_clientId = clientId;
    m_queueLimit = limits.outboundQueueBytes;
    m_ratePerSecond = limits.maxMessagesPerSecond;
    m_burstMilli = qint64(limits.messageBurst) * 1000;
    m_rateLimitAction = limits.rateLimitAction;
    m_milliTokens = m_burstMilli;
    m_refilledAtMs = monotonicMs();
    m_state = State::Open;
    delete m_handshakeTimer;
    m_handshakeTimer = nullptr;
    const QByteArrayView ok = "MM OK";
    m_queued += wireSize(ok.size());
    writeFrame(Opcode::Text, ok);
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
        // Section 6: a slow consumer is closed; nobody else waits for it.
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
    writeFrame(frame.isBinary ? Opcode::Binary : Opcode::Text, frame.bytes);
}

void Session::writeFrame(Opcode opcode, QByteArrayView payload)
{
    // Two writes, one send(): the socket holds what a turn writes (ws://) or
    // encrypts its buffer at once (wss://).
    const WebSocket::FrameHeader header = WebSocket::frameHeader(opcode, quint64(payload.size()));
    m_socket->write(header.bytes, header.size);
    if (!payload.isEmpty())
        m_socket->write(payload.data(), payload.size());
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
    else
        writeFrame(m_batchFirst.isBinary ? Opcode::Binary : Opcode::Text, m_batch);
    // An idle connection keeps no batch buffer.
    m_batch = QByteArray();
    m_batchFirst = OutFrame();
    m_batchCount = 0;
    m_batchBytes = 0;
}

void Session::close(WebSocket::CloseCode code, const QString &reason)
{
    if (m_state == State::Closing)
        return;
    flushBatch(); // messages queued before the close go out before it
    m_state = State::Closing;
    if (m_hold) {
        // The peer's close frame waits behind what it sent: read on, in the
        // next turn, where every message is passed over while closing.
        releaseInput();
        QMetaObject::invokeMethod(
            this,
            [this] {
                onReadyRead();
                startDirectReads();
            },
            Qt::QueuedConnection);
    }
    m_closeCode = quint16(code);
    m_closeReason = reason;
    delete m_handshakeTimer;
    m_handshakeTimer = nullptr;
    // The peer answers with its close frame, and then the connection ends
    // (onPeerClose); the broker cuts off a peer that never answers.
    sendClose(quint16(code), reason.toUtf8());
}

void Session::sendClose(quint16 code, QByteArrayView reason)
{
    if (m_closeSent)
        return;
    m_closeSent = true;
    if (code == WebSocket::CloseNoStatus)
        writeFrame(Opcode::Close, {});
    else
        writeFrame(Opcode::Close, WebSocket::closePayload(code, reason));
}

void Session::abort()
{
    m_socket->abort();
}

bool Session::pingIfIdle(qint64 nowMs, qint64 intervalMs, int maxMissed)
{
    if (m_state != State::Open)
        return true;
    if (m_hold) {
        // Not read because of its rate: it is sending, not silent.
        m_lastSeenMs = nowMs;
        m_missedPings = 0;
        return true;
    }
    // The first ping goes out once the peer has been silent for an interval (a
    // tenth of slack, as the sweep timer may fire early); while pings are
    // outstanding, every sweep without traffic counts one more miss.
    if (m_missedPings == 0 && nowMs - m_lastSeenMs < intervalMs - intervalMs / 10)
        return true;
    if (m_missedPings >= maxMissed)
        return false;
    ++m_missedPings;
    writeFrame(Opcode::Ping, {});
    return true;
}

void Session::onReadyRead()
{
    if (m_hold)
        return; // read on when the input is no longer held
    // read() of exactly the bytes Qt's buffer holds takes its chunk instead of
    // copying it, and the socket keeps no read chunk while idle (readAll() and
    // skip() leave a 16 KiB one in place for good). The reader adopts the bytes
    // when it holds nothing else.
    while (const qint64 available = m_socket->bytesAvailable())
        m_reader.append(m_socket->read(available));
    readEvents();
}

void Session::readEvents()
{
    using Kind = WebSocket::FrameReader::Event::Kind;
    while (!m_hold) {
        WebSocket::FrameReader::Event event = m_reader.next();
        switch (event.kind) {
        case Kind::None:
            return;
        case Kind::Message:
            m_bytesIn += quint64(event.payload.size());
            markAlive();
            // While closing, only the peer's close frame matters.
            if (m_state != State::Closing)
                Q_EMIT frameReceived(m_id, event.payload, event.binary);
            break;
        case Kind::Ping:
            markAlive();
            if (!m_closeSent)
                writeFrame(Opcode::Pong, event.payload);
            break;
        case Kind::Pong:
            markAlive();
            break;
        case Kind::Close:
            onPeerClose(event.code, event.payload);
            return;
        case Kind::Error:
            // The peer broke RFC 6455: close with the code the reader names.
            qCDebug(lcSession).noquote() << "peer" << m_id << "broke the WebSocket protocol:" << event.reason;
            flushBatch();
            if (m_state != State::Closing) {
                m_closeCode = event.code;
                m_closeReason = QString::fromUtf8(event.reason);
                m_protocolError = true;
            }
            m_state = State::Closing;
            sendClose(event.code, event.reason);
            m_socket->disconnectFromHost();
            return;
        }
    }
}

void Session::onPeerClose(quint16 code, const QByteArray &reason)
{
    if (m_state != State::Closing) {
        // The peer closes: record what it said and echo its code (RFC 6455 5.5.1).
        flushBatch();
        m_closeCode = code;
        m_closeReason = QString::fromUtf8(reason);
        m_state = State::Closing;
    }
    sendClose(code, {});
    // The server ends the TCP connection once both close frames have passed
    // (RFC 6455 7.1.1).
    m_socket->disconnectFromHost();
}

void Session::onBytesWritten(qint64 bytes)
{
    m_queued = qMax<qint64>(0, m_queued - bytes);
}

void Session::onDisconnected()
{
    stopDirectReads();
    if (m_disconnectReported)
        return;
    m_disconnectReported = true;
    if (m_state != State::Closing) {
        // Gone without a close frame (RFC 6455 7.1.5).
        m_closeCode = WebSocket::CloseAbnormal;
        m_closeReason = QStringLiteral("connection lost");
    }
    m_state = State::Closing;
    Q_EMIT disconnected(m_id);
}

} // namespace Middleman
