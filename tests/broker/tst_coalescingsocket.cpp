// CoalescingSocket and PlainServer (broker/net/coalescingsocket.h): what a turn
// writes reaches the kernel in one send() at the end of the turn; what the kernel
// does not take waits in Qt's buffer, in order; a close sends what is pending
// first. Real loopback TCP; the peer is a bare socket read with recv().

#include "coalescingsocket.h"
#include "plainserver.h"
#include "eventloop.h"

#include <QDeadlineTimer>
#include <QSignalSpy>
#include <QTest>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

using namespace Middleman;

namespace {

// The test's end of a connection: a bare non-blocking socket.
class Peer
{
public:
    explicit Peer(quint16 port, int receiveBuffer = 0)
    {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (receiveBuffer > 0)
            ::setsockopt(m_fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, sizeof receiveBuffer);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        (void)::connect(m_fd, reinterpret_cast<const sockaddr *>(&address), sizeof address);
    }
    ~Peer()
    {
        if (m_fd >= 0)
            ::close(m_fd);
    }

    // Everything that has arrived; sets `eof` once the other side has closed.
    QByteArray take()
    {
        QByteArray bytes;
        char buffer[65536];
        for (;;) {
            const ssize_t n = ::recv(m_fd, buffer, sizeof buffer, 0);
            if (n > 0) {
                bytes.append(buffer, n);
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                eof = true;
            return bytes;
        }
    }

    // Closes with a reset (SO_LINGER 0).
    void reset()
    {
        const linger abortive{1, 0};
        ::setsockopt(m_fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
        ::close(m_fd);
        m_fd = -1;
    }

    bool eof = false;

private:
    int m_fd = -1;
};

QByteArray pattern(qsizetype size, int seed)
{
    QByteArray bytes(size, Qt::Uninitialized);
    for (qsizetype i = 0; i < size; ++i)
        bytes[i] = char((i * 7 + seed) % 251);
    return bytes;
}

qint64 sum(const QSignalSpy &spy)
{
    qint64 total = 0;
    for (const QList<QVariant> &arguments : spy)
        total += arguments.at(0).toLongLong();
    return total;
}

} // namespace

class tst_CoalescingSocket : public QObject
{
    Q_OBJECT

public:
    static void initMain() { installBrokerEventDispatcher(); } // the broker's dispatcher (eventloop.h)

private Q_SLOTS:
    void init();
    void cleanup();
    void writesWaitForTheEndOfTheTurn();
    void flushSendsAtOnce();
    void kernelFullGoesToQtBuffer();
    void closeSendsPendingFirst_data();
    void closeSendsPendingFirst();
    void abortDropsPending();
    void bufferReleasedWhenIdle();
    void deletedWhileDue();
    void peerResetIsReported();

private:
    // Accepts one connection from a new Peer.
    CoalescingSocket *accept(std::unique_ptr<Peer> &peer, int receiveBuffer = 0);

    std::unique_ptr<PlainServer> m_server;
    QList<QTcpSocket *> m_accepted;
};

void tst_CoalescingSocket::init()
{
    m_server = std::make_unique<PlainServer>();
    m_accepted.clear();
    connect(m_server.get(), &PlainServer::accepted, this, [this](CoalescingSocket *socket) { m_accepted.append(socket); });
    QVERIFY(m_server->listen(QHostAddress::LocalHost, 0));
}

void tst_CoalescingSocket::cleanup()
{
    m_server.reset();
}

CoalescingSocket *tst_CoalescingSocket::accept(std::unique_ptr<Peer> &peer, int receiveBuffer)
{
    const qsizetype before = m_accepted.size();
    peer = std::make_unique<Peer>(m_server->serverPort(), receiveBuffer);
    if (!QTest::qWaitFor([&] { return m_accepted.size() > before; }, 5000))
        return nullptr;
    return qobject_cast<CoalescingSocket *>(m_accepted.last());
}

void tst_CoalescingSocket::writesWaitForTheEndOfTheTurn()
{
    std::unique_ptr<Peer> peer;
    CoalescingSocket *socket = accept(peer);
    QVERIFY(socket);
    QSignalSpy written(socket, &QIODevice::bytesWritten);
    QCOMPARE(socket->write("HTTP/1.1 101 "), qint64(13));
    QCOMPARE(socket->write(QByteArray("Switching Protocols\r\n\r\n")), qint64(23));
    QCOMPARE(socket->bytesToWrite(), qint64(36));
    // Nothing reaches the kernel before the turn ends.
    QVERIFY(peer->take().isEmpty());
    QVERIFY(written.isEmpty());

    QByteArray received;
    QTRY_COMPARE((received += peer->take()), QByteArray("HTTP/1.1 101 Switching Protocols\r\n\r\n"));
    // One send() for the turn: one bytesWritten() with all of it.
    QCOMPARE(written.size(), 1);
    QCOMPARE(sum(written), qint64(36));
    QCOMPARE(socket->bytesToWrite(), qint64(0));
}

void tst_CoalescingSocket::flushSendsAtOnce()
{
    std::unique_ptr<Peer> peer;
    CoalescingSocket *socket = accept(peer);
    QVERIFY(socket);
    socket->write("batch");
    m_server->coalescer()->flush();
    // No event loop in between: the kernel has the bytes already.
    QCOMPARE(peer->take(), QByteArray("batch"));
    QCOMPARE(socket->bytesToWrite(), qint64(0));
}

void tst_CoalescingSocket::kernelFullGoesToQtBuffer()
{
    std::unique_ptr<Peer> peer;
    CoalescingSocket *socket = accept(peer, 4096);
    QVERIFY(socket);
    socket->setSocketOption(QAbstractSocket::SendBufferSizeSocketOption, 4096);
    QSignalSpy written(socket, &QIODevice::bytesWritten);

    const QByteArray first = pattern(1 << 20, 1);
    const QByteArray second = pattern(100000, 2);
    socket->write(first);
    m_server->coalescer()->flush();
    // The kernel took a part; Qt's buffer holds the rest.
    const qint64 sent = sum(written);
    QVERIFY2(sent > 0 && sent < first.size(), qPrintable(QString::number(sent)));
    QCOMPARE(socket->bytesToWrite(), first.size() - sent);
    // Later writes queue behind it.
    socket->write(second);
    QCOMPARE(socket->bytesToWrite(), first.size() + second.size() - sent);

    // Read as fast as the socket sends: the loop runs between reads.
    QByteArray received;
    QDeadlineTimer deadline(20000);
    while (received.size() < first.size() + second.size() && !deadline.hasExpired()) {
        QCoreApplication::processEvents();
        received += peer->take();
    }
    QVERIFY(received == first + second);
    QTRY_COMPARE(sum(written), first.size() + second.size());
    QCOMPARE(socket->bytesToWrite(), qint64(0));
}

void tst_CoalescingSocket::closeSendsPendingFirst_data()
{
    QTest::addColumn<bool>("close");
    QTest::addRow("disconnectFromHost") << false;
    QTest::addRow("close") << true;
}

void tst_CoalescingSocket::closeSendsPendingFirst()
{
    QFETCH(bool, close);
    std::unique_ptr<Peer> peer;
    CoalescingSocket *socket = accept(peer, 4096);
    QVERIFY(socket);
    // More than the kernel takes at once, then closed in the same turn.
    const QByteArray bytes = pattern(1 << 20, 3);
    socket->write(bytes);
    if (close)
        socket->close();
    else
        socket->disconnectFromHost();

    QByteArray received;
    QTRY_VERIFY_WITH_TIMEOUT((received += peer->take(), peer->eof), 20000);
    QVERIFY(received == bytes);
    QCOMPARE(socket->state(), QAbstractSocket::UnconnectedState);
}

void tst_CoalescingSocket::abortDropsPending()
{
    // As abort() drops Qt's buffer, it drops what the turn wrote.
    std::unique_ptr<Peer> peer;
    CoalescingSocket *socket = accept(peer);
    QVERIFY(socket);
    socket->write("dropped");
    socket->abort();
    QCOMPARE(socket->bytesToWrite(), qint64(0));
    QByteArray received;
    QTRY_VERIFY((received += peer->take(), peer->eof));
    QVERIFY(received.isEmpty());
}

void tst_CoalescingSocket::bufferReleasedWhenIdle()
{
    // A socket that writes keeps its buffer's memory from turn to turn; one
    // that wrote nothing for a whole interval gives it back.
    WriteCoalescer *coalescer = m_server->coalescer();
    coalescer->setReleaseInterval(3600 * 1000); // driven by hand first
    std::unique_ptr<Peer> peer;
    CoalescingSocket *socket = accept(peer);
    QVERIFY(socket);
    const QByteArray bytes = pattern(10000, 5);
    socket->write(bytes);
    coalescer->flush();
    QCOMPARE(socket->bytesToWrite(), qint64(0));
    QVERIFY(socket->bufferCapacity() >= bytes.size());
    coalescer->releaseIdle(); // it wrote in this interval
    QVERIFY(socket->bufferCapacity() >= bytes.size());
    socket->write(bytes);
    coalescer->flush();
    coalescer->releaseIdle(); // and in this one
    QVERIFY(socket->bufferCapacity() >= bytes.size());
    coalescer->releaseIdle(); // not in this one
    QCOMPARE(socket->bufferCapacity(), qsizetype(0));

    // The timer does the same on its own.
    coalescer->setReleaseInterval(20);
    socket->write(bytes);
    coalescer->flush();
    QVERIFY(socket->bufferCapacity() >= bytes.size());
    QTRY_COMPARE(socket->bufferCapacity(), qsizetype(0));
    QByteArray received;
    QTRY_COMPARE((received += peer->take()).size(), 3 * bytes.size());
    QVERIFY(received == bytes + bytes + bytes);
}

void tst_CoalescingSocket::deletedWhileDue()
{
    std::unique_ptr<Peer> gonePeer;
    std::unique_ptr<Peer> peer;
    CoalescingSocket *gone = accept(gonePeer);
    CoalescingSocket *socket = accept(peer);
    QVERIFY(gone && socket);
    gone->write("never sent");
    socket->write("sent");
    delete gone;
    QByteArray received;
    QTRY_COMPARE((received += peer->take()), QByteArray("sent"));
    // The deleted socket's fd was closed with nothing sent.
    QByteArray goneReceived;
    QTRY_VERIFY((goneReceived += gonePeer->take(), gonePeer->eof));
    QVERIFY(goneReceived.isEmpty());
}

void tst_CoalescingSocket::peerResetIsReported()
{
    std::unique_ptr<Peer> peer;
    CoalescingSocket *socket = accept(peer);
    QVERIFY(socket);
    QSignalSpy disconnected(socket, &QAbstractSocket::disconnected);
    peer->reset();
    socket->write(pattern(100000, 4));
    QTRY_COMPARE(disconnected.size(), 1);
    QCOMPARE(socket->error(), QAbstractSocket::RemoteHostClosedError);
}

QTEST_GUILESS_MAIN(tst_CoalescingSocket)
#include "tst_coalescingsocket.moc"
