#include "openfiles.h"

#include <sys/resource.h>

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
    return limit > 0 && descriptor >= limit - kSpareDescriptors;
}

} // namespace Middleman
