#include "mainwindow.h"

#include "brokerhost.h"
#include "configfile.h"
#include "connectionsmodel.h"
#include "consoleconnection.h"
#include "injectpanel.h"
#include "keystore.h"
#include "pendingmodel.h"
#include "throughputchart.h"
#include "topicsmodel.h"
#include "trafficmodel.h"

#include <QAction>
#include <QCloseEvent>
#include <QCheckBox>
#include <QComboBox>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QItemSelectionModel>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QLocale>
#include <QPushButton>
#include <QScrollBar>
#include <QSignalBlocker>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTimer>
#include <QTableView>
#include <QToolBar>
#include <QVBoxLayout>

namespace Middleman {

namespace {

const QString kConsoleKeyName = QStringLiteral("console");

QTableView *makeTable(QAbstractItemModel *model, QWidget *parent)
{
    auto *view = new QTableView(parent);
    view->setModel(model);
    view->setSelectionBehavior(QAbstractItemView::SelectRows);
    view->setSelectionMode(QAbstractItemView::SingleSelection);
    view->setAlternatingRowColors(true);
    view->setWordWrap(false);
    view->setHorizontalScrollMode(QAbstractItemView::ScrollPerPixel);
    view->verticalHeader()->setVisible(false);
    view->verticalHeader()->setDefaultSectionSize(view->fontMetrics().height() + 6);
    view->horizontalHeader()->setHighlightSections(false);
    view->horizontalHeader()->setStretchLastSection(true);
    view->horizontalHeader()->setDefaultAlignment(Qt::AlignLeft | Qt::AlignVCenter);
    return view;
}

QString listenText(const BrokerConfig &config)
{
    const QString host = config.listenAddress.protocol() == QAbstractSocket::IPv6Protocol
        ? QStringLiteral("[%1]").arg(config.listenAddress.toString())
        : config.listenAddress.toString();
    return QStringLiteral("%1:%2").arg(host).arg(config.port);
}

QString grantText(const GrantTable::Grant &grant)
{
    return QStringLiteral("%1 %2").arg(QString::fromLatin1(commandName(grant.kind).toByteArray()),
                                       QString::fromUtf8(grant.pattern));
}

} // namespace

MainWindow::MainWindow(const BrokerConfig &config, const QString &keysNote, QWidget *parent)
    : QMainWindow(parent)
    , m_config(config)
    , m_connections(new ConnectionsModel(this))
    , m_topics(new TopicsModel(this))
    , m_pending(new PendingModel(this))
    , m_traffic(new TrafficModel(TrafficModel::kDefaultCapacity, this))
    , m_trafficFilter(new TrafficFilterModel(this))
    , m_console(new ConsoleConnection(this))
{
    setWindowTitle(QStringLiteral("middleman console"));
    m_trafficFilter->setSourceModel(m_traffic);

    // Toolbar: start, stop, where to listen, and what the broker is doing.
    QToolBar *toolbar = addToolBar(QStringLiteral("Broker"));
    toolbar->setObjectName(QStringLiteral("brokerToolbar"));
    toolbar->setMovable(false);
    m_startAction = toolbar->addAction(QStringLiteral("Start"), this, &MainWindow::requestStart);
    m_startAction->setObjectName(QStringLiteral("startAction"));
    m_stopAction = toolbar->addAction(QStringLiteral("Stop"), this, &MainWindow::requestStop);
    m_stopAction->setObjectName(QStringLiteral("stopAction"));
    toolbar->addSeparator();
    toolbar->addWidget(new QLabel(QStringLiteral(" Listen on "), toolbar));
    m_listenEdit = new QLineEdit(listenText(config), toolbar);
    m_listenEdit->setObjectName(QStringLiteral("listenEdit"));
    m_listenEdit->setMaximumWidth(220);
    m_listenEdit->setToolTip(QStringLiteral("host:port; 127.0.0.1 keeps the broker on this machine"));
    toolbar->addWidget(m_listenEdit);
    toolbar->addSeparator();
    m_statusLabel = new QLabel(toolbar);
    m_statusLabel->setObjectName(QStringLiteral("statusLabel"));
    m_statusLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    toolbar->addWidget(m_statusLabel);

    // Left: connections, topics, pending requests. Right: throughput and inject.
    m_tabs = new QTabWidget(this);
    m_tabs->setObjectName(QStringLiteral("tabs"));
    m_tabs->addTab(buildConnectionsTab(), QString());
    m_topicsView = makeTable(m_topics, m_tabs);
    m_topicsView->setObjectName(QStringLiteral("topicsView"));
    m_tabs->addTab(m_topicsView, QString());
    m_pendingView = makeTable(m_pending, m_tabs);
    m_pendingView->setObjectName(QStringLiteral("pendingView"));
    m_tabs->addTab(m_pendingView, QString());

    auto *right = new QWidget(this);
    auto *rightLayout = new QVBoxLayout(right);
    rightLayout->setContentsMargins(0, 0, 0, 0);
    auto *chartBox = new QGroupBox(QStringLiteral("Messages per second"), right);
    auto *chartLayout = new QVBoxLayout(chartBox);
    m_chart = new ThroughputChart(chartBox);
    m_chart->setObjectName(QStringLiteral("chart"));
    chartLayout->addWidget(m_chart);
    rightLayout->addWidget(chartBox, 2);
    auto *injectBox = new QGroupBox(QStringLiteral("Inject (as the console's own service connection)"), right);
    auto *injectLayout = new QVBoxLayout(injectBox);
    m_inject = new InjectPanel(m_console, injectBox);
    m_inject->setObjectName(QStringLiteral("injectPanel"));
    injectLayout->addWidget(m_inject);
    rightLayout->addWidget(injectBox, 5);

    auto *top = new QSplitter(Qt::Horizontal, this);
    top->addWidget(m_tabs);
    top->addWidget(right);
    top->setStretchFactor(0, 3);
    top->setStretchFactor(1, 2);

    auto *main = new QSplitter(Qt::Vertical, this);
    main->addWidget(top);
    main->addWidget(buildTrafficPane());
    main->setStretchFactor(0, 3);
    main->setStretchFactor(1, 2);
    main->setSizes({600, 300});
    top->setSizes({860, 540});
    setCentralWidget(main);

    m_keysLabel = new QLabel(keysNote, this);
    m_keysLabel->setObjectName(QStringLiteral("keysLabel"));
    m_keysLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_keysLabel->setVisible(!keysNote.isEmpty());
    statusBar()->addPermanentWidget(m_keysLabel);
    m_statsLabel = new QLabel(this);
    m_statsLabel->setObjectName(QStringLiteral("statsLabel"));
    statusBar()->addWidget(m_statsLabel, 1);

    // The console's own connection comes back if the broker drops it while
    // running (a slow-consumer close, a Disconnect from this window).
    connect(m_console, &ConsoleConnection::closed, this, [this](int code, const QString &reason) {
        if (!m_running || m_stopping)
            return;
        statusBar()->showMessage(
            QStringLiteral("console connection closed (%1 %2); reconnecting").arg(code).arg(reason), 10000);
        QTimer::singleShot(kReconnectMs, this, [this] {
            if (m_running && !m_stopping && m_console->state() == ConsoleConnection::State::Closed)
                m_console->open(ConsoleConnection::loopbackUrl(m_url), m_consoleKey);
        });
    });

    setRunningState(false, QStringLiteral("Stopped"));
    updateTitles();
    resize(1400, 900);
}

MainWindow::~MainWindow() = default;

QWidget *MainWindow::buildConnectionsTab()
{
    auto *page = new QSplitter(Qt::Vertical, this);
    m_connectionsView = makeTable(m_connections, page);
    m_connectionsView->setObjectName(QStringLiteral("connectionsView"));
    page->addWidget(m_connectionsView);

    auto *detail = new QWidget(page);
    auto *layout = new QVBoxLayout(detail);
    layout->setContentsMargins(4, 4, 4, 4);
    auto *titleRow = new QHBoxLayout;
    m_detailTitle = new QLabel(QStringLiteral("Select a connection to see its subscriptions and grants."), detail);
    m_detailTitle->setObjectName(QStringLiteral("detailTitle"));
    titleRow->addWidget(m_detailTitle, 1);
    m_disconnectButton = new QPushButton(QStringLiteral("Disconnect"), detail);
    m_disconnectButton->setObjectName(QStringLiteral("disconnectButton"));
    m_disconnectButton->setEnabled(false);
    titleRow->addWidget(m_disconnectButton);
    layout->addLayout(titleRow);
    auto *lists = new QHBoxLayout;
    auto *subscriptions = new QGroupBox(QStringLiteral("Subscriptions"), detail);
    auto *subscriptionsLayout = new QVBoxLayout(subscriptions);
    m_subscriptionList = new QListWidget(subscriptions);
    m_subscriptionList->setObjectName(QStringLiteral("subscriptionList"));
    subscriptionsLayout->addWidget(m_subscriptionList);
    auto *grants = new QGroupBox(QStringLiteral("Grants held"), detail);
    auto *grantsLayout = new QVBoxLayout(grants);
    m_grantList = new QListWidget(grants);
    m_grantList->setObjectName(QStringLiteral("grantList"));
    grantsLayout->addWidget(m_grantList);
    lists->addWidget(subscriptions);
    lists->addWidget(grants);
    layout->addLayout(lists);
    page->addWidget(detail);
    page->setStretchFactor(0, 3);
    page->setStretchFactor(1, 1);
    page->setSizes({360, 170});

    connect(m_connectionsView->selectionModel(), &QItemSelectionModel::selectionChanged, this,
            &MainWindow::onConnectionSelected);
    connect(m_disconnectButton, &QPushButton::clicked, this, [this] {
        if (m_watched != 0)
            Q_EMIT disconnectRequested(m_watched, QStringLiteral("disconnected from the console"));
    });
    return page;
}

QWidget *MainWindow::buildTrafficPane()
{
    auto *pane = new QGroupBox(QStringLiteral("Traffic"), this);
    auto *layout = new QVBoxLayout(pane);
    auto *bar = new QHBoxLayout;
    bar->addWidget(new QLabel(QStringLiteral("Target"), pane));
    m_targetFilter = new QLineEdit(pane);
    m_targetFilter->setObjectName(QStringLiteral("targetFilter"));
    m_targetFilter->setPlaceholderText(QStringLiteral("text or pattern (chat.>)"));
    m_targetFilter->setClearButtonEnabled(true);
    bar->addWidget(m_targetFilter, 2);
    bar->addWidget(new QLabel(QStringLiteral("Command"), pane));
    m_commandFilter = new QComboBox(pane);
    m_commandFilter->setObjectName(QStringLiteral("commandFilter"));
    m_commandFilter->addItem(QStringLiteral("all"), -1);
    for (const Command command : {Command::Sub, Command::Unsub, Command::Pub, Command::Req, Command::Res,
                                  Command::Epub, Command::Esub, Command::Ereq, Command::Opt, Command::Err}) {
        m_commandFilter->addItem(QString::fromLatin1(commandName(command).toByteArray()), int(command));
    }
    bar->addWidget(m_commandFilter);
    bar->addWidget(new QLabel(QStringLiteral("Connection"), pane));
    m_connectionFilter = new QLineEdit(pane);
    m_connectionFilter->setObjectName(QStringLiteral("connectionFilter"));
    m_connectionFilter->setPlaceholderText(QStringLiteral("id"));
    m_connectionFilter->setMaximumWidth(80);
    m_connectionFilter->setClearButtonEnabled(true);
    bar->addWidget(m_connectionFilter);
    m_pauseBox = new QCheckBox(QStringLiteral("Pause"), pane);
    m_pauseBox->setObjectName(QStringLiteral("pauseBox"));
    bar->addWidget(m_pauseBox);
    auto *clear = new QPushButton(QStringLiteral("Clear"), pane);
    clear->setObjectName(QStringLiteral("clearButton"));
    bar->addWidget(clear);
    m_trafficInfo = new QLabel(pane);
    m_trafficInfo->setObjectName(QStringLiteral("trafficInfo"));
    bar->addWidget(m_trafficInfo, 3);
    layout->addLayout(bar);

    m_trafficView = makeTable(m_trafficFilter, pane);
    m_trafficView->setObjectName(QStringLiteral("trafficView"));
    // The log changes all the time: fixed widths from typical contents.
    const QFontMetrics metrics = m_trafficView->fontMetrics();
    const std::pair<int, const char *> widths[] = {
        {TrafficModel::TimeColumn, "00:00:00.000"},  {TrafficModel::DirectionColumn, "Dir"},
        {TrafficModel::ConnectionColumn, "#0000 service-name"}, {TrafficModel::CommandColumn, "Command"},
        {TrafficModel::TargetColumn, "orders.europe.created.v2"}, {TrafficModel::ReqIdColumn, "mm-00000000"},
        {TrafficModel::StatusColumn, "Status"}, {TrafficModel::SizeColumn, "999.9 KiB"}};
    for (const auto &[column, sample] : widths)
        m_trafficView->setColumnWidth(column, metrics.horizontalAdvance(QLatin1String(sample)) + 16);
    layout->addWidget(m_trafficView);

    connect(m_targetFilter, &QLineEdit::textChanged, this, &MainWindow::updateTrafficFilter);
    connect(m_connectionFilter, &QLineEdit::textChanged, this, &MainWindow::updateTrafficFilter);
    connect(m_commandFilter, &QComboBox::currentIndexChanged, this, &MainWindow::updateTrafficFilter);
    connect(m_pauseBox, &QCheckBox::toggled, m_traffic, &TrafficModel::setPaused);
    connect(clear, &QPushButton::clicked, m_traffic, &TrafficModel::clear);
    return pane;
}

void MainWindow::updateTrafficFilter()
{
    m_trafficFilter->setTargetFilter(m_targetFilter->text().trimmed());
    const int command = m_commandFilter->currentData().toInt();
    m_trafficFilter->setCommandFilter(command < 0 ? std::nullopt : std::optional<Command>(Command(command)));
    QString id = m_connectionFilter->text().trimmed();
    if (id.startsWith(QLatin1Char('#')))
        id.remove(0, 1);
    m_trafficFilter->setConnectionFilter(id.toULongLong());
}

// --- Broker control ----------------------------------------------------------

void MainWindow::requestStart()
{
    if (m_running || m_starting)
        return;
    BrokerConfig config = m_config;
    QString error;
    if (!parseListenAddress(m_listenEdit->text().trimmed(), &config.listenAddress, &config.port, &error)) {
        setRunningState(false, QStringLiteral("Not started: %1").arg(error));
        return;
    }
    // The console's own service connection gets a key made for this run only.
    m_consoleKey = KeyStore::generateKey();
    m_console->setCodecLimits(config.codec); // refuse exactly what this broker would
    // wss://: the console's connection trusts exactly its broker's certificate
    // (the broker checks the file itself when it starts).
    m_console->setTrustedCertificate(
        config.tls.enabled() ? QSslCertificate::fromPath(config.tls.certificateFile).value(0) : QSslCertificate());
    config.serviceKeys.append(KeyConfig{kConsoleKeyName, m_consoleKey});
    m_starting = true;
    setRunningState(false, QStringLiteral("Starting…"));
    Q_EMIT startRequested(config);
}

void MainWindow::requestStop()
{
    if (!m_running)
        return;
    m_stopping = true;
    setRunningState(true, QStringLiteral("Stopping…"));
    m_stopAction->setEnabled(false);
    m_console->close();
    Q_EMIT stopRequested();
}

void MainWindow::onStarted(const QUrl &url)
{
    m_starting = false;
    m_url = url;
    setRunningState(true, QStringLiteral("Listening on %1").arg(url.toString()));
    m_console->open(ConsoleConnection::loopbackUrl(url), m_consoleKey);
}

void MainWindow::onStartFailed(const QString &error)
{
    m_starting = false;
    setRunningState(false, QStringLiteral("Not started: %1").arg(error));
}

void MainWindow::onStopped()
{
    m_stopping = false;
    m_url = QUrl();
    m_watched = 0;
    showDetail(std::nullopt);
    setRunningState(false, QStringLiteral("Stopped"));
    if (m_closeWhenStopped)
        close();
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    if (!m_running) {
        event->accept();
        return;
    }
    m_closeWhenStopped = true;
    requestStop();
    event->ignore();
}

void MainWindow::setRunningState(bool running, const QString &status)
{
    m_running = running;
    m_startAction->setEnabled(!running && !m_starting);
    m_stopAction->setEnabled(running);
    m_listenEdit->setEnabled(!running && !m_starting);
    m_statusLabel->setText(status);
}

// --- Updates -----------------------------------------------------------------

void MainWindow::apply(const ConsoleUpdate &update)
{
    if (m_watched != 0 && update.peersGone.contains(m_watched)) {
        // The watched connection goes: nothing stays selected (the view would
        // otherwise move the selection to a neighbour while removing the row).
        {
            const QSignalBlocker blocker(m_connectionsView->selectionModel());
            m_connections->apply(update);
        }
        m_connectionsView->clearSelection();
        m_watched = 0;
        showDetail(std::nullopt);
        Q_EMIT watchRequested(0);
    } else {
        m_connections->apply(update);
    }
    m_topics->apply(update);
    m_pending->apply(update);
    // Follow the tail unless the user has scrolled up to read.
    QScrollBar *scroll = m_trafficView->verticalScrollBar();
    const bool atBottom = scroll->value() >= scroll->maximum() - 2;
    m_traffic->apply(update);
    if (atBottom && !m_traffic->isPaused())
        m_trafficView->scrollToBottom();
    m_chart->feed(update);
    if (m_watched != 0 && update.watched && update.watched->id == m_watched)
        showDetail(update.watched);

    const BrokerStats &s = update.stats;
    const QLocale locale;
    m_statsLabel->setText(
        QStringLiteral("%1 connections · %2 messages in · %3 out · %4 errors · %5 dropped · %6 slow consumers "
                       "closed · %7 requests timed out")
            .arg(m_connections->rowCount())
            .arg(locale.toString(s.messagesIn), locale.toString(s.messagesOut), locale.toString(s.errorsSent),
                 locale.toString(s.deliveriesDropped), locale.toString(s.slowConsumersClosed),
                 locale.toString(s.requestsTimedOut)));
    m_trafficInfo->setText(
        QStringLiteral("%1 shown of the last %2 · %3 left out under load · %4 while paused")
            .arg(m_trafficFilter->rowCount())
            .arg(m_traffic->rowCount())
            .arg(m_traffic->skipped())
            .arg(m_traffic->droppedWhilePaused()));
    updateTitles();
    fitColumns();
}

void MainWindow::fitColumns()
{
    // While a state table is small, its columns widen to fit what they show
    // (never narrow, so a width the user chose stays); a big one is left alone.
    for (QTableView *view : {m_connectionsView, m_topicsView, m_pendingView}) {
        if (view->model()->rowCount() == 0 || view->model()->rowCount() > kFitRowsUpTo || !view->isVisible())
            continue;
        if (!view->property("fitted").toBool()) {
            view->resizeColumnsToContents(); // the first rows set the widths
            view->setProperty("fitted", true);
            continue;
        }
        QHeaderView *header = view->horizontalHeader();
        for (int column = 0; column < header->count() - 1; ++column) {
            const int wanted = qMax(static_cast<QAbstractItemView *>(view)->sizeHintForColumn(column),
                                    header->sectionSizeHint(column));
            if (wanted > header->sectionSize(column))
                header->resizeSection(column, wanted);
        }
    }
}

void MainWindow::updateTitles()
{
    m_tabs->setTabText(0, QStringLiteral("Connections (%1)").arg(m_connections->rowCount()));
    m_tabs->setTabText(1, QStringLiteral("Topics (%1)").arg(m_topics->rowCount()));
    m_tabs->setTabText(2, QStringLiteral("Pending requests (%1)").arg(m_pending->rowCount()));
}

void MainWindow::onConnectionSelected()
{
    const QModelIndexList rows = m_connectionsView->selectionModel()->selectedRows();
    const quint64 id = rows.isEmpty() ? 0 : m_connections->idAt(rows.first().row());
    if (id == m_watched)
        return;
    m_watched = id;
    showDetail(std::nullopt);
    Q_EMIT watchRequested(id);
}

void MainWindow::showDetail(const std::optional<PeerDetail> &detail)
{
    m_disconnectButton->setEnabled(m_watched != 0);
    if (m_watched == 0) {
        m_detailTitle->setText(QStringLiteral("Select a connection to see its subscriptions and grants."));
        m_subscriptionList->clear();
        m_grantList->clear();
        return;
    }
    m_detailTitle->setText(m_connections->nameOf(m_watched));
    if (!detail)
        return;
    QStringList subscriptions;
    for (const QByteArray &pattern : detail->subscriptions)
        subscriptions.append(QString::fromUtf8(pattern));
    QStringList grants;
    for (const GrantTable::Grant &grant : detail->grants)
        grants.append(grantText(grant));
    // Rebuilt only when something changed, so a selection inside the lists stays.
    auto fill = [](QListWidget *list, const QStringList &items) {
        QStringList current;
        for (int i = 0; i < list->count(); ++i)
            current.append(list->item(i)->text());
        if (current != items) {
            list->clear();
            list->addItems(items);
        }
    };
    fill(m_subscriptionList, subscriptions);
    fill(m_grantList, grants);
}

// --- Wiring --------------------------------------------------------------------

void connectConsole(BrokerHost *host, MainWindow *window)
{
    QObject::connect(window, &MainWindow::startRequested, host, &BrokerHost::start);
    QObject::connect(window, &MainWindow::stopRequested, host, &BrokerHost::stop);
    QObject::connect(window, &MainWindow::disconnectRequested, host, &BrokerHost::disconnectPeer);
    QObject::connect(window, &MainWindow::watchRequested, host, &BrokerHost::watchPeer);
    QObject::connect(host, &BrokerHost::started, window, &MainWindow::onStarted);
    QObject::connect(host, &BrokerHost::startFailed, window, &MainWindow::onStartFailed);
    QObject::connect(host, &BrokerHost::stopped, window, &MainWindow::onStopped);
    QObject::connect(host, &BrokerHost::updated, window, &MainWindow::apply);
}

} // namespace Middleman
