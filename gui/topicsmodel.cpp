#include "topicsmodel.h"

#include "granttable.h"

#include <QStringList>

namespace Middleman {

namespace {

bool isNumeric(int column)
{
    return column == TopicsModel::ServicesColumn || column == TopicsModel::ClientsColumn
        || column == TopicsModel::MessagesColumn || column == TopicsModel::RateColumn;
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

QByteArray TopicsModel::patternAt(int row) const
{
    return row >= 0 && row < m_topics.size() ? m_topics.at(row).pattern : QByteArray();
}

int TopicsModel::rowOf(const QByteArray &pattern) const
{
    return SortedRows::indexOf(m_topics, pattern, &TopicRow::pattern);
}

const TopicRow &TopicsModel::topicAt(int row) const
{
    return m_topics.at(row);
}

SortedRows::ColumnRange TopicsModel::changedColumns(const TopicRow &before, const TopicRow &after)
{
    SortedRows::ColumnRange columns{-1, -1};
    const auto check = [&](int column, bool differs) {
        if (differs)
            SortedRows::widen(columns, column);
    };
    check(PatternColumn, before.pattern != after.pattern);
    check(ServicesColumn, before.serviceSubscribers != after.serviceSubscribers);
    check(ClientsColumn, before.clientSubscribers != after.clientSubscribers);
    check(EpubColumn, before.epubBy != after.epubBy);
    check(EsubColumn, before.esubBy != after.esubBy);
    check(EreqColumn, before.ereqBy != after.ereqBy);
    check(MessagesColumn, before.messages != after.messages);
    check(RateColumn, before.messagesPerSecond != after.messagesPerSecond);
    return columns;
}

void TopicsModel::apply(const ConsoleUpdate &update)
{
    if (update.reset) {
        beginResetModel();
        m_topics = SortedRows::sortedUnique(update.topicsChanged, &TopicRow::pattern);
        endResetModel();
        return;
    }
    // The topics view may lose its selection to a big update.
    SortedRows::apply(*this, m_topics, update.topicsGone, update.topicsChanged, &TopicRow::pattern,
                      SortedRows::Bulk::Reset);
}

} // namespace Middleman
