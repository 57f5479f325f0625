#pragma once
// TopicsModel: the console's topics table, one row per target or pattern that
// somebody subscribed to, granted, or sent to; sorted by pattern. Fed only by
// ConsoleUpdate values.

#include "consoleupdate.h"
#include "sortedrows.h"

#include <QAbstractTableModel>
#include <QList>

namespace Middleman {

class TopicsModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column {
        PatternColumn,
        ServicesColumn,
        ClientsColumn,
        EpubColumn,
        EsubColumn,
        EreqColumn,
        MessagesColumn,
        RateColumn,
        ColumnCount
    };

    explicit TopicsModel(QObject *parent = nullptr);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    // DisplayRole: text; Qt::UserRole: the raw value (numbers as numbers).
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    QByteArray patternAt(int row) const;        // null when out of range
    int rowOf(const QByteArray &pattern) const; // -1 when unknown
    const TopicRow &topicAt(int row) const;     // row must be valid

    // "#3, #5"; the configuration's grants (granter 0) as "config".
    static QString granterList(const QList<quint64> &granters);

public Q_SLOTS:
    // Small updates as row and cell signals; one with more than
    // SortedRows::kMaxSignals separate runs of rows new or gone as one reset.
    void apply(const Middleman::ConsoleUpdate &update);

private:
    friend class SortedRows;
    static SortedRows::ColumnRange changedColumns(const TopicRow &before, const TopicRow &after);
    QVariant display(const TopicRow &topic, int column) const;
    QVariant raw(const TopicRow &topic, int column) const;

    QList<TopicRow> m_topics; // sorted by pattern
};

} // namespace Middleman
