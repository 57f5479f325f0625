#pragma once
// TrafficModel: the console's traffic log, a bounded live tail of traced
// messages (TraceEvent) fed only by ConsoleUpdate values; the oldest rows go
// when it is full. The log outlives the broker's runs: a reset (stop, start)
// keeps the rows and counters, only clear() empties it. TrafficFilterModel
// narrows it by target, command and connection.

#include "consoleupdate.h"

#include <QAbstractTableModel>
#include <QHash>
#include <QList>
#include <QSortFilterProxyModel>

#include <optional>

namespace Middleman {

class TrafficModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column {
        TimeColumn,
        DirectionColumn,
        ConnectionColumn,
        CommandColumn,
        TargetColumn,
        ReqIdColumn,
        StatusColumn,
        SizeColumn,
        BodyColumn,
        ColumnCount
    };
    static constexpr int kDefaultCapacity = 5000;

    explicit TrafficModel(int capacity = kDefaultCapacity, QObject *parent = nullptr);

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    // DisplayRole: text; Qt::UserRole: the raw value (ms since the epoch, peer id,
    // sizes and statuses as numbers).
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

    int capacity() const { return m_capacity; }
    bool isPaused() const { return m_paused; }
    // Events that arrived while paused and were not added (since the last clear()).
    quint64 droppedWhilePaused() const { return m_droppedWhilePaused; }
    // Events the engine left out of its updates under load
    // (ConsoleUpdate::trafficSkipped, since the last clear()).
    quint64 skipped() const { return m_skipped; }

    const TraceEvent &eventAt(int row) const; // row must be valid
    quint64 peerAt(int row) const;            // 0 when out of range
    // A live connection's label, "#3 web" with the key name learned from the
    // updates, "#3" without one or once it has gone. Each row keeps the label
    // its connection had when the row was added.
    QString peerName(quint64 id) const;

    // First value of a header, name compared case-insensitively; null when absent.
    static QByteArray headerValue(const TraceEvent &event, QByteArrayView name);
    // One line: UTF-8 with control characters shown as symbols, anything else
    // escaped byte by byte (\xNN); "…" when the body was cut.
    static QString bodyPreview(const QByteArray &body, bool truncated);

public Q_SLOTS:
    // update.reset forgets the names of the previous run's connections, nothing else.
    void apply(const Middleman::ConsoleUpdate &update);
    void setPaused(bool paused);
    // Drops every row and zeroes the counters; the live connections' names stay.
    void clear();

Q_SIGNALS:
    void pausedChanged(bool paused);
    // droppedWhilePaused() or skipped() changed.
    void countersChanged();

private:
    struct Row
    {
        TraceEvent event;
        QString connection; // peerName() when the row was added
    };

    QVariant display(const Row &row, int column) const;
    QVariant raw(const Row &row, int column) const;
    void append(const QList<TraceEvent> &events);

    const int m_capacity;
    QList<Row> m_rows; // oldest first
    QHash<quint64, QString> m_names; // live connections with a key name
    bool m_paused = false;
    quint64 m_droppedWhilePaused = 0;
    quint64 m_skipped = 0;
};

class TrafficFilterModel : public QSortFilterProxyModel
{
    Q_OBJECT
public:
    explicit TrafficFilterModel(QObject *parent = nullptr);

    // Empty: every target. With a '*' or '>' token and a valid pattern: the targets
    // it matches (NATS rules, Target::matches); otherwise a case-insensitive
    // substring of the target.
    void setTargetFilter(const QString &filter);
    QString targetFilter() const { return m_targetFilter; }
    bool isPatternFilter() const { return m_isPattern; }
    // std::nullopt: every command.
    void setCommandFilter(std::optional<Command> command);
    std::optional<Command> commandFilter() const { return m_command; }
    // 0: every connection.
    void setConnectionFilter(quint64 id);
    quint64 connectionFilter() const { return m_connection; }

protected:
    bool filterAcceptsRow(int sourceRow, const QModelIndex &sourceParent) const override;

private:
    QString m_targetFilter;
    QByteArray m_pattern; // the filter as UTF-8 when it is a pattern
    bool m_isPattern = false;
    std::optional<Command> m_command;
    quint64 m_connection = 0;
};

} // namespace Middleman
