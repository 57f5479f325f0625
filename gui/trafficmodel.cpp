#include "trafficmodel.h"

#include "connectionsmodel.h"
#include "target.h"

#include <QDateTime>
#include <QStringDecoder>

namespace Middleman {

namespace {

const QChar kIn(0x2192);  // →
const QChar kOut(0x2190); // ←
const QChar kEllipsis(0x2026);

QString escapedBytes(const QByteArray &bytes)
{
    static const char hex[] = "0123456789abcdef";
    QString out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) {
        const uchar b = uchar(c);
        if (b == '\\') {
            out += QStringLiteral("\\\\");
        } else if (b >= 0x20 && b < 0x7f) {
            out += QLatin1Char(c);
        } else {
            out += QStringLiteral("\\x");
            out += QLatin1Char(hex[b >> 4]);
            out += QLatin1Char(hex[b & 0xf]);
        }
    }
    return out;
}

} // namespace

TrafficModel::TrafficModel(int capacity, QObject *parent)
    : QAbstractTableModel(parent)
    , m_capacity(qMax(1, capacity))
{
}

QByteArray TrafficModel::headerValue(const TraceEvent &event, QByteArrayView name)
{
    for (const Header &header : event.headers) {
        if (headerNameEquals(header.name, name))
            return header.value;
    }
    return {};
}

QString TrafficModel::bodyPreview(const QByteArray &body, bool truncated)
{
    // A cut body may end inside a UTF-8 sequence: a stateful decoder keeps such
    // a tail to itself instead of calling it an error.
    QStringDecoder::Flags flags = QStringDecoder::Flag::ConvertInitialBom;
    if (!truncated)
        flags |= QStringDecoder::Flag::Stateless;
    QStringDecoder decoder(QStringDecoder::Utf8, flags);
    QString text = decoder.decode(body);
    if (decoder.hasError()) {
        text = escapedBytes(body);
    } else {
        for (QChar &c : text) {
            const char16_t u = c.unicode();
            if (u < 0x20)
                c = QChar(char16_t(0x2400 + u)); // control pictures: ␀ … ␟
            else if (u == 0x7f)
                c = QChar(char16_t(0x2421)); // ␡
            else if ((u >= 0x80 && u < 0xa0) || u == 0x2028 || u == 0x2029)
                c = QChar(QChar::ReplacementCharacter);
        }
    }
    if (truncated)
        text += kEllipsis;
    return text;
}

int TrafficModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int TrafficModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant TrafficModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const Row &row = m_rows.at(index.row());
    const TraceEvent &event = row.event;
    switch (role) {
    case Qt::DisplayRole:
        return display(row, index.column());
    case Qt::UserRole:
        return raw(row, index.column());
    case Qt::TextAlignmentRole:
        if (index.column() == SizeColumn)
            return int(Qt::AlignRight | Qt::AlignVCenter);
        if (index.column() == DirectionColumn)
            return int(Qt::AlignHCenter | Qt::AlignVCenter);
        return {};
    case Qt::ToolTipRole:
        switch (index.column()) {
        case TimeColumn:
            return QDateTime::fromMSecsSinceEpoch(event.atMs).toString(QStringLiteral("yyyy-MM-dd hh:mm:ss.zzz t"));
        case DirectionColumn:
            return event.direction == TraceEvent::Direction::In ? QStringLiteral("peer to broker")
                                                                : QStringLiteral("broker to peer");
        case SizeColumn:
            return QString(QString::number(event.bodySize) + QStringLiteral(" bytes"));
        case BodyColumn:
            return event.binary ? QStringLiteral("binary frame") : QStringLiteral("text frame");
        default:
            return {};
        }
    default:
        return {};
    }
}

QVariant TrafficModel::display(const Row &row, int column) const
{
    const TraceEvent &event = row.event;
    switch (column) {
    case TimeColumn:
        return QDateTime::fromMSecsSinceEpoch(event.atMs).toString(QStringLiteral("hh:mm:ss.zzz"));
    case DirectionColumn: return event.direction == TraceEvent::Direction::In ? QString(kIn) : QString(kOut);
    case ConnectionColumn: return row.connection;
    case CommandColumn: return QString::fromLatin1(commandName(event.command));
    case TargetColumn: return QString::fromUtf8(event.target);
    case ReqIdColumn: return QString::fromUtf8(headerValue(event, HeaderName::ReqId));
    case StatusColumn: return QString::fromUtf8(headerValue(event, HeaderName::Status));
    case SizeColumn: return ConnectionsModel::formatBytes(event.bodySize);
    case BodyColumn: return bodyPreview(event.body, event.bodySize > event.body.size());
    default: return {};
    }
}

QVariant TrafficModel::raw(const Row &row, int column) const
{
    const TraceEvent &event = row.event;
    switch (column) {
    case TimeColumn: return event.atMs;
    case ConnectionColumn: return event.peer;
    case StatusColumn: {
        bool ok = false;
        const int status = headerValue(event, HeaderName::Status).toInt(&ok);
        return ok ? QVariant(status) : QVariant(display(row, column));
    }
    case SizeColumn: return event.bodySize;
    default: return display(row, column);
    }
}

QVariant TrafficModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount)
        return {};
    if (role == Qt::TextAlignmentRole)
        return section == SizeColumn ? int(Qt::AlignRight | Qt::AlignVCenter) : int(Qt::AlignLeft | Qt::AlignVCenter);
    if (role != Qt::DisplayRole)
        return {};
    switch (section) {
    case TimeColumn: return QStringLiteral("Time");
    case DirectionColumn: return QStringLiteral("Dir");
    case ConnectionColumn: return QStringLiteral("Connection");
    case CommandColumn: return QStringLiteral("Command");
    case TargetColumn: return QStringLiteral("Target");
    case ReqIdColumn: return QStringLiteral("ReqID");
    case StatusColumn: return QStringLiteral("Status");
    case SizeColumn: return QStringLiteral("Size");
    case BodyColumn: return QStringLiteral("Body");
    default: return {};
    }
}

const TraceEvent &TrafficModel::eventAt(int row) const
{
    return m_rows.at(row).event;
}

quint64 TrafficModel::peerAt(int row) const
{
    return row >= 0 && row < m_rows.size() ? m_rows.at(row).event.peer : 0;
}

QString TrafficModel::peerName(quint64 id) const
{
    return ConnectionsModel::peerLabel(id, m_names.value(id));
}

void TrafficModel::apply(const ConsoleUpdate &update)
{
    // A new run numbers its connections anew; the rows keep their labels.
    if (update.reset)
        m_names.clear();
    for (const PeerInfo &peer : update.peersChanged) {
        if (!peer.keyName.isEmpty())
            m_names.insert(peer.id, peer.keyName);
    }
    bool countersMoved = false;
    if (update.trafficSkipped != 0) {
        m_skipped += update.trafficSkipped;
        countersMoved = true;
    }
    if (!update.traffic.isEmpty()) {
        if (m_paused) {
            m_droppedWhilePaused += quint64(update.traffic.size());
            countersMoved = true;
        } else {
            append(update.traffic);
        }
    }
    // After this update's traffic: its rows have their labels already.
    for (const quint64 id : update.peersGone)
        m_names.remove(id);
    if (countersMoved)
        Q_EMIT countersChanged();
}

void TrafficModel::append(const QList<TraceEvent> &events)
{
    // Of a batch larger than the log only its tail can be shown.
    const qsizetype count = qMin<qsizetype>(events.size(), m_capacity);
    const qsizetype from = events.size() - count;
    const qsizetype overflow = m_rows.size() + count - m_capacity;
    if (overflow > 0) {
        beginRemoveRows({}, 0, int(overflow) - 1);
        m_rows.remove(0, overflow);
        endRemoveRows();
    }
    const int first = int(m_rows.size());
    beginInsertRows({}, first, first + int(count) - 1);
    // One label per connection, shared by its rows.
    QHash<quint64, QString> labels;
    for (qsizetype i = from; i < events.size(); ++i) {
        const TraceEvent &event = events.at(i);
        auto label = labels.find(event.peer);
        if (label == labels.end())
            label = labels.insert(event.peer, peerName(event.peer));
        m_rows.append(Row{event, *label});
    }
    endInsertRows();
}

void TrafficModel::setPaused(bool paused)
{
    if (m_paused == paused)
        return;
    m_paused = paused;
    Q_EMIT pausedChanged(paused);
}

void TrafficModel::clear()
{
    if (!m_rows.isEmpty()) {
        beginResetModel();
        m_rows.clear();
        endResetModel();
    }
    if (m_droppedWhilePaused != 0 || m_skipped != 0) {
        m_droppedWhilePaused = 0;
        m_skipped = 0;
        Q_EMIT countersChanged();
    }
}

// --- TrafficFilterModel ------------------------------------------------------

TrafficFilterModel::TrafficFilterModel(QObject *parent)
    : QSortFilterProxyModel(parent)
{
}

void TrafficFilterModel::setTargetFilter(const QString &filter)
{
    if (filter == m_targetFilter)
        return;
    m_targetFilter = filter;
    const QByteArray utf8 = filter.toUtf8();
    m_isPattern = Target::hasWildcard(utf8) && Target::isPattern(utf8);
    m_pattern = m_isPattern ? utf8 : QByteArray();
    invalidateFilter();
}

void TrafficFilterModel::setCommandFilter(std::optional<Command> command)
{
    if (command == m_command)
        return;
    m_command = command;
    invalidateFilter();
}

void TrafficFilterModel::setConnectionFilter(quint64 id)
{
    if (id == m_connection)
        return;
    m_connection = id;
    invalidateFilter();
}

bool TrafficFilterModel::filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const
{
    const auto *traffic = qobject_cast<const TrafficModel *>(sourceModel());
    if (!traffic || sourceParent.isValid() || sourceRow < 0 || sourceRow >= traffic->rowCount())
        return QSortFilterProxyModel::filterAcceptsRow(sourceRow, sourceParent);
    const TraceEvent &event = traffic->eventAt(sourceRow);
    if (m_connection != 0 && event.peer != m_connection)
        return false;
    if (m_command && event.command != *m_command)
        return false;
    if (m_targetFilter.isEmpty())
        return true;
    if (m_isPattern)
        return Target::matches(m_pattern, event.target);
    return QString::fromUtf8(event.target).contains(m_targetFilter, Qt::CaseInsensitive);
}

} // namespace Middleman
