#include "brokerprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

extern char** environ;

namespace bench {

std::string replaceAll(std::string text, std::string_view from, std::string_view to)
{
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

uint16_t freeLoopbackPort()
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0
        && ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
        port = ntohs(address.sin_port);
    }
    ::close(fd);
    return port;
}

static bool accepts(uint16_t port)
{
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
    ::close(fd);
    return ok;
}

double selfCpuSeconds()
{
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    return double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

static std::string readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

BrokerProcess::BrokerProcess(const Adapter& adapter, const Paths& paths, ConfigAdditions additions)
    : m_adapter(adapter), m_paths(paths), m_additions(std::move(additions))
{
}

BrokerProcess::~BrokerProcess()
{
    stop();
}

bool BrokerProcess::start(std::string* error)
{
    const Launch launch = m_adapter.launch();
    std::vector<std::string> parts = {launch.configTemplate};
    if (m_additions.openLimits)
        parts.push_back(launch.openLimits);
    std::string config;
    for (const std::string& part : parts) {
        const std::string path = m_paths.peers + '/' + part;
        const std::string text = readFile(path);
        if (text.empty()) {
            *error = "cannot read " + path;
            return false;
        }
        config += text + '\n';
    }
    config += m_additions.lines;
    m_port = freeLoopbackPort();
    config = replaceAll(config, "@WS_PORT@", std::to_string(m_port));
    config = replaceAll(config, "@OTHER_PORT@", std::to_string(freeLoopbackPort()));
    // Named after its last file: a run's directory shows which each broker
    // last ran on, its defaults or its limits opened up.
    const std::string configPath = m_paths.work + '/' + parts.back();
    std::ofstream(configPath, std::ios::binary | std::ios::trunc) << config;
    m_log = m_paths.work + '/' + m_adapter.name() + ".log";

    std::vector<std::string> arguments;
    for (const std::string& argument : launch.arguments) {
        std::string filled = replaceAll(argument, "{config}", configPath);
        filled = replaceAll(filled, "{port}", std::to_string(m_port));
        arguments.push_back(replaceAll(filled, "{bin}", m_paths.bin));
    }
    std::vector<char*> argv;
    for (std::string& argument : arguments)
        argv.push_back(argument.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, m_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    const int spawned = posix_spawnp(&m_pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawned != 0) {
        m_pid = -1;
        *error = "cannot start " + arguments[0] + ": " + std::strerror(spawned);
        return false;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
        int status = 0;
        if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
            m_pid = -1;
            *error = arguments[0] + " exited at start: " + logTail(600);
            return false;
        }
        if (accepts(m_port))
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    *error = arguments[0] + " did not listen on port " + std::to_string(m_port) + " within 15 s";
    stop();
    return false;
}

void BrokerProcess::stop()
{
    if (m_pid <= 0)
        return;
    ::kill(m_pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(m_pid, &status, WNOHANG) != m_pid) {
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(m_pid, SIGKILL);
            ::waitpid(m_pid, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    m_pid = -1;
}

double BrokerProcess::cpuSecondsOf(pid_t pid)
{
    // /proc/PID/stat: utime and stime are fields 14 and 15, counted after the
    // command name, which may hold spaces but ends at the last ')'.
    const std::string stat = readFile("/proc/" + std::to_string(pid) + "/stat");
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos)
        return 0;
    std::istringstream fields(stat.substr(paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int number = 3; fields >> field; ++number) {
        if (number == 14)
            utime = std::stoull(field);
        if (number == 15) {
            stime = std::stoull(field);
            break;
        }
    }
    return double(utime + stime) / double(::sysconf(_SC_CLK_TCK));
}

long BrokerProcess::rssKiBOf(pid_t pid)
{
    std::istringstream status(readFile("/proc/" + std::to_string(pid) + "/status"));
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0)
            return std::stol(line.substr(6));
    }
    return 0;
}

std::string BrokerProcess::logTail(size_t bytes) const
{
    const std::string log = readFile(m_log);
    return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

std::string commandOutput(const std::vector<std::string>& argv)
{
    std::string command;
    for (const std::string& argument : argv)
        command += "'" + argument + "' ";
    command += "2>&1";
    std::string output;
    if (FILE* pipe = ::popen(command.c_str(), "r")) {
        char buffer[512];
        size_t n;
        while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0)
            output.append(buffer, n);
        ::pclose(pipe);
    }
    return output;
}

} // namespace bench
