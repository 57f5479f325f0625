// docs/protocol.md §2: the API key handshake over real WebSockets — accepted keys get
// exactly "MM OK", refused and missing keys a 1008 close, and keys never reach the log.

#include "socketoptions.h"

#include <QElapsedTimer>

#include <arpa/inet.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
// From the sanitizer runtime (GCC ships no allocator_interface.h).
extern "C" size_t __sanitizer_get_current_allocated_bytes();
#endif

#include <cstring>

#include <vector>
#include "testpeer.h"

#include <QLoggingCategory>
#include <QMutex>
#include <QRegularExpression>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

// Opens the WebSocket without sending a key.
bool openOnly(TestPeer &peer, const QUrl &url)
{
    peer.socket.open(url);
    return QTest::qWaitFor(
               [&] { return peer.socket.state() == QAbstractSocket::ConnectedState || peer.closed; }, 5000)
        && !peer.closed;
}

void sendKey(TestPeer &peer, const QByteArray &key, bool binary)
{
    if (binary)
        peer.socket.sendBinaryMessage(key);
    else
        peer.socket.sendTextMessage(QString::fromUtf8(key));
}

// The first line of every frame received: "MM OK", then "COMMAND target" per
// protocol message (without Batch: on the broker sends one per frame, 1).
QList<QByteArray> frameHeads(const TestPeer &peer)
{
    QList<QByteArray> heads;
    for (const QByteArray &frame : peer.frames) {
        const qsizetype end = frame.indexOf('\n');
        heads.append(end < 0 ? frame : frame.left(end));
    }
    return heads;
}

// Every message logged while installed, formatted as "category: text".
QMutex g_logMutex;
QStringList g_log;
QtMessageHandler g_previousHandler = nullptr;

void captureMessage(QtMsgType type, const QMessageLogContext &context, const QString &text)
{
    {
        QMutexLocker lock(&g_logMutex);
        g_log.append(QString::fromUtf8(context.category ? context.category : "") + QStringLiteral(": ") + text);
    }
    if (g_previousHandler)
        g_previousHandler(type, context, text);
}

// Bytes the process has allocated on the heap now.
size_t heapInUse()
{
#if defined(__SANITIZE_ADDRESS__)
    return __sanitizer_get_current_allocated_bytes();
#else
    const struct mallinfo2 info = ::mallinfo2();
    return info.uordblks + info.hblkhd;
#endif
}

// A WebSocket client on a bare non-blocking socket, driven by the test's event
// loop: it allocates nothing on the heap, so what the heap gains while it
// connects is the broker's.
class BarePeer
{
public:
    BarePeer() = default;
    BarePeer(const BarePeer &) = delete;
    BarePeer &operator=(const BarePeer &) = delete;
    ~BarePeer()
    {
        if (m_fd >= 0)
            ::close(m_fd);
    }

    bool connectTo(quint16 port)
    {
        m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return m_fd >= 0
            && (::connect(m_fd, reinterpret_cast<const sockaddr *>(&address), sizeof address) == 0
                || errno == EINPROGRESS);
    }

    // Small writes to a fresh loopback socket: the kernel takes them whole.
    bool send(const char *bytes, size_t size) { return ::send(m_fd, bytes, size, MSG_NOSIGNAL) == ssize_t(size); }
    bool sendUpgrade()
    {
        static constexpr char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                          "Sec-WebSocket-Version: 13\r\n\r\n";
        return send(request, sizeof request - 1);
    }
    // A masked text frame with the key (RFC 6455 5.3), built in place.
    bool sendKey(const QByteArray &key)
    {
        char frame[2 + 4 + 125];
        Q_ASSERT(key.size() <= 125);
        frame[0] = char(0x81);
        frame[1] = char(0x80 | key.size());
        static constexpr char mask[4] = {0x11, 0x22, 0x33, 0x44};
        std::memcpy(frame + 2, mask, 4);
        for (qsizetype i = 0; i < key.size(); ++i)
            frame[6 + i] = char(key.at(i) ^ mask[i & 3]);
        return send(frame, size_t(6 + key.size()));
    }

    // Reads what has arrived; true once `needle` is among it.
    bool received(const char *needle)
    {
        for (;;) {
            const ssize_t n = ::recv(m_fd, m_buffer + m_size, sizeof m_buffer - 1 - m_size, 0);
            if (n > 0) {
                m_size += size_t(n);
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                m_closed = true;
            break;
        }
        m_buffer[m_size] = '\0';
        return ::memmem(m_buffer, m_size, needle, std::strlen(needle)) != nullptr;
    }
    // True once the broker has closed the connection.
    bool closed()
    {
        (void)received("");
        return m_closed;
    }

private:
    int m_fd = -1;
    char m_buffer[1024] = {};
    size_t m_size = 0;
    bool m_closed = false;
};

} // namespace

class tst_Handshake : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void cleanup();
    void acceptedKey_data();
    void acceptedKey();
    void hashedKey_data();
    void hashedKey();
    void refusedKey_data();
    void refusedKey();
    void handshakeTimeout();
    void keyStopsHandshakeTimer();
    void manyKeys_data();
    void manyKeys();
    void clientIdsAreRandomAndNew();
    void keysNeverLogged();
    void acceptedSocketsSendAtOnce();
    void acceptBacklogTakesABurst();
    void upgradeDeadline_data();
    void upgradeDeadline();
    void waitingForUpgradeCapped();
    void socketsGoWithTheirSessions();
    void idleConnectionsHoldNoBuffers();

private:
    std::unique_ptr<Broker> m_broker;
};

void tst_Handshake::cleanup()
{
    m_broker.reset();
}

void tst_Handshake::acceptedKey_data()
{
    QTest::addColumn<QByteArray>("key");
    QTest::addColumn<bool>("binary");
    QTest::addColumn<Role>("role");
    QTest::addColumn<QString>("keyName");
    QTest::addRow("service key") << kServiceKey << false << Role::Service << QStringLiteral("svc");
    QTest::addRow("second service key") << kServiceKey2 << false << Role::Service << QStringLiteral("svc2");
    QTest::addRow("client key") << kClientKey << false << Role::Client << QStringLiteral("web");
    QTest::addRow("spaces and LF around") << QByteArray("  " + kServiceKey + "\n") << false << Role::Service
                                          << QStringLiteral("svc");
    QTest::addRow("tabs and CRLF around") << QByteArray("\t\r\n" + kClientKey + " \t\r\n") << false
                                          << Role::Client << QStringLiteral("web");
    QTest::addRow("binary frame, service") << kServiceKey << true << Role::Service << QStringLiteral("svc");
    QTest::addRow("binary frame, client, white space") << QByteArray(" " + kClientKey + "\r\n") << true
                                                       << Role::Client << QStringLiteral("web");
}

void tst_Handshake::acceptedKey()
{
    QFETCH(QByteArray, key);
    QFETCH(bool, binary);
    QFETCH(Role, role);
    QFETCH(QString, keyName);

    m_broker = startBroker();
    QSignalSpy connected(m_broker.get(), &Broker::peerConnected);
    TestPeer peer;
    QVERIFY(openOnly(peer, m_broker->serverUrl()));
    sendKey(peer, key, binary);

    // Section 2, item 2: the reply is exactly the text frame "MM OK", nothing more.
    QTRY_COMPARE(peer.frames.size(), 1);
    QCOMPARE(peer.frames.first(), QByteArray("MM OK"));
    QCOMPARE(peer.frameIsBinary.first(), false);
    QVERIFY(peer.messages.isEmpty());
    QVERIFY(!peer.closed);

    QTRY_COMPARE(connected.size(), 1);
    const auto info = connected.first().at(0).value<PeerInfo>();
    QCOMPARE(info.role, role);
    QCOMPARE(info.keyName, keyName);
    QVERIFY(!info.clientId.isEmpty());

    const QList<PeerInfo> peers = m_broker->peers();
    QCOMPARE(peers.size(), 1);
    QCOMPARE(peers.first().id, info.id);
    QCOMPARE(peers.first().role, role);
    QCOMPARE(peers.first().keyName, keyName);
    QCOMPARE(m_broker->stats().handshakesCompleted, quint64(1));
    QCOMPARE(m_broker->stats().keysRefused, quint64(0));

    // The connection routes afterwards: a service may subscribe, a client may not
    // without a grant — either way the broker answers, proving the session is open.
    QSignalSpy subscribed(m_broker.get(), &Broker::subscriptionAdded);
    peer.send(msg(Command::Sub, "hs.check"));
    if (role == Role::Service) {
        QTRY_COMPARE(subscribed.size(), 1);
    } else {
        const std::optional<Message> err = peer.waitFor(Command::Err, "hs.check");
        QVERIFY(err);
        QCOMPARE(err->header(HeaderName::Status), QByteArray("403"));
    }
    // Nothing but "MM OK" came before the answers: the sync's RES is a later frame.
    QVERIFY(peer.sync());
    const QList<QByteArray> expected = role == Role::Service
        ? QList<QByteArray>{"MM OK", "RES -"}
        : QList<QByteArray>{"MM OK", "ERR hs.check", "RES -"};
    QCOMPARE(frameHeads(peer), expected);
    QVERIFY(peer.messages.isEmpty());
    QVERIFY(peer.badFrames.isEmpty());
}

void tst_Handshake::hashedKey_data()
{
    // The configured key (what the config file holds), what the peer sends, and
    // whether it is accepted.
    QTest::addColumn<QByteArray>("configured");
    QTest::addColumn<QByteArray>("sent");
    QTest::addColumn<bool>("accepted");
    const QByteArray plain = "hashed-secret-42";
    const QByteArray hashed = KeyStore::hashedForm(plain);
    QTest::addRow("plain key against sha256 config") << hashed << plain << true;
    QTest::addRow("plain key with white space") << hashed << QByteArray(" " + plain + "\n") << true;
    QTest::addRow("upper-case hex in config") << QByteArray("sha256:" + hashed.sliced(7).toUpper()) << plain
                                              << true;
    QTest::addRow("the sha256 string itself is refused") << hashed << hashed << false;
    QTest::addRow("the bare hex is refused") << hashed << hashed.sliced(7) << false;
    QTest::addRow("sha256 string of a plain config key is refused") << plain << hashed << false;
}

void tst_Handshake::hashedKey()
{
    QFETCH(QByteArray, configured);
    QFETCH(QByteArray, sent);
    QFETCH(bool, accepted);

    BrokerConfig config = testConfig();
    config.clientKeys.append(KeyConfig{QStringLiteral("hashed-client"), configured});
    m_broker = startBroker(config);

    TestPeer peer;
    QVERIFY(openOnly(peer, m_broker->serverUrl()));
    sendKey(peer, sent, false);
    if (accepted) {
        QTRY_COMPARE(peer.frames.size(), 1);
        QCOMPARE(peer.frames.first(), QByteArray("MM OK"));
        QTRY_COMPARE(m_broker->peers().size(), 1);
        QCOMPARE(m_broker->peers().first().role, Role::Client);
        QCOMPARE(m_broker->peers().first().keyName, QStringLiteral("hashed-client"));
    } else {
        QVERIFY(peer.waitForClose());
        QCOMPARE(peer.closeCode, int(QWebSocketProtocol::CloseCodePolicyViolated));
        QVERIFY(peer.frames.isEmpty());
        QCOMPARE(m_broker->stats().keysRefused, quint64(1));
        QCOMPARE(m_broker->stats().handshakesCompleted, quint64(0));
    }
}

void tst_Handshake::refusedKey_data()
{
    QTest::addColumn<QByteArray>("key");
    QTest::addColumn<bool>("binary");
    QTest::addRow("unknown key") << QByteArray("not-a-configured-key") << false;
    QTest::addRow("unknown key, binary frame") << QByteArray("not-a-configured-key") << true;
    QTest::addRow("empty frame") << QByteArray() << false;
    QTest::addRow("empty binary frame") << QByteArray() << true;
    QTest::addRow("only white space") << QByteArray(" \t\r\n ") << false;
    QTest::addRow("prefix of a key") << kServiceKey.chopped(1) << false;
    QTest::addRow("key with a suffix") << QByteArray(kServiceKey + "x") << false;
    QTest::addRow("key in upper case") << kClientKey.toUpper() << false;
    QTest::addRow("two keys in one frame") << QByteArray(kServiceKey + " " + kClientKey) << false;
    QTest::addRow("key as a protocol message") << QByteArray(kServiceKey + "\n\n.\n") << false;
    QTest::addRow("MM OK echoed") << QByteArray("MM OK") << false;
}

void tst_Handshake::refusedKey()
{
    QFETCH(QByteArray, key);
    QFETCH(bool, binary);

    m_broker = startBroker();
    QSignalSpy connected(m_broker.get(), &Broker::peerConnected);
    QSignalSpy disconnected(m_broker.get(), &Broker::peerDisconnected);
    TestPeer peer;
    QVERIFY(openOnly(peer, m_broker->serverUrl()));
    sendKey(peer, key, binary);

    // Section 2, item 3: closed with 1008 and no "MM OK".
    QVERIFY(peer.waitForClose());
    QCOMPARE(peer.closeCode, int(QWebSocketProtocol::CloseCodePolicyViolated));
    QVERIFY(!peer.closeReason.isEmpty());
    QVERIFY(peer.frames.isEmpty());

    QTRY_COMPARE(disconnected.size(), 1);
    QCOMPARE(disconnected.first().at(1).toInt(), int(QWebSocketProtocol::CloseCodePolicyViolated));
    QCOMPARE(disconnected.first().at(2).toString(), peer.closeReason);
    QCOMPARE(connected.size(), 0);
    const BrokerStats stats = m_broker->stats();
    QCOMPARE(stats.keysRefused, quint64(1));
    QCOMPARE(stats.handshakesCompleted, quint64(0));
    QCOMPARE(stats.handshakeTimeouts, quint64(0));
    QVERIFY(m_broker->peers().isEmpty());
}

void tst_Handshake::handshakeTimeout()
{
    BrokerConfig config = testConfig();
    config.handshakeTimeoutMs = 200;
    m_broker = startBroker(config);
    QSignalSpy disconnected(m_broker.get(), &Broker::peerDisconnected);

    TestPeer silent;
    QVERIFY(openOnly(silent, m_broker->serverUrl()));
    // Counters, not a connection count a fast timeout may already have taken back.
    QTRY_COMPARE(m_broker->stats().handshakeTimeouts, quint64(1));
    QCOMPARE(m_broker->stats().connectionsAccepted, quint64(1));
    QVERIFY(silent.waitForClose());
    QCOMPARE(silent.closeCode, int(QWebSocketProtocol::CloseCodePolicyViolated));
    QVERIFY(silent.frames.isEmpty());

    QTRY_COMPARE(disconnected.size(), 1);
    QCOMPARE(disconnected.first().at(1).toInt(), int(QWebSocketProtocol::CloseCodePolicyViolated));
    const BrokerStats stats = m_broker->stats();
    QCOMPARE(stats.handshakeTimeouts, quint64(1));
    QCOMPARE(stats.keysRefused, quint64(0));
    QCOMPARE(stats.handshakesCompleted, quint64(0));
    QCOMPARE(m_broker->connectionCount(), qsizetype(0));
}

void tst_Handshake::keyStopsHandshakeTimer()
{
    // A peer that sent its key in time is not closed when the handshake timeout
    // passes. A silent peer opened afterwards is timed out later than that. The
    // timeout leaves a loaded machine room for the key to arrive in time.
    BrokerConfig config = testConfig();
    config.handshakeTimeoutMs = 1000;
    m_broker = startBroker(config);

    TestPeer service;
    QVERIFY(service.connectWithKey(m_broker->serverUrl(), kServiceKey));
    TestPeer silent;
    QVERIFY(openOnly(silent, m_broker->serverUrl()));
    QVERIFY(silent.waitForClose());
    QCOMPARE(silent.closeCode, int(QWebSocketProtocol::CloseCodePolicyViolated));

    QSignalSpy subscribed(m_broker.get(), &Broker::subscriptionAdded);
    service.send(msg(Command::Sub, "still.here"));
    service.send(msg(Command::Pub, "still.here", {}, "alive"));
    const std::optional<Message> echo = service.waitFor(Command::Pub, "still.here");
    QVERIFY(echo);
    QCOMPARE(echo->body, QByteArray("alive"));
    QVERIFY(!service.closed);
    QCOMPARE(m_broker->stats().handshakeTimeouts, quint64(1));
    QCOMPARE(subscribed.size(), 1);
}

void tst_Handshake::manyKeys_data()
{
    QTest::addColumn<Role>("role");
    QTest::addColumn<int>("index");
    for (const int index : {0, 1, 2, 17, 48, 49}) {
        QTest::addRow("service key %d", index) << Role::Service << index;
        QTest::addRow("client key %d", index) << Role::Client << index;
    }
}

void tst_Handshake::manyKeys()
{
    QFETCH(Role, role);
    QFETCH(int, index);

    // Section 2, item 4: many keys of each kind, each with a name; every third one is
    // configured in its sha256: form.
    constexpr int kCount = 50;
    auto keyOf = [](Role r, int i) -> QByteArray {
        return QByteArray(r == Role::Service ? "many-service-" : "many-client-") + QByteArray::number(i);
    };
    auto nameOf = [](Role r, int i) -> QString {
        return (r == Role::Service ? QStringLiteral("service #%1") : QStringLiteral("client #%1")).arg(i);
    };
    BrokerConfig config;
    config.port = 0;
    for (int i = 0; i < kCount; ++i) {
        for (const Role r : {Role::Service, Role::Client}) {
            const QByteArray key = i % 3 == 2 ? KeyStore::hashedForm(keyOf(r, i)) : keyOf(r, i);
            (r == Role::Service ? config.serviceKeys : config.clientKeys).append(KeyConfig{nameOf(r, i), key});
        }
    }
    m_broker = startBroker(config);

    QSignalSpy connected(m_broker.get(), &Broker::peerConnected);
    TestPeer peer;
    QVERIFY(peer.connectWithKey(m_broker->serverUrl(), keyOf(role, index)));
    QVERIFY(peer.sync());
    QCOMPARE(frameHeads(peer), (QList<QByteArray>{"MM OK", "RES -"}));
    QTRY_COMPARE(m_broker->peers().size(), 1);
    QCOMPARE(m_broker->peers().first().role, role);
    QCOMPARE(m_broker->peers().first().keyName, nameOf(role, index));

    // The same number under the other kind's prefix is a different key, of the
    // other role; one past the last configured is unknown.
    const Role otherRole = role == Role::Service ? Role::Client : Role::Service;
    TestPeer other;
    QVERIFY(other.connectWithKey(m_broker->serverUrl(), keyOf(otherRole, index)));
    QTRY_COMPARE(connected.size(), 2);
    const auto otherInfo = connected.at(1).at(0).value<PeerInfo>();
    QCOMPARE(otherInfo.role, otherRole);
    QCOMPARE(otherInfo.keyName, nameOf(otherRole, index));
    QCOMPARE(otherInfo.port, other.socket.localPort());

    TestPeer stranger;
    QVERIFY(openOnly(stranger, m_broker->serverUrl()));
    sendKey(stranger, keyOf(role, kCount), false);
    QVERIFY(stranger.waitForClose());
    QCOMPARE(stranger.closeCode, int(QWebSocketProtocol::CloseCodePolicyViolated));
    QCOMPARE(m_broker->stats().keysRefused, quint64(1));
}

void tst_Handshake::clientIdsAreRandomAndNew()
{
    // Section 5: a connection's id is unique for the broker's lifetime and not
    // guessable (docs/protocol.md 5: 128 random bits in base64url, 22 characters).
    // Every connection here is closed before the next opens, so an id freed by a
    // disconnect could be handed out again; none may be.
    m_broker = startBroker();
    TestPeer observer;
    QVERIFY(observer.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QSignalSpy subscribed(m_broker.get(), &Broker::subscriptionAdded);
    observer.send(msg(Command::Sub, "cid.probe"));
    QTRY_COMPARE(subscribed.size(), 1);
    QSignalSpy connected(m_broker.get(), &Broker::peerConnected);
    QSignalSpy disconnected(m_broker.get(), &Broker::peerDisconnected);

    static const QRegularExpression base64url(QStringLiteral("^[A-Za-z0-9_-]{22}$"));
    constexpr int kCycles = 50;
    QList<QByteArray> ids;
    for (int i = 0; i < kCycles; ++i) {
        TestPeer peer;
        QVERIFY(peer.connectWithKey(m_broker->serverUrl(), kServiceKey2));
        QVERIFY(QTest::qWaitFor([&] { return connected.size() == i + 1; }, 5000));
        const auto info = connected.at(i).at(0).value<PeerInfo>();
        // The id services see on the wire is the one the broker reports.
        peer.send(msg(Command::Pub, "cid.probe", {}, QByteArray::number(i)));
        const std::optional<Message> pub = observer.waitFor(Command::Pub, "cid.probe");
        QVERIFY(pub);
        QCOMPARE(pub->body, QByteArray::number(i));
        const QByteArray id = pub->header(HeaderName::ClientId);
        QCOMPARE(id, info.clientId);
        QVERIFY2(base64url.match(QString::fromLatin1(id)).hasMatch(), id.constData());
        QVERIFY2(!ids.contains(id), id.constData());
        ids.append(id);
        peer.socket.close();
        QVERIFY(QTest::qWaitFor([&] { return disconnected.size() == i + 1; }, 5000));
        QCOMPARE(disconnected.at(i).at(0).toULongLong(), info.id);
    }
    QCOMPARE(QSet<QByteArray>(ids.cbegin(), ids.cend()).size(), kCycles);

    // Not sequential, nor a counter under a fixed prefix: successive ids differ in
    // most of their 16 bytes (random ones share 9 or more with odds below 1e-17).
    for (int i = 1; i < kCycles; ++i) {
        const QByteArray a = QByteArray::fromBase64(ids.at(i - 1), QByteArray::Base64UrlEncoding);
        const QByteArray b = QByteArray::fromBase64(ids.at(i), QByteArray::Base64UrlEncoding);
        QCOMPARE(a.size(), 16);
        QCOMPARE(b.size(), 16);
        int differing = 0;
        for (int k = 0; k < 16; ++k)
            differing += a.at(k) != b.at(k) ? 1 : 0;
        QVERIFY2(differing >= 8, qPrintable(QString::fromLatin1(ids.at(i - 1) + " then " + ids.at(i))));
    }
    QVERIFY(observer.sync());
    QVERIFY(observer.messages.isEmpty());
}

void tst_Handshake::keysNeverLogged()
{
    // Section 2, item 4: names are shown in logs, keys never, not even at debug level
    // and not a refused one (it may be a real key with a typo).
    QLoggingCategory::setFilterRules(QStringLiteral("middleman.*.debug=true"));
    {
        QMutexLocker lock(&g_logMutex);
        g_log.clear();
    }
    g_previousHandler = qInstallMessageHandler(captureMessage);
    auto restore = qScopeGuard([] {
        qInstallMessageHandler(g_previousHandler);
        g_previousHandler = nullptr;
        QLoggingCategory::setFilterRules(QString());
    });

    const QByteArray badKey = "typo-client-secret-9f3a";
    m_broker = startBroker();
    QSignalSpy disconnected(m_broker.get(), &Broker::peerDisconnected);

    TestPeer refused;
    QVERIFY(openOnly(refused, m_broker->serverUrl()));
    sendKey(refused, QByteArray("  " + badKey + "\n"), false);
    QVERIFY(refused.waitForClose());
    QCOMPARE(refused.closeCode, int(QWebSocketProtocol::CloseCodePolicyViolated));
    QTRY_COMPARE(disconnected.size(), 1);

    const quint64 refusedId = disconnected.first().at(0).toULongLong();
    TestPeer client;
    QVERIFY(client.connectWithKey(m_broker->serverUrl(), kClientKey));
    QTRY_COMPARE(m_broker->peers().size(), 1);
    const quint64 clientId = m_broker->peers().first().id;
    client.socket.close();
    QTRY_COMPARE(disconnected.size(), 2);
    m_broker.reset();

    QStringList log;
    {
        QMutexLocker lock(&g_logMutex);
        log = g_log;
    }
    auto anyLine = [&](const QString &needle) {
        return std::any_of(log.cbegin(), log.cend(), [&](const QString &line) { return line.contains(needle); });
    };
    // The debug rule took effect (ctest's QT_LOGGING_RULES is unset in main()).
    QVERIFY2(anyLine(QStringLiteral("upgraded from")), qPrintable(log.join(QLatin1Char('\n'))));
    QVERIFY2(anyLine(QStringLiteral("refused")), qPrintable(log.join(QLatin1Char('\n'))));
    QVERIFY2(anyLine(QStringLiteral("connected from")), qPrintable(log.join(QLatin1Char('\n'))));
    QVERIFY2(anyLine(QStringLiteral("'web'")), qPrintable(log.join(QLatin1Char('\n'))));
    // One line per event and peer: the client's connect and its disconnect each
    // once; the refused peer never connected and left once.
    auto linesAbout = [&](quint64 id, const QString &event) {
        const QRegularExpression pattern(QStringLiteral("\\bpeer %1 .*\\b%2\\b")
                                             .arg(id)
                                             .arg(QRegularExpression::escape(event)));
        return std::count_if(log.cbegin(), log.cend(),
                             [&](const QString &line) { return pattern.match(line).hasMatch(); });
    };
    const QString allLines = log.join(QLatin1Char('\n'));
    QCOMPARE(linesAbout(clientId, QStringLiteral("connected from")), 1);
    QVERIFY2(linesAbout(clientId, QStringLiteral("disconnected")) == 1, qPrintable(allLines));
    QCOMPARE(linesAbout(refusedId, QStringLiteral("connected from")), 0);
    QVERIFY2(linesAbout(refusedId, QStringLiteral("disconnected")) == 1, qPrintable(allLines));
    for (const QString &line : std::as_const(log)) {
        QVERIFY2(!line.contains(QString::fromUtf8(badKey)), qPrintable(line));
        QVERIFY2(!line.contains(QString::fromUtf8(kClientKey)), qPrintable(line));
        QVERIFY2(!line.contains(QString::fromUtf8(KeyStore::hashedForm(kClientKey).sliced(7))), qPrintable(line));
    }
}

void tst_Handshake::acceptedSocketsSendAtOnce()
{
    // TCP_NODELAY is set on the listening socket; every accepted socket has it.
    m_broker = startBroker();
    TestPeer first;
    TestPeer second;
    QVERIFY(first.connectWithKey(m_broker->serverUrl(), kServiceKey));
    QVERIFY(second.connectWithKey(m_broker->serverUrl(), kClientKey));
    for (TestPeer *peer : {&first, &second}) {
        QCOMPARE(noDelayOf(m_broker->serverPort(), peer->socket.localPort()), std::optional<bool>(true));
    }
}

void tst_Handshake::acceptBacklogTakesABurst()
{
    // 300 connections at once while the broker's loop is busy (here: not run at
    // all) complete their TCP handshake in the kernel's accept queue. With Qt's
    // backlog of 50 the rest have their SYNs dropped and retried a second later.
    m_broker = startBroker();
    constexpr int kBurst = 300;
    std::vector<pollfd> fds;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(m_broker->serverPort());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < kBurst; ++i) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        QVERIFY(fd >= 0);
        fds.push_back(pollfd{fd, POLLOUT, 0});
        const int result = ::connect(fd, reinterpret_cast<const sockaddr *>(&address), sizeof address);
        QVERIFY(result == 0 || errno == EINPROGRESS);
    }
    QElapsedTimer clock;
    clock.start();
    int connected = 0;
    while (clock.elapsed() < 3000) {
        connected = 0;
        (void)::poll(fds.data(), fds.size(), 100);
        for (const pollfd &p : fds) {
            int error = -1;
            socklen_t length = sizeof error;
            if ((p.revents & POLLOUT) && ::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0)
                ++connected;
        }
        if (connected == kBurst)
            break;
    }
    for (const pollfd &p : fds)
        ::close(p.fd);
    QCOMPARE(connected, kBurst);
}

void tst_Handshake::upgradeDeadline_data()
{
    QTest::addColumn<QByteArray>("sent");
    QTest::addRow("nothing") << QByteArray();
    QTest::addRow("half a request") << QByteArray("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n");
}

void tst_Handshake::upgradeDeadline()
{
    // A TCP connection that sends no WebSocket upgrade is closed after the
    // handshake timeout, and counted.
    QFETCH(QByteArray, sent);
    BrokerConfig config = testConfig();
    config.handshakeTimeoutMs = 200;
    m_broker = startBroker(config);
    BarePeer peer;
    QVERIFY(peer.connectTo(m_broker->serverPort()));
    QElapsedTimer clock;
    clock.start();
    if (!sent.isEmpty())
        QTRY_VERIFY(peer.send(sent.constData(), size_t(sent.size())));
    QTRY_VERIFY(peer.closed());
    QVERIFY2(clock.elapsed() >= 150, qPrintable(QString::number(clock.elapsed())));
    QCOMPARE(m_broker->stats().upgradeTimeouts, quint64(1));
    QCOMPARE(m_broker->stats().connectionsAccepted, quint64(0));
    // The socket is gone with the connection.
    QTRY_VERIFY(m_broker->findChildren<QAbstractSocket *>().isEmpty());

    // A peer that does upgrade in time is not touched by the deadline. The
    // barrier: a peer that connects after it and never upgrades. Once its
    // deadline has closed it, the upgraded peer's would have passed too.
    TestPeer upgraded;
    QVERIFY(upgraded.connectWithKey(m_broker->serverUrl(), kClientKey));
    BarePeer late;
    QVERIFY(late.connectTo(m_broker->serverPort()));
    QTRY_VERIFY(late.closed());
    QCOMPARE(m_broker->stats().upgradeTimeouts, quint64(2));
    QVERIFY(upgraded.sync());
    QVERIFY(!upgraded.closed);
}

void tst_Handshake::waitingForUpgradeCapped()
{
    // Connections that have not upgraded yet count against max_connections: one
    // more is dropped at once and counted; the others are untouched.
    BrokerConfig config = testConfig();
    config.maxConnections = 3;
    m_broker = startBroker(config);
    std::vector<BarePeer> silent(3);
    for (BarePeer &peer : silent)
        QVERIFY(peer.connectTo(m_broker->serverPort()));
    QTRY_COMPARE(m_broker->findChildren<QAbstractSocket *>().size(), 3);
    BarePeer extra;
    QVERIFY(extra.connectTo(m_broker->serverPort()));
    QTRY_VERIFY(extra.closed());
    QCOMPARE(m_broker->stats().connectionsRefused, quint64(1));
    QCOMPARE(m_broker->findChildren<QAbstractSocket *>().size(), 3);
    for (BarePeer &peer : silent)
        QVERIFY(!peer.closed());
    // Once one of them upgrades, there is room again.
    QVERIFY(silent[0].sendUpgrade());
    QTRY_VERIFY(silent[0].received("\r\n\r\n"));
    TestPeer upgraded;
    QVERIFY(upgraded.connectWithKey(m_broker->serverUrl(), kClientKey));
    QCOMPARE(m_broker->stats().connectionsRefused, quint64(1));
    QCOMPARE(m_broker->stats().upgradeTimeouts, quint64(0));
}

void tst_Handshake::socketsGoWithTheirSessions()
{
    // Every accepted socket is deleted once its connection is over.
    m_broker = startBroker();
    constexpr int kPeers = 20;
    {
        std::vector<std::unique_ptr<TestPeer>> peers;
        for (int i = 0; i < kPeers; ++i) {
            peers.push_back(std::make_unique<TestPeer>());
            QVERIFY(peers.back()->connectWithKey(m_broker->serverUrl(), i % 2 ? kClientKey : kServiceKey));
        }
        QCOMPARE(m_broker->findChildren<QAbstractSocket *>().size(), kPeers);
        // Half close themselves, the other half are closed by the broker.
        for (int i = 0; i < kPeers; i += 2)
            peers[size_t(i)]->socket.close();
        QTRY_COMPARE(m_broker->stats().disconnects, quint64(kPeers / 2));
        for (const PeerInfo &peer : m_broker->peers())
            QVERIFY(m_broker->disconnectPeer(peer.id, QStringLiteral("test")));
    }
    QTRY_COMPARE(m_broker->stats().disconnects, quint64(kPeers));
    QTRY_VERIFY(m_broker->findChildren<QAbstractSocket *>().isEmpty());
}

void tst_Handshake::idleConnectionsHoldNoBuffers()
{
    // An idle connection holds no socket buffer: Qt's keeps a 32 KiB write chunk
    // for good once anything was written through it (the 101 response), and a
    // 16 KiB read chunk once anything was read unless the reader takes it
    // (Session::onReadyRead). Nor Qt WebSockets' objects (docs/design.md,
    // "WebSocket layer").
    m_broker = startBroker();
    constexpr int kWarm = 20;
    constexpr int kMeasured = 200;
    std::vector<BarePeer> peers(kWarm + kMeasured); // allocated before measuring
    const auto open = [&](int from, int to) -> bool {
        for (int i = from; i < to; ++i) {
            if (!peers[size_t(i)].connectTo(m_broker->serverPort()))
                return false;
        }
        for (int i = from; i < to; ++i) {
            if (!QTest::qWaitFor([&] { return peers[size_t(i)].sendUpgrade(); }, 5000))
                return false;
        }
        for (int i = from; i < to; ++i) {
            if (!QTest::qWaitFor([&] { return peers[size_t(i)].received("\r\n\r\n"); }, 5000)
                || !peers[size_t(i)].sendKey(kClientKey))
                return false;
        }
        for (int i = from; i < to; ++i) {
            if (!QTest::qWaitFor([&] { return peers[size_t(i)].received("MM OK"); }, 5000))
                return false;
        }
        return true;
    };
    // The first connections bring the one-time allocations.
    QVERIFY(open(0, kWarm));
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    const size_t before = heapInUse();
    QVERIFY(open(kWarm, kWarm + kMeasured));
    QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    const double perConnection = (double(heapInUse()) - double(before)) / kMeasured;
    QCOMPARE(m_broker->peers().size(), kWarm + kMeasured);
    qInfo("heap per idle connection: %.0f bytes", perConnection);
    // The objects of a connection take under 5 KiB; a retained read chunk alone
    // is 16 KiB, QWebSocket's objects about 9.5 KiB.
    QVERIFY2(perConnection < 8 * 1024, qPrintable(QString::number(perConnection)));
}

int main(int argc, char *argv[])
{
    // ctest sets QT_LOGGING_RULES, and environment rules take precedence over
    // QLoggingCategory::setFilterRules(), which keysNeverLogged() relies on.
    qunsetenv("QT_LOGGING_RULES");
    installBrokerEventDispatcher(); // the daemon's event dispatcher (eventloop.h)
    QCoreApplication app(argc, argv);
    tst_Handshake test;
    QTEST_SET_MAIN_SOURCE_PATH
    return QTest::qExec(&test, argc, argv);
}

#include "tst_handshake.moc"
