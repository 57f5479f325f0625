#include "machine.h"

#include <sys/resource.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace bench {
namespace {

std::string trim(const std::string& s)
{
    const auto begin = s.find_first_not_of(" \t\r\n");
    if (begin == std::string::npos)
        return {};
    const auto end = s.find_last_not_of(" \t\r\n");
    return s.substr(begin, end - begin + 1);
}

// Value of the first "key<sep>value" line of a file whose key matches exactly.
std::string fileValue(const char* path, const std::string& key, char separator)
{
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        const auto pos = line.find(separator);
        if (pos != std::string::npos && trim(line.substr(0, pos)) == key)
            return trim(line.substr(pos + 1));
    }
    return {};
}

std::string cpuModel()
{
    // x86 names the model "model name"; some ARM kernels only give "Hardware"
    // or "Processor".
    for (const char* key : {"model name", "Hardware", "Processor", "cpu model"}) {
        const std::string value = fileValue("/proc/cpuinfo", key, ':');
        if (!value.empty())
            return value;
    }
    return "unknown";
}

std::string memoryTotal()
{
    const std::string value = fileValue("/proc/meminfo", "MemTotal", ':'); // "16318480 kB"
    const long long kib = std::atoll(value.c_str());
    if (kib <= 0)
        return "unknown";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f GiB", double(kib) / (1024.0 * 1024.0));
    return buf;
}

std::string osName()
{
    std::string value = fileValue("/etc/os-release", "PRETTY_NAME", '=');
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\''))
        value = value.substr(1, value.size() - 2);
    return value.empty() ? "unknown" : value;
}

std::string limitText(rlim_t limit)
{
    return limit == RLIM_INFINITY ? std::string("unlimited") : std::to_string(limit);
}

std::string openFileLimit()
{
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return "unknown";
    return limitText(limit.rlim_cur) + " soft / " + limitText(limit.rlim_max) + " hard";
}

std::string loadAverage()
{
    double load[3] = {};
    if (getloadavg(load, 3) != 3)
        return "unknown";
    char buf[96];
    std::snprintf(buf, sizeof buf, "%.2f / %.2f / %.2f (1 / 5 / 15 min)", load[0], load[1], load[2]);
    return buf;
}

} // namespace

std::string describeMachine()
{
    utsname names{};
    std::string kernel = "unknown";
    if (uname(&names) == 0)
        kernel = std::string(names.sysname) + ' ' + names.release + " (" + names.machine + ')';

    const unsigned cpus = std::thread::hardware_concurrency();

    std::ostringstream out;
    out << "- **CPU:** " << cpuModel() << '\n'
        << "- **Logical CPUs:** " << (cpus > 0 ? std::to_string(cpus) : std::string("unknown")) << '\n'
        << "- **Memory:** " << memoryTotal() << '\n'
        << "- **Kernel:** " << kernel << '\n'
        << "- **OS:** " << osName() << '\n'
        << "- **Open-file limit:** " << openFileLimit() << '\n'
        << "- **Load average:** " << loadAverage() << '\n';
    return out.str();
}

} // namespace bench
