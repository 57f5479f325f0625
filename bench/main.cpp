// middleman-bench: starts middleman, nats-server and Mosquitto in turn on
// loopback, each on its shipped defaults unless told otherwise, drives the same
// scenarios against each from this one process, and writes a Markdown table
// and a PNG chart (docs/benchmarks.md).
#include "adapters.h"
#include "brokerprocess.h"
#include "latencyrate.h"
#include "machine.h"
#include "report.h"
#include "scenarios.h"
#include "spread.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>

#ifndef MIDDLEMAN_BENCH_SOURCE_DIR
#define MIDDLEMAN_BENCH_SOURCE_DIR "bench"
#endif

namespace fs = std::filesystem;
using namespace bench;

namespace {

struct Options {
    std::string mode = "full";  // full, quick, smoke
    std::vector<std::string> brokers = allBrokers();
    std::set<std::string> scenarios = {"fanout", "reqres", "connections", "topics", "flood", "churn"};
    std::string out;
    std::string bin;
    std::string peers = MIDDLEMAN_BENCH_SOURCE_DIR "/peers";
    int maxConnections = 0;  // 0: as many as the open-file limit allows
    std::string params;      // run only the cases whose parameters contain this
    double rate = 0;         // > 0: fanout and topics at this publish rate only, no maximum
    int repeat = 1;          // runs of each broker per case; the figures are their medians
    bool openLimits = false; // every broker with its limits opened up (bench/peers/*-open.*)
    double floodRate = 100000;  // flood: the flooder's messages a second, 10× a middleman client's limit
    double churnRate = 1000;    // churn: the churner's SUB+UNSUB pairs a second
    MiddlemanOptions middleman;
};

using Run = std::function<Measurement(const Adapter&, uint16_t, const BrokerProbe&, const Timing&)>;

constexpr int kFloodPayloadBytes = 64;  // the flooder's messages and the bystander's requests

// The case of the same scenario that a case is measured against (churn:
// against its case without churn).
struct Baseline {
    std::string params;  // its params; empty: none
    std::string name;    // how the report calls it ("R=0")
};

// One scenario with one set of parameters, run against each broker in turn.
struct Case {
    std::string scenario;
    std::string params;
    Run run;
    std::string broker;      // the one broker it is run against; empty: every one
    ConfigAdditions config;  // what the brokers' configs get beyond their shipped defaults
    // A case with a baseline follows it in the plan; the report gives its
    // delivered msg/s against the baseline's too, and they share one common
    // rate, so that their rows at it, the CPU table's too, are at one load.
    Baseline baseline;
};

std::vector<std::string> split(const std::string& list)
{
    std::vector<std::string> items;
    std::stringstream in(list);
    for (std::string item; std::getline(in, item, ',');) {
        if (!item.empty())
            items.push_back(item);
    }
    return items;
}

void usage(std::FILE* to)
{
    std::fprintf(to,
                 "Usage: middleman-bench [--quick | --smoke] [options]\n"
                 "Runs the same scenarios against middleman, nats-server and Mosquitto on loopback\n"
                 "and writes a Markdown table and a PNG chart.\n\n"
                 "  --quick               a shorter set of scenarios (under 2 minutes)\n"
                 "  --smoke               tiny scenarios that must move every message; exit 1 otherwise\n"
                 "  --brokers LIST        comma-separated: middleman,nats-server,mosquitto\n"
                 "  --scenarios LIST      comma-separated: fanout,reqres,connections,topics,flood,churn\n"
                 "  --out DIR             where <mode>.md and <mode>.png go (default bench/results/)\n"
                 "  --bin DIR             where the middleman executable is (default: beside this one)\n"
                 "  --peers DIR           the broker configs (default bench/peers/)\n"
                 "  --max-connections N   cap for the connections scenario\n"
                 "  --params TEXT         only the cases whose parameters contain TEXT (\"M=1 \", \"N=100 16\")\n"
                 "  --rate R              fanout, topics and churn: no maximum; latency only, every broker at\n"
                 "                        R messages published a second (one broker alone too)\n"
                 "  --repeat R            run every broker R times per case, taking turns; each figure is\n"
                 "                        the median of its runs, with the lowest and highest beside it\n"
                 "  --open-limits         run every broker with its limits opened up (bench/peers/*-open.*)\n"
                 "                        instead of its shipped defaults; the report says so\n"
                 "  --flood-rate R        flood (middleman only): the flooding client's messages a second\n"
                 "                        (default 100000, 10x a client's default limit)\n"
                 "  --churn-rate R        churn: fanout to 10 subscribers of bench.churn.* over 1000 topics\n"
                 "                        while another client sends R SUB+UNSUB pairs a second (default\n"
                 "                        1000), paced by the clock, of patterns no topic matches; the\n"
                 "                        case R=0, without it, is the baseline its figures are against\n"
                 "  --middleman-frames F  text (default) or binary WebSocket frames for middleman's messages\n"
                 "  --middleman-batch B   on (default): middleman packs several messages per WebSocket\n"
                 "                        message to the load generator (OPT Batch: on); off: one each\n");
}

// A number above 0 and finite, the whole of `text`.
bool positiveNumber(const std::string& text, double& value)
{
    char* end = nullptr;
    value = std::strtod(text.c_str(), &end);
    return end != text.c_str() && *end == '\0' && value > 0 && std::isfinite(value);
}

bool parse(int argc, char** argv, Options& options)
{
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--quick")
            options.mode = "quick";
        else if (arg == "--smoke")
            options.mode = "smoke";
        else if (arg == "--brokers")
            options.brokers = split(value());
        else if (arg == "--scenarios") {
            const auto list = split(value());
            options.scenarios = {list.begin(), list.end()};
        } else if (arg == "--out")
            options.out = value();
        else if (arg == "--bin")
            options.bin = value();
        else if (arg == "--peers")
            options.peers = value();
        else if (arg == "--middleman-frames") {
            const std::string frames = value();
            if (frames != "text" && frames != "binary") {
                std::fprintf(stderr, "--middleman-frames takes text or binary\n");
                return false;
            }
            options.middleman.binaryFrames = frames == "binary";
        } else if (arg == "--middleman-batch") {
            const std::string batch = value();
            if (batch != "on" && batch != "off") {
                std::fprintf(stderr, "--middleman-batch takes on or off\n");
                return false;
            }
            options.middleman.batch = batch == "on";
        } else if (arg == "--max-connections")
            options.maxConnections = std::atoi(value().c_str());
        else if (arg == "--params")
            options.params = value();
        else if (arg == "--repeat") {
            const std::string text = value();
            char* end = nullptr;
            const long repeat = std::strtol(text.c_str(), &end, 10);
            if (end == text.c_str() || *end != '\0' || repeat < 1 || repeat > 100) {
                std::fprintf(stderr, "--repeat takes a number of runs from 1 to 100\n");
                return false;
            }
            options.repeat = int(repeat);
        } else if (arg == "--rate") {
            if (!positiveNumber(value(), options.rate)) {
                std::fprintf(stderr, "--rate takes a number of messages a second above 0\n");
                return false;
            }
        } else if (arg == "--flood-rate") {
            if (!positiveNumber(value(), options.floodRate)) {
                std::fprintf(stderr, "--flood-rate takes a number of messages a second above 0\n");
                return false;
            }
        } else if (arg == "--churn-rate") {
            if (!positiveNumber(value(), options.churnRate)) {
                std::fprintf(stderr, "--churn-rate takes a number of SUB+UNSUB pairs a second above 0\n");
                return false;
            }
        } else if (arg == "--open-limits") {
            options.openLimits = true;
        } else if (arg == "-h" || arg == "--help") {
            usage(stdout);
            std::exit(0);
        } else {
            std::fprintf(stderr, "unknown option %s\n", arg.c_str());
            usage(stderr);
            return false;
        }
    }
    for (const std::string& broker : options.brokers) {
        if (!makeAdapter(broker)) {
            std::fprintf(stderr, "unknown broker %s\n", broker.c_str());
            return false;
        }
    }
    for (const std::string& scenario : options.scenarios) {
        if (scenario != "fanout" && scenario != "reqres" && scenario != "connections" && scenario != "topics"
            && scenario != "flood" && scenario != "churn") {
            std::fprintf(stderr, "unknown scenario %s\n", scenario.c_str());
            return false;
        }
    }
    return true;
}

// Every connection costs a descriptor on each side; children inherit the limit.
long raiseOpenFileLimit()
{
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
    return long(limit.rlim_cur);
}

std::string sizeLabel(int bytes)
{
    return bytes >= 1024 && bytes % 1024 == 0 ? std::to_string(bytes / 1024) + " KiB" : std::to_string(bytes) + " B";
}

Timing timingFor(const std::string& mode)
{
    Timing timing;
    if (mode == "quick") {
        timing.warmupSeconds = 0.5;
        timing.measureSeconds = 1.5;
        timing.latencySeconds = 1.0;
    } else if (mode == "smoke") {
        timing.warmupSeconds = 0.2;
        timing.measureSeconds = 0.3;
        timing.latencySeconds = 0.3;
        timing.exact = true;
    }
    return timing;
}

std::vector<Case> plan(const Options& options, int connectionCap, std::vector<std::string>& notes)
{
    const bool smoke = options.mode == "smoke";
    const bool quick = options.mode == "quick";
    std::vector<Case> cases;
    const auto want = [&](const char* scenario) { return options.scenarios.count(scenario) > 0; };
    // Every broker, on the limits the run was asked for.
    const auto add = [&](std::string scenario, std::string params, Run run, Baseline baseline = {}) {
        cases.push_back({std::move(scenario), std::move(params), std::move(run), {}, {options.openLimits, {}},
                         std::move(baseline)});
    };
    using List = std::vector<int>;

    if (want("fanout")) {
        const List counts = smoke ? List{3} : quick ? List{10, 1000} : List{1, 10, 100, 1000};
        const List sizes = smoke ? List{16} : quick ? List{256} : List{16, 256, 4096};
        for (int size : sizes) {
            for (int n : counts) {
                add("fanout", "N=" + std::to_string(n) + " " + sizeLabel(size),
                    [=](const Adapter& a, uint16_t port, const BrokerProbe& p, const Timing& timing) {
                        return runFanout(a, port, p, n, size, timing);
                    });
            }
        }
    }
    if (want("reqres")) {
        const List requesters = smoke ? List{2} : quick ? List{16, 256} : List{1, 16, 256};
        const List responders = smoke ? List{2} : quick ? List{4} : List{1, 4};
        for (int k : responders) {
            for (int m : requesters) {
                add("reqres", "M=" + std::to_string(m) + " K=" + std::to_string(k) + " 64 B",
                    [=](const Adapter& a, uint16_t port, const BrokerProbe& p, const Timing& timing) {
                        return runReqRes(a, port, p, m, k, 64, timing);
                    });
            }
        }
    }
    if (want("connections")) {
        List counts = smoke ? List{20} : quick ? List{5000} : List{10000, 50000, 100000};
        List runnable;
        for (int c : counts) {
            if (c <= connectionCap) {
                runnable.push_back(c);
            } else {
                notes.push_back("connections C=" + std::to_string(c) + " not run: the open-file limit here allows "
                                + std::to_string(connectionCap) + " connections per process");
                if (runnable.empty() || runnable.back() < connectionCap)
                    runnable.push_back(connectionCap);
            }
        }
        for (int c : runnable) {
            add("connections", "C=" + std::to_string(c),
                [=](const Adapter& a, uint16_t port, const BrokerProbe& p, const Timing& timing) {
                    return runConnections(a, port, p, c, timing);
                });
        }
    }
    if (want("topics")) {
        const int topics = std::min(smoke ? 20 : quick ? 2000 : 10000, connectionCap);
        add("topics", "T=" + std::to_string(topics) + " 256 B",
            [=](const Adapter& a, uint16_t port, const BrokerProbe& p, const Timing& timing) {
                return runTopics(a, port, p, topics, 256, timing);
            });
    }
    if (want("flood")) {
        // middleman only, on its shipped client limits whatever --open-limits
        // says: they are what the scenario measures. "pace" is the default;
        // "refuse" is set for clients alone (docs/configuration.md).
        const std::pair<const char*, const char*> actions[] = {
            {"none", ""}, {"pace", ""}, {"refuse", "[limits.client]\nrate_limit_action = \"refuse\"\n"}};
        for (const auto& [action, lines] : actions) {
            const double rate = std::string(action) == "none" ? 0 : options.floodRate;
            cases.push_back({"flood", action,
                             [=](const Adapter& a, uint16_t port, const BrokerProbe& p, const Timing& timing) {
                                 return runFlood(a, port, p, rate, kFloodPayloadBytes, timing);
                             },
                             "middleman", {false, lines}, {}});
        }
    }
    if (want("churn")) {
        // Fanout's publisher and N subscribers, with each message on one of
        // T topics (in turn), every subscriber on a wildcard over all of
        // them: a broker that caches whom a topic goes to caches T answers,
        // which the churn must not spoil. R=0, no churner, is the baseline.
        const int subscribers = smoke ? 3 : 10;
        const int topics = smoke ? 20 : 1000;
        char rate[32];
        std::snprintf(rate, sizeof rate, "%.15g", options.churnRate);
        const std::string shape = "N=" + std::to_string(subscribers) + " T=" + std::to_string(topics) + " R=";
        const Baseline none{shape + "0 256 B", "R=0"};
        for (const double churnRate : {0.0, options.churnRate}) {
            add("churn", churnRate > 0 ? shape + rate + " 256 B" : none.params,
                [=](const Adapter& a, uint16_t port, const BrokerProbe& p, const Timing& timing) {
                    return runChurn(a, port, p, subscribers, topics, churnRate, 256, timing);
                },
                churnRate > 0 ? none : Baseline{});
        }
    }
    return cases;
}

std::string utcNow(const char* format)
{
    const std::time_t now = std::time(nullptr);
    char text[64];
    std::strftime(text, sizeof text, format, std::gmtime(&now));
    return text;
}

std::string firstLine(const std::string& text)
{
    std::string line = text.substr(0, text.find('\n'));
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
        line.pop_back();
    return line;
}

// "nats-server: v2.9.10" -> "2.9.10": the first dotted number in a version line.
std::string versionIn(const std::string& line)
{
    const auto digit = [](char ch) { return ch >= '0' && ch <= '9'; };
    for (size_t start = 0; start < line.size(); ++start) {
        if (!digit(line[start]) || (start > 0 && digit(line[start - 1])))
            continue;
        size_t end = start;
        bool dotted = false;
        while (end < line.size() && (digit(line[end]) || (line[end] == '.' && end + 1 < line.size() && digit(line[end + 1])))) {
            dotted = dotted || line[end] == '.';
            ++end;
        }
        if (dotted)
            return line.substr(start, end - start);
    }
    return line;
}

double probeCpu(int pid)
{
    return BrokerProcess::cpuSecondsOf(pid);
}

long probeRss(int pid)
{
    return BrokerProcess::rssKiBOf(pid);
}

// The metrics each scenario reports, in table order.
struct Metric {
    const char* name;
    bool higherIsBetter;
    double Measurement::*value;
};

// fanout, topics and churn take latency twice: at half of each broker's own
// maximum rate, and then, in a round of their own, at the common rate of the
// case.
bool hasCommonRate(const std::string& scenario)
{
    return scenario == "fanout" || scenario == "topics" || scenario == "churn";
}

std::vector<Metric> metricsOf(const std::string& scenario)
{
    if (hasCommonRate(scenario)) {
        std::vector<Metric> metrics = {{"delivered msg/s", true, &Measurement::deliveredPerSecond},
                                       {"p50 µs at half own max", false, &Measurement::p50Micros},
                                       {"p99 µs at half own max", false, &Measurement::p99Micros}};
        if (scenario == "churn")
            metrics.push_back({"SUB+UNSUB pairs/s", true, &Measurement::churnedPerSecond});
        return metrics;
    }
    if (scenario == "reqres")
        return {{"round trips/s", true, &Measurement::roundTripsPerSecond},
                {"p50 µs", false, &Measurement::p50Micros},
                {"p99 µs", false, &Measurement::p99Micros}};
    if (scenario == "flood")
        return {{"flood sent/s", true, &Measurement::floodSentPerSecond},
                {"flood delivered/s", true, &Measurement::floodDeliveredPerSecond},
                {"ERR 429/s", true, &Measurement::refusedPerSecond},
                {"flood lost", false, &Measurement::floodLost},
                {"flood out of order", false, &Measurement::floodOutOfOrder},
                {"bystander round trips/s", true, &Measurement::roundTripsPerSecond},
                {"bystander p50 µs", false, &Measurement::p50Micros},
                {"bystander p99 µs", false, &Measurement::p99Micros}};
    return {{"broker KiB/conn", false, &Measurement::kibPerConnection}, {"open s", false, &Measurement::openSeconds}};
}

// A case run against every broker in turn, each on a fresh broker.
struct Round {
    Timing timing;
    std::vector<Metric> metrics;
    std::string label;      // the case as the console, the CPU table and the notes name it
    std::string condition;  // how the metrics were measured, beside them in the table
    const char* atLimit;    // what the load generator at its limit means for the figures
};

Round firstRound(const Case& c, const Timing& timing)
{
    return {timing, metricsOf(c.scenario), c.params, {}, "this figure is a lower bound for the broker"};
}

Round commonRateRound(const Case& c, const Timing& timing, const CommonRate& common)
{
    Round round{timing,
                {{"p50 µs at common rate", false, &Measurement::p50Micros},
                 {"p99 µs at common rate", false, &Measurement::p99Micros}},
                c.params + " at common rate",
                formatNumber(common.publishedPerSecond) + " msg/s published",
                "the latencies include its own delays"};
    round.timing.publishRate = common.publishedPerSecond;
    return round;
}

void addFigure(Report& report, const Case& c, const Round& round, const Metric& metric, const std::string& broker,
               double value, const std::string& note, const std::optional<std::pair<double, double>>& range = {})
{
    auto figure = std::find_if(report.figures.begin(), report.figures.end(), [&](const Figure& f) {
        return f.scenario == c.scenario && f.params == c.params && f.metric == metric.name;
    });
    if (figure == report.figures.end()) {
        report.figures.push_back({c.scenario, c.params, metric.name, metric.higherIsBetter, {}, {}, round.condition, {}});
        figure = report.figures.end() - 1;
    }
    if (note.empty())
        figure->values[broker] = value;
    else
        figure->notes[broker] = note;
    if (range)
        figure->ranges[broker] = *range;
}

// Starts a fresh broker, runs the case against it and stops it.
Measurement measure(const Case& c, const Timing& timing, const Adapter& adapter, const Paths& paths)
{
    BrokerProcess process(adapter, paths, c.config);
    std::string error;
    Measurement m;
    if (!process.start(&error)) {
        m.error = error;
    } else {
        const BrokerProbe probe{process.pid(), &probeCpu, &probeRss};
        m = c.run(adapter, process.port(), probe, timing);
        if (!m.ok && m.error.empty())
            m.error = "failed";
        if (!m.ok)
            m.error += " (broker log: " + firstLine(process.logTail(300)) + ")";
    }
    process.stop();
    return m;
}

// One run of one broker in a round: measured, its CPU row and notes into the
// report, a line onto the console. `run` names it among repeated runs ("" if
// there is one).
Measurement runOnce(Report& report, const Case& c, const Round& round, const Adapter& adapter, const Paths& paths,
                    const std::string& run)
{
    const std::string broker = adapter.name();
    const std::string label = round.label + run;
    std::printf("%-12s %-28s %-12s ", c.scenario.c_str(), label.c_str(), broker.c_str());
    std::fflush(stdout);
    const Measurement m = measure(c, round.timing, adapter, paths);
    const std::string where = c.scenario + " " + label + ", " + broker + ": ";
    if (!m.ok) {
        std::printf("FAILED: %s\n", m.error.c_str());
        if (!run.empty())
            report.notes.push_back(where + "failed: " + m.error);
        return m;
    }
    std::string line;
    for (const Metric& metric : round.metrics)
        line += formatNumber(m.*metric.value) + " " + metric.name + "  ";
    for (const std::string& note : m.notes) {
        report.notes.push_back(where + note);
        line += "[" + note + "] ";
    }
    report.cpu.push_back({c.scenario, label, broker, m.wallSeconds, m.benchCpuSeconds, m.brokerCpuSeconds,
                          m.sentLateP50Micros, m.sentLateP99Micros, m.benchPollSeconds});
    // One thread of the load generator can use one core at most. Polling for
    // a paced message about to fall due is time it had to spare.
    const double benchCores = m.wallSeconds > 0 ? m.benchCpuSeconds / m.wallSeconds : 0;
    const double pollCores = m.wallSeconds > 0 && std::isfinite(m.benchPollSeconds)
                                 ? m.benchPollSeconds / m.wallSeconds
                                 : 0;
    if (benchCores - pollCores >= 0.9 && c.scenario != "connections") {
        char text[200];
        if (pollCores > 0)
            std::snprintf(text, sizeof text,
                          "the load generator used %.2f cores, %.2f of them not polling for a due time, its limit: %s",
                          benchCores, benchCores - pollCores, round.atLimit);
        else
            std::snprintf(text, sizeof text, "the load generator used %.2f cores, its limit: %s", benchCores,
                          round.atLimit);
        report.notes.push_back(where + text);
    }
    std::printf("%s bench %.2f / broker %.2f cores\n", line.c_str(), benchCores,
                m.wallSeconds > 0 ? m.brokerCpuSeconds / m.wallSeconds : 0);
    std::fflush(stdout);
    return m;
}

// A round: every broker of the case `repeat` times, the brokers taking turns,
// so that a drift of the machine touches all alike. A broker's figure for each metric
// is the median of its runs that succeeded, with their lowest and highest
// when there were several. Returns each broker's median maximum (messages
// published a second) over those runs; counts the runs that failed.
std::vector<std::pair<std::string, double>> runRound(Report& report, const Case& c, const Round& round,
                                                     const std::vector<std::unique_ptr<Adapter>>& adapters,
                                                     const Paths& paths, int repeat, int& failures)
{
    std::vector<const Adapter*> brokers;
    for (const auto& adapter : adapters) {
        if (c.broker.empty() || adapter->name() == c.broker)
            brokers.push_back(adapter.get());
    }
    std::map<std::string, std::vector<Measurement>> runs;
    for (int r = 1; r <= repeat; ++r) {
        const std::string run = repeat > 1 ? " (run " + std::to_string(r) + " of " + std::to_string(repeat) + ")" : "";
        for (const Adapter* adapter : brokers) {
            Measurement m = runOnce(report, c, round, *adapter, paths, run);
            if (!m.ok)
                ++failures;
            runs[adapter->name()].push_back(std::move(m));
        }
    }
    std::vector<std::pair<std::string, double>> maxima;
    for (const Adapter* adapter : brokers) {
        const std::string broker = adapter->name();
        std::vector<const Measurement*> ok;
        for (const Measurement& m : runs[broker]) {
            if (m.ok)
                ok.push_back(&m);
        }
        if (ok.empty()) {
            const std::string& error = runs[broker].back().error;
            for (const Metric& metric : round.metrics)
                addFigure(report, c, round, metric, broker, 0, "failed: " + error);
            continue;
        }
        const auto spreadOfField = [&](double Measurement::*field) {
            std::vector<double> values;
            for (const Measurement* m : ok)
                values.push_back(m->*field);
            return spreadOf(values);
        };
        for (const Metric& metric : round.metrics) {
            const std::optional<Spread> spread = spreadOfField(metric.value);
            if (!spread)
                continue;
            std::optional<std::pair<double, double>> range;
            if (repeat > 1)
                range = std::make_pair(spread->lowest, spread->highest);
            addFigure(report, c, round, metric, broker, spread->median, {}, range);
        }
        if (ok.size() < runs[broker].size())
            report.notes.push_back(c.scenario + " " + round.label + ", " + broker + ": "
                                   + std::to_string(runs[broker].size() - ok.size()) + " of "
                                   + std::to_string(runs[broker].size())
                                   + " runs failed; its figures are the medians of the others");
        if (const std::optional<Spread> maximum = spreadOfField(&Measurement::publishedPerSecond))
            maxima.emplace_back(broker, maximum->median);
    }
    return maxima;
}

// Each broker's delivered msg/s in a case over that in its baseline, in a row
// right after the case's own, where both were measured.
void addAgainstBaseline(Report& report, const Case& c)
{
    const auto delivered = [&](const std::string& params) {
        return std::find_if(report.figures.begin(), report.figures.end(), [&](const Figure& f) {
            return f.scenario == c.scenario && f.params == params && f.metric == "delivered msg/s";
        });
    };
    const auto own = delivered(c.params);
    const auto baseline = delivered(c.baseline.params);
    if (c.baseline.params.empty() || own == report.figures.end() || baseline == report.figures.end())
        return;
    Figure against{c.scenario, c.params, "delivered msg/s against " + c.baseline.name, true, {}, {}, {}, {}};
    for (const auto& [broker, value] : own->values) {
        const auto base = baseline->values.find(broker);
        if (base != baseline->values.end() && base->second > 0)
            against.values[broker] = value / base->second;
    }
    if (!against.values.empty())
        report.figures.insert(own + 1, std::move(against));
}

} // namespace

int main(int argc, char** argv)
{
    Options options;
    if (!parse(argc, argv, options))
        return 2;
    if (options.bin.empty())
        options.bin = fs::canonical("/proc/self/exe").parent_path().string();
    if (options.out.empty())
        options.out = MIDDLEMAN_BENCH_SOURCE_DIR "/results";
    std::error_code ignored;
    fs::create_directories(options.out, ignored);

    const long openFiles = raiseOpenFileLimit();
    // Each side of a connection holds a descriptor in its own process; keep some for the rest.
    int connectionCap = int(openFiles) - 200;
    if (options.maxConnections > 0)
        connectionCap = std::min(connectionCap, options.maxConnections);

    char workTemplate[] = "/tmp/middleman-bench.XXXXXX";
    if (!::mkdtemp(workTemplate)) {
        std::perror("mkdtemp");
        return 2;
    }
    const Paths paths{options.peers, options.bin, workTemplate};
    // The chart is drawn with Qt, which wants a private runtime directory.
    if (!std::getenv("XDG_RUNTIME_DIR"))
        ::setenv("XDG_RUNTIME_DIR", workTemplate, 1);

    Report report;
    // The title names what the brokers ran on, so that no reader takes
    // figures with the limits opened up for those of the brokers as shipped.
    report.title = options.openLimits ? "middleman-bench results, limits opened up: --open-limits"
                                      : "middleman-bench results, shipped defaults";
    report.notes.push_back(options.openLimits
                               ? "limits opened up (--open-limits): every broker's config in bench/peers/ had its "
                                 "*-open file appended (middleman-open.toml, nats-open.conf, mosquitto-open.conf); "
                                 "these are not the figures of the brokers as shipped"
                               : "every broker ran on its shipped defaults: its config in bench/peers/ sets only "
                                 "what the load generator needs to connect");
    report.startedAt = utcNow("%Y-%m-%dT%H:%M:%SZ");
    report.mode = options.mode;
    report.brokers = options.brokers;
    report.machine = describeMachine();
    if (options.middleman.binaryFrames)
        report.notes.push_back("middleman's messages went in binary WebSocket frames (--middleman-frames binary)");
    report.notes.push_back(options.middleman.batch
                               ? "middleman's connections opted in to batching (OPT Batch: on), as nats-server packs "
                                 "several messages per WebSocket message unasked"
                               : "middleman's connections did not batch (--middleman-batch off): one message per "
                                 "WebSocket message");
    if (options.repeat > 1)
        report.notes.push_back("every broker ran each case " + std::to_string(options.repeat)
                               + " times, the brokers taking turns (--repeat): each figure is the median of its "
                                 "runs, with the lowest and highest in brackets; the CPU table has every run");
    std::vector<std::unique_ptr<Adapter>> adapters;
    for (const std::string& broker : options.brokers) {
        adapters.push_back(makeAdapter(broker, options.middleman));
        std::vector<std::string> command = adapters.back()->versionCommand();
        for (std::string& argument : command)
            argument = replaceAll(argument, "{bin}", options.bin);
        report.brokerVersions[broker] = versionIn(firstLine(commandOutput(command)));
    }

    std::vector<Case> cases = plan(options, connectionCap, report.notes);
    std::erase_if(cases, [&](const Case& c) { return c.params.find(options.params) == std::string::npos; });
    // A case for one broker alone runs when that broker does.
    const auto chosen = [&](const std::string& broker) {
        return std::find(options.brokers.begin(), options.brokers.end(), broker) != options.brokers.end();
    };
    std::map<std::string, std::string> onlyFor;  // scenario -> the one broker its cases are for
    for (const Case& c : cases) {
        if (!c.broker.empty())
            onlyFor[c.scenario] = c.broker;
    }
    for (const auto& [scenario, broker] : onlyFor) {
        if (!chosen(broker))
            report.notes.push_back(scenario + ": not run, it is for " + broker + " only");
        else if (options.brokers.size() > 1)
            report.notes.push_back(scenario + ": " + broker + " only, the other brokers were not run");
    }
    std::erase_if(cases, [&](const Case& c) { return !c.broker.empty() && !chosen(c.broker); });
    if (cases.empty()) {
        std::fprintf(stderr, "no case to run: --scenarios, --params and --brokers leave none\n");
        return 2;
    }
    if (onlyFor.count("flood") && chosen(onlyFor["flood"]))
        report.notes.push_back("flood: a client published " + std::to_string(kFloodPayloadBytes) + " B messages at "
                               + formatNumber(options.floodRate)
                               + " msg/s (--flood-rate), paced by the clock with 64 KiB unsent at most, to a "
                                 "subscriber of its own, beside a bystander (a requester and a responder, "
                                 "services) sending "
                               + formatNumber(kFloodBystanderRate)
                               + " requests a second, paced by the clock; none: no flood; pace: middleman's "
                                 "shipped default (rate_limit_action = \"pace\"); refuse: [limits.client] "
                                 "rate_limit_action = \"refuse\""
                               + std::string(options.openLimits ? "; on the shipped client limits despite "
                                                                  "--open-limits: they are what it measures"
                                                                : ""));
    if (std::any_of(cases.begin(), cases.end(), [](const Case& c) { return c.scenario == "churn"; }))
        report.notes.push_back("churn: N subscribers, clients, each on bench.churn.* (Mosquitto: bench/churn/+), and "
                               "a publisher going round the T topics bench.churn.<i> as fanout's publisher does; "
                               "with R above 0, a churner, a client too, subscribes to bench.other.<k>.* and "
                               "unsubscribes again, a new k each time (no topic published matches it), R times a "
                               "second (--churn-rate), paced by the clock, throughout the run; R=0: no churner. "
                               "Run together, the two cases are measured at one common rate, the lower of theirs, so "
                               "that their rows at it, the CPU table's too, are at the same load");
    const Timing timing = timingFor(options.mode);
    int failures = 0;
    for (size_t first = 0, next = 0; first < cases.size(); first = next) {
        // A case and those measured against it, which follow it: the first
        // round of each, then the round of each at their common rate.
        next = first + 1;
        while (next < cases.size() && cases[next].scenario == cases[first].scenario
               && !cases[next].baseline.params.empty() && cases[next].baseline.params == cases[first].params)
            ++next;
        std::string label;                   // the cases as the notes name them
        std::vector<const Case*> compared;   // those with a round at the common rate
        std::vector<std::pair<std::string, double>> maxima;  // of them all
        for (size_t i = first; i < next; ++i) {
            const Case& c = cases[i];
            if (options.rate > 0 && hasCommonRate(c.scenario)) {
                // The rate is given: every broker at it, and no maximum to find.
                report.notes.push_back(c.scenario + " " + c.params + ": the common rate is "
                                       + formatNumber(options.rate) + " msg/s published, as --rate gave it");
                const Round round = commonRateRound(c, timing, CommonRate{options.rate, "--rate", options.rate});
                runRound(report, c, round, adapters, paths, options.repeat, failures);
                continue;
            }
            const std::vector<std::pair<std::string, double>> own =
                runRound(report, c, firstRound(c, timing), adapters, paths, options.repeat, failures);
            addAgainstBaseline(report, c);
            if (!hasCommonRate(c.scenario))
                continue;
            label += (label.empty() ? c.scenario + " " : std::string(" and ")) + c.params;
            compared.push_back(&c);
            maxima.insert(maxima.end(), own.begin(), own.end());
        }
        if (compared.empty())
            continue;
        // Each broker's own half maximum is a different load for each; latency
        // compared across brokers is taken once more, at one rate for all.
        const std::optional<CommonRate> common = commonRate(maxima, timing.latencyLoad);
        if (!common) {
            if (adapters.size() > 1)
                report.notes.push_back(label + ": no latency at a common rate, fewer than two brokers measured a "
                                               "maximum");
            continue;
        }
        report.notes.push_back(label + ": the common rate is " + formatNumber(common->publishedPerSecond)
                               + " msg/s published, half of " + common->setBy + "'s maximum of "
                               + formatNumber(common->setByMaximum) + " msg/s published"
                               + (options.repeat > 1 ? " (the median of its runs)" : "")
                               + (compared.size() > 1 ? ", the lowest of these cases" : ", the lowest of this case"));
        for (const Case* c : compared)
            runRound(report, *c, commonRateRound(*c, timing, *common), adapters, paths, options.repeat, failures);
    }

    const std::string base = options.out + "/" + options.mode;
    std::ofstream(base + ".md", std::ios::trunc) << markdown(report);
    std::string chartError;
    if (!writeChart(report, base + ".png", &chartError))
        std::fprintf(stderr, "chart not written: %s\n", chartError.c_str());
    std::printf("\nWrote %s.md and %s.png (broker configs and logs of this run: %s)\n", base.c_str(), base.c_str(),
                workTemplate);
    if (failures > 0)
        std::printf("%d runs failed; see the notes in %s.md\n", failures, base.c_str());
    // A smoke run is a check: every adapter must connect and move every message.
    return options.mode == "smoke" && failures > 0 ? 1 : 0;
}
