// The inject panel and the console's own connection against a broker hosted by
// BrokerHost: what the panel sends arrives, what the codec refuses never leaves,
// and what the broker answers shows in the panel and in the host's traced traffic.

#include "brokerhost.h"
#include "consoleconnection.h"
#include "injectpanel.h"
#include "keystore.h"
#include "testpeer.h"

#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTcpServer>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

const QString kConsoleKeyName = QStringLiteral("console");

QByteArray headerOf(const TraceEvent &event, QByteArrayView name)
{
    for (const Header &header : event.headers) {
        if (headerNameEquals(header.name, name))
            return header.value;
    }
    return {};
}

bool anyLine(const QStringList &lines, const QStringList &parts)
{
    for (const QString &line : lines) {
        bool all = true;
        for (const QString &part : parts)
            all = all && line.contains(part);
        if (all)
            return true;
    }
    return false;
}

} // namespace

class tst_Inject : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void initTestCase();
    void cleanupTestCase();
    void init();
    void cleanup();

    void loopbackUrl_data();
    void loopbackUrl();
    void wrongKeyIsRefused();
    void unreachableBrokerIsReported();
    void sendNeedsAReadyConnection();
    void connectionChecksWhatItSends();
    void objectNames();
    void publishReachesSubscriber();
    void binaryFrameIsKept();
    void requestWithoutResponderShows503();
    void refusedInputIsNeverSent_data();
    void refusedInputIsNeverSent();
    void unknownRequestShowsErr404();
    void optionAnswered();
    void templatesFillPerCommand_data();
    void templatesFillPerCommand();
    void templatesPassTheCodec();
    void receivedListIsBounded();

private:
    template<typename T>
    T *child(const char *name) const
    {
        return m_panel->findChild<T *>(QString::fromLatin1(name));
    }
    // Replaces the fields after the command's template has been filled.
    void compose(Command command, const QString &target, const QString &headers, const QString &body);
    void clickSend() { QTest::mouseClick(child<QPushButton>("sendButton"), Qt::LeftButton); }
    // The host's traced traffic so far matching `pred`.
    QList<TraceEvent> traced(const std::function<bool(const TraceEvent &)> &pred) const;
    qsizetype tracedInFromConsole() const;
    // Sends PUB chat.room1 with body `marker` from the panel and waits until the
    // broker has traced it, so that everything the console sent earlier was handled.
    bool sendMarker(const QByteArray &marker);

    std::unique_ptr<BrokerHost> m_host;
    QUrl m_url;
    QByteArray m_consoleKey;
    std::unique_ptr<ConsoleConnection> m_connection;
    quint64 m_consoleId = 0;
    QByteArray m_consoleClientId;
    QList<ConsoleUpdate> m_updates;
    QList<TraceEvent> m_traffic;
    std::unique_ptr<InjectPanel> m_panel;
};

void tst_Inject::initTestCase()
{
    m_host = std::make_unique<BrokerHost>();
    m_host->setInterval(20);
    connect(m_host.get(), &BrokerHost::updated, this, [this](const ConsoleUpdate &update) {
        m_traffic.append(update.traffic);
        for (const PeerInfo &peer : update.peersChanged) {
            if (peer.keyName == kConsoleKeyName && m_connection && peer.port == m_connection->localPort()) {
                m_consoleId = peer.id;
                m_consoleClientId = peer.clientId;
            }
        }
        m_updates.append(update);
    });

    m_consoleKey = KeyStore::generateKey();
    BrokerConfig config = testConfig();
    config.serviceKeys.append(KeyConfig{kConsoleKeyName, m_consoleKey});
    QSignalSpy started(m_host.get(), &BrokerHost::started);
    QSignalSpy failed(m_host.get(), &BrokerHost::startFailed);
    m_host->start(config);
    QVERIFY2(failed.isEmpty(), failed.isEmpty() ? "" : qPrintable(failed.first().first().toString()));
    QCOMPARE(started.size(), 1);
    m_url = started.first().first().toUrl();
    QVERIFY(m_url.isValid());

    m_connection = std::make_unique<ConsoleConnection>();
    QSignalSpy ready(m_connection.get(), &ConsoleConnection::ready);
    m_connection->open(ConsoleConnection::loopbackUrl(m_url), m_consoleKey);
    QVERIFY(ready.wait(5000));
    QVERIFY(m_connection->isReady());
    QCOMPARE(m_connection->state(), ConsoleConnection::State::Ready);
    QTRY_VERIFY(m_consoleId != 0);
    QCOMPARE(m_consoleClientId.size(), 22);
}

void tst_Inject::cleanupTestCase()
{
    QSignalSpy closed(m_connection.get(), &ConsoleConnection::closed);
    m_connection->close();
    QTRY_COMPARE(closed.size(), 1);
    QCOMPARE(closed.first().at(0).toInt(), 1000);
    QVERIFY(!m_connection->isReady());

    QSignalSpy stopped(m_host.get(), &BrokerHost::stopped);
    m_host->stop();
    QVERIFY(stopped.wait(10000));
    m_connection.reset();
    m_host.reset();
}

void tst_Inject::init()
{
    m_panel = std::make_unique<InjectPanel>(m_connection.get());
    m_panel->resize(600, 700);
    m_panel->show();
    QVERIFY(QTest::qWaitForWindowExposed(m_panel.get()));
}

void tst_Inject::cleanup()
{
    m_panel.reset();
}

void tst_Inject::compose(Command command, const QString &target, const QString &headers, const QString &body)
{
    m_panel->setCommand(command);
    child<QLineEdit>("targetEdit")->setText(target);
    child<QPlainTextEdit>("headersEdit")->setPlainText(headers);
    child<QPlainTextEdit>("bodyEdit")->setPlainText(body);
}

QList<TraceEvent> tst_Inject::traced(const std::function<bool(const TraceEvent &)> &pred) const
{
    QList<TraceEvent> found;
    for (const TraceEvent &event : m_traffic) {
        if (pred(event))
            found.append(event);
    }
    return found;
}

qsizetype tst_Inject::tracedInFromConsole() const
{
    return traced([this](const TraceEvent &e) {
               return e.direction == TraceEvent::Direction::In && e.peer == m_consoleId;
           }).size();
}

bool tst_Inject::sendMarker(const QByteArray &marker)
{
    compose(Command::Pub, QStringLiteral("chat.room1"), {}, QString::fromUtf8(marker));
    clickSend();
    if (m_panel->statusIsError())
        return false;
    return QTest::qWaitFor([&] {
        return !traced([&](const TraceEvent &e) {
                    return e.direction == TraceEvent::Direction::In && e.peer == m_consoleId && e.body == marker;
                }).isEmpty();
    });
}

void tst_Inject::loopbackUrl_data()
{
    QTest::addColumn<QUrl>("server");
    QTest::addColumn<QUrl>("client");
    QTest::addRow("any IPv4") << QUrl(QStringLiteral("ws://0.0.0.0:8765")) << QUrl(QStringLiteral("ws://127.0.0.1:8765"));
    QTest::addRow("any IPv6") << QUrl(QStringLiteral("ws://[::]:8765")) << QUrl(QStringLiteral("ws://[::1]:8765"));
    QTest::addRow("loopback kept") << QUrl(QStringLiteral("ws://127.0.0.1:4000")) << QUrl(QStringLiteral("ws://127.0.0.1:4000"));
    QTest::addRow("address kept") << QUrl(QStringLiteral("ws://192.168.1.5:4000")) << QUrl(QStringLiteral("ws://192.168.1.5:4000"));
    QTest::addRow("name kept") << QUrl(QStringLiteral("ws://broker.local:4000/x")) << QUrl(QStringLiteral("ws://broker.local:4000/x"));
}

void tst_Inject::loopbackUrl()
{
    QFETCH(QUrl, server);
    QFETCH(QUrl, client);
    QCOMPARE(ConsoleConnection::loopbackUrl(server), client);
}

void tst_Inject::wrongKeyIsRefused()
{
    ConsoleConnection connection;
    QSignalSpy ready(&connection, &ConsoleConnection::ready);
    QSignalSpy closed(&connection, &ConsoleConnection::closed);
    connection.open(m_url, "not-a-configured-key");
    QVERIFY(closed.wait(5000));
    QCOMPARE(closed.size(), 1);
    QCOMPARE(closed.first().at(0).toInt(), 1008);
    QCOMPARE(closed.first().at(1).toString(), QStringLiteral("invalid API key"));
    QCOMPARE(ready.size(), 0);
    QVERIFY(!connection.isReady());
    QString error;
    QVERIFY(!connection.send(msg(Command::Pub, "chat.room1", {}, "x"), &error));
    QVERIFY(!error.isEmpty());
}

void tst_Inject::unreachableBrokerIsReported()
{
    // A port nobody listens on any more.
    quint16 port = 0;
    {
        QTcpServer server;
        QVERIFY(server.listen(QHostAddress::LocalHost));
        port = server.serverPort();
    }
    ConsoleConnection connection;
    QSignalSpy closed(&connection, &ConsoleConnection::closed);
    QSignalSpy errors(&connection, &ConsoleConnection::errorText);
    connection.open(QUrl(QStringLiteral("ws://127.0.0.1:%1").arg(port)), m_consoleKey);
    QCOMPARE(connection.state(), ConsoleConnection::State::Connecting);
    QTRY_COMPARE(closed.size(), 1);
    QCOMPARE(closed.first().at(0).toInt(), 1006);
    QVERIFY(!closed.first().at(1).toString().isEmpty());
    QVERIFY(!errors.isEmpty());
    QCOMPARE(connection.state(), ConsoleConnection::State::Closed);

    // Closing while the connection is still being made ends it at once.
    connection.open(m_url, m_consoleKey);
    connection.close();
    QCOMPARE(closed.size(), 2);
    QCOMPARE(connection.state(), ConsoleConnection::State::Closed);
    // And it can be opened again.
    QSignalSpy ready(&connection, &ConsoleConnection::ready);
    connection.open(m_url, m_consoleKey);
    QVERIFY(ready.wait(5000));
    QVERIFY(connection.isReady());
    QCOMPARE(closed.size(), 2);
}

void tst_Inject::sendNeedsAReadyConnection()
{
    ConsoleConnection connection;
    InjectPanel panel(&connection);
    auto *send = panel.findChild<QPushButton *>(QStringLiteral("sendButton"));
    QVERIFY(send);
    QVERIFY(!send->isEnabled());
    QVERIFY(!panel.sendCurrent());
    QVERIFY(panel.statusIsError());
    QVERIFY2(panel.statusText().contains(QStringLiteral("not connected")), qPrintable(panel.statusText()));

    connection.open(m_url, m_consoleKey);
    QTRY_VERIFY(connection.isReady());
    QVERIFY(send->isEnabled());

    QSignalSpy closed(&connection, &ConsoleConnection::closed);
    connection.close();
    QTRY_COMPARE(closed.size(), 1);
    QVERIFY(!send->isEnabled());

    // A connection that goes away leaves the panel disabled, not dangling.
    auto *other = new ConsoleConnection;
    other->open(m_url, m_consoleKey);
    panel.setConnection(other);
    QTRY_VERIFY(send->isEnabled());
    delete other;
    QVERIFY(!send->isEnabled());
    QVERIFY(!panel.sendCurrent());
}

void tst_Inject::connectionChecksWhatItSends()
{
    TestPeer peer;
    QVERIFY(peer.connectWithKey(m_url, kServiceKey));
    peer.send(msg(Command::Sub, "inj.>"));
    QVERIFY(peer.sync());
    const qsizetype inBefore = tracedInFromConsole();

    QString error;
    // Bytes that are not UTF-8 cannot go in a text frame ...
    Message bytes = msg(Command::Pub, "inj.bytes", {}, QByteArray("\xff\xfe\x00x", 4));
    QVERIFY(!m_connection->send(bytes, &error));
    QVERIFY2(error.contains(QStringLiteral("UTF-8")), qPrintable(error));
    // ... only in a binary one, unchanged.
    bytes.binary = true;
    QVERIFY(m_connection->send(bytes, &error));
    std::optional<Message> got = peer.waitFor(Command::Pub, "inj.bytes");
    QVERIFY(got);
    QCOMPARE(got->body, QByteArray("\xff\xfe\x00x", 4));
    QCOMPARE(peer.frameIsBinary.last(), true);

    // Peers may not send ERR.
    QVERIFY(!m_connection->send(msg(Command::Err, "inj.x", {{"Status", "500"}}, "oops"), &error));
    QCOMPARE(error, QStringLiteral("400 ERR is sent by the broker only"));
    // A target that smuggles a second message in.
    QVERIFY(!m_connection->send(msg(Command::Pub, "inj.a\n\n.\nPUB inj.b", {}, "x"), &error));
    QCOMPARE(error, QStringLiteral("the text makes more than one message"));
    // A header value that would end the header section early.
    QVERIFY(!m_connection->send(msg(Command::Pub, "inj.c", {{"X-A", "1\nbad line"}}, "x"), &error));
    QCOMPARE(error, QStringLiteral("400 malformed header line 'bad line'"));
    // Stricter limits than the defaults, as a broker may be configured.
    CodecLimits limits;
    limits.maxMessageSize = 100;
    m_connection->setCodecLimits(limits);
    const bool sentLarge = m_connection->send(msg(Command::Pub, "inj.d", {}, QByteArray(200, 'x')), &error);
    m_connection->setCodecLimits(CodecLimits());
    QVERIFY(!sentLarge);
    QCOMPARE(error, QStringLiteral("413 message too large"));

    QVERIFY(peer.sync());
    QCOMPARE(peer.messages.size(), 0);
    QVERIFY(sendMarker("after-checks"));
    QCOMPARE(tracedInFromConsole(), inBefore + 2); // the binary PUB and the marker
}

void tst_Inject::objectNames()
{
    QVERIFY(child<QComboBox>("commandBox"));
    QVERIFY(child<QLineEdit>("targetEdit"));
    QVERIFY(child<QPlainTextEdit>("headersEdit"));
    QVERIFY(child<QPlainTextEdit>("bodyEdit"));
    QVERIFY(child<QCheckBox>("binaryBox"));
    QVERIFY(child<QPushButton>("sendButton"));
    QVERIFY(child<QLabel>("statusLabel"));
    QVERIFY(child<QListWidget>("receivedView"));
    QVERIFY(child<QPushButton>("sendButton")->isEnabled());
    QCOMPARE(child<QComboBox>("commandBox")->count(), 9);
}

void tst_Inject::publishReachesSubscriber()
{
    TestPeer peer;
    QVERIFY(peer.connectWithKey(m_url, kServiceKey));
    peer.send(msg(Command::Sub, "chat.room1"));
    QVERIFY(peer.sync());

    m_panel->setCommand(Command::Pub); // the template: chat.room1, "hello"
    QCOMPARE(child<QLineEdit>("targetEdit")->text(), QStringLiteral("chat.room1"));
    child<QPlainTextEdit>("headersEdit")->setPlainText(QStringLiteral("X-Mood: happy"));
    clickSend();
    QVERIFY2(!m_panel->statusIsError(), qPrintable(m_panel->statusText()));
    QVERIFY2(m_panel->statusText().startsWith(QStringLiteral("Sent PUB chat.room1")), qPrintable(m_panel->statusText()));

    const std::optional<Message> got = peer.waitFor(Command::Pub, "chat.room1");
    QVERIFY(got);
    QCOMPARE(got->body, QByteArray("hello"));
    QCOMPARE(got->header("X-Mood"), QByteArray("happy"));
    // Delivered to a service: the console connection's own Client-Id.
    QCOMPARE(got->header(HeaderName::ClientId), m_consoleClientId);
    QCOMPARE(peer.frameIsBinary.last(), false);
    QVERIFY(peer.badFrames.isEmpty());
}

void tst_Inject::binaryFrameIsKept()
{
    TestPeer peer;
    QVERIFY(peer.connectWithKey(m_url, kServiceKey));
    peer.send(msg(Command::Sub, "bin.x"));
    QVERIFY(peer.sync());

    compose(Command::Pub, QStringLiteral("bin.x"), {}, QStringLiteral("two\n.lines"));
    child<QCheckBox>("binaryBox")->setChecked(true);
    clickSend();
    QVERIFY2(!m_panel->statusIsError(), qPrintable(m_panel->statusText()));
    QVERIFY(m_panel->statusText().contains(QStringLiteral("binary frame")));
    const std::optional<Message> got = peer.waitFor(Command::Pub, "bin.x");
    QVERIFY(got);
    QCOMPARE(got->body, QByteArray("two\n.lines"));
    QVERIFY(got->binary);
    QCOMPARE(peer.frameIsBinary.last(), true);
}

void tst_Inject::requestWithoutResponderShows503()
{
    m_panel->setCommand(Command::Req); // svc.echo, ReqID and Timeout headers, "ping"
    const QString headers = child<QPlainTextEdit>("headersEdit")->toPlainText();
    const QByteArray reqId = headers.section(QLatin1Char('\n'), 0, 0).section(QLatin1Char(':'), 1).trimmed().toUtf8();
    QVERIFY2(reqId.startsWith("console-"), reqId.constData());
    clickSend();
    QVERIFY2(!m_panel->statusIsError(), qPrintable(m_panel->statusText()));

    // In the panel's received list ...
    QTRY_VERIFY2(anyLine(m_panel->receivedLines(),
                         {QStringLiteral("RES svc.echo"), QStringLiteral("ReqID: ") + QString::fromUtf8(reqId),
                          QStringLiteral("Status: 503"), QStringLiteral("no responder for svc.echo")}),
                 qPrintable(m_panel->receivedLines().join(QLatin1Char('\n'))));
    // ... and in the host's traffic: the REQ in, the broker's RES out to the console.
    QTRY_COMPARE(traced([&](const TraceEvent &e) {
                     return e.direction == TraceEvent::Direction::In && e.peer == m_consoleId
                         && e.command == Command::Req && e.target == "svc.echo"
                         && headerOf(e, HeaderName::ReqId) == reqId;
                 }).size(),
                 1);
    QTRY_COMPARE(traced([&](const TraceEvent &e) {
                     return e.direction == TraceEvent::Direction::Out && e.peer == m_consoleId
                         && e.command == Command::Res && e.target == "svc.echo"
                         && headerOf(e, HeaderName::Status) == "503" && headerOf(e, HeaderName::ReqId) == reqId;
                 }).size(),
                 1);
    // Shown as a failure.
    auto *view = child<QListWidget>("receivedView");
    QVERIFY(view->item(view->count() - 1)->foreground().color() != m_panel->palette().color(QPalette::Text));
}

void tst_Inject::refusedInputIsNeverSent_data()
{
    QTest::addColumn<Command>("command");
    QTest::addColumn<QString>("target");
    QTest::addColumn<QString>("headers");
    QTest::addColumn<QString>("body");
    QTest::addColumn<QString>("reason");

    QTest::addRow("wildcard PUB") << Command::Pub << QStringLiteral("chat.*") << QString() << QStringLiteral("x")
                                  << QStringLiteral("400 wildcards are not allowed in this target");
    QTest::addRow("wildcard REQ") << Command::Req << QStringLiteral("inj.>") << QStringLiteral("ReqID: 1")
                                  << QString() << QStringLiteral("400 wildcards are not allowed in this target");
    QTest::addRow("space in target") << Command::Pub << QStringLiteral("chat room1") << QString()
                                     << QStringLiteral("x")
                                     << QStringLiteral("400 target contains a space or control character");
    QTest::addRow("no target") << Command::Pub << QString() << QString() << QStringLiteral("x")
                               << QStringLiteral("400 missing target");
    QTest::addRow("empty token") << Command::Sub << QStringLiteral("chat..room1") << QString() << QString()
                                 << QStringLiteral("400 target has an empty token");
    QTest::addRow("'>' not last") << Command::Sub << QStringLiteral("chat.>.x") << QString() << QString()
                                  << QStringLiteral("400 '>' must be the last token");
    QTest::addRow("target too long") << Command::Pub << QString(257, QLatin1Char('a')) << QString()
                                     << QStringLiteral("x") << QStringLiteral("400 target too long");
    QTest::addRow("header line without colon")
        << Command::Pub << QStringLiteral("chat.room1") << QStringLiteral("X-A: 1\nno colon here")
        << QStringLiteral("x") << QStringLiteral("header line 2: malformed header line 'no colon here'");
    QTest::addRow("empty header name") << Command::Pub << QStringLiteral("chat.room1") << QStringLiteral(": v")
                                       << QStringLiteral("x") << QStringLiteral("header line 1: invalid header name");
    QTest::addRow("space in header name") << Command::Pub << QStringLiteral("chat.room1")
                                          << QStringLiteral("X Mood: happy") << QStringLiteral("x")
                                          << QStringLiteral("400 invalid header name 'X Mood'");
    QString many;
    for (int i = 0; i <= 64; ++i)
        many += QStringLiteral("H%1: v\n").arg(i);
    QTest::addRow("too many headers") << Command::Pub << QStringLiteral("chat.room1") << many
                                      << QStringLiteral("x") << QStringLiteral("413 too many headers");
    QTest::addRow("REQ without ReqID") << Command::Req << QStringLiteral("inj.req") << QStringLiteral("Timeout: 5000")
                                       << QStringLiteral("ping") << QStringLiteral("400 missing ReqID header");
    QTest::addRow("RES template unfilled") << Command::Res << QStringLiteral("inj.req")
                                           << QStringLiteral("ReqID: \nStatus: 200") << QStringLiteral("pong")
                                           << QStringLiteral("400 missing ReqID header");
    QTest::addRow("header section too large")
        << Command::Pub << QStringLiteral("chat.room1") << QStringLiteral("X-Big: ") + QString(16400, QLatin1Char('y'))
        << QStringLiteral("x") << QStringLiteral("413 header section too large");
    QString big;
    for (int i = 0; i < 11000; ++i)
        big += QString(99, QLatin1Char('x')) + QLatin1Char('\n');
    QTest::addRow("message too large") << Command::Pub << QStringLiteral("chat.room1") << QString() << big
                                       << QStringLiteral("413 message too large");
}

void tst_Inject::refusedInputIsNeverSent()
{
    QFETCH(Command, command);
    QFETCH(QString, target);
    QFETCH(QString, headers);
    QFETCH(QString, body);
    QFETCH(QString, reason);

    // A service that would see anything routed under chat. or inj.
    TestPeer peer;
    QVERIFY(peer.connectWithKey(m_url, kServiceKey));
    peer.send(msg(Command::Sub, "chat.>"));
    peer.send(msg(Command::Sub, "inj.>"));
    QVERIFY(peer.sync());
    peer.messages.clear();
    const qsizetype inBefore = tracedInFromConsole();
    const qsizetype receivedBefore = m_panel->receivedLines().size();

    compose(command, target, headers, body);
    QSignalSpy sent(m_panel.get(), &InjectPanel::messageSent);
    clickSend();
    QVERIFY(m_panel->statusIsError());
    QVERIFY2(m_panel->statusText().contains(reason), qPrintable(m_panel->statusText()));
    QCOMPARE(sent.size(), 0);
    // The fields stay as they were, for the user to correct.
    QCOMPARE(child<QLineEdit>("targetEdit")->text(), target);

    // A valid marker afterwards arrives; the refused message never did.
    static int counter = 0;
    const QByteArray marker = "marker-" + QByteArray::number(++counter);
    QVERIFY(sendMarker(marker));
    QCOMPARE(sent.size(), 1);
    const std::optional<Message> got = peer.waitFor(Command::Pub, "chat.room1");
    QVERIFY(got);
    QCOMPARE(got->body, marker);
    QVERIFY(peer.sync());
    QCOMPARE(peer.messages.size(), 0);
    // The broker saw exactly one message from the console (the marker), and the
    // console got no ERR back.
    QCOMPARE(tracedInFromConsole(), inBefore + 1);
    QCOMPARE(m_panel->receivedLines().size(), receivedBefore);
}

void tst_Inject::unknownRequestShowsErr404()
{
    m_panel->setCommand(Command::Res);
    child<QPlainTextEdit>("headersEdit")->setPlainText(QStringLiteral("ReqID: mm-nope\nStatus: 200"));
    clickSend();
    QVERIFY2(!m_panel->statusIsError(), qPrintable(m_panel->statusText()));
    QTRY_VERIFY2(anyLine(m_panel->receivedLines(),
                         {QStringLiteral("ERR svc.echo"), QStringLiteral("Status: 404"),
                          QStringLiteral("ReqID: mm-nope"), QStringLiteral("Command: RES"),
                          QStringLiteral("unknown request mm-nope")}),
                 qPrintable(m_panel->receivedLines().join(QLatin1Char('\n'))));
    QTRY_COMPARE(traced([&](const TraceEvent &e) {
                     return e.direction == TraceEvent::Direction::Out && e.peer == m_consoleId
                         && e.command == Command::Err && headerOf(e, HeaderName::Status) == "404"
                         && headerOf(e, HeaderName::ReqId) == "mm-nope";
                 }).size(),
                 1);
}

void tst_Inject::optionAnswered()
{
    m_panel->setCommand(Command::Opt);
    child<QPlainTextEdit>("headersEdit")->appendPlainText(QStringLiteral("ReqID: opt-1"));
    clickSend();
    QVERIFY2(!m_panel->statusIsError(), qPrintable(m_panel->statusText()));
    QTRY_VERIFY2(anyLine(m_panel->receivedLines(),
                         {QStringLiteral("RES -"), QStringLiteral("ReqID: opt-1"), QStringLiteral("Status: 200")}),
                 qPrintable(m_panel->receivedLines().join(QLatin1Char('\n'))));
    // A bad option value: the broker's ERR 400 (the codec has no opinion on options).
    child<QPlainTextEdit>("headersEdit")->setPlainText(QStringLiteral("Batch: maybe"));
    clickSend();
    QVERIFY2(!m_panel->statusIsError(), qPrintable(m_panel->statusText()));
    QTRY_VERIFY2(anyLine(m_panel->receivedLines(),
                         {QStringLiteral("ERR -"), QStringLiteral("Status: 400"),
                          QStringLiteral("Batch must be on or off")}),
                 qPrintable(m_panel->receivedLines().join(QLatin1Char('\n'))));
}

void tst_Inject::templatesFillPerCommand_data()
{
    QTest::addColumn<QString>("command");
    QTest::addColumn<QString>("target");
    QTest::addColumn<QStringList>("headerParts");
    QTest::addColumn<QString>("body");
    QTest::addRow("SUB") << QStringLiteral("SUB") << QStringLiteral("chat.*") << QStringList() << QString();
    QTest::addRow("UNSUB") << QStringLiteral("UNSUB") << QStringLiteral("chat.*") << QStringList() << QString();
    QTest::addRow("PUB") << QStringLiteral("PUB") << QStringLiteral("chat.room1") << QStringList()
                         << QStringLiteral("hello");
    QTest::addRow("REQ") << QStringLiteral("REQ") << QStringLiteral("svc.echo")
                         << QStringList{QStringLiteral("ReqID: console-"), QStringLiteral("Timeout: 5000")}
                         << QStringLiteral("ping");
    QTest::addRow("RES") << QStringLiteral("RES") << QStringLiteral("svc.echo")
                         << QStringList{QStringLiteral("ReqID: "), QStringLiteral("Status: 200")}
                         << QStringLiteral("pong");
    QTest::addRow("EPUB") << QStringLiteral("EPUB") << QStringLiteral("chat.>") << QStringList() << QString();
    QTest::addRow("ESUB") << QStringLiteral("ESUB") << QStringLiteral("chat.>") << QStringList() << QString();
    QTest::addRow("EREQ") << QStringLiteral("EREQ") << QStringLiteral("svc.>") << QStringList() << QString();
    QTest::addRow("OPT") << QStringLiteral("OPT") << QStringLiteral("-") << QStringList{QStringLiteral("Batch: off")}
                         << QString();
}

void tst_Inject::templatesFillPerCommand()
{
    QFETCH(QString, command);
    QFETCH(QString, target);
    QFETCH(QStringList, headerParts);
    QFETCH(QString, body);

    auto *box = child<QComboBox>("commandBox");
    auto *targetEdit = child<QLineEdit>("targetEdit");
    auto *headersEdit = child<QPlainTextEdit>("headersEdit");
    auto *bodyEdit = child<QPlainTextEdit>("bodyEdit");
    // Start from something else, edited by hand, so every field must change.
    box->setCurrentIndex(box->findText(command == QStringLiteral("OPT") ? QStringLiteral("SUB")
                                                                         : QStringLiteral("OPT")));
    targetEdit->setText(QStringLiteral("edited.by.hand"));
    headersEdit->setPlainText(QStringLiteral("X-Edited: yes"));
    bodyEdit->setPlainText(QStringLiteral("edited body"));

    const int index = box->findText(command);
    QVERIFY(index >= 0);
    box->setCurrentIndex(index);
    QCOMPARE(QString::fromLatin1(commandName(m_panel->command())), command);
    QCOMPARE(targetEdit->text(), target);
    const QString headers = headersEdit->toPlainText();
    QCOMPARE(headers.split(QLatin1Char('\n'), Qt::SkipEmptyParts).size(), headerParts.size());
    for (const QString &part : std::as_const(headerParts))
        QVERIFY2(headers.contains(part), qPrintable(headers));
    QCOMPARE(bodyEdit->toPlainText(), body);
}

void tst_Inject::templatesPassTheCodec()
{
    // Every template but RES (whose ReqID the user must fill in) is a message the
    // broker accepts as it stands.
    QSet<QByteArray> reqIds;
    for (const Command command : {Command::Sub, Command::Unsub, Command::Pub, Command::Req, Command::Res,
                                  Command::Epub, Command::Esub, Command::Ereq, Command::Opt}) {
        m_panel->setCommand(command);
        QString error;
        const std::optional<Message> message = m_panel->buildMessage(&error);
        QVERIFY2(message, qPrintable(error));
        QCOMPARE(message->command, command);
        const QString refusal = ConsoleConnection::check(serialize(*message), false);
        if (command == Command::Res)
            QCOMPARE(refusal, QStringLiteral("400 missing ReqID header"));
        else
            QVERIFY2(refusal.isEmpty(), qPrintable(refusal));
        if (command == Command::Req)
            reqIds.insert(message->header(HeaderName::ReqId));
    }
    // Choosing REQ again makes a new ReqID.
    m_panel->setCommand(Command::Req);
    QString error;
    reqIds.insert(m_panel->buildMessage(&error)->header(HeaderName::ReqId));
    QCOMPARE(reqIds.size(), 2);
}

void tst_Inject::receivedListIsBounded()
{
    const int total = InjectPanel::kMaxReceived + 15;
    auto *headersEdit = child<QPlainTextEdit>("headersEdit");
    m_panel->setCommand(Command::Opt);
    for (int i = 0; i < total; ++i) {
        headersEdit->setPlainText(QStringLiteral("ReqID: o-%1\nBatch: off").arg(i));
        QVERIFY(m_panel->sendCurrent());
    }
    const QString last = QStringLiteral("ReqID: o-%1 ").arg(total - 1);
    QTRY_VERIFY(anyLine(m_panel->receivedLines(), {last}));
    const QStringList lines = m_panel->receivedLines();
    QCOMPARE(lines.size(), InjectPanel::kMaxReceived);
    // The oldest went: the first kept is answer number 15.
    QVERIFY2(lines.first().contains(QStringLiteral("ReqID: o-15 ")), qPrintable(lines.first()));
    QVERIFY(lines.last().contains(last));
}

QTEST_MAIN(tst_Inject)
#include "tst_inject.moc"
