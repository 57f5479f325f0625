#pragma once
// InjectPanel: compose a protocol message by hand and send it through the
// console's own connection (ConsoleConnection), which refuses, with the codec's
// reason, anything the broker would refuse. Shows what that connection receives.

#include "message.h"

#include <QPointer>
#include <QTime>
#include <QTimer>
#include <QWidget>

#include <optional>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QPushButton;

namespace Middleman {

class ConsoleConnection;

class InjectPanel : public QWidget
{
    Q_OBJECT
public:
    static constexpr int kMaxReceived = 200; // rows kept in the received list
    static constexpr int kReceivedIntervalMs = 100; // new rows are drawn in batches

    explicit InjectPanel(ConsoleConnection *connection = nullptr, QWidget *parent = nullptr);
    ~InjectPanel() override;

    // Not owned; Send is enabled only while it is ready.
    void setConnection(ConsoleConnection *connection);
    ConsoleConnection *connection() const { return m_connection; }

    // Selects the command and fills its template (target, headers, body).
    void setCommand(Command command);
    Command command() const;

    // Builds the message from the fields and sends it; false (and a red status)
    // when a field cannot be read or the connection refuses it.
    bool sendCurrent();
    // The fields as a message, or the reason they do not make one.
    std::optional<Message> buildMessage(QString *error) const;

    QString statusText() const;
    bool statusIsError() const { return m_statusIsError; }
    // The received list, oldest first: one line per message.
    QStringList receivedLines() const;
    void clearReceived();

    // One-line summary of a message, as the received list shows it.
    static QString summary(const Message &message);

Q_SIGNALS:
    // After a message went out.
    void messageSent(const Middleman::Message &message);

private:
    void fillTemplate(Command command);
    void updateEnabled();
    void setStatus(const QString &text, bool error);
    void addReceived(const Message &message);
    void showReceived();

    QPointer<ConsoleConnection> m_connection;
    QComboBox *m_commandBox = nullptr;
    QLineEdit *m_targetEdit = nullptr;
    QPlainTextEdit *m_headersEdit = nullptr;
    QPlainTextEdit *m_bodyEdit = nullptr;
    QCheckBox *m_binaryBox = nullptr;
    QPushButton *m_sendButton = nullptr;
    QLabel *m_statusLabel = nullptr;
    QListWidget *m_receivedView = nullptr;
    QList<std::pair<QTime, Message>> m_pendingReceived; // not drawn yet
    QTimer m_receivedTimer;
    bool m_statusIsError = false;
    int m_nextReqId = 1; // for the REQ template's ReqID
};

} // namespace Middleman
