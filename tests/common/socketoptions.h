#pragma once
// Socket options of this process's own TCP sockets, found by their ports: for
// tests that host the broker in-process and check what its accepted sockets use.

#include <QDir>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <optional>

namespace Middleman::Testing {

// TCP_NODELAY of the socket in this process whose local port is `localPort` and
// whose peer's port is `peerPort` (the broker's side of a connection: the
// broker's port and the peer's local port); nothing when there is no such socket.
inline std::optional<bool> noDelayOf(quint16 localPort, quint16 peerPort)
{
    const auto port = [](const sockaddr_storage &address) -> int {
        if (address.ss_family == AF_INET)
            return ntohs(reinterpret_cast<const sockaddr_in &>(address).sin_port);
        if (address.ss_family == AF_INET6)
            return ntohs(reinterpret_cast<const sockaddr_in6 &>(address).sin6_port);
        return -1;
    };
    const QStringList fds = QDir(QStringLiteral("/proc/self/fd")).entryList(QDir::AllEntries | QDir::System | QDir::NoDotAndDotDot);
    for (const QString &name : fds) {
        bool ok = false;
        const int fd = name.toInt(&ok);
        if (!ok)
            continue;
        sockaddr_storage local{};
        sockaddr_storage peer{};
        socklen_t localLength = sizeof local;
        socklen_t peerLength = sizeof peer;
        if (::getsockname(fd, reinterpret_cast<sockaddr *>(&local), &localLength) != 0
            || ::getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &peerLength) != 0
            || port(local) != localPort || port(peer) != peerPort) {
            continue;
        }
        int value = 0;
        socklen_t length = sizeof value;
        if (::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &length) != 0)
            return std::nullopt;
        return value != 0;
    }
    return std::nullopt;
}

} // namespace Middleman::Testing
