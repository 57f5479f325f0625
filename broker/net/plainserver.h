#pragma once
// PlainServer: the ws:// listener. It accepts connections as CoalescingSockets
// that all write through its one WriteCoalescer, and stops accepting when
// descriptors run low. Lives on the broker's thread.

#include "coalescingsocket.h"

#include <QTcpServer>

namespace Middleman {

// Accepts ws:// connections as CoalescingSockets.
class PlainServer : public QTcpServer
{
    Q_OBJECT
public:
    explicit PlainServer(QObject *parent = nullptr);
    ~PlainServer() override;

    // Every socket it accepts writes through this; it must outlive them.
    WriteCoalescer *coalescer() { return &m_coalescer; }

Q_SIGNALS:
    // A new connection, not upgraded yet; the receiver takes the socket.
    void accepted(CoalescingSocket *socket);
    // The last accept left few descriptors (nearOpenFileLimit()): accepting is
    // paused until resumeAccepting().
    void descriptorsLow();

protected:
    void incomingConnection(qintptr descriptor) override;

private:
    WriteCoalescer m_coalescer;
};

} // namespace Middleman
