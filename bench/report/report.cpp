#include "report.h"

#include <QColor>
#include <QCoreApplication>
#include <QFont>
#include <QFontMetrics>
#include <QGuiApplication>
#include <QImage>
#include <QPainter>
#include <QString>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>

namespace bench {
namespace {

const std::string kDash = "—";

std::string printf1(const char* format, double value)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, format, value);
    return buf;
}

std::string groupThousands(long long n)
{
    std::string digits = std::to_string(n < 0 ? -n : n);
    std::string out;
    const int lead = int(digits.size()) % 3;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i != 0 && int(i) % 3 == lead % 3)
            out += ',';
        out += digits[i];
    }
    return n < 0 ? '-' + out : out;
}

std::string formatRatio(double ratio)
{
    return printf1("%.2f", ratio) + "×";
}

// Oriented so that > 1 always means the first broker did better.
std::optional<double> ratio(const Figure& figure, const std::string& first, const std::string& other)
{
    const auto a = figure.values.find(first);
    const auto b = figure.values.find(other);
    if (a == figure.values.end() || b == figure.values.end())
        return std::nullopt;
    const double numerator = figure.higherIsBetter ? a->second : b->second;
    const double denominator = figure.higherIsBetter ? b->second : a->second;
    if (!std::isfinite(numerator) || !std::isfinite(denominator) || denominator == 0)
        return std::nullopt;
    return numerator / denominator;
}

// Table cells must not contain a pipe or a line break.
std::string cell(std::string text)
{
    std::string out;
    for (char c : text) {
        if (c == '|')
            out += "\\|";
        else if (c == '\n' || c == '\r')
            out += ' ';
        else
            out += c;
    }
    return out;
}

std::string metricLabel(const Figure& figure)
{
    const std::string label = figure.condition.empty() ? figure.metric : figure.metric + ", " + figure.condition;
    return figure.higherIsBetter ? label : label + " (lower is better)";
}

// Scenarios in the order they first appear, so the report follows the run.
std::vector<std::string> scenarioOrder(const Report& report)
{
    std::vector<std::string> order;
    for (const Figure& figure : report.figures)
        if (std::find(order.begin(), order.end(), figure.scenario) == order.end())
            order.push_back(figure.scenario);
    return order;
}

// The columns of a scenario's table: the first broker, which the ratios are
// of, and each other that has a value or a note in it, in the report's order.
// A scenario for one broker alone (flood) has no empty columns for the others.
std::vector<std::string> brokersOf(const Report& report, const std::string& scenario)
{
    std::vector<std::string> brokers;
    for (const std::string& broker : report.brokers) {
        const bool present = std::any_of(report.figures.begin(), report.figures.end(), [&](const Figure& figure) {
            return figure.scenario == scenario && (figure.values.count(broker) || figure.notes.count(broker));
        });
        if (present || brokers.empty())
            brokers.push_back(broker);
    }
    return brokers;
}

std::string cores(double cpuSeconds, double wallSeconds)
{
    if (!(wallSeconds > 0) || !std::isfinite(cpuSeconds))
        return kDash;
    return printf1("%.2f", cpuSeconds / wallSeconds);
}

void writeHeader(std::ostringstream& out, const Report& report)
{
    out << "# " << (report.title.empty() ? std::string("middleman-bench results") : report.title) << "\n\n";
    out << "- **Started:** " << report.startedAt << '\n';
    out << "- **Mode:** " << report.mode << '\n';
    out << "- **Brokers:** ";
    for (std::size_t i = 0; i < report.brokers.size(); ++i) {
        const std::string& broker = report.brokers[i];
        const auto version = report.brokerVersions.find(broker);
        out << (i ? ", " : "") << broker << ' '
            << (version != report.brokerVersions.end() && !version->second.empty() ? version->second
                                                                                   : std::string("(version unknown)"));
    }
    out << "\n\n## Machine\n\n" << report.machine;
    if (!report.machine.empty() && report.machine.back() != '\n')
        out << '\n';
    out << '\n';
}

void writeFigureTables(std::ostringstream& out, const Report& report)
{
    out << "## Results\n\n";
    if (report.figures.empty()) {
        out << "No results.\n\n";
        return;
    }
    if (report.brokers.size() > 1)
        out << "Ratio columns compare " << report.brokers.front()
            << " with each other broker, oriented so that a ratio above 1 means " << report.brokers.front()
            << " did better (value ratio for higher-is-better metrics, inverse for lower-is-better ones).\n\n";

    int footnote = 0;
    for (const std::string& scenario : scenarioOrder(report)) {
        const std::vector<std::string> brokers = brokersOf(report, scenario);
        out << "### " << scenario << "\n\n| params | metric |";
        for (const std::string& broker : brokers)
            out << ' ' << cell(broker) << " |";
        for (std::size_t i = 1; i < brokers.size(); ++i)
            out << ' ' << cell(brokers.front()) << '/' << cell(brokers[i]) << " |";
        out << "\n|---|---|";
        for (std::size_t i = 0; i < 2 * brokers.size() - (brokers.empty() ? 0 : 1); ++i)
            out << "--:|";
        out << '\n';

        std::vector<std::string> footnotes;
        for (const Figure& figure : report.figures) {
            if (figure.scenario != scenario)
                continue;
            out << "| " << cell(figure.params) << " | " << cell(metricLabel(figure)) << " |";
            for (const std::string& broker : brokers) {
                const auto value = figure.values.find(broker);
                std::string text = value == figure.values.end() ? kDash : formatNumber(value->second);
                const auto range = figure.ranges.find(broker);
                if (value != figure.values.end() && range != figure.ranges.end())
                    text += " (" + formatNumber(range->second.first) + "–" + formatNumber(range->second.second) + ")";
                const auto note = figure.notes.find(broker);
                if (note != figure.notes.end() && !note->second.empty()) {
                    const std::string label = "[^" + std::to_string(++footnote) + "]";
                    text += label;
                    footnotes.push_back(label + ": " + broker + ", " + scenario + ' ' + figure.params + " ("
                                        + figure.metric + "): " + note->second);
                }
                out << ' ' << cell(text) << " |";
            }
            for (std::size_t i = 1; i < brokers.size(); ++i) {
                const std::optional<double> r = ratio(figure, brokers.front(), brokers[i]);
                out << ' ' << (r ? formatRatio(*r) : kDash) << " |";
            }
            out << '\n';
        }
        out << '\n';
        for (const std::string& line : footnotes)
            out << line << '\n';
        if (!footnotes.empty())
            out << '\n';
    }
}

void writeCpuTable(std::ostringstream& out, const Report& report)
{
    if (report.cpu.empty())
        return;
    out << "## CPU use\n\n"
        << "Cores = CPU seconds / wall seconds. Bench cores close to the number of logical CPUs mean the "
           "load generator, not the broker, set the pace. Bench polling cores: the part of the bench cores "
           "spent polling for the last few µs before a paced message fell due, instead of sleeping through "
           "them (time the load generator had to spare). Sent late: how long after its due time the load "
           "generator sent a paced message (p50 / p99), a delay counted in the latencies; "
        << kDash << " where nothing was paced.\n\n"
        << "| scenario | params | broker | wall s | bench CPU s | bench cores | bench polling cores | "
           "broker CPU s | broker cores | sent late p50 µs | sent late p99 µs |\n"
        << "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n";
    for (const CpuFigure& row : report.cpu) {
        out << "| " << cell(row.scenario) << " | " << cell(row.params) << " | " << cell(row.broker) << " | "
            << formatNumber(row.wallSeconds) << " | " << formatNumber(row.benchCpuSeconds) << " | "
            << cores(row.benchCpuSeconds, row.wallSeconds) << " | " << cores(row.benchPollSeconds, row.wallSeconds)
            << " | " << formatNumber(row.brokerCpuSeconds)
            << " | " << cores(row.brokerCpuSeconds, row.wallSeconds) << " | "
            << formatNumber(row.sentLateP50Micros) << " | " << formatNumber(row.sentLateP99Micros) << " |\n";
    }
    out << '\n';
}

void writeNotes(std::ostringstream& out, const Report& report)
{
    if (report.notes.empty())
        return;
    out << "## Notes\n\n";
    for (const std::string& line : report.notes)
        out << "- " << line << '\n';
    out << '\n';
}

// ---- chart -------------------------------------------------------------

constexpr int kWidth = 1600;
constexpr int kMargin = 32;
constexpr int kColumnGap = 32;
constexpr int kPanelColumns = 2;
constexpr int kPanelPadding = 16;
constexpr int kPanelTitleHeight = 34;
constexpr int kBarHeight = 20;
constexpr int kBarGap = 3;
constexpr int kCategoryGap = 14;
constexpr int kLabelWidth = 150;
constexpr int kValueRoom = 120;

struct Panel {
    std::string scenario, metric;
    bool higherIsBetter = true;
    std::vector<const Figure*> figures; // one category per figure
};

std::vector<Panel> panelsOf(const Report& report)
{
    std::vector<Panel> panels;
    for (const Figure& figure : report.figures) {
        auto it = std::find_if(panels.begin(), panels.end(), [&](const Panel& p) {
            return p.scenario == figure.scenario && p.metric == figure.metric;
        });
        if (it == panels.end()) {
            panels.push_back({figure.scenario, figure.metric, figure.higherIsBetter, {}});
            it = panels.end() - 1;
        }
        it->figures.push_back(&figure);
    }
    return panels;
}

int panelHeight(const Panel& panel, std::size_t brokerCount)
{
    const int bars = int(std::max<std::size_t>(brokerCount, 1));
    const int group = bars * kBarHeight + (bars - 1) * kBarGap;
    const int categories = int(panel.figures.size());
    return kPanelTitleHeight + kPanelPadding + categories * group + (categories - 1) * kCategoryGap + kPanelPadding;
}

QFont chartFont(int pixelSize, bool bold = false)
{
    QFont font(QStringLiteral("DejaVu Sans"));
    font.setPixelSize(pixelSize);
    font.setBold(bold);
    return font;
}

QString qs(const std::string& s)
{
    return QString::fromStdString(s);
}

void drawPanel(QPainter& painter, const QRect& area, const Panel& panel, const std::vector<std::string>& brokers)
{
    painter.setPen(QColor(0xdd, 0xdd, 0xdd));
    painter.setBrush(Qt::NoBrush);
    painter.drawRoundedRect(QRectF(area).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6);

    const QRect titleRect(area.left() + kPanelPadding, area.top() + 6, area.width() - 2 * kPanelPadding,
                          kPanelTitleHeight - 6);
    painter.setFont(chartFont(17, true));
    painter.setPen(QColor(0x22, 0x22, 0x22));
    QString title = qs(panel.scenario) + QStringLiteral(" · ") + qs(panel.metric);
    painter.drawText(titleRect, Qt::AlignLeft | Qt::AlignVCenter, title);
    if (!panel.higherIsBetter) {
        const int titleWidth = QFontMetrics(painter.font()).horizontalAdvance(title);
        painter.setFont(chartFont(14));
        painter.setPen(QColor(0x66, 0x66, 0x66));
        painter.drawText(titleRect.adjusted(titleWidth + 10, 0, 0, 0), Qt::AlignLeft | Qt::AlignVCenter,
                         QStringLiteral("(lower is better)"));
    }

    // Each row is scaled to its own largest value: rows of one panel can differ
    // by orders of magnitude, and the comparison that matters is within a row.
    const auto rowMax = [&brokers](const Figure& figure) {
        double maxValue = 0;
        for (const std::string& broker : brokers) {
            const auto value = figure.values.find(broker);
            if (value != figure.values.end() && std::isfinite(value->second))
                maxValue = std::max(maxValue, value->second);
        }
        return maxValue;
    };

    const int barLeft = area.left() + kPanelPadding + kLabelWidth + 10;
    const int barSpan = area.right() - kPanelPadding - kValueRoom - barLeft;
    const int bars = int(std::max<std::size_t>(brokers.size(), 1));
    const int groupHeight = bars * kBarHeight + (bars - 1) * kBarGap;
    int y = area.top() + kPanelTitleHeight + kPanelPadding;
    const int plotTop = y;

    const QFont labelFont = chartFont(14);
    const QFont valueFont = chartFont(13);
    const QFontMetrics valueMetrics(valueFont);
    for (const Figure* figure : panel.figures) {
        painter.setFont(labelFont);
        painter.setPen(QColor(0x33, 0x33, 0x33));
        const QRect labelRect(area.left() + kPanelPadding, y, kLabelWidth, groupHeight);
        QString label = qs(figure->params);
        if (!figure->condition.empty())
            label += QLatin1Char('\n') + qs(figure->condition);
        painter.drawText(labelRect, Qt::AlignRight | Qt::AlignVCenter | Qt::TextWordWrap, label);

        painter.setFont(valueFont);
        const double maxValue = rowMax(*figure);
        for (std::size_t i = 0; i < brokers.size(); ++i) {
            const int barTop = y + int(i) * (kBarHeight + kBarGap);
            const auto value = figure->values.find(brokers[i]);
            const bool present = value != figure->values.end() && std::isfinite(value->second);
            QString text;
            int textLeft = barLeft + 6;
            if (present) {
                const double fraction = maxValue > 0 ? std::max(0.0, value->second) / maxValue : 0;
                const int width = std::max(1, int(std::lround(fraction * barSpan)));
                painter.fillRect(QRect(barLeft, barTop, width, kBarHeight), QColor::fromRgb(chartColor(i)));
                text = qs(formatNumber(value->second));
                textLeft = barLeft + width + 6;
                painter.setPen(QColor(0x22, 0x22, 0x22));
            } else {
                // An empty slot keeps the other bars where the reader expects them.
                text = qs(kDash);
                const auto note = figure->notes.find(brokers[i]);
                if (note != figure->notes.end() && !note->second.empty())
                    text += QStringLiteral(" ") + qs(note->second);
                painter.setPen(QColor(0x88, 0x88, 0x88));
            }
            const int textWidth = area.right() - kPanelPadding - textLeft;
            painter.drawText(QRect(textLeft, barTop, textWidth, kBarHeight), Qt::AlignLeft | Qt::AlignVCenter,
                             valueMetrics.elidedText(text, Qt::ElideRight, textWidth));
        }
        y += groupHeight + kCategoryGap;
    }

    // Zero line.
    painter.setPen(QColor(0x99, 0x99, 0x99));
    painter.drawLine(barLeft, plotTop - 4, barLeft, y - kCategoryGap + 4);
}

} // namespace

std::string formatNumber(double value)
{
    if (!std::isfinite(value))
        return kDash;
    if (value == 0)
        return "0";
    const double magnitude = std::fabs(value);
    if (magnitude >= 999.5)
        return groupThousands(std::llround(value));
    if (magnitude < 1e-3)
        return printf1("%.3g", value);
    // Round to 3 significant digits first: 99.96 must become "100", not "100.0".
    const double scale = std::pow(10.0, 2 - int(std::floor(std::log10(magnitude))));
    const double rounded = std::round(value * scale) / scale;
    const int decimals = std::max(0, 2 - int(std::floor(std::log10(std::fabs(rounded)))));
    return printf1(("%." + std::to_string(decimals) + "f").c_str(), rounded);
}

std::uint32_t chartColor(std::size_t brokerIndex)
{
    // Distinct under the common color-vision deficiencies; the first three are
    // middleman, nats-server and mosquitto.
    static constexpr std::uint32_t palette[] = {0x1f6fb4, 0xe8890c, 0x2a9d6f, 0x8a4fbf, 0xc8304a, 0x6b6b6b};
    return palette[brokerIndex % (sizeof palette / sizeof palette[0])];
}

std::string markdown(const Report& report)
{
    std::ostringstream out;
    writeHeader(out, report);
    writeFigureTables(out, report);
    writeCpuTable(out, report);
    writeNotes(out, report);
    std::string text = out.str();
    while (text.size() >= 2 && text[text.size() - 1] == '\n' && text[text.size() - 2] == '\n')
        text.pop_back();
    return text;
}

namespace {
bool drawChart(const Report& report, const std::string& pngPath, std::string* error);
}

bool writeChart(const Report& report, const std::string& pngPath, std::string* error)
{
    // Text drawing needs a QGuiApplication. The load generator has none: one is
    // made for the drawing and goes with it, so nothing of Qt outlives the call
    // (fonts included, which LeakSanitizer would otherwise report at exit).
    std::unique_ptr<QGuiApplication> application;
    if (QCoreApplication::instance() == nullptr) {
        if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM"))
            qputenv("QT_QPA_PLATFORM", "offscreen");
        static int argc = 1;
        static char name[] = "middleman-bench";
        static char* argv[] = {name, nullptr};
        application = std::make_unique<QGuiApplication>(argc, argv);
    } else if (qobject_cast<QGuiApplication*>(QCoreApplication::instance()) == nullptr) {
        if (error)
            *error = "drawing the chart needs a QGuiApplication, but a non-GUI QCoreApplication exists";
        return false;
    }
    return drawChart(report, pngPath, error);
}

namespace {

bool drawChart(const Report& report, const std::string& pngPath, std::string* error)
{

    const std::vector<Panel> panels = panelsOf(report);
    const std::vector<std::string>& brokers = report.brokers;

    constexpr int headerHeight = 110;
    std::vector<int> rowHeights;
    for (std::size_t i = 0; i < panels.size(); i += kPanelColumns) {
        int height = 0;
        for (std::size_t j = i; j < std::min(panels.size(), i + kPanelColumns); ++j)
            height = std::max(height, panelHeight(panels[j], brokers.size()));
        rowHeights.push_back(height);
    }
    int height = kMargin + headerHeight + kMargin;
    for (int rowHeight : rowHeights)
        height += rowHeight + kColumnGap;
    if (panels.empty())
        height += 40;

    QImage image(kWidth, height, QImage::Format_RGB32);
    image.fill(Qt::white);
    QPainter painter(&image);
    painter.setRenderHint(QPainter::Antialiasing);
    painter.setRenderHint(QPainter::TextAntialiasing);

    // Header: title, when and how, and one legend for every panel.
    const int contentWidth = kWidth - 2 * kMargin;
    painter.setPen(QColor(0x11, 0x11, 0x11));
    painter.setFont(chartFont(26, true));
    painter.drawText(QRect(kMargin, kMargin, contentWidth, 36), Qt::AlignLeft | Qt::AlignVCenter,
                     qs(report.title.empty() ? std::string("middleman-bench results") : report.title));
    painter.setFont(chartFont(15));
    painter.setPen(QColor(0x55, 0x55, 0x55));
    painter.drawText(QRect(kMargin, kMargin + 40, contentWidth, 22), Qt::AlignLeft | Qt::AlignVCenter,
                     qs(report.startedAt) + QStringLiteral("   ·   mode: ") + qs(report.mode)
                         + QStringLiteral("   ·   each row's bars are scaled to that row's largest value"));
    int legendX = kMargin;
    const int legendY = kMargin + 74;
    const QFontMetrics legendMetrics(painter.font());
    for (std::size_t i = 0; i < brokers.size(); ++i) {
        painter.fillRect(QRect(legendX, legendY + 3, 18, 18), QColor::fromRgb(chartColor(i)));
        const auto version = report.brokerVersions.find(brokers[i]);
        QString label = qs(brokers[i]);
        if (version != report.brokerVersions.end() && !version->second.empty())
            label += QStringLiteral(" ") + qs(version->second);
        painter.setPen(QColor(0x22, 0x22, 0x22));
        const int labelWidth = legendMetrics.horizontalAdvance(label);
        painter.drawText(QRect(legendX + 26, legendY, labelWidth + 4, 24), Qt::AlignLeft | Qt::AlignVCenter, label);
        legendX += 26 + labelWidth + 36;
    }

    const int panelWidth = (contentWidth - (kPanelColumns - 1) * kColumnGap) / kPanelColumns;
    int y = kMargin + headerHeight + kMargin;
    if (panels.empty()) {
        painter.setPen(QColor(0x88, 0x88, 0x88));
        painter.drawText(QRect(kMargin, y, contentWidth, 30), Qt::AlignLeft | Qt::AlignVCenter,
                         QStringLiteral("No results."));
    }
    for (std::size_t i = 0; i < panels.size(); ++i) {
        const std::size_t row = i / kPanelColumns;
        const int column = int(i % kPanelColumns);
        const QRect area(kMargin + column * (panelWidth + kColumnGap), y, panelWidth,
                         panelHeight(panels[i], brokers.size()));
        drawPanel(painter, area, panels[i], brokers);
        if (column == kPanelColumns - 1 || i + 1 == panels.size())
            y += rowHeights[row] + kColumnGap;
    }
    painter.end();

    if (!image.save(qs(pngPath), "PNG")) {
        if (error)
            *error = "cannot write " + pngPath;
        return false;
    }
    return true;
}

} // namespace

} // namespace bench
