// The report writer of middleman-bench: exact Markdown cells, the machine
// description, and a chart PNG checked pixel by pixel.
#include "machine.h"
#include "report.h"

#include <QCoreApplication>
#include <QGuiApplication>
#include <QImage>
#include <QTemporaryDir>
#include <QtTest>

#include <sys/utsname.h>

#include <cmath>
#include <limits>
#include <thread>

using namespace bench;

namespace {

const std::vector<std::string> kBrokers = {"middleman", "nats-server", "mosquitto"};

Figure figure(std::string scenario, std::string params, std::string metric, bool higherIsBetter,
              std::map<std::string, double> values, std::map<std::string, std::string> notes = {},
              std::string condition = {})
{
    return Figure{std::move(scenario), std::move(params), std::move(metric), higherIsBetter, std::move(values),
                  std::move(notes), std::move(condition), {}};
}

Report sampleReport()
{
    Report report;
    report.title = "middleman-bench results";
    report.startedAt = "2026-11-26T04:00:00Z";
    report.mode = "quick";
    report.brokers = kBrokers;
    report.brokerVersions = {{"middleman", "0.1.0"}, {"nats-server", "2.9.25"}, {"mosquitto", "2.0.11"}};
    report.machine = "- **CPU:** Test CPU\n";
    report.figures = {
        figure("fanout", "N=10 256 B", "msg/s", true,
               {{"middleman", 200000}, {"nats-server", 100000}, {"mosquitto", 50000}}),
        figure("fanout", "N=10 256 B", "p99 µs", false,
               {{"middleman", 50}, {"nats-server", 100}, {"mosquitto", 25}}),
        figure("fanout", "N=10 256 B", "p99 µs at common rate", false,
               {{"middleman", 20}, {"nats-server", 40}, {"mosquitto", 25}}, {}, "2,500 msg/s published"),
        figure("connections", "C=10000", "open s", false, {{"middleman", 2.5}, {"nats-server", 1.25}},
               {{"mosquitto", "failed: connection refused"}}),
    };
    report.cpu = {{"fanout", "N=10 256 B", "middleman", 10.0, 15.0, 5.0},
                  {"fanout", "N=10 256 B at common rate", "middleman", 3.0, 1.5, 0.75, 12.5, 250, 0.3}};
    report.notes = {"quick mode: fewer repetitions"};
    return report;
}

// The line of the Markdown that starts with this prefix, or an empty string.
QString lineStartingWith(const std::string& markdownText, const QString& prefix)
{
    const QStringList lines = QString::fromStdString(markdownText).split(QLatin1Char('\n'));
    for (const QString& line : lines)
        if (line.startsWith(prefix))
            return line;
    return {};
}

// The header row of a scenario's table.
QString tableHeader(const std::string& markdownText, const QString& scenario)
{
    const QString text = QString::fromStdString(markdownText);
    const QString heading = QStringLiteral("### ") + scenario + QStringLiteral("\n\n");
    const qsizetype start = text.indexOf(heading);
    if (start < 0)
        return {};
    const qsizetype from = start + heading.size();
    return text.mid(from, text.indexOf(QLatin1Char('\n'), from) - from);
}

int pixelsOfColor(const QImage& image, std::uint32_t rgb)
{
    int count = 0;
    const QRgb wanted = qRgb(int(rgb >> 16) & 0xff, int(rgb >> 8) & 0xff, int(rgb) & 0xff);
    for (int y = 0; y < image.height(); ++y) {
        const QRgb* line = reinterpret_cast<const QRgb*>(image.constScanLine(y));
        for (int x = 0; x < image.width(); ++x)
            if ((line[x] & 0xffffff) == (wanted & 0xffffff))
                ++count;
    }
    return count;
}

} // namespace

class TestBenchReport : public QObject {
    Q_OBJECT

private Q_SLOTS:
    void higherIsBetterRatioIsFirstOverOther()
    {
        const QString row = lineStartingWith(markdown(sampleReport()), QStringLiteral("| N=10 256 B | msg/s |"));
        QCOMPARE(row, QStringLiteral("| N=10 256 B | msg/s | 200,000 | 100,000 | 50,000 | 2.00× | 4.00× |"));
    }

    void lowerIsBetterRatioIsOtherOverFirst()
    {
        const QString row = lineStartingWith(markdown(sampleReport()), QStringLiteral("| N=10 256 B | p99 µs"));
        QCOMPARE(row, QStringLiteral("| N=10 256 B | p99 µs (lower is better) | 50.0 | 100 | 25.0 | 2.00× | 0.50× |"));
    }

    // The common rate differs from case to case: each row says it beside its metric.
    void conditionFollowsTheMetric()
    {
        const QString row =
            lineStartingWith(markdown(sampleReport()), QStringLiteral("| N=10 256 B | p99 µs at common rate"));
        QCOMPARE(row, QStringLiteral("| N=10 256 B | p99 µs at common rate, 2,500 msg/s published (lower is better) | "
                                     "20.0 | 40.0 | 25.0 | 2.00× | 1.25× |"));
    }

    void ratioMeaningIsStatedAboveTheTables()
    {
        const QString text = QString::fromStdString(markdown(sampleReport()));
        const qsizetype explanation = text.indexOf(QStringLiteral("a ratio above 1 means middleman did better"));
        QVERIFY(explanation >= 0);
        QVERIFY(explanation < text.indexOf(QStringLiteral("### fanout")));
    }

    void missingValueShowsDashAndNoteAsFootnote()
    {
        const std::string text = markdown(sampleReport());
        QCOMPARE(lineStartingWith(text, QStringLiteral("| C=10000 |")),
                 QStringLiteral("| C=10000 | open s (lower is better) | 2.50 | 1.25 | —[^1] | 0.50× | — |"));
        QCOMPARE(lineStartingWith(text, QStringLiteral("[^1]:")),
                 QStringLiteral("[^1]: mosquitto, connections C=10000 (open s): failed: connection refused"));
    }

    void scenariosGetOneTableEachInRunOrder()
    {
        const QString text = QString::fromStdString(markdown(sampleReport()));
        const qsizetype fanout = text.indexOf(QStringLiteral("### fanout\n"));
        const qsizetype connections = text.indexOf(QStringLiteral("### connections\n"));
        QVERIFY(fanout >= 0);
        QVERIFY(connections > fanout);
        QCOMPARE(text.count(QStringLiteral("| params | metric |")), 2);
    }

    void columnsFollowReportBrokers()
    {
        Report report = sampleReport();
        report.brokers = {"middleman", "mosquitto", "nats-server"};
        const std::string text = markdown(report);
        QCOMPARE(lineStartingWith(text, QStringLiteral("| params |")),
                 QStringLiteral("| params | metric | middleman | mosquitto | nats-server | middleman/mosquitto | "
                                "middleman/nats-server |"));
        QCOMPARE(lineStartingWith(text, QStringLiteral("| N=10 256 B | msg/s |")),
                 QStringLiteral("| N=10 256 B | msg/s | 200,000 | 50,000 | 100,000 | 4.00× | 2.00× |"));
        QCOMPARE(lineStartingWith(text, QStringLiteral("|---|---|")), QStringLiteral("|---|---|--:|--:|--:|--:|--:|"));
    }

    // A scenario run against one broker alone (flood) has no empty columns
    // for the others; one without the first broker still has its column,
    // which the ratios are of. A broker with only a note in a scenario (a
    // failed run) keeps its column.
    void scenarioTablesHaveColumnsForTheBrokersInThem()
    {
        Report report = sampleReport();
        report.figures.push_back(figure("flood", "pace", "ERR 429/s", true, {{"middleman", 0}}));
        report.figures.push_back(figure("flood", "refuse", "ERR 429/s", true, {{"middleman", 90000}}));
        report.figures.push_back(figure("topics", "T=20 256 B", "msg/s", true, {{"nats-server", 5}}));
        const std::string text = markdown(report);
        QCOMPARE(tableHeader(text, QStringLiteral("flood")), QStringLiteral("| params | metric | middleman |"));
        QCOMPARE(lineStartingWith(text, QStringLiteral("| pace |")), QStringLiteral("| pace | ERR 429/s | 0 |"));
        QCOMPARE(lineStartingWith(text, QStringLiteral("| refuse |")),
                 QStringLiteral("| refuse | ERR 429/s | 90,000 |"));
        QCOMPARE(tableHeader(text, QStringLiteral("topics")),
                 QStringLiteral("| params | metric | middleman | nats-server | middleman/nats-server |"));
        QCOMPARE(lineStartingWith(text, QStringLiteral("| T=20 256 B |")),
                 QStringLiteral("| T=20 256 B | msg/s | — | 5.00 | — |"));
        QCOMPARE(tableHeader(text, QStringLiteral("connections")),
                 QStringLiteral("| params | metric | middleman | nats-server | mosquitto | middleman/nats-server | "
                                "middleman/mosquitto |"));
        QVERIFY(text.find("|---|---|--:|\n| pace |") != std::string::npos);
    }

    void repeatedRunsShowTheirRange()
    {
        // A median of several runs has their lowest and highest beside it; the
        // ratio is that of the medians. A broker without a range shows its
        // value alone.
        Report report = sampleReport();
        Figure repeated = figure("fanout", "N=100 256 B", "p99 µs", false,
                                 {{"middleman", 571}, {"nats-server", 2335}, {"mosquitto", 1142}});
        repeated.ranges = {{"middleman", {559, 1266}}, {"mosquitto", {801, 1159}}};
        report.figures.push_back(repeated);
        const std::string text = markdown(report);
        QCOMPARE(lineStartingWith(text, QStringLiteral("| N=100 256 B | p99 µs")),
                 QStringLiteral("| N=100 256 B | p99 µs (lower is better) | 571 (559–1,266) | 2,335 | "
                                "1,142 (801–1,159) | 4.09× | 2.00× |"));
    }

    void cpuTableGivesSecondsCoresAndLateness()
    {
        const std::string text = markdown(sampleReport());
        QCOMPARE(lineStartingWith(text, QStringLiteral("| scenario |")),
                 QStringLiteral("| scenario | params | broker | wall s | bench CPU s | bench cores | bench polling cores | "
                                "broker CPU s | broker cores | sent late p50 µs | sent late p99 µs |"));
        // Nothing paced in this run: no polling, no lateness, a dash.
        QCOMPARE(lineStartingWith(text, QStringLiteral("| fanout | N=10 256 B | ")),
                 QStringLiteral("| fanout | N=10 256 B | middleman | 10.0 | 15.0 | 1.50 | — | 5.00 | 0.50 | — | — |"));
        QCOMPARE(lineStartingWith(text, QStringLiteral("| fanout | N=10 256 B at common rate |")),
                 QStringLiteral("| fanout | N=10 256 B at common rate | middleman | 3.00 | 1.50 | 0.50 | 0.10 | 0.750 "
                                "| 0.25 | 12.5 | 250 |"));
    }

    void headerHasDateModeVersionsMachineAndNotesLast()
    {
        const QString text = QString::fromStdString(markdown(sampleReport()));
        QVERIFY(text.startsWith(QStringLiteral("# middleman-bench results\n")));
        QVERIFY(text.contains(QStringLiteral("- **Started:** 2026-11-26T04:00:00Z\n")));
        QVERIFY(text.contains(QStringLiteral("- **Mode:** quick\n")));
        QVERIFY(text.contains(
            QStringLiteral("- **Brokers:** middleman 0.1.0, nats-server 2.9.25, mosquitto 2.0.11\n")));
        QVERIFY(text.contains(QStringLiteral("## Machine\n\n- **CPU:** Test CPU\n")));
        QVERIFY(text.endsWith(QStringLiteral("## Notes\n\n- quick mode: fewer repetitions\n")));
    }

    void formatNumber_data()
    {
        QTest::addColumn<double>("value");
        QTest::addColumn<QString>("text");
        QTest::newRow("millions") << 1234567.4 << QStringLiteral("1,234,567");
        QTest::newRow("thousand") << 1000.0 << QStringLiteral("1,000");
        QTest::newRow("rounds up to a thousand") << 999.7 << QStringLiteral("1,000");
        QTest::newRow("hundreds") << 123.4 << QStringLiteral("123");
        QTest::newRow("rounds up to a hundred") << 99.96 << QStringLiteral("100");
        QTest::newRow("tens") << 12.345 << QStringLiteral("12.3");
        QTest::newRow("units") << 1.0 << QStringLiteral("1.00");
        QTest::newRow("hundredths") << 0.012345 << QStringLiteral("0.0123");
        QTest::newRow("zero") << 0.0 << QStringLiteral("0");
        QTest::newRow("negative") << -1500.0 << QStringLiteral("-1,500");
        QTest::newRow("not a number") << std::numeric_limits<double>::quiet_NaN() << QStringLiteral("—");
    }

    void formatNumber()
    {
        QFETCH(double, value);
        QFETCH(QString, text);
        QCOMPARE(QString::fromStdString(bench::formatNumber(value)), text);
    }

    void machineHasCpuCountAndKernelRelease()
    {
        const QString text = QString::fromStdString(describeMachine());
        QVERIFY(text.contains(QStringLiteral("- **Logical CPUs:** %1\n").arg(std::thread::hardware_concurrency())));
        utsname names{};
        QCOMPARE(uname(&names), 0);
        QVERIFY2(text.contains(QStringLiteral("- **Kernel:** %1 %2 (")
                                   .arg(QString::fromLocal8Bit(names.sysname), QString::fromLocal8Bit(names.release))),
                 qPrintable(text));
        for (const char* item : {"- **CPU:** ", "- **Memory:** ", "- **OS:** ", "- **Open-file limit:** ",
                                 "- **Load average:** "})
            QVERIFY2(text.contains(QString::fromUtf8(item)), item);
    }

    // Runs first among the chart tests: the test has no application object
    // (QTEST_APPLESS_MAIN), so writeChart must make its own.
    // Without a Qt application, writeChart makes its own for the drawing and
    // removes it again: nothing of Qt outlives the call.
    void chartMakesItsOwnGuiApplicationAndDrawsEveryBroker()
    {
        QCOMPARE(QCoreApplication::instance(), nullptr);
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const std::string path = dir.filePath(QStringLiteral("chart.png")).toStdString();
        std::string error;
        QVERIFY2(writeChart(sampleReport(), path, &error), error.c_str());
        QCOMPARE(QCoreApplication::instance(), nullptr);

        QImage image;
        QVERIFY(image.load(QString::fromStdString(path)));
        QCOMPARE(image.width(), 1600);
        QVERIFY2(image.height() > 400 && image.height() < 2000, qPrintable(QString::number(image.height())));
        // Far more than the 18×18 legend swatch: the bars themselves are there.
        for (std::size_t i = 0; i < kBrokers.size(); ++i)
            QVERIFY2(pixelsOfColor(image, chartColor(i)) > 2000, kBrokers[i].c_str());
    }

    void chartLeavesMissingBrokerSlotsEmpty()
    {
        Report report = sampleReport();
        for (Figure& f : report.figures)
            f.values.erase("nats-server");
        QTemporaryDir dir;
        const std::string path = dir.filePath(QStringLiteral("chart.png")).toStdString();
        std::string error;
        QVERIFY2(writeChart(report, path, &error), error.c_str());
        QImage image;
        QVERIFY(image.load(QString::fromStdString(path)));
        // Only the legend swatch keeps the color.
        const int natsPixels = pixelsOfColor(image, chartColor(1));
        QVERIFY2(natsPixels > 0 && natsPixels <= 18 * 18, qPrintable(QString::number(natsPixels)));
        QVERIFY(pixelsOfColor(image, chartColor(0)) > 2000);
    }

    void chartGrowsWithPanels()
    {
        QTemporaryDir dir;
        std::string error;
        Report small = sampleReport();
        small.figures.resize(1);
        Report large = sampleReport();
        for (int i = 0; i < 4; ++i)
            large.figures.push_back(figure("topics", "M=" + std::to_string(i), "msg/s", true, {{"middleman", 1.0 + i}}));
        const std::string smallPath = dir.filePath(QStringLiteral("small.png")).toStdString();
        const std::string largePath = dir.filePath(QStringLiteral("large.png")).toStdString();
        QVERIFY2(writeChart(small, smallPath, &error), error.c_str());
        QVERIFY2(writeChart(large, largePath, &error), error.c_str());
        const QImage smallImage(QString::fromStdString(smallPath));
        const QImage largeImage(QString::fromStdString(largePath));
        QCOMPARE(smallImage.width(), 1600);
        QCOMPARE(largeImage.width(), 1600);
        QVERIFY(largeImage.height() > smallImage.height());
    }

    void chartReportsUnwritablePath()
    {
        std::string error;
        QVERIFY(!writeChart(sampleReport(), "/nonexistent-directory/chart.png", &error));
        QVERIFY(error.find("/nonexistent-directory/chart.png") != std::string::npos);
    }
};

QTEST_APPLESS_MAIN(TestBenchReport)
#include "tst_benchreport.moc"
