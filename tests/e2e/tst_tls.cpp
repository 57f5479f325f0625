// docs/protocol.md §1 (wss://): the broker serving TLS with certificates this test makes
// at run time with the openssl command. Peers that trust the certificate, peers
// that do not, plain ws:// and silent peers against the wss:// port, the [tls]
// table and its checks, and the daemon run as a process with TLS.

#include "configfile.h"
#include "consoleconnection.h"
#include "daemonprocess.h"
#include "socketoptions.h"
#include "testpeer.h"
#include "tlscredentials.h"

#include <QDir>
#include <QProcess>
#include <QSslSocket>
#include <QTemporaryDir>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

const QByteArray kPassphrase = "correct-horse-9f1c-7d2e";

// Runs openssl in `dir`; false with its output when it fails.
bool openssl(const QString &dir, const QStringList &args, QString *why)
{
    QProcess process;
    process.setWorkingDirectory(dir);
    process.setProcessChannelMode(QProcess::MergedChannels);
    process.start(QStringLiteral("openssl"), args);
    if (!process.waitForStarted(10000)) {
        *why = QStringLiteral("cannot run openssl: ") + process.errorString();
        return false;
    }
    process.closeWriteChannel();
    if (!process.waitForFinished(60000) || process.exitStatus() != QProcess::NormalExit || process.exitCode() != 0) {
        *why = QStringLiteral("openssl %1: %2").arg(args.join(QLatin1Char(' ')),
                                                     QString::fromLocal8Bit(process.readAll()));
        return false;
    }
    return true;
}

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

bool writeFile(const QString &path, const QByteArray &data)
{
    QFile file(path);
    return file.open(QIODevice::WriteOnly) && file.write(data) == data.size();
}

// The base64 lines of a PEM file: none of them may ever be printed or logged.
QList<QByteArray> pemBodyLines(const QString &path)
{
    QList<QByteArray> lines;
    const QList<QByteArray> all = readAll(path).split('\n');
    for (const QByteArray &line : all) {
        if (line.size() >= 16 && !line.startsWith("-----") && !line.contains(':'))
            lines.append(line.trimmed());
    }
    return lines;
}

// A client that trusts exactly the test's certificate.
QSslConfiguration trusting(const QString &certificate)
{
    QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
    configuration.setCaCertificates(QSslCertificate::fromPath(certificate));
    return configuration;
}

} // namespace

class tst_Tls : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void credentials_data();
    void credentials();
    void configTable_data();
    void configTable();
    void relativePathsFollowTheConfigFile();
    void endToEnd_data();
    void endToEnd();
    void untrustingClientFails();
    void plainClientOnTlsPort();
    void garbageOnTlsPort();
    void silentPeersCutOff();
    void pacedClient();
    void handshakesInProgressCapped();
    void consoleConnectionPinsItsBroker();
    void daemonServesWss();
    void daemonCommandLineOptions();
    void daemonExpiredCertificate();
    void daemonRefusesBadTls_data();
    void daemonRefusesBadTls();

private:
    QString file(const QString &name) const { return m_dir.filePath(name); }
    BrokerConfig tlsConfig(const QString &certificate = {}, const QString &key = {}) const;
    // A service and a client over wss://, checking PUB/SUB and REQ/RES.
    void checkServes(const QUrl &url, const QByteArray &serviceKey, const QByteArray &clientKey);

    QTemporaryDir m_dir;
};

void tst_Tls::initTestCase()
{
    QVERIFY(m_dir.isValid());
    QVERIFY2(QSslSocket::supportsSsl(), qPrintable(QSslSocket::sslLibraryBuildVersionString()));
    const QString dir = m_dir.path();
    const QString san = QStringLiteral("subjectAltName=IP:127.0.0.1,DNS:localhost");
    QString why;
    // EC P-256 certificate and key, CN=localhost, for 127.0.0.1 and localhost.
    QVERIFY2(openssl(dir, {QStringLiteral("req"), QStringLiteral("-x509"), QStringLiteral("-newkey"),
                           QStringLiteral("ec"), QStringLiteral("-pkeyopt"), QStringLiteral("ec_paramgen_curve:prime256v1"),
                           QStringLiteral("-nodes"), QStringLiteral("-keyout"), QStringLiteral("key.pem"),
                           QStringLiteral("-out"), QStringLiteral("cert.pem"), QStringLiteral("-days"),
                           QStringLiteral("30"), QStringLiteral("-subj"), QStringLiteral("/CN=localhost"),
                           QStringLiteral("-addext"), san},
                     &why),
             qPrintable(why));
    // The same key encrypted with a passphrase (PKCS#8, AES-256).
    QVERIFY2(openssl(dir, {QStringLiteral("pkey"), QStringLiteral("-in"), QStringLiteral("key.pem"),
                           QStringLiteral("-aes256"), QStringLiteral("-passout"),
                           QStringLiteral("pass:") + QString::fromLatin1(kPassphrase), QStringLiteral("-out"),
                           QStringLiteral("key-encrypted.pem")},
                     &why),
             qPrintable(why));
    // A key that belongs to no certificate here.
    QVERIFY2(openssl(dir, {QStringLiteral("genpkey"), QStringLiteral("-algorithm"), QStringLiteral("EC"),
                           QStringLiteral("-pkeyopt"), QStringLiteral("ec_paramgen_curve:prime256v1"),
                           QStringLiteral("-out"), QStringLiteral("other-key.pem")},
                     &why),
             qPrintable(why));
    // RSA as well.
    QVERIFY2(openssl(dir, {QStringLiteral("req"), QStringLiteral("-x509"), QStringLiteral("-newkey"),
                           QStringLiteral("rsa:2048"), QStringLiteral("-nodes"), QStringLiteral("-keyout"),
                           QStringLiteral("rsa-key.pem"), QStringLiteral("-out"), QStringLiteral("rsa-cert.pem"),
                           QStringLiteral("-days"), QStringLiteral("30"), QStringLiteral("-subj"),
                           QStringLiteral("/CN=localhost"), QStringLiteral("-addext"), san},
                     &why),
             qPrintable(why));
    // Certificate and key in one file.
    QVERIFY(writeFile(file(QStringLiteral("combined.pem")),
                      readAll(file(QStringLiteral("cert.pem"))) + readAll(file(QStringLiteral("key.pem")))));
    // A certificate that expired in 2020: `openssl ca` is the one command of
    // OpenSSL 3.0 that takes explicit dates.
    QVERIFY(writeFile(file(QStringLiteral("ca.cnf")),
                      "[ca]\ndefault_ca = old\n[old]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
                      "default_md = sha256\npolicy = any\ncopy_extensions = copy\n[any]\ncommonName = supplied\n"));
    QVERIFY(writeFile(file(QStringLiteral("index.txt")), QByteArray()));
    QVERIFY(writeFile(file(QStringLiteral("serial")), "01\n"));
    QVERIFY2(openssl(dir, {QStringLiteral("req"), QStringLiteral("-new"), QStringLiteral("-newkey"),
                           QStringLiteral("ec"), QStringLiteral("-pkeyopt"), QStringLiteral("ec_paramgen_curve:prime256v1"),
                           QStringLiteral("-nodes"), QStringLiteral("-keyout"), QStringLiteral("expired-key.pem"),
                           QStringLiteral("-out"), QStringLiteral("expired.csr"), QStringLiteral("-subj"),
                           QStringLiteral("/CN=localhost"), QStringLiteral("-addext"), san},
                     &why),
             qPrintable(why));
    QVERIFY2(openssl(dir, {QStringLiteral("ca"), QStringLiteral("-batch"), QStringLiteral("-config"),
                           QStringLiteral("ca.cnf"), QStringLiteral("-selfsign"), QStringLiteral("-keyfile"),
                           QStringLiteral("expired-key.pem"), QStringLiteral("-in"), QStringLiteral("expired.csr"),
                           QStringLiteral("-out"), QStringLiteral("expired-cert.pem"), QStringLiteral("-startdate"),
                           QStringLiteral("20200101000000Z"), QStringLiteral("-enddate"),
                           QStringLiteral("20200201000000Z"), QStringLiteral("-notext")},
                     &why),
             qPrintable(why));
    QVERIFY(writeFile(file(QStringLiteral("not-pem.txt")), "this is not a PEM file\n"));
    // A certificate for another name only, as a broker behind a public name has.
    QVERIFY2(openssl(dir, {QStringLiteral("req"), QStringLiteral("-x509"), QStringLiteral("-newkey"),
                           QStringLiteral("ec"), QStringLiteral("-pkeyopt"), QStringLiteral("ec_paramgen_curve:prime256v1"),
                           QStringLiteral("-nodes"), QStringLiteral("-keyout"), QStringLiteral("named-key.pem"),
                           QStringLiteral("-out"), QStringLiteral("named-cert.pem"), QStringLiteral("-days"),
                           QStringLiteral("30"), QStringLiteral("-subj"), QStringLiteral("/CN=broker.example"),
                           QStringLiteral("-addext"), QStringLiteral("subjectAltName=DNS:broker.example")},
                     &why),
             qPrintable(why));
}

BrokerConfig tst_Tls::tlsConfig(const QString &certificate, const QString &key) const
{
    BrokerConfig config = testConfig();
    config.tls.certificateFile = certificate.isEmpty() ? file(QStringLiteral("cert.pem")) : certificate;
    config.tls.privateKeyFile = key.isEmpty() ? file(QStringLiteral("key.pem")) : key;
    return config;
}

void tst_Tls::credentials_data()
{
    QTest::addColumn<QString>("certificate");
    QTest::addColumn<QString>("key");
    QTest::addColumn<QByteArray>("passphrase");
    QTest::addColumn<QString>("expected"); // empty: loads
    const QString cert = QStringLiteral("cert.pem");
    const QString key = QStringLiteral("key.pem");
    QTest::addRow("EC") << cert << key << QByteArray() << QString();
    QTest::addRow("RSA") << QStringLiteral("rsa-cert.pem") << QStringLiteral("rsa-key.pem") << QByteArray() << QString();
    QTest::addRow("encrypted key with its passphrase") << cert << QStringLiteral("key-encrypted.pem") << kPassphrase
                                                       << QString();
    QTest::addRow("certificate and key in one file") << QStringLiteral("combined.pem") << QStringLiteral("combined.pem")
                                                     << QByteArray() << QString();
    QTest::addRow("expired certificate loads") << QStringLiteral("expired-cert.pem") << QStringLiteral("expired-key.pem")
                                               << QByteArray() << QString();
    QTest::addRow("missing certificate file") << QStringLiteral("nowhere.pem") << key << QByteArray()
                                              << QStringLiteral("tls.certificate: cannot read");
    QTest::addRow("missing key file") << cert << QStringLiteral("nowhere.pem") << QByteArray()
                                      << QStringLiteral("tls.private_key: cannot read");
    QTest::addRow("certificate file is not PEM") << QStringLiteral("not-pem.txt") << key << QByteArray()
                                                 << QStringLiteral("tls.certificate: no PEM certificate in");
    QTest::addRow("certificate file holds a key") << key << key << QByteArray()
                                                  << QStringLiteral("tls.certificate: no PEM certificate in");
    QTest::addRow("key file holds a certificate") << cert << cert << QByteArray()
                                                  << QStringLiteral("tls.private_key: no PEM private key in");
    QTest::addRow("key of another certificate") << cert << QStringLiteral("other-key.pem") << QByteArray()
                                                << QStringLiteral("does not belong to the certificate");
    QTest::addRow("RSA key for the EC certificate") << cert << QStringLiteral("rsa-key.pem") << QByteArray()
                                                    << QStringLiteral("does not belong to the certificate");
    QTest::addRow("encrypted key without passphrase") << cert << QStringLiteral("key-encrypted.pem") << QByteArray()
                                                      << QStringLiteral("is encrypted; set tls.private_key_passphrase");
    QTest::addRow("encrypted key, wrong passphrase") << cert << QStringLiteral("key-encrypted.pem")
                                                     << QByteArray("not-the-passphrase")
                                                     << QStringLiteral("wrong passphrase");
}

void tst_Tls::credentials()
{
    QFETCH(QString, certificate);
    QFETCH(QString, key);
    QFETCH(QByteArray, passphrase);
    QFETCH(QString, expected);
    TlsConfig config;
    config.certificateFile = file(certificate);
    config.privateKeyFile = file(key);
    config.privateKeyPassphrase = passphrase;
    TlsCredentials credentials;
    QString error;
    const bool loaded = credentials.load(config, &error);
    if (expected.isEmpty()) {
        QVERIFY2(loaded, qPrintable(error));
        QVERIFY(!credentials.chain().isEmpty());
        const QSslConfiguration server = credentials.serverConfiguration();
        QVERIFY(!server.privateKey().isNull());
        QCOMPARE(server.localCertificate(), credentials.chain().first());
        QCOMPARE(server.protocol(), QSsl::TlsV1_2OrLater);
        QCOMPARE(server.peerVerifyMode(), QSslSocket::VerifyNone);
        const bool expired = certificate.startsWith(QLatin1String("expired"));
        const QString problem = credentials.validityProblem(QDateTime::currentDateTimeUtc());
        QCOMPARE(problem.contains(QLatin1String("expired on 2020-02-01")), expired);
        QCOMPARE(problem.isEmpty(), !expired);
        return;
    }
    QVERIFY(!loaded);
    QVERIFY2(error.contains(expected), qPrintable(error));
    QVERIFY(!error.contains(QLatin1Char('\n')));
    QVERIFY2(!error.contains(QString::fromLatin1(kPassphrase)), qPrintable(error));
    QVERIFY2(passphrase.isEmpty() || !error.contains(QString::fromLatin1(passphrase)), qPrintable(error));
}

void tst_Tls::configTable_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("expected"); // empty: valid
    QTest::addRow("certificate and key")
        << QByteArray("[tls]\ncertificate = \"/etc/mm/cert.pem\"\nprivate_key = \"/etc/mm/key.pem\"\n") << QString();
    QTest::addRow("with passphrase") << QByteArray("[tls]\ncertificate = \"/c.pem\"\nprivate_key = \"/k.pem\"\n"
                                                   "private_key_passphrase = \"" + kPassphrase + "\"\n")
                                     << QString();
    QTest::addRow("unknown key") << QByteArray("[tls]\ncertificate = \"/c.pem\"\nprivate_key = \"/k.pem\"\n"
                                               "ca_file = \"/ca.pem\"\n")
                                 << QStringLiteral("tls: unknown key 'ca_file'");
    QTest::addRow("not a table") << QByteArray("tls = \"on\"\n") << QStringLiteral("tls must be a table");
    QTest::addRow("empty certificate") << QByteArray("[tls]\ncertificate = \"\"\nprivate_key = \"/k.pem\"\n")
                                       << QStringLiteral("tls.certificate must not be empty");
    QTest::addRow("certificate not a string") << QByteArray("[tls]\ncertificate = 1\nprivate_key = \"/k.pem\"\n")
                                              << QStringLiteral("tls.certificate must be a string");
    QTest::addRow("passphrase not a string")
        << QByteArray("[tls]\ncertificate = \"/c.pem\"\nprivate_key = \"/k.pem\"\nprivate_key_passphrase = 1234\n")
        << QStringLiteral("tls.private_key_passphrase must be a string");
    QTest::addRow("certificate only") << QByteArray("[tls]\ncertificate = \"/c.pem\"\n")
                                      << QStringLiteral("a certificate needs a private key");
    QTest::addRow("key only") << QByteArray("[tls]\nprivate_key = \"/k.pem\"\n")
                              << QStringLiteral("a private key needs a certificate");
    QTest::addRow("passphrase only") << QByteArray("[tls]\nprivate_key_passphrase = \"" + kPassphrase + "\"\n")
                                     << QStringLiteral("no private key is configured");
}

void tst_Tls::configTable()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, expected);
    BrokerConfig config = testConfig();
    QString error;
    const bool ok = loadConfigText(text, QStringLiteral("t.toml"), &config, nullptr, &error) && config.validate(&error);
    if (expected.isEmpty()) {
        QVERIFY2(ok, qPrintable(error));
        QVERIFY(config.tls.enabled());
        QVERIFY(QDir::isAbsolutePath(config.tls.certificateFile));
        return;
    }
    QVERIFY(!ok);
    QVERIFY2(error.contains(expected), qPrintable(error));
    QVERIFY2(!error.contains(QString::fromLatin1(kPassphrase)), qPrintable(error));
}

void tst_Tls::relativePathsFollowTheConfigFile()
{
    // Relative to the file's directory, wherever the daemon is started from.
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QVERIFY(QDir(dir.path()).mkpath(QStringLiteral("conf/tls")));
    const QString path = dir.filePath(QStringLiteral("conf/middleman.toml"));
    QVERIFY(writeFile(path, "[tls]\ncertificate = \"tls/cert.pem\"\nprivate_key = \"../key.pem\"\n"));
    BrokerConfig config;
    QString error;
    QVERIFY2(loadConfigFile(path, &config, nullptr, &error), qPrintable(error));
    QCOMPARE(config.tls.certificateFile, dir.filePath(QStringLiteral("conf/tls/cert.pem")));
    QCOMPARE(config.tls.privateKeyFile, dir.filePath(QStringLiteral("key.pem")));
}

void tst_Tls::checkServes(const QUrl &url, const QByteArray &serviceKey, const QByteArray &clientKey)
{
    const QSslConfiguration trust = trusting(file(QStringLiteral("cert.pem")));
    TestPeer service;
    TestPeer client;
    service.socket.setSslConfiguration(trust);
    client.socket.setSslConfiguration(trust);
    QVERIFY(service.connectWithKey(url, serviceKey));
    QVERIFY(client.connectWithKey(url, clientKey));

    service.send(msg(Command::Sub, "svc.echo"));
    service.send(msg(Command::Esub, "news.>"));
    service.send(msg(Command::Ereq, "svc.>"));
    QVERIFY(service.sync());
    client.send(msg(Command::Sub, "news.today"));
    QVERIFY(client.sync());
    service.send(msg(Command::Pub, "news.today", {}, "over TLS"));
    const std::optional<Message> pub = client.waitFor(Command::Pub, "news.today");
    QVERIFY(pub);
    QCOMPARE(pub->body, QByteArray("over TLS"));

    client.send(msg(Command::Req, "svc.echo", {{"ReqID", "q1"}}, "ping"));
    const std::optional<Message> req = service.waitFor(Command::Req, "svc.echo");
    QVERIFY(req);
    service.send(msg(Command::Res, "svc.echo", {{"ReqID", req->header(HeaderName::ReqId)}}, "pong"));
    const std::optional<Message> res = client.waitFor(Command::Res, "svc.echo");
    QVERIFY(res);
    QCOMPARE(res->header(HeaderName::ReqId), QByteArray("q1"));
    QCOMPARE(res->body, QByteArray("pong"));
    QVERIFY(service.badFrames.isEmpty());
    QVERIFY(client.badFrames.isEmpty());
}

void tst_Tls::endToEnd_data()
{
    QTest::addColumn<QString>("certificate");
    QTest::addColumn<QString>("key");
    QTest::addColumn<QByteArray>("passphrase");
    QTest::addRow("EC key") << QStringLiteral("cert.pem") << QStringLiteral("key.pem") << QByteArray();
    QTest::addRow("encrypted key") << QStringLiteral("cert.pem") << QStringLiteral("key-encrypted.pem") << kPassphrase;
    QTest::addRow("one file") << QStringLiteral("combined.pem") << QStringLiteral("combined.pem") << QByteArray();
}

void tst_Tls::endToEnd()
{
    QFETCH(QString, certificate);
    QFETCH(QString, key);
    QFETCH(QByteArray, passphrase);
    BrokerConfig config = tlsConfig(file(certificate), file(key));
    config.tls.privateKeyPassphrase = passphrase;
    const auto broker = startBroker(config);
    QCOMPARE(broker->serverUrl().scheme(), QStringLiteral("wss"));
    QCOMPARE(broker->serverUrl().port(), int(broker->serverPort()));
    QVERIFY(broker->isListening());
    checkServes(broker->serverUrl(), kServiceKey, kClientKey);
    if (QTest::currentTestFailed())
        return;
    QCOMPARE(broker->stats().tlsHandshakeFailures, quint64(0));
    QCOMPARE(broker->stats().handshakesCompleted, quint64(2));
    // wss:// sockets too are accepted with TCP_NODELAY (from the listening socket).
    {
        TestPeer peer;
        peer.socket.setSslConfiguration(trusting(file(QStringLiteral("cert.pem"))));
        QVERIFY(peer.connectWithKey(broker->serverUrl(), kClientKey));
        QCOMPARE(noDelayOf(broker->serverPort(), peer.socket.localPort()), std::optional<bool>(true));
    }
    // The peers are gone: so are their sessions and TLS sockets.
    QTRY_COMPARE(broker->connectionCount(), qsizetype(0));
    QTRY_COMPARE(broker->findChildren<QSslSocket *>().size(), qsizetype(0));
}

void tst_Tls::untrustingClientFails()
{
    const auto broker = startBroker(tlsConfig());
    const QSslConfiguration trust = trusting(file(QStringLiteral("cert.pem")));
    TestPeer service;
    service.socket.setSslConfiguration(trust);
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));

    // The system's CAs do not know the test's certificate: the client refuses it.
    QWebSocket stranger;
    QSignalSpy sslErrors(&stranger, &QWebSocket::sslErrors);
    // Qt 6.4's QWebSocket names the signal error(), not errorOccurred().
    QSignalSpy errors(&stranger, qOverload<QAbstractSocket::SocketError>(&QWebSocket::error));
    stranger.open(broker->serverUrl());
    QTRY_VERIFY(!errors.isEmpty());
    QVERIFY(!sslErrors.isEmpty());
    const auto sslErrorList = sslErrors.first().first().value<QList<QSslError>>();
    QVERIFY(!sslErrorList.isEmpty());
    QVERIFY(stranger.state() != QAbstractSocket::ConnectedState);
    QTRY_COMPARE(broker->stats().tlsHandshakeFailures, quint64(1));

    // The broker went on serving the peer that trusts it, and serves new ones.
    service.send(msg(Command::Sub, "still.here"));
    QVERIFY(service.sync());
    TestPeer later;
    later.socket.setSslConfiguration(trust);
    QVERIFY(later.connectWithKey(broker->serverUrl(), kClientKey));
    QCOMPARE(broker->connectionCount(), qsizetype(2));
}

void tst_Tls::plainClientOnTlsPort()
{
    const auto broker = startBroker(tlsConfig());
    TestPeer service;
    service.socket.setSslConfiguration(trusting(file(QStringLiteral("cert.pem"))));
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));

    QUrl plainUrl = broker->serverUrl();
    plainUrl.setScheme(QStringLiteral("ws"));
    TestPeer plain;
    QVERIFY(!plain.connectWithKey(plainUrl, kServiceKey));
    QVERIFY(plain.frames.isEmpty());
    QTRY_COMPARE(broker->stats().tlsHandshakeFailures, quint64(1));
    QCOMPARE(broker->stats().connectionsAccepted, quint64(1));

    service.send(msg(Command::Sub, "still.here"));
    QVERIFY(service.sync());
    QCOMPARE(broker->connectionCount(), qsizetype(1));
}

void tst_Tls::garbageOnTlsPort()
{
    // Bytes that look like a TLS record at first, then are not.
    const auto broker = startBroker(tlsConfig());
    TestPeer service;
    service.socket.setSslConfiguration(trusting(file(QStringLiteral("cert.pem"))));
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));

    QTcpSocket garbage;
    QSignalSpy closed(&garbage, &QTcpSocket::disconnected);
    garbage.connectToHost(QHostAddress::LocalHost, broker->serverPort());
    QVERIFY(garbage.waitForConnected(5000));
    garbage.write(QByteArray("\x16\x03\x01\x00\x10", 5) + QByteArray(64, '\xee'));
    QTRY_VERIFY(!closed.isEmpty());
    QTRY_COMPARE(broker->stats().tlsHandshakeFailures, quint64(1));
    QTRY_COMPARE(broker->findChildren<QSslSocket *>().size(), qsizetype(1)); // the service's only

    service.send(msg(Command::Sub, "still.here"));
    QVERIFY(service.sync());
}

void tst_Tls::pacedClient()
{
    // wss:// input goes through QSslSocket: a held client's input stays in
    // the kernel there too.
    BrokerConfig config = tlsConfig();
    config.clientLimits.maxMessagesPerSecond = 1;
    config.clientLimits.messageBurst = 1;
    config.grants = {GrantConfig{Command::Epub, "feed"}};
    const auto broker = startBroker(config);
    const QSslConfiguration trust = trusting(file(QStringLiteral("cert.pem")));
    TestPeer client;
    TestPeer subscriber;
    client.socket.setSslConfiguration(trust);
    subscriber.socket.setSslConfiguration(trust);
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
    QVERIFY(subscriber.connectWithKey(broker->serverUrl(), kServiceKey));
    subscriber.send(msg(Command::Sub, "feed"));
    QVERIFY(subscriber.sync());
    checkHeldInputStaysInTheKernel(*broker, client, subscriber);
}

void tst_Tls::silentPeersCutOff()
{
    // One peer opens TCP and says nothing; another completes TLS and then never
    // sends the WebSocket upgrade. handshake_timeout_ms cuts both off.
    BrokerConfig config = tlsConfig();
    config.handshakeTimeoutMs = 300;
    const auto broker = startBroker(config);

    QTcpSocket silent;
    QSignalSpy silentClosed(&silent, &QTcpSocket::disconnected);
    silent.connectToHost(QHostAddress::LocalHost, broker->serverPort());
    QVERIFY(silent.waitForConnected(5000));

    QSslSocket mute;
    mute.setSslConfiguration(trusting(file(QStringLiteral("cert.pem"))));
    QSignalSpy encrypted(&mute, &QSslSocket::encrypted);
    QSignalSpy muteClosed(&mute, &QSslSocket::disconnected);
    mute.connectToHostEncrypted(QStringLiteral("127.0.0.1"), broker->serverPort());

    QTRY_COMPARE(encrypted.size(), 1);
    QTRY_COMPARE(silentClosed.size(), 1);
    QTRY_COMPARE(muteClosed.size(), 1);
    // Only the first one failed its TLS handshake; the second timed out
    // waiting for the upgrade.
    QTRY_COMPARE(broker->stats().tlsHandshakeFailures, quint64(1));
    QTRY_COMPARE(broker->stats().upgradeTimeouts, quint64(1));
    QCOMPARE(broker->connectionCount(), qsizetype(0));

    // Peers that do their part in time are not affected by the short deadline's
    // timer after they are through.
    // A peer through in time keeps its connection: a later silent peer, whose
    // deadline runs out after the first one's would have, is cut off while it
    // stays.
    TestPeer peer;
    peer.socket.setSslConfiguration(trusting(file(QStringLiteral("cert.pem"))));
    QVERIFY(peer.connectWithKey(broker->serverUrl(), kServiceKey));
    QTcpSocket later;
    QSignalSpy laterClosed(&later, &QTcpSocket::disconnected);
    later.connectToHost(QHostAddress::LocalHost, broker->serverPort());
    QTRY_COMPARE(laterClosed.size(), 1);
    QVERIFY(!peer.closed);
    QVERIFY(peer.sync());
    QCOMPARE(broker->stats().tlsHandshakeFailures, quint64(2));
}

void tst_Tls::handshakesInProgressCapped()
{
    // TLS handshakes in progress are capped at max_connections: one more is
    // dropped at once and counted; finished ones free their place.
    BrokerConfig config = tlsConfig();
    config.maxConnections = 2;
    const auto broker = startBroker(config);

    QTcpSocket silent[2];
    for (QTcpSocket &socket : silent) {
        socket.connectToHost(QHostAddress::LocalHost, broker->serverPort());
        QVERIFY(socket.waitForConnected(5000));
    }
    QTcpSocket third;
    QSignalSpy thirdClosed(&third, &QTcpSocket::disconnected);
    third.connectToHost(QHostAddress::LocalHost, broker->serverPort());
    QTRY_COMPARE(thirdClosed.size(), 1);
    QTRY_COMPARE(broker->stats().tlsHandshakeFailures, quint64(1));
    for (QTcpSocket &socket : silent)
        QCOMPARE(socket.state(), QAbstractSocket::ConnectedState);

    // The two silent peers leave: their handshakes fail, their places are free.
    for (QTcpSocket &socket : silent)
        socket.abort();
    QTRY_COMPARE(broker->stats().tlsHandshakeFailures, quint64(3));
    TestPeer service;
    TestPeer client;
    service.socket.setSslConfiguration(trusting(file(QStringLiteral("cert.pem"))));
    client.socket.setSslConfiguration(trusting(file(QStringLiteral("cert.pem"))));
    QVERIFY(service.connectWithKey(broker->serverUrl(), kServiceKey));
    QVERIFY(client.connectWithKey(broker->serverUrl(), kClientKey));
}

void tst_Tls::consoleConnectionPinsItsBroker()
{
    // The console's own service connection reaches its wss:// broker on the
    // loopback address although the certificate names another host and nobody
    // trusts it: it accepts exactly that certificate, and no other.
    BrokerConfig config = tlsConfig(file(QStringLiteral("named-cert.pem")), file(QStringLiteral("named-key.pem")));
    const auto broker = startBroker(config);
    const QUrl url = ConsoleConnection::loopbackUrl(broker->serverUrl());

    ConsoleConnection pinned;
    pinned.setTrustedCertificate(QSslCertificate::fromPath(file(QStringLiteral("named-cert.pem"))).value(0));
    QSignalSpy ready(&pinned, &ConsoleConnection::ready);
    pinned.open(url, kServiceKey);
    QVERIFY(ready.wait(5000));
    QVERIFY(pinned.isReady());

    for (const QString &trusted : {QString(), QStringLiteral("cert.pem")}) {
        ConsoleConnection other;
        if (!trusted.isEmpty())
            other.setTrustedCertificate(QSslCertificate::fromPath(file(trusted)).value(0));
        QSignalSpy otherReady(&other, &ConsoleConnection::ready);
        QSignalSpy errorText(&other, &ConsoleConnection::errorText);
        other.open(url, kServiceKey);
        QTRY_COMPARE(other.state(), ConsoleConnection::State::Closed);
        QVERIFY(otherReady.isEmpty());
    }
    QTRY_COMPARE(broker->stats().tlsHandshakeFailures, quint64(2));
    QVERIFY(pinned.isReady());
}

void tst_Tls::daemonServesWss()
{
    // [tls] in the config with paths relative to the file; the daemon started
    // from another directory.
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    QVERIFY(QDir(dir.path()).mkpath(QStringLiteral("etc/tls")));
    QVERIFY(QDir(dir.path()).mkpath(QStringLiteral("run")));
    QVERIFY(QFile::copy(file(QStringLiteral("cert.pem")), dir.filePath(QStringLiteral("etc/tls/cert.pem"))));
    QVERIFY(QFile::copy(file(QStringLiteral("key-encrypted.pem")), dir.filePath(QStringLiteral("etc/tls/key.pem"))));
    const QString config = dir.filePath(QStringLiteral("etc/middleman.toml"));
    QVERIFY(writeFile(config, "listen = \"127.0.0.1:0\"\nlog_level = \"debug\"\n"
                              "[[service_keys]]\nname = \"backend\"\nkey = \"tls-service-key-1\"\n"
                              "[[client_keys]]\nname = \"web\"\nkey = \"tls-client-key-1\"\n"
                              "[tls]\ncertificate = \"tls/cert.pem\"\nprivate_key = \"tls/key.pem\"\n"
                              "private_key_passphrase = \"" + kPassphrase + "\"\n"));
    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--config"), config}, dir.filePath(QStringLiteral("run"))));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData());
    QCOMPARE(url.scheme(), QStringLiteral("wss"));
    QCOMPARE(url.host(), QStringLiteral("127.0.0.1"));
    checkServes(url, "tls-service-key-1", "tls-client-key-1");
    if (QTest::currentTestFailed())
        return;

    // A plain peer is logged without disturbing anything.
    QUrl plainUrl = url;
    plainUrl.setScheme(QStringLiteral("ws"));
    TestPeer plain;
    QVERIFY(!plain.connectWithKey(plainUrl, "tls-client-key-1"));
    QVERIFY(QTest::qWaitFor([&] { return daemon.err.contains("TLS handshake with"); }, 5000));

    QVERIFY(daemon.stop());
    QVERIFY2(daemon.err.contains("TLS with certificate"), daemon.err.constData());
    QVERIFY2(!daemon.err.contains("expired"), daemon.err.constData());
    const QByteArray all = daemon.out + daemon.err;
    QVERIFY2(!all.contains(kPassphrase), all.constData());
    for (const QByteArray &line : pemBodyLines(dir.filePath(QStringLiteral("etc/tls/key.pem"))))
        QVERIFY2(!all.contains(line), all.constData());
}

void tst_Tls::daemonCommandLineOptions()
{
    // --tls-cert and --tls-key without a config file, relative to the working
    // directory; the console takes the same options (BrokerOptions).
    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"), QStringLiteral("--service-key"),
                          QStringLiteral("opt-service-key"), QStringLiteral("--client-key"),
                          QStringLiteral("opt-client-key"), QStringLiteral("--tls-cert"),
                          QStringLiteral("rsa-cert.pem"), QStringLiteral("--tls-key"), QStringLiteral("rsa-key.pem")},
                         m_dir.path()));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData());
    QCOMPARE(url.scheme(), QStringLiteral("wss"));
    TestPeer peer;
    peer.socket.setSslConfiguration(trusting(file(QStringLiteral("rsa-cert.pem"))));
    QVERIFY(peer.connectWithKey(url, "opt-client-key"));
    QVERIFY(daemon.stop());
}

void tst_Tls::daemonExpiredCertificate()
{
    // Starts, and says why clients will refuse it.
    DaemonProcess daemon;
    QVERIFY(daemon.start({QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"), QStringLiteral("--service-key"),
                          QStringLiteral("exp-service-key"), QStringLiteral("--tls-cert"),
                          file(QStringLiteral("expired-cert.pem")), QStringLiteral("--tls-key"),
                          file(QStringLiteral("expired-key.pem"))}));
    const QUrl url = daemon.waitForListening();
    QVERIFY2(url.isValid(), daemon.err.constData());
    QCOMPARE(url.scheme(), QStringLiteral("wss"));
    QVERIFY(QTest::qWaitFor([&] { return daemon.err.contains("expired on 2020-02-01"); }, 5000));
    QVERIFY2(daemon.err.contains("tls.certificate: the certificate expired on"), daemon.err.constData());
    QVERIFY(daemon.stop());
}

void tst_Tls::daemonRefusesBadTls_data()
{
    // Extra arguments, the [tls] table of a config file (none when empty), and
    // what standard error must say. Every case exits with 2.
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<QByteArray>("table");
    QTest::addColumn<QByteArray>("expected");
    const QString cert = QStringLiteral("cert.pem");
    const QString key = QStringLiteral("key.pem");
    auto tls = [](const QString &certificate, const QString &privateKey, const QByteArray &passphrase = {}) {
        QByteArray table = "[tls]\ncertificate = \"" + certificate.toUtf8() + "\"\nprivate_key = \""
            + privateKey.toUtf8() + "\"\n";
        if (!passphrase.isEmpty())
            table += "private_key_passphrase = \"" + passphrase + "\"\n";
        return table;
    };
    QTest::addRow("missing certificate") << QStringList() << tls(QStringLiteral("gone.pem"), key)
                                         << QByteArray("tls.certificate: cannot read");
    QTest::addRow("unreadable key (a directory)") << QStringList() << tls(cert, QStringLiteral("."))
                                                  << QByteArray("tls.private_key: ");
    QTest::addRow("certificate not PEM") << QStringList() << tls(QStringLiteral("not-pem.txt"), key)
                                         << QByteArray("no PEM certificate");
    QTest::addRow("key not PEM") << QStringList() << tls(cert, QStringLiteral("not-pem.txt"))
                                 << QByteArray("no PEM private key");
    QTest::addRow("key does not match") << QStringList() << tls(cert, QStringLiteral("other-key.pem"))
                                        << QByteArray("does not belong to the certificate");
    QTest::addRow("encrypted key, no passphrase") << QStringList() << tls(cert, QStringLiteral("key-encrypted.pem"))
                                                  << QByteArray("is encrypted; set tls.private_key_passphrase");
    QTest::addRow("wrong passphrase") << QStringList()
                                      << tls(cert, QStringLiteral("key-encrypted.pem"), "wrong-" + kPassphrase)
                                      << QByteArray("wrong passphrase");
    QTest::addRow("unknown key in [tls]") << QStringList() << QByteArray(tls(cert, key) + "verify_clients = true\n")
                                          << QByteArray("tls: unknown key 'verify_clients'");
    QTest::addRow("--tls-cert alone") << QStringList{QStringLiteral("--tls-cert"), cert} << QByteArray()
                                      << QByteArray("a certificate needs a private key");
    QTest::addRow("--tls-key alone") << QStringList{QStringLiteral("--tls-key"), key} << QByteArray()
                                     << QByteArray("a private key needs a certificate");
    QTest::addRow("--tls-key over the file's, not matching")
        << QStringList{QStringLiteral("--tls-key"), QStringLiteral("other-key.pem")} << tls(cert, key)
        << QByteArray("does not belong to the certificate");
}

void tst_Tls::daemonRefusesBadTls()
{
    QFETCH(QStringList, args);
    QFETCH(QByteArray, table);
    QFETCH(QByteArray, expected);
    QStringList all{QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"), QStringLiteral("--service-key"),
                    QStringLiteral("bad-tls-key")};
    all += args;
    QTemporaryDir configDir;
    QVERIFY(configDir.isValid());
    if (!table.isEmpty()) {
        // The config sits beside the test's PEM files, so relative names find them.
        static int count = 0;
        const QString path = file(QStringLiteral("bad-tls-%1.toml").arg(++count));
        QVERIFY(writeFile(path, table));
        all << QStringLiteral("--config") << path;
    }
    DaemonProcess daemon;
    QVERIFY(daemon.start(all, m_dir.path()));
    QVERIFY(daemon.waitForFinished());
    QCOMPARE(daemon.process.exitStatus(), QProcess::NormalExit);
    QCOMPARE(daemon.process.exitCode(), 2);
    QVERIFY2(daemon.err.startsWith("middleman: "), daemon.err.constData());
    QVERIFY2(daemon.err.contains(expected), daemon.err.constData());
    QCOMPARE(daemon.err.count('\n'), qsizetype(1)); // one line
    QVERIFY2(!daemon.out.contains("listening"), daemon.out.constData());
    const QByteArray printed = daemon.out + daemon.err;
    QVERIFY2(!printed.contains(kPassphrase), printed.constData());
    for (const QString &pem : {QStringLiteral("key.pem"), QStringLiteral("key-encrypted.pem"),
                               QStringLiteral("other-key.pem")}) {
        for (const QByteArray &line : pemBodyLines(file(pem)))
            QVERIFY2(!printed.contains(line), printed.constData());
    }
}

QTEST_MAIN(tst_Tls)
#include "tst_tls.moc"
