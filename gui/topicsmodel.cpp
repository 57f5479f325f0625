#include "topicsmodel.h"

#include "granttable.h"

#include <QStringList>

#include <algorithm>

namespace Middleman {

namespace {

bool isNumeric(int column)
{
    return column == TopicsModel::ServicesColumn || column == TopicsModel::ClientsColumn
        || column == TopicsModel::MessagesColumn || column == TopicsModel::RateColumn;
}

bool patternLess(const TopicRow &a, const TopicRow &b)
{
    return a.pattern < b.pattern;
}

} // namespace

TopicsModel::TopicsModel(QObject *parent)
    : QAbstractTableModel(parent)
{
}

QString TopicsModel::granterList(const QList<quint64> &granters)
{
    QStringList parts;
    parts.reserve(granters.size());
    for (const quint64 granter : granters) {
        parts.append(granter == GrantTable::Permanent ? QStringLiteral("config")
                                                      : QLatin1Char('#') + QString::number(granter));
    }
    return parts.join(QStringLiteral(", "));
}

int TopicsModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_topics.size());
}

int TopicsModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant TopicsModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid))
        return {};
    const TopicRow &topic = m_topics.at(index.row());
    switch (role) {
    case Qt::DisplayRole:
        return display(topic, index.column());
    case Qt::UserRole:
        return raw(topic, index.column());
    case Qt::TextAlignmentRole:
        if (isNumeric(index.column()))
            return int(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    default:
        return {};
    }
}

QVariant TopicsModel::display(const TopicRow &topic, int column) const
{
    switch (column) {
    case PatternColumn: return QString::fromUtf8(topic.pattern);
    case ServicesColumn: return QString::number(topic.serviceSubscribers);
    case ClientsColumn: return QString::number(topic.clientSubscribers);
    case EpubColumn: return granterList(topic.epubBy);
    case EsubColumn: return granterList(topic.esubBy);
    case EreqColumn: return granterList(topic.ereqBy);
    case MessagesColumn: return QString::number(topic.messages);
    case RateColumn: return QString::number(topic.messagesPerSecond, 'f', 1);
    default: return {};
    }
}

QVariant TopicsModel::raw(const TopicRow &topic, int column) const
{
    switch (column) {
    case ServicesColumn: return topic.serviceSubscribers;
    case ClientsColumn: return topic.clientSubscribers;
    case MessagesColumn: return topic.messages;
    case RateColumn: return topic.messagesPerSecond;
    default: return display(topic, column);
    }
}

QVariant TopicsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || section < 0 || section >= ColumnCount)
        return {};
    if (role == Qt::TextAlignmentRole)
        return isNumeric(section) ? int(Qt::AlignRight | Qt::AlignVCenter) : int(Qt::AlignLeft | Qt::AlignVCenter);
    if (role != Qt::DisplayRole)
        return {};
    switch (section) {
    case PatternColumn: return QStringLiteral("Target/pattern");
    case ServicesColumn: return QStringLiteral("Services");
    case ClientsColumn: return QStringLiteral("Clients");
    case EpubColumn: return QStringLiteral("EPUB by");
    case EsubColumn: return QStringLiteral("ESUB by");
    case EreqColumn: return QStringLiteral("EREQ by");
    case MessagesColumn: return QStringLiteral("Messages");
    case RateColumn: return QStringLiteral("Msgs/s");
    default: return {};
    }
}

QList<TopicRow>::const_iterator TopicsModel::find(const QByteArray &pattern) const
{
    return std::lower_bound(m_topics.cbegin(), m_topics.cend(), pattern,
                            [](const TopicRow &topic, const QByteArray &key) { return topic.pattern < key; });
}

QByteArray TopicsModel::patternAt(int row) const
{
    return row >= 0 && row < m_topics.size() ? m_topics.at(row).pattern : QByteArray();
}

int TopicsModel::rowOf(const QByteArray &pattern) const
{
    const auto it = find(pattern);
    return it != m_topics.cend() && it->pattern == pattern ? int(it - m_topics.cbegin()) : -1;
}

const TopicRow &TopicsModel::topicAt(int row) const
{
    return m_topics.at(row);
}

void TopicsModel::apply(const ConsoleUpdate &update)
{
    if (update.reset) {
        beginResetModel();
        m_topics = update.topicsChanged;
        std::stable_sort(m_topics.begin(), m_topics.end(), patternLess);
        // The last of duplicates wins.
        QList<TopicRow> unique;
        unique.reserve(m_topics.size());
        for (const TopicRow &topic : std::as_const(m_topics)) {
            if (!unique.isEmpty() && unique.constLast().pattern == topic.pattern)
                unique.last() = topic;
            else
                unique.append(topic);
        }
        m_topics = std::move(unique);
        endResetModel();
        return;
    }

    // Gone first: a row dropped and made again within one interval is in both lists.
    for (const QByteArray &pattern : update.topicsGone) {
        const int row = rowOf(pattern);
        if (row < 0)
            continue;
        beginRemoveRows({}, row, row);
        m_topics.removeAt(row);
        endRemoveRows();
    }

    const QList<TopicRow> &changed = update.topicsChanged;
    qsizetype i = 0;
    while (i < changed.size()) {
        const TopicRow &topic = changed.at(i);
        const auto it = find(topic.pattern);
        const int row = int(it - m_topics.cbegin());
        if (it != m_topics.cend() && it->pattern == topic.pattern) {
            int first = -1;
            int last = -1;
            for (int column = 0; column < ColumnCount; ++column) {
                if (raw(*it, column) != raw(topic, column)) {
                    if (first < 0)
                        first = column;
                    last = column;
                }
            }
            m_topics[row] = topic;
            if (first >= 0)
                Q_EMIT dataChanged(index(row, first), index(row, last));
            ++i;
            continue;
        }
        // New: the following ones (sorted) that also go before the row at `row`
        // are inserted in the same step.
        const bool atEnd = row == m_topics.size();
        qsizetype end = i + 1;
        while (end < changed.size() && changed.at(end - 1).pattern < changed.at(end).pattern
               && (atEnd || changed.at(end).pattern < m_topics.at(row).pattern)) {
            ++end;
        }
        beginInsertRows({}, row, row + int(end - i) - 1);
        m_topics.insert(row, end - i, TopicRow{});
        for (qsizetype k = i; k < end; ++k)
            m_topics[row + (k - i)] = changed.at(k);
        endInsertRows();
        i = end;
    }
}

} // namespace Middleman
