#include "throughputchart.h"

#include "consoleupdate.h"

#include <QPainter>
#include <QPainterPath>

#include <cmath>

namespace Middleman {

namespace {

// At most three significant digits, no trailing zeros.
QString compact(double value)
{
    if (value >= 100)
        return QString::number(qRound64(value));
    QString text = QString::number(value, 'f', value >= 10 ? 1 : 2);
    if (text.contains(QLatin1Char('.'))) {
        while (text.endsWith(QLatin1Char('0')))
            text.chop(1);
        if (text.endsWith(QLatin1Char('.')))
            text.chop(1);
    }
    return text;
}

} // namespace

ThroughputChart::ThroughputChart(QWidget *parent)
    : QWidget(parent)
{
    setAttribute(Qt::WA_OpaquePaintEvent);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Preferred);
    setToolTip(tr("Messages per second: in, parsed from peers; out, queued to peers"));
}

void ThroughputChart::addSample(qint64 wallMs, double inPerSecond, double outPerSecond)
{
    m_samples.append(Sample{wallMs, qMax(0.0, inPerSecond), qMax(0.0, outPerSecond)});
    if (m_samples.size() > m_capacity)
        m_samples.remove(0, m_samples.size() - m_capacity);
    rescale();
    update();
}

void ThroughputChart::feed(const ConsoleUpdate &update)
{
    const quint64 in = update.stats.messagesIn;
    const quint64 out = update.stats.messagesOut;
    const bool restart = update.reset || !m_haveBase || in < m_baseIn || out < m_baseOut
        || update.nowMs < m_baseMs;
    if (!restart) {
        const qint64 elapsed = update.nowMs - m_baseMs;
        if (elapsed < kMinSampleIntervalMs)
            return; // the counters keep accumulating against the same baseline
        addSample(update.wallMs, double(in - m_baseIn) * 1000.0 / double(elapsed),
                  double(out - m_baseOut) * 1000.0 / double(elapsed));
    }
    m_haveBase = true;
    m_baseIn = in;
    m_baseOut = out;
    m_baseMs = update.nowMs;
}

void ThroughputChart::clear()
{
    m_samples.clear();
    m_haveBase = false;
    rescale();
    update();
}

void ThroughputChart::setCapacity(qsizetype capacity)
{
    m_capacity = qMax<qsizetype>(2, capacity);
    if (m_samples.size() > m_capacity)
        m_samples.remove(0, m_samples.size() - m_capacity);
    rescale();
    update();
}

void ThroughputChart::setTimeWindow(qint64 ms)
{
    m_windowMs = qMax<qint64>(1000, ms);
    update();
}

double ThroughputChart::niceScale(double maxValue, int *steps)
{
    const double top = maxValue > kMinScale ? maxValue : kMinScale; // NaN too
    double best = 0;
    int bestSteps = 4;
    for (const int count : {4, 3}) {
        const double raw = top / count;
        const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
        const double fraction = raw / magnitude;
        double step = 10;
        for (const double nice : {1.0, 2.0, 2.5, 5.0}) {
            if (fraction <= nice * (1 + 1e-9)) {
                step = nice;
                break;
            }
        }
        const double scale = count * step * magnitude;
        if (best == 0 || scale < best) {
            best = scale;
            bestSteps = count;
        }
    }
    if (steps)
        *steps = bestSteps;
    return best;
}

QString ThroughputChart::formatRate(double perSecond)
{
    const double value = qMax(0.0, perSecond);
    if (value >= 1e6)
        return compact(value / 1e6) + QStringLiteral("M/s");
    if (value >= 1e3)
        return compact(value / 1e3) + QStringLiteral("k/s");
    return compact(value) + QStringLiteral("/s");
}

void ThroughputChart::rescale()
{
    double top = 0;
    for (const Sample &sample : std::as_const(m_samples))
        top = qMax(top, qMax(sample.in, sample.out));
    m_scaleMax = niceScale(top, &m_gridSteps);
}

QColor ThroughputChart::inColor() const
{
    QColor color = palette().color(QPalette::Highlight);
    if (color.hsvHue() < 0) // a grey highlight: take a blue of the same lightness
        color = QColor::fromHsv(210, 200, qMax(150, color.value()));
    return color;
}

QColor ThroughputChart::outColor() const
{
    // The in colour's complement, so the two stay apart in any theme.
    const QColor in = inColor().toHsv();
    return QColor::fromHsv((in.hsvHue() + 150) % 360, qMax(150, in.hsvSaturation()), qMax(170, in.value()));
}

QSize ThroughputChart::sizeHint() const
{
    return QSize(480, 160);
}

QSize ThroughputChart::minimumSizeHint() const
{
    const QFontMetrics metrics = fontMetrics();
    return QSize(metrics.horizontalAdvance(QStringLiteral("000k/s")) + 220, metrics.height() * 7 + 20);
}

void ThroughputChart::paintEvent(QPaintEvent *)
{
    QPainter painter(this);
    painter.setRenderHint(QPainter::Antialiasing);
    const QPalette pal = palette();
    const QFontMetrics metrics = fontMetrics();
    const QColor text = pal.color(QPalette::Text);
    QColor faint = text;
    faint.setAlphaF(0.55);
    QColor grid = text;
    grid.setAlphaF(0.15);

    painter.fillRect(rect(), pal.color(QPalette::Base));

    // Y labels decide the left margin; the legend takes the top line.
    QStringList yLabels;
    int labelWidth = 0;
    for (int i = 0; i <= m_gridSteps; ++i) {
        yLabels.append(formatRate(m_scaleMax * i / m_gridSteps));
        labelWidth = qMax(labelWidth, metrics.horizontalAdvance(yLabels.last()));
    }
    const int lineHeight = metrics.height();
    const QRectF plot = QRectF(rect()).adjusted(labelWidth + 12, lineHeight + 10, -10, -(lineHeight + 6));
    if (plot.width() < 10 || plot.height() < 10)
        return;

    // Grid and y labels.
    painter.setFont(font());
    for (int i = 0; i <= m_gridSteps; ++i) {
        const double y = plot.bottom() - plot.height() * i / m_gridSteps;
        painter.setPen(QPen(i == 0 ? faint : grid, 1));
        painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y));
        painter.setPen(faint);
        painter.drawText(QRectF(0, y - lineHeight / 2.0, labelWidth + 6, lineHeight),
                         Qt::AlignRight | Qt::AlignVCenter, yLabels.at(i));
    }

    // X labels: seconds before the newest sample; those without room are left out.
    const int seconds = int(m_windowMs / 1000);
    double freeFrom = 0;
    for (int i = 0; i <= 4; ++i) {
        const double x = plot.left() + plot.width() * i / 4;
        if (i > 0 && i < 4) {
            painter.setPen(QPen(grid, 1, Qt::DotLine));
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()));
        }
        const int ago = seconds - seconds * i / 4;
        const QString label = ago == 0 ? tr("now") : QStringLiteral("-%1s").arg(ago);
        const int w = metrics.horizontalAdvance(label);
        const double left = qBound(0.0, x - w / 2.0, double(width() - w));
        const double nowLeft = width() - metrics.horizontalAdvance(tr("now"));
        if (left < freeFrom || (i < 4 && left + w + 8 > nowLeft))
            continue;
        painter.setPen(faint);
        painter.drawText(QRectF(left, plot.bottom() + 4, w + 2, lineHeight), Qt::AlignLeft | Qt::AlignTop, label);
        freeFrom = left + w + 8;
    }

    // Legend with the latest rates.
    const QColor colors[] = {inColor(), outColor()};
    const QString names[] = {
        tr("in %1").arg(m_samples.isEmpty() ? QStringLiteral("-") : formatRate(m_samples.last().in)),
        tr("out %1").arg(m_samples.isEmpty() ? QStringLiteral("-") : formatRate(m_samples.last().out))};
    double legendX = plot.left();
    for (int s = 0; s < 2; ++s) {
        const QRectF swatch(legendX, 4 + (lineHeight - 10) / 2.0, 14, 10);
        painter.fillRect(swatch, colors[s]);
        painter.setPen(text);
        const int w = metrics.horizontalAdvance(names[s]);
        painter.drawText(QRectF(swatch.right() + 5, 4, w + 2, lineHeight), Qt::AlignLeft | Qt::AlignVCenter, names[s]);
        legendX = swatch.right() + 5 + w + 16;
    }

    if (m_samples.isEmpty()) {
        painter.setPen(faint);
        painter.drawText(plot, Qt::AlignCenter, tr("waiting for traffic figures"));
        return;
    }

    // Series, newest at the right edge.
    const qint64 newest = m_samples.last().wallMs;
    auto point = [&](const Sample &sample, double value) {
        const double x = plot.right() - plot.width() * double(newest - sample.wallMs) / double(m_windowMs);
        const double y = plot.bottom() - plot.height() * qMin(1.0, value / m_scaleMax);
        return QPointF(x, y);
    };
    painter.setClipRect(plot.adjusted(-1, -2, 1, 1));
    for (int s = 1; s >= 0; --s) { // in on top
        QPainterPath path;
        for (qsizetype i = 0; i < m_samples.size(); ++i) {
            const Sample &sample = m_samples.at(i);
            const QPointF p = point(sample, s == 0 ? sample.in : sample.out);
            if (i == 0)
                path.moveTo(p);
            else
                path.lineTo(p);
        }
        painter.setPen(QPen(colors[s], 2, Qt::SolidLine, Qt::RoundCap, Qt::RoundJoin));
        painter.setBrush(Qt::NoBrush);
        if (m_samples.size() == 1)
            painter.drawEllipse(path.currentPosition(), 2, 2);
        else
            painter.drawPath(path);
    }
}

} // namespace Middleman
