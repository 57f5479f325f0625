#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <utility>
#include <string>
#include <vector>

namespace bench {

// One measured quantity of one scenario run with one set of parameters, for
// every broker that ran it.
struct Figure {
    std::string scenario;   // "fanout", "reqres", "connections", "topics", "flood"
    std::string params;     // e.g. "N=10 256 B", "M=16 K=4", "C=10000"
    std::string metric;     // e.g. "msg/s", "p50 µs", "p99 µs", "round trips/s", "KiB/conn", "open s"
    bool higherIsBetter = true;
    std::map<std::string, double> values;     // broker name -> value; a broker may be missing (not run / failed)
    std::map<std::string, std::string> notes; // broker -> short note, e.g. "failed: connection refused"
    std::string condition;  // how this row was measured where it differs from case to case, e.g. the
                            // common rate "5,000 msg/s published"; shown beside the metric, empty if none
    // broker -> lowest and highest of its runs, when the value is the median
    // of several (--repeat); shown beside the value
    std::map<std::string, std::pair<double, double>> ranges;
};

// CPU time spent by the load generator and by the broker during one run, and
// how late the load generator sent paced messages (NaN: nothing paced). Of
// the load generator's CPU time, benchPollSeconds went on polling just before
// paced messages fell due (NaN: nothing paced).
struct CpuFigure {
    std::string scenario, params, broker;
    double wallSeconds = 0, benchCpuSeconds = 0, brokerCpuSeconds = 0;
    double sentLateP50Micros = std::numeric_limits<double>::quiet_NaN();
    double sentLateP99Micros = std::numeric_limits<double>::quiet_NaN();
    double benchPollSeconds = std::numeric_limits<double>::quiet_NaN();
};

struct Report {
    std::string title;                 // "middleman-bench results, shipped defaults"
    std::string startedAt;             // ISO 8601 UTC
    std::string mode;                  // "full" / "quick" / "smoke"
    std::vector<std::string> brokers;  // column order, first is "middleman"
    std::map<std::string, std::string> brokerVersions;
    std::string machine;               // Markdown from describeMachine()
    std::vector<Figure> figures;
    std::vector<CpuFigure> cpu;
    std::vector<std::string> notes;    // free lines appended at the end
};

// The whole report as GitHub-flavoured Markdown: header, machine, one table per
// scenario (a row's condition follows its metric) with ratio columns (first broker against each other one, > 1 means
// the first broker is better), the CPU table and the notes. A scenario's table has a column for the first broker
// and for each other with a value or a note in it.
std::string markdown(const Report&);

// Draws one panel per (scenario, metric) with grouped bars per broker and
// writes it as PNG. Text drawing needs a QGuiApplication: if no Qt application
// exists yet, one is created (offscreen unless QT_QPA_PLATFORM is set) and
// kept for the rest of the process, so call this from the main thread. Fails if
// a non-GUI QCoreApplication already exists. On failure returns false and, if
// error is not null, says why.
bool writeChart(const Report&, const std::string& pngPath, std::string* error);

// How the report prints numbers: thousands grouped with commas from 1,000 up,
// 3 significant digits below, "—" for NaN and infinities.
std::string formatNumber(double value);

// The bar color of the broker at this position of Report::brokers, as 0xRRGGBB.
std::uint32_t chartColor(std::size_t brokerIndex);

} // namespace bench
