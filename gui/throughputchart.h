#pragma once
// ThroughputChart: a small painted line chart of the broker's messages per second,
// in (parsed from peers) and out (queued to peers), over the last minute or so.
// Fed from ConsoleUpdate totals; colours come from the palette.

#include <QList>
#include <QWidget>

namespace Middleman {

struct ConsoleUpdate;

class ThroughputChart : public QWidget
{
    Q_OBJECT
public:
    struct Sample
    {
        qint64 wallMs = 0;
        double in = 0;  // messages per second
        double out = 0;
    };

    static constexpr qsizetype kDefaultCapacity = 120;
    static constexpr qint64 kMinSampleIntervalMs = 500; // feed() samples at most this often
    static constexpr qint64 kDefaultWindowMs = 60000;   // the x axis
    static constexpr double kMinScale = 10;             // y max while traffic is low

    explicit ThroughputChart(QWidget *parent = nullptr);

    void addSample(qint64 wallMs, double inPerSecond, double outPerSecond);
    // Rates from successive updates' totals: the first update, one with reset set
    // or one whose counters went back only sets the baseline; after that a sample
    // is added once at least kMinSampleIntervalMs have passed since the last one.
    void feed(const ConsoleUpdate &update);
    // Forgets the history and the baseline.
    void clear();

    qsizetype sampleCount() const { return m_samples.size(); }
    const QList<Sample> &samples() const { return m_samples; } // oldest first
    void setCapacity(qsizetype capacity);
    qsizetype capacity() const { return m_capacity; }
    void setTimeWindow(qint64 ms);
    qint64 timeWindow() const { return m_windowMs; }

    // The y axis maximum: the history's largest rate (at least kMinScale) rounded
    // up to 3 or 4 "nice" steps (1, 2, 2.5 or 5 times a power of ten), whichever
    // ends lower; each step has a gridline and a label.
    double scaleMax() const { return m_scaleMax; }
    int gridSteps() const { return m_gridSteps; }
    static double niceScale(double maxValue, int *steps = nullptr);
    // "0/s", "7.5/s", "500/s", "2.5k/s", "12k/s", "1.5M/s".
    static QString formatRate(double perSecond);

    QColor inColor() const;
    QColor outColor() const;

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

protected:
    void paintEvent(QPaintEvent *event) override;

private:
    void rescale();

    QList<Sample> m_samples;
    qsizetype m_capacity = kDefaultCapacity;
    qint64 m_windowMs = kDefaultWindowMs;
    double m_scaleMax = kMinScale;
    int m_gridSteps = 4;

    bool m_haveBase = false;
    quint64 m_baseIn = 0;
    quint64 m_baseOut = 0;
    qint64 m_baseMs = 0;
};

} // namespace Middleman
