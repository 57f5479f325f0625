// Starts one broker as a child process on loopback, with its config from
// bench/peers/ (ports filled in, and what the case adds appended), and reads
// its CPU time and memory from /proc.
#pragma once

#include "adapters.h"

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace bench {

struct Paths {
    std::string peers;    // bench/peers/ of the source tree
    std::string bin;      // where middleman is (build/bin/)
    std::string work;     // filled-in configs and broker logs
};

// What a broker's config holds beyond its shipped defaults (Launch::configTemplate)
// for one case, appended in this order.
struct ConfigAdditions {
    bool openLimits = false;  // Launch::openLimits: its limits opened up (--open-limits)
    std::string lines;        // the case's own settings, in the broker's config syntax
};

class BrokerProcess {
public:
    BrokerProcess(const Adapter& adapter, const Paths& paths, ConfigAdditions additions = {});
    ~BrokerProcess();
    BrokerProcess(const BrokerProcess&) = delete;
    BrokerProcess& operator=(const BrokerProcess&) = delete;

    // Starts it and waits until its WebSocket port accepts connections.
    bool start(std::string* error);
    void stop();

    uint16_t port() const { return m_port; }
    pid_t pid() const { return m_pid; }
    double cpuSeconds() const { return cpuSecondsOf(m_pid); }  // user + system, all threads
    long rssKiB() const { return rssKiBOf(m_pid); }            // resident set size now
    static double cpuSecondsOf(pid_t pid);
    static long rssKiBOf(pid_t pid);
    std::string logPath() const { return m_log; }
    std::string logTail(size_t bytes = 2000) const;

private:
    const Adapter& m_adapter;
    Paths m_paths;
    ConfigAdditions m_additions;
    pid_t m_pid = -1;
    uint16_t m_port = 0;
    std::string m_log;
};

uint16_t freeLoopbackPort();
double selfCpuSeconds();
std::string commandOutput(const std::vector<std::string>& argv);
std::string replaceAll(std::string text, std::string_view from, std::string_view to);

} // namespace bench
