#include "openfiles.h"

#include <QTcpServer>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

namespace Middleman {

long raiseOpenFileLimit()
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
        return -1;
    if (limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        // Refused where the hard limit is above the kernel's nr_open: the old
        // soft limit stays, which openFileLimit() then reports.
        (void)::setrlimit(RLIMIT_NOFILE, &limit);
    }
    return openFileLimit();
}

long openFileLimit()
{
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
        return -1;
    return long(limit.rlim_cur);
}

bool nearOpenFileLimit(long descriptor)
{
    const long limit = openFileLimit();
    return limit > 0 && descriptor >= limit - qMin(32L, limit / 8);
}

bool openFilesNearLimit(int open)
{
    const int next = ::fcntl(open, F_DUPFD_CLOEXEC, 0);
    if (next < 0)
        return errno == EMFILE;
    ::close(next);
    return nearOpenFileLimit(next);
}

// QTcpServer's accept loop ends when its pending connections reach their
// maximum; the listeners here take every connection themselves, so they have
// none pending, and a maximum of 0 ends the loop at once.
void stopAccepting(QTcpServer *server)
{
    server->setMaxPendingConnections(0);
    server->pauseAccepting();
}

void startAccepting(QTcpServer *server)
{
    server->setMaxPendingConnections(30); // QTcpServer's default
    server->resumeAccepting();
}

} // namespace Middleman
