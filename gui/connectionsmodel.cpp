#include "connectionsmodel.h"

#include <QDateTime>
#include <QHostAddress>

namespace Middleman {

namespace {

bool isNumeric(int column)
{
    switch (column) {
    case ConnectionsModel::IdColumn:
    case ConnectionsModel::SubscriptionsColumn:
    case ConnectionsModel::MessagesInColumn:
    case ConnectionsModel::MessagesOutColumn:
    case ConnectionsModel::BytesInColumn:
    case ConnectionsModel::BytesOutColumn:
    case ConnectionsModel::QueuedColumn:
    case ConnectionsModel::PendingColumn:
        return true;
    default:
        return false;
    }
}

bool isBytes(int column)
{
    return column == ConnectionsModel::BytesInColumn || column == ConnectionsModel::BytesOutColumn
        || column == ConnectionsModel::QueuedColumn;
}

QString addressText(const QHostAddress &address, quint16 port)
{
    bool isV4 = false;
    const quint32 v4 = address.toIPv4Address(&isV4); // also unwraps ::ffff:a.b.c.d
    if (isV4)
        return QHostAddress(v4).toString() + QLatin1Char(':') + QString::number(port);
    if (address.isNull())
        return QStringLiteral("?:") + QString::number(port);
    return QLatin1Char('[') + address.toString() + QStringLiteral("]:") + QString::number(port);
}

} // namespace

ConnectionsModel::ConnectionsModel(QObject *parent)
    : QAbstractTableModel(parent)
{
}

QString ConnectionsModel::formatBytes(qint64 bytes)
{
    if (bytes < 1024)
        return QString::number(bytes) + QStringLiteral(" B");
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double value = double(bytes) / 1024.0;
    int unit = 0;
    while (value >= 1024.0 && unit < 5) {
        value /= 1024.0;
        ++unit;
    }
    return QString::number(value, 'f', 1) + QLatin1Char(' ') + QLatin1String(units[unit]);
}

QString ConnectionsModel::peerLabel(quint64 id, const QString &keyName)
{
    const QString number = QLatin1Char('#') + QString::number(id);
    return keyName.isEmpty() ? number : number + QLatin1Char(' ') + keyName;
}

QString ConnectionsModel::roleName(Role role)
{
    switch (role) {
    case Role::Service: return QStringLiteral("service");
    case Role::Client: return QStringLiteral("client");
    case Role::None: break;
    }
    return QStringLiteral("handshake");
}

int ConnectionsModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_peers.size());
}

int ConnectionsModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ConnectionsModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const PeerInfo &peer = m_peers.at(index.row());
    const int column = index.column();
    switch (role) {
    case Qt::DisplayRole:
        return display(peer, column);
    case Qt::UserRole:
        return raw(peer, column);
    case Qt::TextAlignmentRole:
        if (isNumeric(column))
            return int(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    case Qt::ToolTipRole:
        if (column == ConnectedColumn)
            return peer.connectedAt.toLocalTime().toString(QStringLiteral("yyyy-MM-dd hh:mm:ss.zzz t"));
        if (isBytes(column))
            return QString(raw(peer, column).toString() + QStringLiteral(" bytes"));
        if (column == KeyColumn && !peer.clientId.isEmpty())
            return QString(QStringLiteral("Client-Id: ") + QString::fromLatin1(peer.clientId));
        return {};
    default:
        return {};
    }
}

QVariant ConnectionsModel::display(const PeerInfo &peer, int column) const
{
    switch (column) {
    case IdColumn: return QString::number(peer.id);
    case KeyColumn: return peer.keyName;
    case RoleColumn: return roleName(peer.role);
    case AddressColumn: return addressText(peer.address, peer.port);
    case ConnectedColumn:
        return peer.connectedAt.isValid() ? peer.connectedAt.toLocalTime().toString(QStringLiteral("hh:mm:ss"))
                                          : QString();
    case SubscriptionsColumn: return QString::number(peer.subscriptions);
    case MessagesInColumn: return QString::number(peer.messagesIn);
    case MessagesOutColumn: return QString::number(peer.messagesOut);
    case BytesInColumn: return formatBytes(qint64(peer.bytesIn));
    case BytesOutColumn: return formatBytes(qint64(peer.bytesOut));
    case QueuedColumn: return formatBytes(peer.bytesQueued);
    case PendingColumn: return QString::number(peer.pendingRequests);
    case PacedColumn: return QString::number(peer.inputPauses);
    default: return {};
    }
}

QVariant ConnectionsModel::raw(const PeerInfo &peer, int column) const
{
    switch (column) {
    case IdColumn: return peer.id;
    case KeyColumn: return peer.keyName;
    case RoleColumn: return roleName(peer.role);
    case AddressColumn: return addressText(peer.address, peer.port);
    case ConnectedColumn: return peer.connectedAt.toMSecsSinceEpoch();
    case SubscriptionsColumn: return peer.subscriptions;
    case MessagesInColumn: return peer.messagesIn;
    case MessagesOutColumn: return peer.messagesOut;
    case BytesInColumn: return peer.bytesIn;
    case BytesOutColumn: return peer.bytesOut;
    case QueuedColumn: return peer.bytesQueued;
    case PendingColumn: return peer.pendingRequests;
    case PacedColumn: return peer.inputPauses;
    default: return {};
    }
}

QVariant ConnectionsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount)
        return {};
    if (role == Qt::TextAlignmentRole)
        return isNumeric(section) ? int(Qt::AlignRight | Qt::AlignVCenter) : int(Qt::AlignLeft | Qt::AlignVCenter);
    if (role != Qt::DisplayRole)
        return {};
    switch (section) {
    case IdColumn: return QStringLiteral("Id");
    case KeyColumn: return QStringLiteral("Key");
    case RoleColumn: return QStringLiteral("Role");
    case AddressColumn: return QStringLiteral("Address");
    case ConnectedColumn: return QStringLiteral("Connected since");
    case SubscriptionsColumn: return QStringLiteral("Subscriptions");
    case MessagesInColumn: return QStringLiteral("Msgs in");
    case MessagesOutColumn: return QStringLiteral("Msgs out");
    case BytesInColumn: return QStringLiteral("Bytes in");
    case BytesOutColumn: return QStringLiteral("Bytes out");
    case QueuedColumn: return QStringLiteral("Queued");
    case PendingColumn: return QStringLiteral("Pending");
    case PacedColumn: return QStringLiteral("Paced");
    default: return {};
    }
}

quint64 ConnectionsModel::idAt(int row) const
{
    return row >= 0 && row < m_peers.size() ? m_peers.at(row).id : 0;
}

int ConnectionsModel::rowOf(quint64 id) const
{
    return SortedRows::indexOf(m_peers, id, &PeerInfo::id);
}

std::optional<PeerInfo> ConnectionsModel::peerAt(int row) const
{
    if (row < 0 || row >= m_peers.size())
        return std::nullopt;
    return m_peers.at(row);
}

QString ConnectionsModel::nameOf(quint64 id) const
{
    const int row = rowOf(id);
    return peerLabel(id, row >= 0 ? m_peers.at(row).keyName : QString());
}

SortedRows::ColumnRange ConnectionsModel::changedColumns(const PeerInfo &before, const PeerInfo &after)
{
    SortedRows::ColumnRange columns{-1, -1};
    const auto check = [&](int column, bool differs) {
        if (differs)
            SortedRows::widen(columns, column);
    };
    check(IdColumn, before.id != after.id);
    check(KeyColumn, before.keyName != after.keyName || before.clientId != after.clientId); // the tooltip
    check(RoleColumn, before.role != after.role);
    check(AddressColumn, before.address != after.address || before.port != after.port);
    check(ConnectedColumn, before.connectedAt != after.connectedAt);
    check(SubscriptionsColumn, before.subscriptions != after.subscriptions);
    check(MessagesInColumn, before.messagesIn != after.messagesIn);
    check(MessagesOutColumn, before.messagesOut != after.messagesOut);
    check(BytesInColumn, before.bytesIn != after.bytesIn);
    check(BytesOutColumn, before.bytesOut != after.bytesOut);
    check(QueuedColumn, before.bytesQueued != after.bytesQueued);
    check(PendingColumn, before.pendingRequests != after.pendingRequests);
    check(PacedColumn, before.inputPauses != after.inputPauses);
    return columns;
}

void ConnectionsModel::apply(const ConsoleUpdate &update)
{
    if (update.reset) {
        beginResetModel();
        m_peers = SortedRows::sortedUnique(update.peersChanged, &PeerInfo::id);
        endResetModel();
        return;
    }
    SortedRows::apply(*this, m_peers, update.peersGone, update.peersChanged, &PeerInfo::id,
                      SortedRows::Bulk::Ranges);
}

} // namespace Middleman
