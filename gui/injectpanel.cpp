#include "injectpanel.h"

#include "consoleconnection.h"
#include "codec.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFontDatabase>
#include <QFontMetrics>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QStringDecoder>
#include <QTime>
#include <QVBoxLayout>
#include <QWebSocketProtocol>

namespace Middleman {

namespace {

constexpr Command kCommands[] = {Command::Sub, Command::Unsub, Command::Pub, Command::Req, Command::Res,
                                 Command::Epub, Command::Esub, Command::Ereq, Command::Opt};
constexpr qsizetype kPreviewChars = 120;
constexpr qsizetype kTooltipBytes = 4096;

QColor errorColor(const QPalette &palette)
{
    // Readable on light and dark backgrounds alike.
    return palette.color(QPalette::Base).lightness() < 128 ? QColor(0xff, 0x6b, 0x6b) : QColor(0xc6, 0x28, 0x28);
}

// Text for a line of the list: valid UTF-8 as is, anything else as a byte count.
QString printable(const QByteArray &bytes, bool *ok)
{
    QStringDecoder decoder(QStringDecoder::Utf8, QStringDecoder::Flag::Stateless);
    const QString text = decoder.decode(bytes);
    *ok = !decoder.hasError();
    return text;
}

QString quotedLine(const QString &line)
{
    constexpr qsizetype limit = 64;
    return QLatin1Char('\'') + (line.size() > limit ? line.left(limit) + QStringLiteral("...") : line)
        + QLatin1Char('\'');
}

} // namespace

InjectPanel::InjectPanel(ConsoleConnection *connection, QWidget *parent)
    : QWidget(parent)
{
    const QFont fixed = QFontDatabase::systemFont(QFontDatabase::FixedFont);

    m_commandBox = new QComboBox(this);
    m_commandBox->setObjectName(QStringLiteral("commandBox"));
    for (const Command command : kCommands)
        m_commandBox->addItem(QString::fromLatin1(commandName(command)), int(command));
    m_commandBox->setCurrentIndex(-1);

    m_binaryBox = new QCheckBox(tr("Binary frame"), this);
    m_binaryBox->setObjectName(QStringLiteral("binaryBox"));
    m_binaryBox->setToolTip(tr("Send in a binary WebSocket frame instead of a text frame"));

    m_targetEdit = new QLineEdit(this);
    m_targetEdit->setObjectName(QStringLiteral("targetEdit"));
    m_targetEdit->setFont(fixed);
    m_targetEdit->setPlaceholderText(tr("target, e.g. chat.room1"));

    m_headersEdit = new QPlainTextEdit(this);
    m_headersEdit->setObjectName(QStringLiteral("headersEdit"));
    m_headersEdit->setFont(fixed);
    m_headersEdit->setPlaceholderText(tr("Name: value, one per line"));
    m_headersEdit->setTabChangesFocus(true);
    m_headersEdit->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_headersEdit->setFixedHeight(QFontMetrics(fixed).lineSpacing() * 4 + 12);

    m_bodyEdit = new QPlainTextEdit(this);
    m_bodyEdit->setObjectName(QStringLiteral("bodyEdit"));
    m_bodyEdit->setFont(fixed);
    m_bodyEdit->setPlaceholderText(tr("body"));
    m_bodyEdit->setTabChangesFocus(true);

    // Compact editors; the received list takes the room that is left.
    const int line = QFontMetrics(fixed).lineSpacing();
    m_headersEdit->setMaximumHeight(line * 3 + 12);
    m_bodyEdit->setMaximumHeight(line * 4 + 12);

    m_sendButton = new QPushButton(tr("Send"), this);
    m_sendButton->setObjectName(QStringLiteral("sendButton"));
    m_sendButton->setDefault(true);

    m_statusLabel = new QLabel(this);
    m_statusLabel->setObjectName(QStringLiteral("statusLabel"));
    m_statusLabel->setWordWrap(true);
    m_statusLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);

    m_receivedView = new QListWidget(this);
    m_receivedView->setObjectName(QStringLiteral("receivedView"));
    m_receivedView->setFont(fixed);
    m_receivedView->setUniformItemSizes(true);

    auto *clearButton = new QPushButton(tr("Clear"), this);
    clearButton->setObjectName(QStringLiteral("clearReceivedButton"));

    auto *commandRow = new QHBoxLayout;
    commandRow->addWidget(m_commandBox);
    commandRow->addStretch(1);
    commandRow->addWidget(m_binaryBox);

    auto *form = new QFormLayout;
    form->addRow(tr("Command"), commandRow);
    form->addRow(tr("Target"), m_targetEdit);
    form->addRow(tr("Headers"), m_headersEdit);
    form->addRow(tr("Body"), m_bodyEdit);

    auto *sendRow = new QHBoxLayout;
    sendRow->addWidget(m_sendButton);
    sendRow->addWidget(m_statusLabel, 1);

    auto *receivedRow = new QHBoxLayout;
    receivedRow->addWidget(new QLabel(tr("Received by the console connection"), this), 1);
    receivedRow->addWidget(clearButton);

    auto *layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addLayout(sendRow);
    layout->addLayout(receivedRow);
    layout->addWidget(m_receivedView, 1);

    connect(m_commandBox, &QComboBox::currentIndexChanged, this, [this](int index) {
        if (index >= 0)
            fillTemplate(Command(m_commandBox->itemData(index).toInt()));
    });
    connect(m_sendButton, &QPushButton::clicked, this, [this] { sendCurrent(); });
    connect(m_targetEdit, &QLineEdit::returnPressed, this, [this] {
        if (m_sendButton->isEnabled())
            sendCurrent();
    });
    connect(clearButton, &QPushButton::clicked, this, &InjectPanel::clearReceived);
    m_receivedTimer.setSingleShot(true);
    m_receivedTimer.setInterval(kReceivedIntervalMs);
    connect(&m_receivedTimer, &QTimer::timeout, this, &InjectPanel::showReceived);

    setCommand(Command::Pub);
    setConnection(connection);
}

InjectPanel::~InjectPanel() = default;

void InjectPanel::setConnection(ConsoleConnection *connection)
{
    if (m_connection)
        m_connection->disconnect(this);
    m_connection = connection;
    if (connection) {
        connect(connection, &ConsoleConnection::stateChanged, this, &InjectPanel::updateEnabled);
        connect(connection, &ConsoleConnection::destroyed, this, &InjectPanel::updateEnabled);
        connect(connection, &ConsoleConnection::messageReceived, this, &InjectPanel::addReceived);
        connect(connection, &ConsoleConnection::closed, this, [this](int code, const QString &reason) {
            setStatus(tr("Connection closed: %1 %2").arg(code).arg(reason),
                      code != int(QWebSocketProtocol::CloseCodeNormal));
        });
        connect(connection, &ConsoleConnection::errorText, this,
                [this](const QString &text) { setStatus(text, true); });
    }
    updateEnabled();
}

void InjectPanel::updateEnabled()
{
    const bool ready = m_connection && m_connection->isReady();
    m_sendButton->setEnabled(ready);
    m_sendButton->setToolTip(ready ? QString() : tr("The console is not connected to the broker"));
}

void InjectPanel::setCommand(Command command)
{
    const int index = m_commandBox->findData(int(command));
    if (index < 0)
        return;
    if (index == m_commandBox->currentIndex())
        fillTemplate(command);
    else
        m_commandBox->setCurrentIndex(index); // fills through currentIndexChanged
}

Command InjectPanel::command() const
{
    return Command(m_commandBox->currentData().toInt());
}

void InjectPanel::fillTemplate(Command command)
{
    QString target;
    QString headers;
    QString body;
    switch (command) {
    case Command::Sub:
    case Command::Unsub:
        target = QStringLiteral("chat.*");
        break;
    case Command::Pub:
        target = QStringLiteral("chat.room1");
        body = QStringLiteral("hello");
        break;
    case Command::Req:
        target = QStringLiteral("svc.echo");
        headers = QStringLiteral("ReqID: console-%1\nTimeout: 5000").arg(m_nextReqId++);
        body = QStringLiteral("ping");
        break;
    case Command::Res:
        target = QStringLiteral("svc.echo");
        headers = QStringLiteral("ReqID: \nStatus: 200");
        body = QStringLiteral("pong");
        break;
    case Command::Epub:
    case Command::Esub:
        target = QStringLiteral("chat.>");
        break;
    case Command::Ereq:
        target = QStringLiteral("svc.>");
        break;
    case Command::Opt:
        target = QStringLiteral("-");
        headers = QStringLiteral("Batch: off");
        break;
    case Command::Err:
        break;
    }
    m_targetEdit->setText(target);
    m_headersEdit->setPlainText(headers);
    m_bodyEdit->setPlainText(body);
}

std::optional<Message> InjectPanel::buildMessage(QString *error) const
{
    Message message;
    message.command = command();
    message.target = m_targetEdit->text().toUtf8();
    message.binary = m_binaryBox->isChecked();
    const QStringList lines = m_headersEdit->toPlainText().split(QLatin1Char('\n'));
    for (qsizetype i = 0; i < lines.size(); ++i) {
        const QString &line = lines.at(i);
        if (line.trimmed().isEmpty())
            continue;
        const qsizetype colon = line.indexOf(QLatin1Char(':'));
        // The codec's own words, with the line's number.
        if (colon < 0) {
            if (error)
                *error = tr("header line %1: malformed header line %2").arg(i + 1).arg(quotedLine(line));
            return std::nullopt;
        }
        const QString name = line.left(colon);
        if (name.trimmed().isEmpty()) {
            if (error)
                *error = tr("header line %1: invalid header name %2 (the name is empty)")
                             .arg(i + 1)
                             .arg(quotedLine(name));
            return std::nullopt;
        }
        // A name with a space is left for the codec to refuse, as the broker would.
        message.headers.append(Header{name.toUtf8(), line.mid(colon + 1).trimmed().toUtf8()});
    }
    message.body = m_bodyEdit->toPlainText().toUtf8();
    return message;
}

bool InjectPanel::sendCurrent()
{
    QString error;
    const std::optional<Message> message = buildMessage(&error);
    if (!message) {
        setStatus(tr("Not sent: %1").arg(error), true);
        return false;
    }
    if (!m_connection) {
        setStatus(tr("Not sent: no connection to the broker"), true);
        return false;
    }
    if (!m_connection->send(*message, &error)) {
        setStatus(tr("Not sent: %1").arg(error), true);
        return false;
    }
    setStatus(tr("Sent %1 %2: %3 header(s), %4-byte body, %5")
                  .arg(QString::fromLatin1(commandName(message->command)), QString::fromUtf8(message->target))
                  .arg(message->headers.size())
                  .arg(message->body.size())
                  .arg(message->binary ? tr("binary frame") : tr("text frame")),
              false);
    Q_EMIT messageSent(*message);
    return true;
}

void InjectPanel::setStatus(const QString &text, bool error)
{
    m_statusIsError = error;
    m_statusLabel->setText(text);
    QPalette palette = m_statusLabel->palette();
    palette.setColor(QPalette::WindowText,
                     error ? errorColor(this->palette()) : this->palette().color(QPalette::WindowText));
    m_statusLabel->setPalette(palette);
}

QString InjectPanel::statusText() const
{
    return m_statusLabel->text();
}

QString InjectPanel::summary(const Message &message)
{
    QString text = QString::fromLatin1(commandName(message.command)) + QLatin1Char(' ')
        + QString::fromUtf8(message.target);
    for (const Header &header : message.headers) {
        text += QStringLiteral("  ") + QString::fromUtf8(header.name) + QStringLiteral(": ")
            + QString::fromUtf8(header.value);
    }
    if (!message.body.isEmpty()) {
        // Only the start of the body is decoded; a cut inside a UTF-8 sequence
        // is backed off rather than taken for bad bytes.
        const QByteArray head = message.body.left(kPreviewChars * 4 + 1);
        const bool cut = head.size() < message.body.size();
        bool ok = false;
        QString body = printable(head, &ok);
        for (int back = 1; !ok && cut && back <= 3 && head.size() > back; ++back)
            body = printable(head.left(head.size() - back), &ok);
        if (!ok) {
            body = tr("<%n byte(s)>", nullptr, int(message.body.size()));
        } else {
            if (body.size() > kPreviewChars || cut)
                body = body.left(kPreviewChars) + QStringLiteral("...");
            body.replace(QLatin1Char('\n'), QStringLiteral(" \u23ce "));
        }
        text += QStringLiteral("  | ") + body;
    }
    return text;
}

void InjectPanel::addReceived(const Message &message)
{
    // Kept and drawn in batches: a busy subscription must not make the GUI do
    // work per message. Only the latest kMaxReceived can ever be shown.
    m_pendingReceived.append({QTime::currentTime(), message});
    if (m_pendingReceived.size() > kMaxReceived)
        m_pendingReceived.removeFirst();
    if (!m_receivedTimer.isActive())
        m_receivedTimer.start();
}

void InjectPanel::showReceived()
{
    const QScrollBar *bar = m_receivedView->verticalScrollBar();
    const bool atBottom = bar->value() == bar->maximum();
    for (const auto &[time, message] : std::as_const(m_pendingReceived)) {
        auto *item = new QListWidgetItem(time.toString(QStringLiteral("HH:mm:ss.zzz")) + QStringLiteral("  ")
                                         + summary(message));
        // The tooltip shows the message as on the wire, its body cut short.
        Message shown = message;
        const bool cut = shown.body.size() > kTooltipBytes;
        if (cut)
            shown.body.truncate(kTooltipBytes);
        bool ok = false;
        const QString wire = printable(serialize(shown), &ok);
        item->setToolTip(ok ? wire + (cut ? QStringLiteral("\n...") : QString()) : summary(message));
        const QByteArray status = message.header(HeaderName::Status);
        if (message.command == Command::Err || (message.command == Command::Res && status.toInt() >= 400))
            item->setForeground(errorColor(palette()));
        m_receivedView->addItem(item);
    }
    m_pendingReceived.clear();
    while (m_receivedView->count() > kMaxReceived)
        delete m_receivedView->takeItem(0);
    if (atBottom)
        m_receivedView->scrollToBottom();
}

QStringList InjectPanel::receivedLines() const
{
    QStringList lines;
    lines.reserve(m_receivedView->count());
    for (int i = 0; i < m_receivedView->count(); ++i)
        lines.append(m_receivedView->item(i)->text());
    return lines;
}

void InjectPanel::clearReceived()
{
    m_pendingReceived.clear();
    m_receivedView->clear();
}

} // namespace Middleman
