// The headless daemon run as a process: command line keys, generated keys, a TOML
// config file with flags over it, the example config, config errors, SIGTERM and
// SIGINT, and `hash-key`. Every daemon listens on port 0 and says where.

#include "keystore.h"
#include "daemonprocess.h"
#include "rawpeer.h"
#include "testpeer.h"

#include <QElapsedTimer>
#include <QProcess>
#include <QRegularExpression>
#include <QTcpServer>
#include <QTemporaryDir>

#include <csignal>

#include <sys/resource.h>
#include <unistd.h>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

// Any free port: the daemon prints the one it got.
const QString kAnyPort = QStringLiteral("127.0.0.1:0");

// CPU seconds a process has used so far (/proc/PID/stat: utime and stime).
double cpuSecondsOf(qint64 pid)
{
    QFile stat(QStringLiteral("/proc/%1/stat").arg(pid));
    if (!stat.open(QIODevice::ReadOnly))
        return -1;
    const QByteArray text = stat.readAll();
    // Fields after the command name in parentheses, which may hold spaces.
    const QList<QByteArray> fields = text.mid(text.lastIndexOf(')') + 2).split(' ');
    return (fields.value(11).toDouble() + fields.value(12).toDouble()) / double(::sysconf(_SC_CLK_TCK));
}

bool hasErr(const TestPeer &peer)
{
    return std::any_of(peer.messages.cbegin(), peer.messages.cend(),
                       [](const Message &m) { return m.command == Command::Err; });
}

} // namespace

class tst_Daemon : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void initTestCase();
    void keysOnCommandLine();
    void generatedKeys();
    void qtEventDispatcherOnRequest();
    void terminateRightAfterStart();
    void signalAnswersPendingRequests_data();
    void signalAnswersPendingRequests();
    void configFileWithFlagOverride();
    void exampleConfigLoads();
    void invalidConfig_data();
    void invalidConfig();
    void unknownOption();
    void openFileLimit();
    void hashKey_data();
    void hashKey();
    void hashKeyRefusesBadKey_data();
    void hashKeyRefusesBadKey();
};

void tst_Daemon::initTestCase()
{
    QVERIFY2(QFileInfo(daemonPath()).isExecutable(), qPrintable(daemonPath()));
}

void tst_Daemon::keysOnCommandLine()
{
    const QByteArray serviceKey = "cli-service-key-7c1d";
    const QByteArray clientKey = "cli-client-key-52ab";
    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--listen"), kAnyPort, QStringLiteral("--service-key"),
                          QString::fromUtf8(serviceKey), QStringLiteral("--client-key"),
                          QString::fromUtf8(clientKey), QStringLiteral("--log-level"), QStringLiteral("debug")}));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData());
    QCOMPARE(url.host(), QStringLiteral("127.0.0.1"));
    QVERIFY(url.port() > 0);
    QVERIFY(!daemon.out.contains("generated"));

    TestPeer service;
    TestPeer client;
    QVERIFY(service.connectWithKey(url, serviceKey));
    QVERIFY(client.connectWithKey(url, clientKey));

    // The service lets clients subscribe under news.>; the client subscribes.
    service.send(msg(Command::Esub, "news.>"));
    QVERIFY(service.sync());
    client.send(msg(Command::Sub, "news.today"));
    QVERIFY(client.sync());
    QVERIFY(!hasErr(client));

    service.send(msg(Command::Pub, "news.today", {{"Lang", "en"}}, "headline"));
    const std::optional<Message> got = client.waitFor(Command::Pub, "news.today");
    QVERIFY(got);
    QCOMPARE(got->body, QByteArray("headline"));
    QCOMPARE(got->header("Lang"), QByteArray("en"));
    QVERIFY(got->header(HeaderName::ClientId).isNull()); // clients never see Client-Id

    // SIGTERM: graceful stop, peers closed with 1001, exit code 0.
    daemon.process.terminate();
    QVERIFY(daemon.waitForFinished());
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 0);
    QVERIFY(service.waitForClose());
    QVERIFY(client.waitForClose());
    QCOMPARE(service.closeCode, int(QWebSocketProtocol::CloseCodeGoingAway));
    QCOMPARE(client.closeCode, int(QWebSocketProtocol::CloseCodeGoingAway));

    daemon.out += daemon.process.readAllStandardOutput();
    daemon.err += daemon.process.readAllStandardError();
    // --log-level debug took effect, names are logged, keys never.
    QVERIFY2(daemon.err.contains("upgraded from"), daemon.err.constData());
    QVERIFY2(daemon.err.contains("'service-1'"), daemon.err.constData());
    QVERIFY2(daemon.err.contains("'client-1'"), daemon.err.constData());
    QVERIFY2(daemon.err.contains("stopped"), daemon.err.constData());
    // The epoll-based event dispatcher (docs/design.md, "Event loop").
    QVERIFY2(daemon.err.contains("event dispatcher: Middleman::EpollEventDispatcher"), daemon.err.constData());
    for (const QByteArray &key : {serviceKey, clientKey}) {
        QVERIFY2(!daemon.out.contains(key), daemon.out.constData());
        QVERIFY2(!daemon.err.contains(key), daemon.err.constData());
    }
}

void tst_Daemon::qtEventDispatcherOnRequest()
{
    // MIDDLEMAN_EVENT_DISPATCHER=qt: Qt's own poll()-based dispatcher, not GLib's.
    DaemonProcess daemon;
    QProcessEnvironment env = daemon.process.processEnvironment();
    env.insert(QStringLiteral("MIDDLEMAN_EVENT_DISPATCHER"), QStringLiteral("qt"));
    daemon.process.setProcessEnvironment(env);
    QVERIFY(daemon.start({QStringLiteral("--listen"), kAnyPort, QStringLiteral("--service-key"),
                          QStringLiteral("svc-key-for-dispatcher"), QStringLiteral("--log-level"),
                          QStringLiteral("debug")}));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData());
    TestPeer service;
    QVERIFY(service.connectWithKey(url, "svc-key-for-dispatcher"));
    QVERIFY(service.sync());
    daemon.process.terminate();
    QVERIFY(daemon.waitForFinished());
    QCOMPARE(daemon.process.exitCode(), 0);
    daemon.err += daemon.process.readAllStandardError();
    QVERIFY2(daemon.err.contains("event dispatcher: QEventDispatcherUNIX"), daemon.err.constData());
}

void tst_Daemon::generatedKeys()
{
    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--listen"), kAnyPort, QStringLiteral("--log-level"),
                          QStringLiteral("debug")}));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData());
    QVERIFY(daemon.waitForOutput("client key: "));
    QVERIFY(QTest::qWaitFor([&] { return daemon.out.endsWith('\n'); }, 5000));

    static const QRegularExpression line(QStringLiteral("^\\s*(service|client) key: (\\S+)$"),
                                         QRegularExpression::MultilineOption);
    QByteArray serviceKey;
    QByteArray clientKey;
    int count = 0;
    for (auto it = line.globalMatch(QString::fromUtf8(daemon.out)); it.hasNext(); ++count) {
        const QRegularExpressionMatch m = it.next();
        (m.captured(1) == QLatin1String("service") ? serviceKey : clientKey) = m.captured(2).toUtf8();
    }
    QCOMPARE(count, 2); // printed once each
    QVERIFY(!serviceKey.isEmpty());
    QVERIFY(!clientKey.isEmpty());
    QVERIFY(serviceKey != clientKey);
    QCOMPARE(daemon.out.count(serviceKey), 1);
    QCOMPARE(daemon.out.count(clientKey), 1);

    // They work, each with its own role: the service may subscribe freely, the
    // client needs a grant.
    TestPeer service;
    TestPeer client;
    QVERIFY(service.connectWithKey(url, serviceKey));
    QVERIFY(client.connectWithKey(url, clientKey));
    service.send(msg(Command::Sub, "gen.check"));
    QVERIFY(service.sync());
    QVERIFY(!hasErr(service));
    client.send(msg(Command::Sub, "gen.check"));
    const std::optional<Message> err = client.waitFor(Command::Err, "gen.check");
    QVERIFY(err);
    QCOMPARE(err->header(HeaderName::Status), QByteArray("403"));

    daemon.process.terminate();
    QVERIFY(daemon.waitForFinished());
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 0);
    daemon.err += daemon.process.readAllStandardError();
    // Standard output only; never logged.
    QVERIFY(daemon.err.contains("connected from"));
    QVERIFY(!daemon.err.contains(serviceKey));
    QVERIFY(!daemon.err.contains(clientKey));
}

void tst_Daemon::terminateRightAfterStart()
{
    // A supervisor may stop the daemon as soon as it reports that it listens:
    // that must already be the graceful path (exit code 0), not death by signal.
    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--listen"), kAnyPort, QStringLiteral("--service-key"),
                          QStringLiteral("k-1")}));
    QVERIFY(daemon.waitForOutput("middleman listening on "));
    daemon.process.terminate();
    QVERIFY(daemon.waitForFinished());
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 0);
}

void tst_Daemon::signalAnswersPendingRequests_data()
{
    QTest::addColumn<int>("signal");
    QTest::addRow("SIGTERM") << int(SIGTERM);
    QTest::addRow("SIGINT") << int(SIGINT); // Ctrl+C in a terminal
}

void tst_Daemon::signalAnswersPendingRequests()
{
    // Both signals are the graceful stop: a request still pending is answered
    // 503 before the peers are closed with 1001, and the exit code is 0.
    QFETCH(int, signal);
    const QByteArray serviceKey = "sig-service-key-3a9e";
    const QByteArray clientKey = "sig-client-key-77d0";
    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--listen"), kAnyPort, QStringLiteral("--service-key"),
                          QString::fromUtf8(serviceKey), QStringLiteral("--client-key"),
                          QString::fromUtf8(clientKey)}));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData());

    qsizetype receivedAtClose = -1; // what the client had when its connection closed
    TestPeer service;
    TestPeer client;
    QVERIFY(service.connectWithKey(url, serviceKey));
    QVERIFY(client.connectWithKey(url, clientKey));
    service.send(msg(Command::Sub, "svc.hold"));
    service.send(msg(Command::Ereq, "svc.hold"));
    QVERIFY(service.sync());
    QVERIFY(!hasErr(service));

    connect(&client.socket, &QWebSocket::disconnected, this,
            [&] { receivedAtClose = client.messages.size(); });
    client.send(msg(Command::Req, "svc.hold", {{"ReqID", "r1"}}, "question"));
    const std::optional<Message> req = service.waitFor(Command::Req, "svc.hold");
    QVERIFY(req); // pending now: the service never answers

    QCOMPARE(::kill(pid_t(daemon.process.processId()), signal), 0);
    QVERIFY(daemon.waitForFinished());
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 0);
    QVERIFY(client.waitForClose());
    QVERIFY(service.waitForClose());
    QCOMPARE(client.closeCode, int(QWebSocketProtocol::CloseCodeGoingAway));
    QCOMPARE(service.closeCode, int(QWebSocketProtocol::CloseCodeGoingAway));

    QCOMPARE(receivedAtClose, qsizetype(1));
    const Message &res = client.messages.first();
    QCOMPARE(res.command, Command::Res);
    QCOMPARE(res.target, QByteArray("svc.hold"));
    QCOMPARE(res.header(HeaderName::ReqId), QByteArray("r1"));
    QCOMPARE(res.header(HeaderName::Status), QByteArray("503"));
    QCOMPARE(client.messages.size(), qsizetype(1));
    QVERIFY(client.badFrames.isEmpty());
    QVERIFY(service.messages.isEmpty()); // nothing for the responder
}

void tst_Daemon::configFileWithFlagOverride()
{
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QByteArray serviceKey = "cfg-service-key-e41f";
    const QByteArray clientKey = "cfg-client-key-09bb";
    // The file names a port that stays taken, so a daemon that used it instead of
    // the flag's could not start.
    QTcpServer taken;
    QVERIFY(taken.listen(QHostAddress::LocalHost, 0));
    const quint16 configPort = taken.serverPort();

    const QString path = dir.filePath(QStringLiteral("middleman.toml"));
    QFile file(path);
    QVERIFY(file.open(QIODevice::WriteOnly));
    file.write("# test configuration\n"
               "listen = \"127.0.0.1:" + QByteArray::number(configPort) + "\"\n"
               "\n"
               "[[service_keys]]\n"
               "name = \"backend\"\n"
               "key = \"" + KeyStore::hashedForm(serviceKey) + "\"\n"
               "\n"
               "[[client_keys]]\n"
               "name = \"browser\"\n"
               "key = \"" + clientKey + "\"\n"
               "\n"
               "[[grants]]\n"
               "kind = \"ESUB\"\n"
               "pattern = \"news.>\"\n"
               "\n"
               "[limits]\n"
               "request_timeout_ms = 300\n");
    file.close();

    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--config"), path, QStringLiteral("--listen"), kAnyPort}));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData()); // the flag wins over the file
    QVERIFY(url.port() > 0);
    QVERIFY(url.port() != int(configPort));
    QVERIFY(!daemon.out.contains("generated"));

    TestPeer service;
    TestPeer client;
    QVERIFY(service.connectWithKey(url, serviceKey)); // the plain key matches the sha256: entry
    QVERIFY(client.connectWithKey(url, clientKey));

    // The permanent grant lets the client subscribe under news.> with no service grant.
    client.send(msg(Command::Sub, "news.sport"));
    client.send(msg(Command::Sub, "weather.today"));
    QVERIFY(client.sync());
    const std::optional<Message> refused = client.waitFor(Command::Err, "weather.today", 0);
    QVERIFY(refused);
    QCOMPARE(refused->header(HeaderName::Status), QByteArray("403"));
    QVERIFY(!hasErr(client)); // news.sport was accepted
    service.send(msg(Command::Pub, "news.sport", {}, "goal"));
    const std::optional<Message> got = client.waitFor(Command::Pub, "news.sport");
    QVERIFY(got);
    QCOMPARE(got->body, QByteArray("goal"));

    // [limits] request_timeout_ms = 300: an unanswered request gets 504 long
    // before the 30 s default.
    TestPeer requester;
    QVERIFY(requester.connectWithKey(url, serviceKey));
    service.send(msg(Command::Sub, "svc.slow"));
    QVERIFY(service.sync());
    requester.send(msg(Command::Req, "svc.slow", {{"ReqID", "r1"}}));
    QVERIFY(service.waitFor(Command::Req, "svc.slow"));
    const std::optional<Message> timedOut = requester.waitFor(Command::Res, "svc.slow", 5000);
    QVERIFY(timedOut);
    QCOMPARE(timedOut->header(HeaderName::Status), QByteArray("504"));
    QCOMPARE(timedOut->header(HeaderName::ReqId), QByteArray("r1"));

    daemon.process.terminate();
    QVERIFY(daemon.waitForFinished());
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 0);
    daemon.err += daemon.process.readAllStandardError();
    QVERIFY2(daemon.err.contains("'backend'"), daemon.err.constData());
    QVERIFY(!daemon.err.contains(serviceKey));
    QVERIFY(!daemon.err.contains(clientKey));
}

void tst_Daemon::exampleConfigLoads()
{
    // The example shipped in resources/ is a valid configuration, and its keys
    // and grants work as its comments say.
    const QString path = QStringLiteral(MIDDLEMAN_SOURCE_DIR) + QStringLiteral("/resources/middleman.example.toml");
    QFile file(path);
    QVERIFY2(file.open(QIODevice::ReadOnly), qPrintable(path));
    const QString text = QString::fromUtf8(file.readAll());
    // The first key of each table, and the key the comment says is hashed.
    auto firstKeyOf = [&](const QString &table) {
        const QRegularExpression re(QStringLiteral("^\\[\\[%1\\]\\][^\\[]*?^key = \"([^\"]+)\"").arg(table),
                                    QRegularExpression::MultilineOption | QRegularExpression::DotMatchesEverythingOption);
        return re.match(text).captured(1).toUtf8();
    };
    const QByteArray serviceKey = firstKeyOf(QStringLiteral("service_keys"));
    const QByteArray clientKey = firstKeyOf(QStringLiteral("client_keys"));
    static const QRegularExpression hashedComment(QStringLiteral("The SHA-256 of \"([^\"]+)\""));
    const QByteArray hashedServiceKey = hashedComment.match(text).captured(1).toUtf8();
    QVERIFY2(!serviceKey.isEmpty() && !serviceKey.startsWith("sha256:"), serviceKey.constData());
    QVERIFY2(!clientKey.isEmpty() && !clientKey.startsWith("sha256:"), clientKey.constData());
    QVERIFY(!hashedServiceKey.isEmpty());

    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--config"), path, QStringLiteral("--listen"), kAnyPort}));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData());
    QVERIFY(url.port() > 0);
    QVERIFY(!daemon.out.contains("generated"));

    TestPeer client;
    TestPeer service;
    TestPeer hashedService;
    QVERIFY(client.connectWithKey(url, clientKey));
    QVERIFY(service.connectWithKey(url, serviceKey));
    QVERIFY(hashedService.connectWithKey(url, hashedServiceKey));

    // The example's permanent grants: clients subscribe under chat.>, not elsewhere.
    client.send(msg(Command::Sub, "chat.lobby"));
    client.send(msg(Command::Sub, "news.today"));
    QVERIFY(client.sync());
    const std::optional<Message> refused = client.waitFor(Command::Err, "news.today", 0);
    QVERIFY(refused);
    QCOMPARE(refused->header(HeaderName::Status), QByteArray("403"));
    QVERIFY(!hasErr(client));
    service.send(msg(Command::Pub, "chat.lobby", {}, "hello"));
    const std::optional<Message> got = client.waitFor(Command::Pub, "chat.lobby");
    QVERIFY(got);
    QCOMPARE(got->body, QByteArray("hello"));

    daemon.process.terminate();
    QVERIFY(daemon.waitForFinished());
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 0);
    daemon.err += daemon.process.readAllStandardError();
    QVERIFY2(daemon.err.contains("'web-app'"), daemon.err.constData()); // log_level = "info"
    for (const QByteArray &key : {serviceKey, clientKey, hashedServiceKey})
        QVERIFY2(!daemon.err.contains(key), daemon.err.constData());
}

void tst_Daemon::invalidConfig_data()
{
    // The file's text (or null for a file that does not exist) and what stderr must name.
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QByteArray>("expected");
    const QByteArray keys = "[[service_keys]]\nkey = \"svc-key-1\"\n";
    QTest::addRow("unknown top-level key") << QByteArray("listen = \"127.0.0.1:0\"\nlistne = \"x\"\n" + keys)
                                           << QByteArray("unknown key 'listne'");
    QTest::addRow("unknown key in limits") << QByteArray(keys + "[limits]\nrequest_timeout = 5\n")
                                           << QByteArray("limits: unknown key 'request_timeout'");
    QTest::addRow("unknown key in a key entry") << QByteArray("[[client_keys]]\nkey = \"k\"\nrole = \"x\"\n")
                                                << QByteArray("unknown key 'role'");
    QTest::addRow("bad TOML: unterminated string") << QByteArray("listen = \"127.0.0.1:0\n")
                                                   << QByteArray("middleman.toml:1:");
    QTest::addRow("bad TOML: broken table header") << QByteArray(keys + "[[grants]\nkind = \"ESUB\"\n")
                                                   << QByteArray("middleman.toml:3:");
    QTest::addRow("wrong type") << QByteArray(keys + "[limits]\nrequest_timeout_ms = \"fast\"\n")
                                << QByteArray("limits.request_timeout_ms must be an integer");
    QTest::addRow("bad grant kind") << QByteArray(keys + "[[grants]]\nkind = \"PUB\"\npattern = \"a\"\n")
                                    << QByteArray("kind must be EPUB, ESUB or EREQ");
    QTest::addRow("key with white space") << QByteArray("[[service_keys]]\nname = \"x\"\nkey = \"a b\"\n")
                                          << QByteArray("key 'x'");
    QTest::addRow("bad listen address") << QByteArray("listen = \"nowhere\"\n" + keys)
                                        << QByteArray("listen: expected HOST:PORT");
    QTest::addRow("one key for two roles")
        << QByteArray(keys + "[[client_keys]]\nname = \"dup\"\nkey = \"svc-key-1\"\n")
        << QByteArray("key 'dup' is configured more than once");
    QTest::addRow("bad rate_limit_action") << QByteArray(keys + "[limits.client]\nrate_limit_action = \"drop\"\n")
                                           << QByteArray("limits.client.rate_limit_action must be \"pace\" or \"refuse\"");
    QTest::addRow("negative rate for a role")
        << QByteArray(keys + "[limits.service]\nmax_messages_per_second = -1\n")
        << QByteArray("limits.service.max_messages_per_second must not be negative (0: no limit)");
    QTest::addRow("zero burst in [limits]") << QByteArray(keys + "[limits]\nmessage_burst = 0\n")
                                            << QByteArray("limits.client.message_burst must be positive");
    QTest::addRow("shared limit in a role table") << QByteArray(keys + "[limits.service]\nmax_connections = 5\n")
                                                  << QByteArray("max_connections is the same for every role");
    QTest::addRow("missing file") << QByteArray() << QByteArray("cannot read");
}

void tst_Daemon::unknownOption()
{
    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--listne"), kAnyPort}));
    QVERIFY(daemon.waitForFinished());
    daemon.err += daemon.process.readAllStandardError();
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 2);
    QVERIFY2(daemon.err.contains("Unknown option 'listne'"), daemon.err.constData());
}

void tst_Daemon::openFileLimit()
{
    // A daemon allowed 200 open files: max_connections is capped below that
    // (with a warning), so that the 151st peer is told 1013 "too many
    // connections" instead of waiting unanswered; silent connections that
    // never upgrade take it to its last descriptors, where it stops accepting
    // instead of retrying accept() at full CPU; and once they are gone it
    // accepts again.
    constexpr rlim_t kFiles = 200;
    DaemonProcess daemon;
    daemon.process.setChildProcessModifier([] {
        const rlimit limit{kFiles, kFiles};
        ::setrlimit(RLIMIT_NOFILE, &limit);
    });
    QVERIFY(daemon.start({QStringLiteral("--listen"), kAnyPort, QStringLiteral("--service-key"),
                          QStringLiteral("fd-key")}));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData());
    QVERIFY(QTest::qWaitFor([&] { return daemon.err.contains("at most 150 connections"); }, 5000));
    QVERIFY2(daemon.err.contains("max_connections 100000 is above what the open-file limit of 200 allows"),
             daemon.err.constData());

    std::vector<std::unique_ptr<RawPeer>> peers;
    for (int i = 0; i < 150; ++i) {
        peers.push_back(std::make_unique<RawPeer>());
        QVERIFY2(peers.back()->connectWithKey(url, "fd-key"), qPrintable(peers.back()->errorString()));
    }
    RawPeer over;
    QVERIFY2(over.open(url), qPrintable(over.errorString()));
    QVERIFY(over.waitForCloseFrame());
    QCOMPARE(over.closeCode, 1013);
    QCOMPARE(over.closeReason, QStringLiteral("too many connections"));

    // TCP connections that say nothing, more than the descriptors left.
    std::vector<std::unique_ptr<QTcpSocket>> silent;
    for (int i = 0; i < 100; ++i) {
        silent.push_back(std::make_unique<QTcpSocket>());
        silent.back()->connectToHost(url.host(), quint16(url.port()));
    }
    // From its first pause to the seventh, 1.27 s later, it waits: no loop.
    QVERIFY(QTest::qWaitFor([&] { return daemon.err.contains("near the open-file limit"); }, 10000));
    const double before = cpuSecondsOf(daemon.process.processId());
    QElapsedTimer waited;
    waited.start();
    QVERIFY(QTest::qWaitFor([&] { return daemon.err.contains("not accepting for 1000 ms"); }, 10000));
    const double spent = cpuSecondsOf(daemon.process.processId()) - before;
    QVERIFY2(before >= 0 && spent < 0.25 * double(waited.elapsed()) / 1000,
             qPrintable(QStringLiteral("%1 CPU seconds in %2 ms").arg(spent).arg(waited.elapsed())));

    silent.clear();
    peers.clear();
    std::unique_ptr<TestPeer> later;
    QVERIFY(QTest::qWaitFor([&] { return (later = std::make_unique<TestPeer>())->connectWithKey(url, "fd-key"); },
                            10000));
    QVERIFY(later->sync());
    QVERIFY(daemon.stop());
}

void tst_Daemon::invalidConfig()
{
    QFETCH(QByteArray, text);
    QFETCH(QByteArray, expected);

    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString path = dir.filePath(QStringLiteral("middleman.toml"));
    if (!text.isNull()) {
        QFile file(path);
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.write(text);
    }
    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--config"), path, QStringLiteral("--listen"), kAnyPort}));
    QVERIFY(daemon.waitForFinished());
    daemon.out += daemon.process.readAllStandardOutput();
    daemon.err += daemon.process.readAllStandardError();
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 2);
    QVERIFY2(daemon.err.startsWith("middleman: "), daemon.err.constData());
    QVERIFY2(daemon.err.contains(expected), daemon.err.constData());
    QVERIFY2(!daemon.out.contains("listening"), daemon.out.constData());
}

void tst_Daemon::hashKey_data()
{
    QTest::addColumn<QByteArray>("key");
    QTest::addColumn<bool>("fromStdin");
    QTest::addColumn<QByteArray>("input"); // what is written to stdin
    QTest::addRow("argument") << QByteArray("my-secret-key") << false << QByteArray();
    QTest::addRow("argument, generated-looking key") << QByteArray("Zm9vYmFyLWJhei0xMjM0NTY3ODkw_-") << false
                                                     << QByteArray();
    QTest::addRow("stdin") << QByteArray("my-secret-key") << true << QByteArray("my-secret-key\n");
    QTest::addRow("stdin without newline") << QByteArray("other-key") << true << QByteArray("other-key");
    QTest::addRow("stdin with white space") << QByteArray("spaced-key") << true << QByteArray("  spaced-key \r\n");
}

void tst_Daemon::hashKey()
{
    QFETCH(QByteArray, key);
    QFETCH(bool, fromStdin);
    QFETCH(QByteArray, input);

    DaemonProcess daemon;
    QStringList args{QStringLiteral("hash-key")};
    if (!fromStdin)
        args << QString::fromUtf8(key);
    QVERIFY(daemon.start(args));
    if (fromStdin) {
        daemon.process.write(input);
        daemon.process.closeWriteChannel();
    }
    QVERIFY(daemon.waitForFinished());
    daemon.out += daemon.process.readAllStandardOutput();
    daemon.err += daemon.process.readAllStandardError();
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 0);
    QCOMPARE(daemon.out, QByteArray(KeyStore::hashedForm(key) + '\n'));
    QVERIFY(daemon.out.startsWith("sha256:"));
    QCOMPARE(daemon.out.trimmed().size(), qsizetype(7 + 64));
    QVERIFY2(daemon.err.isEmpty(), daemon.err.constData());
    QVERIFY(!daemon.out.contains(key));

    // What it prints is accepted in a config and matches the plain key.
    BrokerConfig config;
    config.port = 0;
    config.serviceKeys = {KeyConfig{QStringLiteral("hashed"), daemon.out.trimmed()}};
    std::unique_ptr<Broker> broker = startBroker(config);
    TestPeer peer;
    QVERIFY(peer.connectWithKey(broker->serverUrl(), key));
}

void tst_Daemon::hashKeyRefusesBadKey_data()
{
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<QByteArray>("expected");
    QTest::addRow("empty stdin") << QStringList{QStringLiteral("hash-key")} << QByteArray()
                                 << QByteArray("empty key");
    QTest::addRow("blank stdin line") << QStringList{QStringLiteral("hash-key")} << QByteArray("   \n")
                                      << QByteArray("empty key");
    QTest::addRow("white space inside") << QStringList{QStringLiteral("hash-key"), QStringLiteral("a b")}
                                        << QByteArray() << QByteArray("white space");
}

void tst_Daemon::hashKeyRefusesBadKey()
{
    QFETCH(QStringList, args);
    QFETCH(QByteArray, input);
    QFETCH(QByteArray, expected);

    DaemonProcess daemon;
    QVERIFY(daemon.start(args));
    if (!input.isEmpty())
        daemon.process.write(input);
    daemon.process.closeWriteChannel();
    QVERIFY(daemon.waitForFinished());
    daemon.out += daemon.process.readAllStandardOutput();
    daemon.err += daemon.process.readAllStandardError();
    QCOMPARE(daemon.process.exitCode(), 2);
    QVERIFY(daemon.out.isEmpty());
    QVERIFY2(daemon.err.contains(expected), daemon.err.constData());
}

QTEST_MAIN(tst_Daemon)
#include "tst_daemon.moc"
