#pragma once
// SortedRows: the bookkeeping shared by the console's table models whose rows
// change by ConsoleUpdate lists of keys gone and rows new or changed
// (ConnectionsModel by id, TopicsModel by pattern, PendingModel's removals).
//
// apply() costs O(n + k log k) for n rows and k keys in an update: the update's
// keys are sorted and looked up by binary search; the rows gone leave in
// contiguous ranges from the bottom up, the new ones arrive in contiguous runs,
// and changed cells are announced with one dataChanged per block of adjacent
// rows. Every structural signal costs a view O(n), so when an update would take
// more than kMaxSignals of them a model that allows it is reset once instead,
// with the merged list.
//
// A model using it declares `friend class SortedRows;` (for begin/end*Rows())
// and, for apply(), `static ColumnRange changedColumns(const Row &before, const
// Row &after)`.

#include <QAbstractItemModel>
#include <QList>
#include <QPair>

#include <algorithm>
#include <functional>

namespace Middleman {

class SortedRows
{
public:
    // More structural signals (row ranges removed, runs inserted) than this in
    // one update: the model resets instead, if it may (Bulk::Reset).
    static constexpr int kMaxSignals = 32;

    enum class Bulk {
        Reset,  // a big update resets the model: its views lose their selection
        Ranges, // always range signals: a view's selection follows its rows
    };

    // Columns [first, last] whose cells differ; first < 0 when none does.
    using ColumnRange = QPair<int, int>;

    static void widen(ColumnRange &range, int column)
    {
        if (range.first < 0 || column < range.first)
            range.first = column;
        range.second = qMax(range.second, column);
    }

    // The first row whose key is not less than `key`.
    template <typename Row, typename Key, typename KeyOf>
    static qsizetype lowerBound(const QList<Row> &rows, const Key &key, KeyOf keyOf)
    {
        const auto it = std::lower_bound(rows.cbegin(), rows.cend(), key, [&](const Row &row, const Key &k) {
            return std::invoke(keyOf, row) < k;
        });
        return it - rows.cbegin();
    }

    // The row with this key; -1 when there is none.
    template <typename Row, typename Key, typename KeyOf>
    static int indexOf(const QList<Row> &rows, const Key &key, KeyOf keyOf)
    {
        const qsizetype at = lowerBound(rows, key, keyOf);
        return at < rows.size() && std::invoke(keyOf, rows.at(at)) == key ? int(at) : -1;
    }

    // Sorted by key, one row per key: the last of duplicates wins.
    template <typename Row, typename KeyOf>
    static QList<Row> sortedUnique(const QList<Row> &rows, KeyOf keyOf)
    {
        QList<Row> sorted = rows;
        std::stable_sort(sorted.begin(), sorted.end(), [&](const Row &a, const Row &b) {
            return std::invoke(keyOf, a) < std::invoke(keyOf, b);
        });
        QList<Row> unique;
        unique.reserve(sorted.size());
        for (Row &row : sorted) {
            if (!unique.isEmpty() && std::invoke(keyOf, unique.constLast()) == std::invoke(keyOf, row))
                unique.last() = std::move(row);
            else
                unique.append(std::move(row));
        }
        return unique;
    }

    // How many contiguous ranges these row indices (ascending, distinct) make.
    static int rangeCount(const QList<int> &rows)
    {
        int ranges = 0;
        for (qsizetype i = 0; i < rows.size(); ++i) {
            if (i == 0 || rows.at(i) != rows.at(i - 1) + 1)
                ++ranges;
        }
        return ranges;
    }

    // Removes the rows at these indices (ascending, distinct), one contiguous
    // range at a time from the bottom up, so that the indices above stay valid.
    template <typename Model, typename Row>
    static void removeRanges(Model &model, QList<Row> &rows, const QList<int> &indices)
    {
        qsizetype end = indices.size();
        while (end > 0) {
            qsizetype begin = end - 1;
            while (begin > 0 && indices.at(begin - 1) == indices.at(begin) - 1)
                --begin;
            const int first = indices.at(begin);
            const int last = indices.at(end - 1);
            model.beginRemoveRows(QModelIndex(), first, last);
            rows.remove(first, last - first + 1);
            model.endRemoveRows();
            end = begin;
        }
    }

    struct Change
    {
        int row;
        ColumnRange columns;
    };

    // One dataChanged per block of adjacent rows (over the union of their
    // columns), or, past kMaxSignals blocks, one over the rectangle holding them
    // all. `changes` ascend by row.
    template <typename Model>
    static void announce(Model &model, const QList<Change> &changes)
    {
        struct Block
        {
            int firstRow;
            int lastRow;
            ColumnRange columns;
        };
        QList<Block> blocks;
        for (const Change &change : changes) {
            if (!blocks.isEmpty() && blocks.constLast().lastRow + 1 == change.row) {
                Block &block = blocks.last();
                block.lastRow = change.row;
                widen(block.columns, change.columns.first);
                widen(block.columns, change.columns.second);
            } else {
                blocks.append(Block{change.row, change.row, change.columns});
            }
        }
        if (blocks.size() > kMaxSignals) {
            Block all = blocks.constFirst();
            for (const Block &block : std::as_const(blocks)) {
                all.lastRow = block.lastRow;
                widen(all.columns, block.columns.first);
                widen(all.columns, block.columns.second);
            }
            blocks = {all};
        }
        for (const Block &block : std::as_const(blocks)) {
            Q_EMIT model.dataChanged(model.index(block.firstRow, block.columns.first),
                                     model.index(block.lastRow, block.columns.second));
        }
    }

    // Applies an update to `rows` (sorted by keyOf, keys distinct): first the
    // keys `gone`, then `changed` (any order; the last of duplicates wins): rows
    // with a key already there replace it, the others are inserted in order. A
    // key both gone and changed is a row removed and made again.
    template <typename Model, typename Row, typename Key, typename KeyOf>
    static void apply(Model &model, QList<Row> &rows, const QList<Key> &gone, const QList<Row> &changed,
                      KeyOf keyOf, Bulk bulk)
    {
        const auto keyLess = [&](const Row *a, const Row *b) {
            return std::invoke(keyOf, *a) < std::invoke(keyOf, *b);
        };
        const qsizetype n = rows.size();

        // The rows gone, as indices now.
        QList<int> removed;
        removed.reserve(gone.size());
        for (const Key &key : gone) {
            const int row = indexOf(rows, key, keyOf);
            if (row >= 0)
                removed.append(row);
        }
        std::sort(removed.begin(), removed.end());
        removed.erase(std::unique(removed.begin(), removed.end()), removed.end());

        // The new and changed rows by key, the last of duplicates only.
        QList<const Row *> byKey;
        byKey.reserve(changed.size());
        for (const Row &row : changed)
            byKey.append(&row);
        std::stable_sort(byKey.begin(), byKey.end(), keyLess);

        struct Insert
        {
            qsizetype before; // goes before this row of now (n: at the end)
            const Row *row;
        };
        struct Update
        {
            qsizetype at;
            const Row *row;
            ColumnRange columns;
        };
        QList<Insert> inserts;
        QList<Update> updates;
        for (qsizetype i = 0; i < byKey.size(); ++i) {
            if (i + 1 < byKey.size() && !keyLess(byKey.at(i), byKey.at(i + 1)))
                continue; // a later one has the same key
            const Row *row = byKey.at(i);
            const qsizetype at = lowerBound(rows, std::invoke(keyOf, *row), keyOf);
            const bool known = at < n && std::invoke(keyOf, rows.at(at)) == std::invoke(keyOf, *row)
                && !std::binary_search(removed.cbegin(), removed.cend(), int(at));
            if (!known) {
                inserts.append(Insert{at, row});
                continue;
            }
            const ColumnRange columns = Model::changedColumns(rows.at(at), *row);
            if (columns.first >= 0)
                updates.append(Update{at, row, columns});
            else
                rows[at] = *row; // nothing a view shows differs
        }

        int signalCount = rangeCount(removed);
        for (qsizetype i = 0; i < inserts.size(); ++i) {
            if (i == 0 || inserts.at(i).before != inserts.at(i - 1).before)
                ++signalCount;
        }

        if (bulk == Bulk::Reset && signalCount > kMaxSignals) {
            // One merge of the sorted lists, O(n + k).
            model.beginResetModel();
            QList<Row> merged;
            merged.reserve(n - removed.size() + inserts.size());
            qsizetype nextInsert = 0;
            qsizetype nextRemoved = 0;
            qsizetype nextUpdate = 0;
            for (qsizetype at = 0; at < n; ++at) {
                for (; nextInsert < inserts.size() && inserts.at(nextInsert).before == at; ++nextInsert)
                    merged.append(*inserts.at(nextInsert).row);
                if (nextRemoved < removed.size() && removed.at(nextRemoved) == at) {
                    ++nextRemoved;
                    continue;
                }
                if (nextUpdate < updates.size() && updates.at(nextUpdate).at == at)
                    merged.append(*updates.at(nextUpdate++).row);
                else
                    merged.append(std::move(rows[at]));
            }
            for (; nextInsert < inserts.size(); ++nextInsert)
                merged.append(*inserts.at(nextInsert).row);
            rows = std::move(merged);
            model.endResetModel();
            return;
        }

        removeRanges(model, rows, removed);

        // Insert runs from the top: a run's place moves down by the rows removed
        // above it and up by the rows inserted before it.
        qsizetype removedAbove = 0;
        qsizetype inserted = 0;
        for (qsizetype i = 0; i < inserts.size();) {
            const qsizetype before = inserts.at(i).before;
            qsizetype end = i + 1;
            while (end < inserts.size() && inserts.at(end).before == before)
                ++end;
            while (removedAbove < removed.size() && removed.at(removedAbove) < before)
                ++removedAbove;
            const int first = int(before - removedAbove + inserted);
            const int count = int(end - i);
            model.beginInsertRows(QModelIndex(), first, first + count - 1);
            if (first == rows.size()) {
                for (qsizetype k = i; k < end; ++k)
                    rows.append(*inserts.at(k).row);
            } else {
                rows.insert(first, count, Row());
                for (qsizetype k = i; k < end; ++k)
                    rows[first + (k - i)] = *inserts.at(k).row;
            }
            model.endInsertRows();
            inserted += count;
            i = end;
        }

        // Changed rows where they are now.
        QList<Change> changes;
        changes.reserve(updates.size());
        removedAbove = 0;
        qsizetype insertedAbove = 0;
        for (const Update &update : std::as_const(updates)) {
            while (removedAbove < removed.size() && removed.at(removedAbove) < update.at)
                ++removedAbove;
            while (insertedAbove < inserts.size() && inserts.at(insertedAbove).before <= update.at)
                ++insertedAbove;
            const int row = int(update.at - removedAbove + insertedAbove);
            rows[row] = *update.row;
            changes.append(Change{row, update.columns});
        }
        announce(model, changes);
    }
};

} // namespace Middleman
