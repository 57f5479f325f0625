#pragma once
// MainWindow: the console's window. It knows the engine only through signals and
// slots (connectConsole() wires them to a BrokerHost, usually on another thread):
// it asks for a start, a stop, a disconnect or a watched peer, and it is fed
// ConsoleUpdates, which go to the models. It holds no engine pointer.

#include "brokerconfig.h"
#include "consoleupdate.h"

#include <QMainWindow>
#include <QUrl>

class QAction;
class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QTabWidget;
class QTableView;

namespace Middleman {

class BrokerHost;
class ConnectionsModel;
class ConsoleConnection;
class InjectPanel;
class PendingModel;
class ThroughputChart;
class TopicsModel;
class TrafficFilterModel;
class TrafficModel;

class MainWindow : public QMainWindow
{
    Q_OBJECT
public:
    static constexpr int kFitRowsUpTo = 200;
    static constexpr int kReconnectMs = 1000;

    // `config` is used for every start; the listen field may override its address.
    // `keysNote` (may be empty) tells the user which keys were generated for this run.
    explicit MainWindow(const BrokerConfig &config, const QString &keysNote = QString(),
                        QWidget *parent = nullptr);
    ~MainWindow() override;

    bool isRunning() const { return m_running; }
    QUrl serverUrl() const { return m_url; }

    // For tests and the screenshot.
    ConnectionsModel *connectionsModel() const { return m_connections; }
    TopicsModel *topicsModel() const { return m_topics; }
    PendingModel *pendingModel() const { return m_pending; }
    TrafficModel *trafficModel() const { return m_traffic; }
    TrafficFilterModel *trafficFilter() const { return m_trafficFilter; }
    ConsoleConnection *consoleConnection() const { return m_console; }
    InjectPanel *injectPanel() const { return m_inject; }
    ThroughputChart *chart() const { return m_chart; }
    QTableView *connectionsView() const { return m_connectionsView; }
    QTabWidget *tabs() const { return m_tabs; }

public Q_SLOTS:
    void requestStart();
    void requestStop();
    void apply(const Middleman::ConsoleUpdate &update);
    void onStarted(const QUrl &url);
    void onStartFailed(const QString &error);
    void onStopped();

Q_SIGNALS:
    void startRequested(const Middleman::BrokerConfig &config);
    void stopRequested();
    void disconnectRequested(quint64 id, const QString &reason);
    void watchRequested(quint64 id);

protected:
    // Closing the window while the broker runs stops it gracefully first.
    void closeEvent(QCloseEvent *event) override;

private:
    QWidget *buildConnectionsTab();
    QWidget *buildTrafficPane();
    void updateTrafficFilter();
    void onConnectionSelected();
    void showDetail(const std::optional<PeerDetail> &detail);
    void updateTitles();
    void fitColumns();
    void setRunningState(bool running, const QString &status);

    BrokerConfig m_config;
    QByteArray m_consoleKey; // the built-in service connection's key, made per run
    bool m_running = false;
    bool m_starting = false;
    bool m_closeWhenStopped = false;
    bool m_stopping = false;
    QUrl m_url;
    quint64 m_watched = 0;

    ConnectionsModel *m_connections;
    TopicsModel *m_topics;
    PendingModel *m_pending;
    TrafficModel *m_traffic;
    TrafficFilterModel *m_trafficFilter;
    ConsoleConnection *m_console;

    QAction *m_startAction;
    QAction *m_stopAction;
    QLineEdit *m_listenEdit;
    QLabel *m_statusLabel;
    QLabel *m_keysLabel;
    QTabWidget *m_tabs;
    QTableView *m_connectionsView;
    QTableView *m_topicsView;
    QTableView *m_pendingView;
    QListWidget *m_subscriptionList;
    QListWidget *m_grantList;
    QLabel *m_detailTitle;
    QPushButton *m_disconnectButton;
    QLineEdit *m_targetFilter;
    QComboBox *m_commandFilter;
    QLineEdit *m_connectionFilter;
    QCheckBox *m_pauseBox;
    QTableView *m_trafficView;
    QLabel *m_trafficInfo;
    InjectPanel *m_inject;
    ThroughputChart *m_chart;
    QLabel *m_statsLabel;
};

// Wires a window to a host, on the same thread or across threads (queued).
void connectConsole(BrokerHost *host, MainWindow *window);

} // namespace Middleman
