#pragma once
// The ws:// listener's sockets: writes wait in a buffer of their own size until
// the end of the event-loop turn, then go to the kernel in one send(). Qt's own
// socket buffer is used only for what the kernel does not take at once.
//
// Why: a buffered QTcpSocket allocates a 32 KiB write chunk on its first write
// (the 101 response) and keeps that chunk for reuse for as long as the socket
// lives, so every idle connection holds it (docs/design.md, "Socket writes").
// An unbuffered QTcpSocket would hold nothing but writes each frame header and
// payload in two system calls and two TCP segments.

#include <QSet>
#include <QTcpSocket>

#include "turnend.h"

#include <vector>

class QTimer;

namespace Middleman {

class CoalescingSocket;

// Sends every CoalescingSocket's pending bytes once per event-loop turn, and
// releases the buffers of sockets that stopped writing. One per listener, on the
// broker's thread.
class WriteCoalescer : public QObject
{
    Q_OBJECT
public:
    explicit WriteCoalescer(QObject *parent = nullptr);
    ~WriteCoalescer() override;

    // Sends everything due now. Runs on its own at the end of each turn in which
    // a socket had something to send; the broker also calls it after flushing
    // batches.
    void flush();

    // A socket keeps its buffer's memory between turns while it writes (freeing
    // and allocating it every turn costs page faults once glibc trims the heap);
    // one that wrote nothing for a whole interval gives it back.
    static constexpr int kDefaultReleaseIntervalMs = 1000;
    void setReleaseInterval(int ms);
    // Runs on its timer: releases the buffers of the sockets that wrote nothing
    // since the last call.
    void releaseIdle();

private:
    friend class CoalescingSocket;
    void schedule(CoalescingSocket *socket);
    void unschedule(CoalescingSocket *socket);
    void forget(CoalescingSocket *socket); // unscheduled, not holding

    void hold(CoalescingSocket *socket);

    std::vector<CoalescingSocket *> m_due;
    TurnEnd m_turnEnd; // runs flush() at the end of a turn in which a socket wrote
    QSet<CoalescingSocket *> m_holding; // sent, buffer memory kept
    QTimer *m_releaseTimer;
    quint64 m_interval = 0; // counts the release timer's intervals
};

class CoalescingSocket : public QTcpSocket
{
    Q_OBJECT
public:
    explicit CoalescingSocket(WriteCoalescer *coalescer, QObject *parent = nullptr);
    ~CoalescingSocket() override;

    // Pending bytes plus Qt's buffer.
    qint64 bytesToWrite() const override;

    // Hands the pending bytes to the kernel now; what it does not take goes to
    // Qt's buffer, which sends it when the socket is writable again.
    void sendPending();

    // The memory the pending buffer holds (0 once released).
    qsizetype bufferCapacity() const { return m_pending.capacity(); }

protected:
    qint64 writeData(const char *data, qint64 size) override;

private:
    friend class WriteCoalescer;
    WriteCoalescer *const m_coalescer;
    QByteArray m_pending;
    quint64 m_wroteInInterval = 0; // WriteCoalescer::m_interval of the last write
    bool m_scheduled = false;
    bool m_holding = false;
};

} // namespace Middleman
