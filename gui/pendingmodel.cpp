#include "pendingmodel.h"

#include "connectionsmodel.h"

#include <QSet>

#include <algorithm>

namespace Middleman {

PendingModel::PendingModel(QObject *parent)
    : QAbstractTableModel(parent)
{
}

QString PendingModel::formatSeconds(qint64 ms)
{
    return QString::number(double(ms) / 1000.0, 'f', 1) + QStringLiteral(" s");
}

int PendingModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int PendingModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

qint64 PendingModel::ageMs(const PendingRow &row) const
{
    return qMax<qint64>(0, m_nowMs - row.startedMs);
}

qint64 PendingModel::leftMs(const PendingRow &row) const
{
    return qMax<qint64>(0, row.deadlineMs - m_nowMs);
}

QVariant PendingModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const PendingRow &row = m_rows.at(index.row()).row;
    switch (role) {
    case Qt::DisplayRole:
        return display(row, index.column());
    case Qt::UserRole:
        return raw(row, index.column());
    case Qt::TextAlignmentRole:
        if (index.column() == AgeColumn || index.column() == TimeLeftColumn)
            return int(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    default:
        return {};
    }
}

QVariant PendingModel::display(const PendingRow &row, int column) const
{
    switch (column) {
    case ReqIdColumn: return QString::fromUtf8(row.reqId);
    case TokenColumn: return QString::fromUtf8(row.token);
    case TargetColumn: return QString::fromUtf8(row.target);
    case RequesterColumn:
        return row.requester == 0 ? QStringLiteral("gone") : ConnectionsModel::peerLabel(row.requester, row.requesterName);
    case ServiceColumn: return ConnectionsModel::peerLabel(row.responder, row.responderName);
    case AgeColumn: return formatSeconds(ageMs(row));
    case TimeLeftColumn: return formatSeconds(leftMs(row));
    default: return {};
    }
}

QVariant PendingModel::raw(const PendingRow &row, int column) const
{
    switch (column) {
    case RequesterColumn: return row.requester;
    case ServiceColumn: return row.responder;
    case AgeColumn: return ageMs(row);
    case TimeLeftColumn: return leftMs(row);
    default: return display(row, column);
    }
}

QVariant PendingModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount)
        return {};
    if (role == Qt::TextAlignmentRole) {
        return section == AgeColumn || section == TimeLeftColumn ? int(Qt::AlignRight | Qt::AlignVCenter)
                                                                 : int(Qt::AlignLeft | Qt::AlignVCenter);
    }
    if (role != Qt::DisplayRole)
        return {};
    switch (section) {
    case ReqIdColumn: return QStringLiteral("ReqID");
    case TokenColumn: return QStringLiteral("Token");
    case TargetColumn: return QStringLiteral("Target");
    case RequesterColumn: return QStringLiteral("Requester");
    case ServiceColumn: return QStringLiteral("Service");
    case AgeColumn: return QStringLiteral("Age");
    case TimeLeftColumn: return QStringLiteral("Time left");
    default: return {};
    }
}

QByteArray PendingModel::tokenAt(int row) const
{
    return row >= 0 && row < m_rows.size() ? m_rows.at(row).row.token : QByteArray();
}

int PendingModel::rowOf(const QByteArray &token) const
{
    const auto seq = m_seqOf.constFind(token);
    if (seq == m_seqOf.cend())
        return -1;
    const auto it = std::lower_bound(m_rows.cbegin(), m_rows.cend(), *seq,
                                     [](const Entry &entry, quint64 key) { return entry.seq < key; });
    return it != m_rows.cend() && it->seq == *seq ? int(it - m_rows.cbegin()) : -1;
}

const PendingRow &PendingModel::requestAt(int row) const
{
    return m_rows.at(row).row;
}

void PendingModel::apply(const ConsoleUpdate &update)
{
    if (update.reset) {
        beginResetModel();
        m_rows.clear();
        m_seqOf.clear();
        m_nowMs = update.nowMs;
        for (const PendingRow &row : update.requestsStarted) {
            if (m_seqOf.contains(row.token))
                continue;
            m_seqOf.insert(row.token, m_nextSeq);
            m_rows.append(Entry{m_nextSeq++, row});
        }
        endResetModel();
        return;
    }

    // The rows that ended.
    QList<int> finished;
    finished.reserve(update.requestsFinished.size());
    for (const QByteArray &token : update.requestsFinished) {
        const int row = rowOf(token);
        if (row >= 0)
            finished.append(row);
    }
    std::sort(finished.begin(), finished.end());
    finished.erase(std::unique(finished.begin(), finished.end()), finished.end());
    for (const int row : std::as_const(finished))
        m_seqOf.remove(m_rows.at(row).row.token);

    // A requester that left: its requests stay until answered or expired.
    const QSet<quint64> gone(update.peersGone.cbegin(), update.peersGone.cend());
    const auto forgetGone = [&gone](PendingRow &row) {
        if (row.requester != 0 && gone.contains(row.requester)) {
            row.requester = 0;
            return true;
        }
        return false;
    };

    QList<Entry> added;
    for (const PendingRow &row : update.requestsStarted) {
        if (m_seqOf.contains(row.token))
            continue;
        m_seqOf.insert(row.token, m_nextSeq);
        added.append(Entry{m_nextSeq++, row});
        forgetGone(added.last().row);
    }

    if (SortedRows::rangeCount(finished) > SortedRows::kMaxSignals) {
        // Many scattered rows ended: one pass and one reset.
        beginResetModel();
        QList<Entry> kept;
        kept.reserve(m_rows.size() - finished.size() + added.size());
        qsizetype next = 0;
        for (qsizetype row = 0; row < m_rows.size(); ++row) {
            if (next < finished.size() && finished.at(next) == row) {
                ++next;
                continue;
            }
            kept.append(std::move(m_rows[row]));
            if (!gone.isEmpty())
                forgetGone(kept.last().row);
        }
        kept.append(added);
        m_rows = std::move(kept);
        m_nowMs = update.nowMs;
        endResetModel();
        return;
    }

    SortedRows::removeRanges(*this, m_rows, finished);

    bool requesterGone = false;
    if (!gone.isEmpty()) {
        for (Entry &entry : m_rows)
            requesterGone |= forgetGone(entry.row);
    }

    m_nowMs = update.nowMs;
    if (!added.isEmpty()) {
        const int first = int(m_rows.size());
        beginInsertRows({}, first, first + int(added.size()) - 1);
        m_rows.append(added);
        endInsertRows();
    }
    // Ages and times left move on: one signal for all rows, from the requester
    // column when a requester left.
    if (!m_rows.isEmpty()) {
        Q_EMIT dataChanged(index(0, requesterGone ? RequesterColumn : AgeColumn),
                           index(int(m_rows.size()) - 1, TimeLeftColumn));
    }
}

} // namespace Middleman
