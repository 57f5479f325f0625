#pragma once
// ConnectionsModel: the console's connections table, one row per connection
// (handshaking ones included), ordered by id. Fed only by ConsoleUpdate values.

#include "consoleupdate.h"
#include "sortedrows.h"

#include <QAbstractTableModel>
#include <QList>

#include <optional>

namespace Middleman {

class ConnectionsModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column {
        IdColumn,
        KeyColumn,
        RoleColumn,
        AddressColumn,
        ConnectedColumn,
        SubscriptionsColumn,
        MessagesInColumn,
        MessagesOutColumn,
        BytesInColumn,
        BytesOutColumn,
        QueuedColumn,
        PendingColumn,
        PacedColumn, // times its input was held for its message rate
        ColumnCount
    };

    explicit ConnectionsModel(QObject *parent = nullptr);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    // DisplayRole: text; Qt::UserRole: the raw value (numbers as numbers).
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    quint64 idAt(int row) const;             // 0 when out of range
    int rowOf(quint64 id) const;             // -1 when unknown
    std::optional<PeerInfo> peerAt(int row) const;
    QString nameOf(quint64 id) const;        // "#3 web"; "#3" when unknown or unnamed

    // "512 B", "1.2 KiB", "3.4 MiB".
    static QString formatBytes(qint64 bytes);
    // "#3 web", or "#3" without a name.
    static QString peerLabel(quint64 id, const QString &keyName);
    // "service", "client", "handshake".
    static QString roleName(Role role);

public Q_SLOTS:
    // Never a reset except for update.reset: rows gone leave in contiguous
    // ranges, new ones (mostly at the end: ids only grow) arrive in contiguous
    // runs, so that a view's selection stays on its connection.
    void apply(const Middleman::ConsoleUpdate &update);

private:
    friend class SortedRows;
    static SortedRows::ColumnRange changedColumns(const PeerInfo &before, const PeerInfo &after);
    QVariant display(const PeerInfo &peer, int column) const;
    QVariant raw(const PeerInfo &peer, int column) const;

    QList<PeerInfo> m_peers; // sorted by id
};

} // namespace Middleman
