#pragma once
// PendingModel: the console's pending requests, in the order they started. Ages
// and times left follow ConsoleUpdate::nowMs of every update. Fed only by
// ConsoleUpdate values.

#include "consoleupdate.h"
#include "sortedrows.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QList>

namespace Middleman {

class PendingModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column {
        ReqIdColumn,
        TokenColumn,
        TargetColumn,
        RequesterColumn,
        ServiceColumn,
        AgeColumn,
        TimeLeftColumn,
        ColumnCount
    };

    explicit PendingModel(QObject *parent = nullptr);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    // DisplayRole: text; Qt::UserRole: the raw value (ids, milliseconds).
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    QByteArray tokenAt(int row) const;        // null when out of range
    int rowOf(const QByteArray &token) const; // -1 when unknown
    const PendingRow &requestAt(int row) const; // row must be valid
    qint64 nowMs() const { return m_nowMs; }

    // "1.2 s".
    static QString formatSeconds(qint64 ms);

public Q_SLOTS:
    // Rows that ended leave in contiguous ranges, or, more than
    // SortedRows::kMaxSignals ranges of them, by one reset; new rows are appended.
    void apply(const Middleman::ConsoleUpdate &update);

private:
    friend class SortedRows;
    struct Entry
    {
        quint64 seq = 0; // rows are sorted by it
        PendingRow row;
    };

    QVariant display(const PendingRow &row, int column) const;
    QVariant raw(const PendingRow &row, int column) const;
    qint64 ageMs(const PendingRow &row) const;
    qint64 leftMs(const PendingRow &row) const;

    QList<Entry> m_rows;
    QHash<QByteArray, quint64> m_seqOf; // token -> seq
    quint64 m_nextSeq = 0;
    qint64 m_nowMs = 0;
};

} // namespace Middleman
