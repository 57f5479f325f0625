// The console's main window, wired to a BrokerHost on its own thread as
// middleman-console does it: controls, the inject path into the traffic log, the
// GUI thread's latency while 50k messages cross the broker, the screenshot for
// the README, and the executable itself.

#include "brokerhost.h"
#include "connectionsmodel.h"
#include "consoleconnection.h"
#include "injectpanel.h"
#include "mainwindow.h"
#include "pendingmodel.h"
#include "testpeer.h"
#include "throughputchart.h"
#include "topicsmodel.h"
#include "trafficmodel.h"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QProcess>
#include <QRegularExpression>
#include <QPushButton>
#include <QTableView>
#include <QTcpServer>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QThread>
#include <QtTest>

#include <algorithm>
#include <atomic>
#include <memory>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

// The engine on its own thread, as in main.cpp.
struct Engine
{
    QThread thread;
    BrokerHost *host = new BrokerHost;

    Engine()
    {
        host->moveToThread(&thread);
        QObject::connect(&thread, &QThread::finished, host, &QObject::deleteLater);
        thread.start();
    }
    ~Engine()
    {
        thread.quit();
        thread.wait();
    }
};

BrokerConfig windowConfig()
{
    BrokerConfig config = testConfig();
    config.port = 0;
    // The load test measures the GUI at full speed, not the message rate limit.
    config.forEachRole([](RoleLimits &limits) { limits.maxMessagesPerSecond = 0; });
    return config;
}

bool startWindow(MainWindow &window)
{
    window.requestStart();
    return QTest::qWaitFor([&] { return window.isRunning() && window.consoleConnection()->isReady(); }, 10000);
}

int rowWhere(const QAbstractItemModel *model, int column, const QString &text)
{
    for (int row = 0; row < model->rowCount(); ++row) {
        if (model->index(row, column).data().toString() == text)
            return row;
    }
    return -1;
}

bool trafficHas(const TrafficModel *model, const std::function<bool(const TraceEvent &)> &pred)
{
    for (int row = 0; row < model->rowCount(); ++row) {
        if (pred(model->eventAt(row)))
            return true;
    }
    return false;
}

// Publishes `total` PUBs in frames of `perFrame` to two subscribers, keeping a
// few frames in flight; lives on its own thread so the GUI thread only renders.
class LoadRunner : public QObject
{
public:
    LoadRunner(const QUrl &url, int total, int perFrame, int targets)
        : m_url(url), m_total(total), m_perFrame(perFrame), m_targets(targets)
    {
    }

    std::atomic<int> received[2] = {0, 0};
    std::atomic<bool> failed = false;
    std::function<void()> onDone;

    void start()
    {
        m_publisher = open(-1);
        for (int i = 0; i < 2; ++i)
            m_subscribers[i] = open(i);
    }

private:
    QWebSocket *open(int index)
    {
        auto *socket = new QWebSocket(QString(), QWebSocketProtocol::VersionLatest, this);
        connect(socket, &QWebSocket::connected, this,
                [socket] { socket->sendTextMessage(QString::fromLatin1(kServiceKey)); });
        connect(socket, &QWebSocket::disconnected, this, [this] {
            if (!m_finished) {
                failed = true;
                finish();
            }
        });
        connect(socket, &QWebSocket::textMessageReceived, this, [this, socket, index](const QString &text) {
            if (text == QLatin1String("MM OK")) {
                if (index < 0) {
                    m_ready |= 4;
                } else {
                    // The OPT answer proves the SUB before it is in place.
                    socket->sendTextMessage(QStringLiteral("SUB load.>\n\n.\nOPT -\nReqID: ready\n\n.\n"));
                }
            } else if (text.startsWith(QLatin1String("RES"))) {
                m_ready |= 1 << index;
            } else if (text.startsWith(QLatin1String("PUB"))) {
                ++received[index];
            }
            pump();
        });
        socket->open(m_url);
        return socket;
    }

    void pump()
    {
        if (m_ready != 7 || m_finished)
            return;
        const int slowest = std::min(received[0].load(), received[1].load());
        if (slowest >= m_total) {
            finish();
            return;
        }
        while (m_sent < m_total && m_sent - slowest < 8 * m_perFrame) {
            QByteArray frame;
            for (int i = 0; i < m_perFrame && m_sent < m_total; ++i, ++m_sent) {
                frame += serialize(Message{Command::Pub, "load.t" + QByteArray::number(m_sent % m_targets), {},
                                           "payload " + QByteArray::number(m_sent), false});
            }
            m_publisher->sendTextMessage(QString::fromUtf8(frame));
        }
    }

    void finish()
    {
        m_finished = true;
        for (QWebSocket *socket : {m_publisher, m_subscribers[0], m_subscribers[1]})
            socket->abort();
        if (onDone)
            onDone();
    }

    QUrl m_url;
    int m_total;
    int m_perFrame;
    int m_targets;
    int m_sent = 0;
    int m_ready = 0;
    bool m_finished = false;
    QWebSocket *m_publisher = nullptr;
    QWebSocket *m_subscribers[2] = {nullptr, nullptr};
};

} // namespace

class TestMainWindow : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void startStopFromTheWindow();
    void injectedRequestShowsItsAnswerInTheLog();
    void selectingAConnectionShowsItsDetailAndDisconnects();
    void listenFieldIsChecked();
    void consoleConnectionComesBack();
    void guiLatencyUnderLoad_data();
    void guiLatencyUnderLoad();
    void screenshot();
    void executableStartsWithOptions();
    void executableRefusesBadOptions();
};

void TestMainWindow::startStopFromTheWindow()
{
    Engine engine;
    MainWindow window(windowConfig());
    connectConsole(engine.host, &window);
    auto *start = window.findChild<QAction *>(QStringLiteral("startAction"));
    auto *stop = window.findChild<QAction *>(QStringLiteral("stopAction"));
    QVERIFY(start && stop);
    QVERIFY(start->isEnabled());
    QVERIFY(!stop->isEnabled());

    start->trigger();
    QTRY_VERIFY_WITH_TIMEOUT(window.isRunning() && window.consoleConnection()->isReady(), 10000);
    QVERIFY(!start->isEnabled());
    QVERIFY(stop->isEnabled());
    QVERIFY(window.serverUrl().port() > 0);
    // The console's own connection is a service called "console".
    QTRY_VERIFY(rowWhere(window.connectionsModel(), ConnectionsModel::KeyColumn, QStringLiteral("console")) >= 0);

    TestPeer peer;
    QVERIFY(peer.connectWithKey(window.serverUrl(), kClientKey));
    QTRY_COMPARE(window.connectionsModel()->rowCount(), 2);

    stop->trigger();
    QVERIFY(peer.waitForClose());
    QCOMPARE(peer.closeCode, 1001);
    QTRY_VERIFY(!window.isRunning());
    QCOMPARE(window.connectionsModel()->rowCount(), 0);
    QVERIFY(start->isEnabled());

    // And again: a fresh broker, fresh tables.
    start->trigger();
    QTRY_VERIFY_WITH_TIMEOUT(window.isRunning() && window.consoleConnection()->isReady(), 10000);
    QTRY_COMPARE(window.connectionsModel()->rowCount(), 1);
}

void TestMainWindow::injectedRequestShowsItsAnswerInTheLog()
{
    Engine engine;
    MainWindow window(windowConfig());
    connectConsole(engine.host, &window);
    QVERIFY(startWindow(window));

    InjectPanel *panel = window.injectPanel();
    panel->setCommand(Command::Req);
    panel->findChild<QLineEdit *>(QStringLiteral("targetEdit"))->setText(QStringLiteral("nobody.home"));
    panel->findChild<QPlainTextEdit *>(QStringLiteral("headersEdit"))->setPlainText(QStringLiteral("ReqID: r-1"));
    QTest::mouseClick(panel->findChild<QPushButton *>(QStringLiteral("sendButton")), Qt::LeftButton);

    // The REQ in, and the broker's 503 out, both in the window's traffic log.
    QTRY_VERIFY(trafficHas(window.trafficModel(), [](const TraceEvent &e) {
        return e.direction == TraceEvent::Direction::In && e.command == Command::Req && e.target == "nobody.home";
    }));
    QTRY_VERIFY(trafficHas(window.trafficModel(), [](const TraceEvent &e) {
        Message m{e.command, e.target, e.headers, {}, false};
        return e.direction == TraceEvent::Direction::Out && e.command == Command::Res
            && m.header(HeaderName::Status) == "503" && m.header(HeaderName::ReqId) == "r-1";
    }));
}

void TestMainWindow::selectingAConnectionShowsItsDetailAndDisconnects()
{
    Engine engine;
    MainWindow window(windowConfig());
    connectConsole(engine.host, &window);
    QVERIFY(startWindow(window));

    TestPeer service;
    QVERIFY(service.connectWithKey(window.serverUrl(), kServiceKey));
    service.send(msg(Command::Sub, "orders.>"));
    service.send(msg(Command::Esub, "chat.>"));
    QVERIFY(service.sync());
    int row = -1;
    QVERIFY(QTest::qWaitFor([&] {
        row = rowWhere(window.connectionsModel(), ConnectionsModel::KeyColumn, QStringLiteral("svc"));
        return row >= 0;
    }));
    window.connectionsView()->selectRow(row);

    auto *subscriptions = window.findChild<QListWidget *>(QStringLiteral("subscriptionList"));
    auto *grants = window.findChild<QListWidget *>(QStringLiteral("grantList"));
    QTRY_COMPARE(subscriptions->count(), 1);
    QCOMPARE(subscriptions->item(0)->text(), QStringLiteral("orders.>"));
    QTRY_COMPARE(grants->count(), 1);
    QCOMPARE(grants->item(0)->text(), QStringLiteral("ESUB chat.>"));

    auto *disconnect = window.findChild<QPushButton *>(QStringLiteral("disconnectButton"));
    QVERIFY(disconnect->isEnabled());
    QTest::mouseClick(disconnect, Qt::LeftButton);
    QVERIFY(service.waitForClose());
    QCOMPARE(service.closeCode, 1000);
    QCOMPARE(service.closeReason, QStringLiteral("disconnected from the console"));
    QTRY_COMPARE(rowWhere(window.connectionsModel(), ConnectionsModel::KeyColumn, QStringLiteral("svc")), -1);
    QTRY_COMPARE(subscriptions->count(), 0);
    QVERIFY(!disconnect->isEnabled());
}

void TestMainWindow::listenFieldIsChecked()
{
    Engine engine;
    MainWindow window(windowConfig());
    connectConsole(engine.host, &window);
    auto *listen = window.findChild<QLineEdit *>(QStringLiteral("listenEdit"));
    auto *status = window.findChild<QLabel *>(QStringLiteral("statusLabel"));
    listen->setText(QStringLiteral("not an address"));
    window.requestStart();
    QVERIFY(!window.isRunning());
    QVERIFY2(status->text().startsWith(QLatin1String("Not started")), qPrintable(status->text()));

    // A port already taken: the engine refuses, the window says why.
    QTcpServer taken;
    QVERIFY(taken.listen(QHostAddress::LocalHost));
    listen->setText(QStringLiteral("127.0.0.1:%1").arg(taken.serverPort()));
    window.requestStart();
    QTRY_VERIFY(status->text().startsWith(QLatin1String("Not started")));
    QVERIFY(!window.isRunning());
    QVERIFY(window.findChild<QAction *>(QStringLiteral("startAction"))->isEnabled());

    listen->setText(QStringLiteral("127.0.0.1:0"));
    QVERIFY(startWindow(window));
    QVERIFY2(status->text().startsWith(QLatin1String("Listening on ws://127.0.0.1:")), qPrintable(status->text()));
}

void TestMainWindow::consoleConnectionComesBack()
{
    Engine engine;
    MainWindow window(windowConfig());
    connectConsole(engine.host, &window);
    QVERIFY(startWindow(window));
    QTRY_VERIFY(rowWhere(window.connectionsModel(), ConnectionsModel::KeyColumn, QStringLiteral("console")) >= 0);
    const int row = rowWhere(window.connectionsModel(), ConnectionsModel::KeyColumn, QStringLiteral("console"));
    const quint64 first = window.connectionsModel()->idAt(row);

    // Disconnecting the console's own connection from the window: it comes back
    // as a new connection, and injecting works again.
    QSignalSpy closed(window.consoleConnection(), &ConsoleConnection::closed);
    window.connectionsView()->selectRow(row);
    QTest::mouseClick(window.findChild<QPushButton *>(QStringLiteral("disconnectButton")), Qt::LeftButton);
    QTRY_COMPARE(closed.size(), 1);
    QCOMPARE(closed.first().at(0).toInt(), 1000);
    QTRY_VERIFY_WITH_TIMEOUT(window.consoleConnection()->isReady(), 10000);
    QTRY_VERIFY([&] {
        const int again = rowWhere(window.connectionsModel(), ConnectionsModel::KeyColumn, QStringLiteral("console"));
        return again >= 0 && window.connectionsModel()->idAt(again) > first;
    }());

    TestPeer service;
    QVERIFY(service.connectWithKey(window.serverUrl(), kServiceKey));
    service.send(msg(Command::Sub, "back.again"));
    QVERIFY(service.sync());
    window.injectPanel()->setCommand(Command::Pub);
    window.injectPanel()->findChild<QLineEdit *>(QStringLiteral("targetEdit"))->setText(QStringLiteral("back.again"));
    QVERIFY(window.injectPanel()->sendCurrent());
    QVERIFY(service.waitFor(Command::Pub, "back.again"));
}

void TestMainWindow::guiLatencyUnderLoad_data()
{
    QTest::addColumn<int>("targets");
    QTest::newRow("50 targets") << 50;
    // Every target new: the topics table fills to its bound within the run.
    QTest::newRow("25000 targets") << 25000;
}

void TestMainWindow::guiLatencyUnderLoad()
{
    // 50k PUBs, each delivered to two subscribers, with the window open and the
    // traffic log live. A 5 ms timer on the GUI thread measures how late the
    // event loop gets to it.
    QFETCH(int, targets);
    Engine engine;
    MainWindow window(windowConfig());
    connectConsole(engine.host, &window);
    // With many targets, the topics table is the one on screen.
    if (targets > 1000)
        window.tabs()->setCurrentIndex(1);
    window.show();
    QVERIFY(startWindow(window));

    constexpr int kTotal = 50000;
    QThread loadThread;
    auto *runner = new LoadRunner(window.serverUrl(), kTotal, 100, targets);
    runner->moveToThread(&loadThread);
    QEventLoop loop;
    runner->onDone = [&loop] { QMetaObject::invokeMethod(&loop, &QEventLoop::quit, Qt::QueuedConnection); };
    QObject::connect(&loadThread, &QThread::finished, runner, &QObject::deleteLater);

    QList<qint64> lateness;
    QElapsedTimer clock;
    qint64 last = 0;
    QTimer probe;
    probe.setTimerType(Qt::PreciseTimer);
    probe.setInterval(5);
    connect(&probe, &QTimer::timeout, this, [&] {
        const qint64 now = clock.elapsed();
        lateness.append(qMax<qint64>(0, now - last - probe.interval()));
        last = now;
    });
    QTimer deadline;
    deadline.setSingleShot(true);
    connect(&deadline, &QTimer::timeout, &loop, &QEventLoop::quit);

    loadThread.start();
    clock.start();
    probe.start();
    deadline.start(90000);
    QMetaObject::invokeMethod(runner, [runner] { runner->start(); });
    loop.exec();
    const qint64 elapsedMs = clock.elapsed();
    // Keep measuring while the window takes in the rest: the topic rows, and
    // the next once-a-second rate sweep, which changes every row.
    const int expectedTopics = qMin(targets, BrokerHost::kMaxIdleTopics); // what the sweep keeps
    const qint64 settleUntil = clock.elapsed() + 1200;
    QTimer poll;
    connect(&poll, &QTimer::timeout, &loop, [&] {
        if (window.topicsModel()->rowCount() >= expectedTopics && clock.elapsed() >= settleUntil)
            loop.quit();
    });
    poll.start(50);
    deadline.start(30000);
    loop.exec();
    poll.stop();
    probe.stop();
    const bool failed = runner->failed;
    const int received0 = runner->received[0];
    const int received1 = runner->received[1];
    loadThread.quit();
    loadThread.wait();

    QVERIFY(!failed);
    QCOMPARE(received0, kTotal);
    QCOMPARE(received1, kTotal);
    QVERIFY(lateness.size() > 10);
    std::sort(lateness.begin(), lateness.end());
    const qint64 p50 = lateness.at(lateness.size() / 2);
    const qint64 p99 = lateness.at(lateness.size() * 99 / 100);
    const qint64 worst = lateness.last();
    qInfo("GUI event-loop latency while %d messages to %d targets crossed the broker (%d deliveries) in "
          "%lld ms, and 1.2 s after: p50 %lld ms, p99 %lld ms, max %lld ms over %lld samples",
          kTotal, targets, 2 * kTotal, elapsedMs, p50, p99, worst, qint64(lateness.size()));
    // Generous: the figure is reported, the bound only catches a GUI thread that
    // processes traffic message by message.
    QVERIFY2(worst < 500, qPrintable(QStringLiteral("max latency %1 ms").arg(worst)));
    // The traffic log stayed bounded.
    QVERIFY(window.trafficModel()->rowCount() <= window.trafficModel()->capacity());
    QVERIFY(window.topicsModel()->rowCount() >= expectedTopics);
    QVERIFY(window.topicsModel()->rowCount() <= BrokerHost::kMaxTopicRows);
}

void TestMainWindow::screenshot()
{
    // A small scene: two services, three web clients, grants, a held request and
    // some traffic, rendered for docs/console.png.
    BrokerConfig config = windowConfig();
    config.serviceKeys = {KeyConfig{QStringLiteral("orders"), kServiceKey},
                          KeyConfig{QStringLiteral("pricing"), kServiceKey2}};
    config.clientKeys = {KeyConfig{QStringLiteral("web-app"), kClientKey}};
    Engine engine;
    MainWindow window(config);
    connectConsole(engine.host, &window);
    window.resize(1500, 940);
    window.show();
    QVERIFY(startWindow(window));
    const QUrl url = window.serverUrl();

    TestPeer orders, pricing;
    QVERIFY(orders.connectWithKey(url, kServiceKey));
    QVERIFY(pricing.connectWithKey(url, kServiceKey2));
    orders.send(msg(Command::Sub, "orders.*"));
    orders.send(msg(Command::Epub, "chat.>"));
    orders.send(msg(Command::Esub, "chat.>"));
    orders.send(msg(Command::Ereq, "orders.*"));
    pricing.send(msg(Command::Sub, "prices.>"));
    pricing.send(msg(Command::Esub, "prices.>"));
    QVERIFY(orders.sync());
    QVERIFY(pricing.sync());
    std::vector<std::unique_ptr<TestPeer>> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(std::make_unique<TestPeer>());
        QVERIFY(clients.back()->connectWithKey(url, kClientKey));
        clients.back()->send(msg(Command::Sub, "chat.lobby"));
        clients.back()->send(msg(Command::Sub, i == 0 ? QByteArray("prices.>") : QByteArray("chat.>")));
        QVERIFY(clients.back()->sync());
    }
    // A request the orders service holds on to: a row in Pending requests.
    const Message held =
        msg(Command::Req, "orders.status", {Header{"ReqID", "web-7"}, Header{"Timeout", "60000"}}, "order 1042?");
    clients[1]->send(held);
    QVERIFY(orders.waitFor(Command::Req, "orders.status"));

    // The console's own connection listens too, so its Received list has something.
    window.injectPanel()->setCommand(Command::Sub);
    window.injectPanel()->findChild<QLineEdit *>(QStringLiteral("targetEdit"))->setText(QStringLiteral("prices.>"));
    QVERIFY(window.injectPanel()->sendCurrent());

    // Traffic whose rate rises and falls, one round per chart sample, for the
    // chart and the log.
    window.chart()->setTimeWindow(20000);
    for (int round = 0; round < 24; ++round) {
        const qsizetype samples = window.chart()->sampleCount();
        const int burst = 100 + int(150 * (1 + std::sin(round / 3.0)));
        for (int i = 0; i < burst; ++i) {
            clients[i % 3]->send(msg(Command::Pub, "chat.lobby", {}, "hi " + QByteArray::number(i)));
            pricing.send(msg(Command::Pub, "prices.eur.usd", {}, "1.0" + QByteArray::number(i % 10)));
        }
        clients[2]->send(
            msg(Command::Req, "orders.count", {Header{"ReqID", "q" + QByteArray::number(round)}}, "how many?"));
        if (const std::optional<Message> req = orders.waitFor(Command::Req, "orders.count")) {
            orders.send(msg(Command::Res, "orders.count",
                            {Header{"ReqID", req->header(HeaderName::ReqId)}, Header{"Status", "200"}},
                            QByteArray::number(1000 + round)));
        }
        QVERIFY(clients[2]->waitFor(Command::Res, "orders.count"));
        QVERIFY(pricing.sync());
        QVERIFY(QTest::qWaitFor([&] { return window.chart()->sampleCount() > samples; }, 5000));
    }
    // One that nobody answers: the broker's 503 in the log.
    orders.send(msg(Command::Req, "billing.refund", {Header{"ReqID", "web-9"}}, "order 99"));
    QVERIFY(orders.waitFor(Command::Res, "billing.refund"));

    QVERIFY(window.chart()->sampleCount() >= 20);
    QTRY_COMPARE(window.pendingModel()->rowCount(), 1);
    QTRY_COMPARE(window.connectionsModel()->rowCount(), 6);
    const int ordersRow = rowWhere(window.connectionsModel(), ConnectionsModel::KeyColumn, QStringLiteral("orders"));
    QVERIFY(ordersRow >= 0);
    window.connectionsView()->selectRow(ordersRow);
    QTRY_COMPARE(window.findChild<QListWidget *>(QStringLiteral("grantList"))->count(), 3);
    window.injectPanel()->setCommand(Command::Pub);
    window.injectPanel()->findChild<QLineEdit *>(QStringLiteral("targetEdit"))->setText(QStringLiteral("chat.lobby"));
    window.injectPanel()->findChild<QPlainTextEdit *>(QStringLiteral("bodyEdit"))
        ->setPlainText(QStringLiteral("hello from the console"));
    QTest::mouseClick(window.injectPanel()->findChild<QPushButton *>(QStringLiteral("sendButton")), Qt::LeftButton);
    QVERIFY(clients[0]->waitFor(Command::Pub, "chat.lobby"));
    QTRY_VERIFY(trafficHas(window.trafficModel(),
                           [](const TraceEvent &e) { return e.body == "hello from the console"; }));

    const QImage image = window.grab().toImage();
    QCOMPARE(image.size(), window.size() * window.devicePixelRatio());
    // A rendered window, not a blank one: many colours.
    QSet<QRgb> colours;
    for (int y = 0; y < image.height(); y += 3) {
        for (int x = 0; x < image.width(); x += 3)
            colours.insert(image.pixel(x, y));
    }
    QVERIFY2(colours.size() > 50, qPrintable(QString::number(colours.size())));
    const QString built = QDir(QStringLiteral(MIDDLEMAN_BIN_DIR)).filePath(QStringLiteral("console.png"));
    QVERIFY(image.save(built));
    // The topics tab too, for docs/console.md.
    window.tabs()->setCurrentIndex(1);
    QVERIFY(window.topicsModel()->rowCount() >= 5);
    const QImage topics = window.grab().toImage();
    QVERIFY(topics != image);
    QVERIFY(topics.save(QDir(QStringLiteral(MIDDLEMAN_BIN_DIR)).filePath(QStringLiteral("console-topics.png"))));
    // MIDDLEMAN_SCREENSHOT=1 refreshes the pictures the README and docs show.
    if (qEnvironmentVariableIntValue("MIDDLEMAN_SCREENSHOT") == 1) {
        QVERIFY(image.save(QStringLiteral(MIDDLEMAN_SOURCE_DIR "/docs/console.png")));
        QVERIFY(topics.save(QStringLiteral(MIDDLEMAN_SOURCE_DIR "/docs/console-topics.png")));
    }
}

void TestMainWindow::executableStartsWithOptions()
{
    QProcess console;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    env.remove(QStringLiteral("QT_LOGGING_RULES")); // --log-level decides
    console.setProcessEnvironment(env);
    console.start(QStringLiteral(MIDDLEMAN_BIN_DIR "/middleman-console"),
                  {QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"), QStringLiteral("--service-key"),
                   QString::fromLatin1(kServiceKey), QStringLiteral("--log-level"), QStringLiteral("debug")});
    QVERIFY(console.waitForStarted());
    QByteArray out;
    QVERIFY(QTest::qWaitFor([&] {
        out += console.readAllStandardOutput();
        return out.contains('\n') || console.state() == QProcess::NotRunning;
    }, 15000));
    const QRegularExpression listening(QStringLiteral("^middleman-console listening on ws://127\\.0\\.0\\.1:(\\d+)\n"));
    const QRegularExpressionMatch match = listening.match(QString::fromUtf8(out));
    QVERIFY2(match.hasMatch(), out.constData());
    const quint16 port = quint16(match.captured(1).toUInt());
    QVERIFY(port > 0);

    TestPeer peer;
    QVERIFY(peer.connectWithKey(QUrl(QStringLiteral("ws://127.0.0.1:%1").arg(port)), kServiceKey));
    QVERIFY(peer.sync());
    // SIGTERM: a graceful stop (peers get 1001), then exit 0.
    console.terminate();
    QVERIFY(peer.waitForClose(10000));
    QCOMPARE(peer.closeCode, 1001);
    // It may have exited while the close was awaited (waitForFinished() is then false).
    QVERIFY(console.state() == QProcess::NotRunning || console.waitForFinished(10000));
    QCOMPARE(console.exitStatus(), QProcess::NormalExit);
    QCOMPARE(console.exitCode(), 0);
    // Neither the configured key nor the console's own per-run key (43 base64url
    // characters) appears in anything it printed or logged, even at debug level.
    const QByteArray everything = out + console.readAllStandardOutput() + console.readAllStandardError();
    QVERIFY(everything.contains("connected from"));
    QVERIFY(!everything.contains(kServiceKey));
    const QRegularExpression keyLike(QStringLiteral("[A-Za-z0-9_-]{43}"));
    QVERIFY2(!keyLike.match(QString::fromUtf8(everything)).hasMatch(), everything.constData());
}

void TestMainWindow::executableRefusesBadOptions()
{
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("QT_QPA_PLATFORM"), QStringLiteral("offscreen"));
    const QString program = QStringLiteral(MIDDLEMAN_BIN_DIR "/middleman-console");
    for (const QStringList &args : {QStringList{QStringLiteral("--no-such-option")},
                                    QStringList{QStringLiteral("--listen"), QStringLiteral("nowhere")},
                                    QStringList{QStringLiteral("--request-timeout"), QStringLiteral("-5")}}) {
        QProcess console;
        console.setProcessEnvironment(env);
        console.start(program, args);
        QVERIFY(console.waitForFinished(10000));
        QCOMPARE(console.exitStatus(), QProcess::NormalExit);
        QCOMPARE(console.exitCode(), 2);
        QVERIFY(!console.readAllStandardError().isEmpty());
    }
    QProcess help;
    help.setProcessEnvironment(env);
    help.start(program, {QStringLiteral("--help")});
    QVERIFY(help.waitForFinished(10000));
    QCOMPARE(help.exitCode(), 0);
    QVERIFY(help.readAllStandardOutput().contains("--listen"));
}

QTEST_MAIN(TestMainWindow)
#include "tst_mainwindow.moc"
