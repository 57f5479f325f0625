// ThroughputChart: rates derived from ConsoleUpdate totals, the bounded history,
// the nice y scale, and what it paints.

#include "consoleupdate.h"
#include "throughputchart.h"

#include <QImage>
#include <QSet>
#include <QTest>

using namespace Middleman;

namespace {

constexpr qint64 kWallBase = 1700000000000;

ConsoleUpdate update(qint64 nowMs, quint64 in, quint64 out, bool reset = false)
{
    ConsoleUpdate u;
    u.reset = reset;
    u.nowMs = nowMs;
    u.wallMs = kWallBase + nowMs;
    u.stats.messagesIn = in;
    u.stats.messagesOut = out;
    return u;
}

bool near(QRgb pixel, const QColor &color, int tolerance = 60)
{
    return qAbs(qRed(pixel) - color.red()) + qAbs(qGreen(pixel) - color.green())
        + qAbs(qBlue(pixel) - color.blue()) < tolerance;
}

int countNear(const QImage &image, const QColor &color)
{
    int count = 0;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x)
            count += near(image.pixel(x, y), color) ? 1 : 0;
    }
    return count;
}

// The topmost row in column x whose pixel is close to `color`, or -1.
int rowOf(const QImage &image, int x, const QColor &color)
{
    for (int y = 0; y < image.height(); ++y) {
        if (near(image.pixel(x, y), color, 30))
            return y;
    }
    return -1;
}

} // namespace

class tst_Chart : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void firstUpdateOnlySetsTheBaseline();
    void ratesFromTotals();
    void samplesAtMostEveryHalfSecond();
    void resetClearsTheBaseline();
    void countersGoingBackStartOver();
    void historyIsBounded();
    void niceScale_data();
    void niceScale();
    void scaleFollowsTheHistory();
    void formatRate_data();
    void formatRate();
    void clearForgetsEverything();
    void rendersBothSeries();
    void sizeHints();
};

void tst_Chart::firstUpdateOnlySetsTheBaseline()
{
    ThroughputChart chart;
    // Totals since the broker started: the first update has no earlier one to
    // compare with, however large its counters are.
    chart.feed(update(5000, 123456, 654321));
    QCOMPARE(chart.sampleCount(), 0);
    QCOMPARE(chart.scaleMax(), ThroughputChart::kMinScale);
}

void tst_Chart::ratesFromTotals()
{
    ThroughputChart chart;
    chart.feed(update(1000, 0, 0));
    chart.feed(update(2000, 1000, 500));
    QCOMPARE(chart.sampleCount(), 1);
    QCOMPARE(chart.samples().last().in, 1000.0);
    QCOMPARE(chart.samples().last().out, 500.0);
    QCOMPARE(chart.samples().last().wallMs, kWallBase + 2000);
    QCOMPARE(chart.scaleMax(), 1000.0);

    // 300 more in 600 ms: 500/s; nothing out.
    chart.feed(update(2600, 1300, 500));
    QCOMPARE(chart.sampleCount(), 2);
    QCOMPARE(chart.samples().last().in, 500.0);
    QCOMPARE(chart.samples().last().out, 0.0);
}

void tst_Chart::samplesAtMostEveryHalfSecond()
{
    ThroughputChart chart;
    chart.feed(update(1000, 0, 0));
    // Updates every 200 ms (BrokerHost's default): no sample until 500 ms have
    // passed; then the rate covers everything since the baseline.
    chart.feed(update(1200, 100, 10));
    QCOMPARE(chart.sampleCount(), 0);
    chart.feed(update(1400, 400, 20));
    QCOMPARE(chart.sampleCount(), 0);
    chart.feed(update(1600, 600, 30));
    QCOMPARE(chart.sampleCount(), 1);
    QCOMPARE(chart.samples().last().in, 1000.0); // 600 in 600 ms
    QCOMPARE(chart.samples().last().out, 50.0);  // 30 in 600 ms
    // The next sample is measured from 1600.
    chart.feed(update(1800, 700, 30));
    QCOMPARE(chart.sampleCount(), 1);
    chart.feed(update(2100, 1600, 30));
    QCOMPARE(chart.sampleCount(), 2);
    QCOMPARE(chart.samples().last().in, 2000.0); // 1000 in 500 ms
}

void tst_Chart::resetClearsTheBaseline()
{
    ThroughputChart chart;
    chart.feed(update(1000, 5000, 5000));
    chart.feed(update(2000, 6000, 6000));
    QCOMPARE(chart.sampleCount(), 1);

    // A new broker run: counters start again from (nearly) zero, even bigger
    // than before would not matter; reset means "do not compare".
    chart.feed(update(3000, 90000, 90000, true));
    QCOMPARE(chart.sampleCount(), 1);
    chart.feed(update(4000, 90250, 90100));
    QCOMPARE(chart.sampleCount(), 2);
    QCOMPARE(chart.samples().last().in, 250.0);
    QCOMPARE(chart.samples().last().out, 100.0);
}

void tst_Chart::countersGoingBackStartOver()
{
    ThroughputChart chart;
    chart.feed(update(1000, 5000, 5000));
    // Lower totals without reset: a restarted broker; no negative (or huge) rate.
    chart.feed(update(2000, 10, 10));
    QCOMPARE(chart.sampleCount(), 0);
    chart.feed(update(3000, 110, 60));
    QCOMPARE(chart.sampleCount(), 1);
    QCOMPARE(chart.samples().last().in, 100.0);
    QCOMPARE(chart.samples().last().out, 50.0);
}

void tst_Chart::historyIsBounded()
{
    ThroughputChart chart;
    QCOMPARE(chart.capacity(), ThroughputChart::kDefaultCapacity);
    for (int i = 0; i < 300; ++i)
        chart.addSample(kWallBase + i * 500, i, 0);
    QCOMPARE(chart.sampleCount(), ThroughputChart::kDefaultCapacity);
    // The oldest went first.
    QCOMPARE(chart.samples().first().in, 180.0);
    QCOMPARE(chart.samples().last().in, 299.0);

    // The same through feed().
    ThroughputChart fed;
    fed.setCapacity(10);
    for (int i = 0; i <= 50; ++i)
        fed.feed(update(1000 + i * 600, quint64(i) * 60, 0));
    QCOMPARE(fed.sampleCount(), 10);
    QCOMPARE(fed.samples().last().in, 100.0);

    fed.setCapacity(4);
    QCOMPARE(fed.sampleCount(), 4);
    QCOMPARE(fed.samples().last().wallMs, kWallBase + 1000 + 50 * 600);
}

void tst_Chart::niceScale_data()
{
    QTest::addColumn<double>("max");
    QTest::addColumn<double>("scale");
    QTest::addRow("idle") << 0.0 << 10.0;
    QTest::addRow("below the minimum") << 3.0 << 10.0;
    QTest::addRow("minimum") << 10.0 << 10.0;
    QTest::addRow("just over") << 11.0 << 15.0;
    QTest::addRow("150") << 150.0 << 150.0;
    QTest::addRow("450") << 450.0 << 600.0;
    QTest::addRow("500") << 500.0 << 600.0;
    QTest::addRow("exact 1000") << 1000.0 << 1000.0;
    QTest::addRow("over 1000") << 1001.0 << 1500.0;
    QTest::addRow("12k") << 12000.0 << 15000.0;
    QTest::addRow("35k") << 35000.0 << 40000.0;
    QTest::addRow("50k") << 50000.0 << 60000.0;
    QTest::addRow("2.1M") << 2100000.0 << 3000000.0;
}

void tst_Chart::niceScale()
{
    QFETCH(double, max);
    QFETCH(double, scale);
    int steps = 0;
    QCOMPARE(ThroughputChart::niceScale(max, &steps), scale);
    // Always at least the data, in 3 or 4 steps of 1, 2, 2.5 or 5 times a power of ten.
    QVERIFY(scale >= max);
    QVERIFY(steps == 3 || steps == 4);
    const double step = scale / steps;
    const double mantissa = step / std::pow(10.0, std::floor(std::log10(step)));
    QVERIFY2(qFuzzyCompare(mantissa, 1.0) || qFuzzyCompare(mantissa, 2.0) || qFuzzyCompare(mantissa, 2.5)
                 || qFuzzyCompare(mantissa, 5.0),
             qPrintable(QString::number(mantissa)));
}

void tst_Chart::scaleFollowsTheHistory()
{
    ThroughputChart chart;
    chart.setCapacity(5);
    chart.addSample(kWallBase, 12000, 3000);
    QCOMPARE(chart.scaleMax(), 15000.0);
    QCOMPARE(chart.gridSteps(), 3);
    // Out can set the scale too.
    chart.addSample(kWallBase + 1000, 10, 35000);
    QCOMPARE(chart.scaleMax(), 40000.0);
    QCOMPARE(chart.gridSteps(), 4);
    // Once the peaks have scrolled out, the scale comes down.
    for (int i = 2; i < 7; ++i)
        chart.addSample(kWallBase + i * 1000, 500, 100);
    QCOMPARE(chart.scaleMax(), 600.0);
}

void tst_Chart::formatRate_data()
{
    QTest::addColumn<double>("rate");
    QTest::addColumn<QString>("text");
    QTest::addRow("zero") << 0.0 << QStringLiteral("0/s");
    QTest::addRow("fraction") << 2.5 << QStringLiteral("2.5/s");
    QTest::addRow("tens") << 7.5 << QStringLiteral("7.5/s");
    QTest::addRow("hundreds") << 500.0 << QStringLiteral("500/s");
    QTest::addRow("k fraction") << 2500.0 << QStringLiteral("2.5k/s");
    QTest::addRow("k whole") << 12000.0 << QStringLiteral("12k/s");
    QTest::addRow("k three digits") << 1234.0 << QStringLiteral("1.23k/s");
    QTest::addRow("M") << 1500000.0 << QStringLiteral("1.5M/s");
}

void tst_Chart::formatRate()
{
    QFETCH(double, rate);
    QFETCH(QString, text);
    QCOMPARE(ThroughputChart::formatRate(rate), text);
}

void tst_Chart::clearForgetsEverything()
{
    ThroughputChart chart;
    chart.feed(update(1000, 0, 0));
    chart.feed(update(2000, 50000, 0));
    QCOMPARE(chart.sampleCount(), 1);
    QCOMPARE(chart.scaleMax(), 60000.0);
    chart.clear();
    QCOMPARE(chart.sampleCount(), 0);
    QCOMPARE(chart.scaleMax(), ThroughputChart::kMinScale);
    // The baseline went too: the next update only sets a new one.
    chart.feed(update(3000, 60000, 0));
    QCOMPARE(chart.sampleCount(), 0);
    chart.feed(update(4000, 60100, 0));
    QCOMPARE(chart.sampleCount(), 1);
    QCOMPARE(chart.samples().last().in, 100.0);
}

void tst_Chart::rendersBothSeries()
{
    ThroughputChart chart;
    chart.resize(480, 200);
    QVERIFY(chart.inColor() != chart.outColor());

    const QImage empty = chart.grab().toImage();
    QVERIFY(!empty.isNull());
    const int inEmpty = countNear(empty, chart.inColor());
    const int outEmpty = countNear(empty, chart.outColor());

    // A minute of steady traffic: in well above out.
    for (int i = 0; i <= 60; ++i)
        chart.addSample(kWallBase + i * 1000, 450, 100);
    QCOMPARE(chart.scaleMax(), 600.0);
    const QImage image = chart.grab().toImage();

    QSet<QRgb> colours;
    for (int y = 0; y < image.height(); y += 2) {
        for (int x = 0; x < image.width(); x += 2)
            colours.insert(image.pixel(x, y));
    }
    QVERIFY2(colours.size() > 3, qPrintable(QString::number(colours.size())));

    // Each series is a line across the plot: hundreds of pixels more of its
    // colour than the legend's swatch alone.
    const int inPixels = countNear(image, chart.inColor());
    const int outPixels = countNear(image, chart.outColor());
    QVERIFY2(inPixels > inEmpty + 300, qPrintable(QStringLiteral("%1 vs %2").arg(inPixels).arg(inEmpty)));
    QVERIFY2(outPixels > outEmpty + 300, qPrintable(QStringLiteral("%1 vs %2").arg(outPixels).arg(outEmpty)));

    // In the middle of the plot the in line (450/s) is above the out line (100/s).
    const int x = image.width() * 2 / 3;
    const int inRow = rowOf(image, x, chart.inColor());
    const int outRow = rowOf(image, x, chart.outColor());
    QVERIFY(inRow > 0);
    QVERIFY(outRow > 0);
    QVERIFY2(inRow < outRow, qPrintable(QStringLiteral("%1 %2").arg(inRow).arg(outRow)));
    // The gap between them is 350/600 of the plot, most of the widget's height.
    QVERIFY2(outRow - inRow > image.height() / 4, qPrintable(QString::number(outRow - inRow)));
}

void tst_Chart::sizeHints()
{
    ThroughputChart chart;
    const QSize hint = chart.sizeHint();
    const QSize minimum = chart.minimumSizeHint();
    QVERIFY(minimum.isValid());
    QVERIFY(hint.width() >= minimum.width());
    QVERIFY(hint.height() >= minimum.height());
    // Fits a plot and its labels even at the minimum.
    chart.resize(minimum);
    const QImage image = chart.grab().toImage();
    QCOMPARE(image.size(), minimum);
}

QTEST_MAIN(tst_Chart)
#include "tst_chart.moc"
