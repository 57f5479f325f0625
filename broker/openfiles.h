#pragma once
// The process's open-file limit: every connection holds a descriptor, so the
// soft limit (often 1024) would stop a broker long before max_connections.
// Plain functions.

namespace Middleman {

// Raises the soft RLIMIT_NOFILE to the hard limit (what an unprivileged
// process may do) and returns the soft limit now in force; -1 if it cannot be
// read. Call once at start, before any thread is made.
long raiseOpenFileLimit();

// The soft RLIMIT_NOFILE in force; -1 if it cannot be read or is unlimited.
long openFileLimit();

// Descriptors a listener leaves free: it stops accepting once a connection
// took one of the last of them (nearOpenFileLimit()).
constexpr long kSpareDescriptors = 32;

// True when `descriptor`, just accepted, leaves fewer than kSpareDescriptors
// below the open-file limit. The kernel hands out the lowest free number, so
// every number below it is open. Out of descriptors, Qt's listener would try
// accept() again at once for as long as that lasts, a loop at full CPU; a
// listener that stops accepting in time never gets there.
bool nearOpenFileLimit(long descriptor);

} // namespace Middleman
