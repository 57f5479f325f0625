#include "coalescingsocket.h"


#include <QTimer>

#include <algorithm>
#include <cerrno>

#include <sys/socket.h>

namespace Middleman {

WriteCoalescer::WriteCoalescer(QObject *parent)
    : QObject(parent)
    , m_turnEnd([this] { flush(); }, this)
    , m_releaseTimer(new QTimer(this))
{
    m_releaseTimer->setInterval(kDefaultReleaseIntervalMs);
    connect(m_releaseTimer, &QTimer::timeout, this, &WriteCoalescer::releaseIdle);
}

WriteCoalescer::~WriteCoalescer()
{
    for (CoalescingSocket *socket : m_due) {
        if (socket)
            socket->m_scheduled = false;
    }
    for (CoalescingSocket *socket : std::as_const(m_holding))
        socket->m_holding = false;
}

void WriteCoalescer::setReleaseInterval(int ms)
{
    m_releaseTimer->setInterval(ms);
}

void WriteCoalescer::hold(CoalescingSocket *socket)
{
    socket->m_holding = true;
    m_holding.insert(socket);
    if (!m_releaseTimer->isActive())
        m_releaseTimer->start();
}

void WriteCoalescer::releaseIdle()
{
    for (auto it = m_holding.begin(); it != m_holding.end();) {
        CoalescingSocket *socket = *it;
        if (socket->m_wroteInInterval == m_interval || !socket->m_pending.isEmpty()) {
            ++it;
            continue;
        }
        socket->m_pending = QByteArray();
        socket->m_holding = false;
        it = m_holding.erase(it);
    }
    ++m_interval;
    if (m_holding.isEmpty())
        m_releaseTimer->stop();
}

void WriteCoalescer::schedule(CoalescingSocket *socket)
{
    m_due.push_back(socket);
    m_turnEnd.schedule();
}

void WriteCoalescer::unschedule(CoalescingSocket *socket)
{
    if (!socket->m_scheduled)
        return;
    socket->m_scheduled = false;
    // A socket is due once at most, and mostly among the last scheduled (a
    // close writes its frame, then sends at once).
    const auto it = std::find(m_due.rbegin(), m_due.rend(), socket);
    if (it != m_due.rend())
        *it = nullptr;
}

void WriteCoalescer::forget(CoalescingSocket *socket)
{
    unschedule(socket);
    if (socket->m_holding) {
        socket->m_holding = false;
        m_holding.remove(socket);
    }
}

void WriteCoalescer::flush()
{
    m_turnEnd.cancel();
    // By index: a socket's bytesWritten() receivers may write again (scheduled
    // at the end, and sent in this pass) or delete a socket (forgotten).
    for (size_t i = 0; i < m_due.size(); ++i) {
        if (CoalescingSocket *socket = std::exchange(m_due[i], nullptr)) {
            socket->m_scheduled = false;
            socket->sendPending();
        }
    }
    m_due.clear();
}

CoalescingSocket::CoalescingSocket(WriteCoalescer *coalescer, QObject *parent)
    : QTcpSocket(parent)
    , m_coalescer(coalescer)
{
    // close() and disconnectFromHost() wait only for Qt's own buffer: move the
    // pending bytes there first. abort(), which never enters the closing state,
    // drops them as it drops Qt's buffer.
    connect(this, &QAbstractSocket::stateChanged, this, [this](QAbstractSocket::SocketState state) {
        if (state == QAbstractSocket::ClosingState)
            sendPending();
        else if (state == QAbstractSocket::UnconnectedState) {
            m_pending = QByteArray();
            m_coalescer->forget(this);
        }
    });
}

CoalescingSocket::~CoalescingSocket()
{
    // QAbstractSocket's destructor aborts the connection and signals it; this
    // part of the object is gone by then.
    QObject::disconnect(this, nullptr, this, nullptr);
    if (m_scheduled || m_holding)
        m_coalescer->forget(this);
}

qint64 CoalescingSocket::bytesToWrite() const
{
    return m_pending.size() + QTcpSocket::bytesToWrite();
}

qint64 CoalescingSocket::writeData(const char *data, qint64 size)
{
    // Once Qt's buffer holds bytes, everything after them goes there too.
    if (state() != QAbstractSocket::ConnectedState || QTcpSocket::bytesToWrite() > 0)
        return QTcpSocket::writeData(data, size);
    m_pending.append(data, size);
    m_wroteInInterval = m_coalescer->m_interval;
    if (!m_scheduled) {
        m_scheduled = true;
        m_coalescer->schedule(this);
    }
    return size;
}

void CoalescingSocket::sendPending()
{
    m_coalescer->unschedule(this);
    if (m_pending.isEmpty())
        return;
    const qint64 size = m_pending.size();
    qint64 sent = 0;
    if (state() == QAbstractSocket::ConnectedState || state() == QAbstractSocket::ClosingState) {
        const ssize_t n = ::send(int(socketDescriptor()), m_pending.constData(), size_t(size),
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        // An error other than a full buffer is left to Qt, which meets it on its
        // own write below and reports it.
        sent = n > 0 ? qint64(n) : 0;
    }
    if (sent < size)
        QTcpSocket::writeData(m_pending.constData() + sent, size - sent);
    m_pending.resize(0); // keeps the memory for the next turn
    if (!m_holding)
        m_coalescer->hold(this);
    if (sent > 0)
        Q_EMIT bytesWritten(sent);
}

} // namespace Middleman
