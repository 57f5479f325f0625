// Keys never appear in a log line (docs/protocol.md sections 2 and 7; issue "hostile peers"):
// every log category of the broker library at debug level, captured by a message
// handler, while peers connect with good keys, with near-miss keys, with a key
// again after the handshake, and through the back-off. Neither the log nor the
// trace events (what the console's traffic log shows) may hold any 8-byte piece
// of any key. The daemon's side (its output at --log-level debug) is in tst_daemon.

#include "keystore.h"
#include "rawpeer.h"
#include "testpeer.h"

#include <QLoggingCategory>
#include <QMutex>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

// Keys made of pieces that appear nowhere else.
const QByteArray kPlainService = "Zq7vK2mXp9RtLw4N";
const QByteArray kHashedService = "Hs3JdQ8yVbE6uTa1"; // configured only as sha256:
const QByteArray kPlainClient = "Cw5FgY0nPz2SkMh7";

QMutex logMutex;
QList<QByteArray> logLines;

void captureLog(QtMsgType, const QMessageLogContext &context, const QString &text)
{
    const QMutexLocker lock(&logMutex);
    logLines.append(QByteArray(context.category ? context.category : "") + ": " + text.toUtf8());
}

// The first piece of `haystack` that is also a piece of a key, or empty.
QByteArray leakedPiece(const QByteArray &haystack, const QList<QByteArray> &keys)
{
    constexpr qsizetype kPiece = 8;
    for (const QByteArray &key : keys) {
        for (qsizetype i = 0; i + kPiece <= key.size(); ++i) {
            const QByteArray piece = key.mid(i, kPiece);
            if (haystack.contains(piece))
                return piece;
        }
    }
    return {};
}

} // namespace

class tst_Secrets : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();
    void leakCheckWorks();
    void keysNeverLogged();

private:
    QtMessageHandler m_previous = nullptr;
};

void tst_Secrets::initTestCase()
{
    QLoggingCategory::setFilterRules(QStringLiteral("middleman.*=true"));
    m_previous = qInstallMessageHandler(captureLog);
}

void tst_Secrets::cleanupTestCase()
{
    qInstallMessageHandler(m_previous);
}

void tst_Secrets::leakCheckWorks()
{
    // The check finds a key, and a key cut short or embedded.
    const QList<QByteArray> keys{kPlainService};
    QCOMPARE(leakedPiece("peer 3 sent Zq7vK2mXp9RtLw4N", keys), QByteArray("Zq7vK2mX"));
    QCOMPARE(leakedPiece("bad key 'xxp9RtLw4N'", keys), QByteArray("p9RtLw4N"));
    QVERIFY(leakedPiece("peer 3 refused: invalid key", keys).isEmpty());
}

void tst_Secrets::keysNeverLogged()
{
    BrokerConfig config = testConfig();
    config.serviceKeys = {KeyConfig{QStringLiteral("svc"), kPlainService},
                          KeyConfig{QStringLiteral("hashed"), KeyStore::hashedForm(kHashedService)}};
    config.clientKeys = {KeyConfig{QStringLiteral("web"), kPlainClient}};
    config.grants = {GrantConfig{Command::Esub, "feed"}, GrantConfig{Command::Epub, "feed"}};
    config.failedKeysBeforeBackoff = 3;
    config.failedKeyBackoffMs = 60000;
    const auto broker = startBroker(config);
    const QUrl url = broker->serverUrl();
    QList<QByteArray> traced;
    connect(broker.get(), &Broker::messageTraced, this, [&traced](const TraceEvent &event) {
        traced.append(event.command == Command::Pub ? event.target + ' ' + event.body : event.target);
        for (const Header &header : event.headers)
            traced.last() += ' ' + header.name + ':' + header.value;
    });
    {
        const QMutexLocker lock(&logMutex);
        logLines.clear();
    }

    // Good keys, each kind, with white space around one of them.
    TestPeer service;
    TestPeer hashed;
    TestPeer client;
    QVERIFY(service.connectWithKey(url, kPlainService));
    QVERIFY(hashed.connectWithKey(url, " \t" + kHashedService + "\r\n"));
    QVERIFY(client.connectWithKey(url, kPlainClient));

    // A key sent again after the handshake is a malformed message: refused
    // without the broker repeating it anywhere but in the ERR to its sender.
    client.send(kPlainClient);
    QVERIFY(client.waitFor(Command::Err).has_value());
    client.send(kPlainClient + " feed\r\n\r\n");
    QVERIFY(client.waitFor(Command::Err).has_value());

    // Near misses: a key cut short, one character off, the stored hash itself,
    // another role's key with its case changed. Each is closed 1008, and the
    // fourth starts the back-off (its close has no key in it either).
    const QList<QByteArray> nearMisses{kPlainService.left(12), kPlainClient.chopped(1) + "8",
                                       KeyStore::hashedForm(kHashedService), kPlainService.toLower()};
    for (const QByteArray &guess : nearMisses) {
        RawPeer peer;
        QVERIFY2(peer.open(url), qPrintable(peer.errorString()));
        peer.sendText(guess);
        QVERIFY(peer.waitForCloseFrame());
        QCOMPARE(peer.closeCode, 1008);
        QVERIFY(leakedPiece(peer.closeReason.toUtf8(), {kPlainService, kHashedService, kPlainClient}).isEmpty());
    }
    // Backing off: even the good key is refused, and not logged.
    RawPeer blocked;
    QVERIFY2(blocked.open(url), qPrintable(blocked.errorString()));
    QVERIFY(blocked.waitForCloseFrame());
    QCOMPARE(blocked.closeCode, 1013);
    QCOMPARE(broker->stats().keysRefused, quint64(4));
    QCOMPARE(broker->stats().keyBackoffRefused, quint64(1));

    // Ordinary traffic still flows and is traced.
    QSignalSpy subscribed(broker.get(), &Broker::subscriptionAdded);
    client.send(msg(Command::Sub, "feed"));
    QTRY_COMPARE(subscribed.size(), 1);
    service.send(msg(Command::Pub, "feed", {}, "hello"));
    QVERIFY(client.waitFor(Command::Pub, "feed").has_value());
    service.socket.close();
    QVERIFY(service.waitForClose());
    QTRY_COMPARE(broker->connectionCount(), qsizetype(2));

    // The broker did log all of this at debug level; none of it holds a key.
    QList<QByteArray> lines;
    {
        const QMutexLocker lock(&logMutex);
        lines = logLines;
    }
    const QByteArray all = lines.join('\n');
    QVERIFY2(all.contains("invalid key"), all.constData());
    QVERIFY2(all.contains("backs off"), all.constData());
    QVERIFY2(all.contains("'svc'") && all.contains("'hashed'") && all.contains("'web'"), all.constData());
    QVERIFY2(lines.size() >= 10, all.constData());
    const QList<QByteArray> keys{kPlainService, kHashedService, kPlainClient};
    for (const QByteArray &line : std::as_const(lines))
        QVERIFY2(leakedPiece(line, keys).isEmpty(), line.constData());
    QVERIFY(traced.size() >= 4);
    for (const QByteArray &event : std::as_const(traced))
        QVERIFY2(leakedPiece(event, keys).isEmpty(), event.constData());
}

QTEST_GUILESS_MAIN(tst_Secrets)
#include "tst_secrets.moc"
