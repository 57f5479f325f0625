#pragma once
// The process's open-file limit: every connection holds a descriptor, so the
// soft limit (often 1024) would stop a broker long before max_connections.
// Plain functions.

class QTcpServer;

namespace Middleman {

// Raises the soft RLIMIT_NOFILE to the hard limit (what an unprivileged
// process may do) and returns the soft limit now in force; -1 if it cannot be
// read. Call once at start, before any thread is made.
long raiseOpenFileLimit();

// The soft RLIMIT_NOFILE in force; -1 if it cannot be read or is unlimited.
long openFileLimit();

// True when `descriptor`, just accepted, leaves fewer than 32 descriptors (an
// eighth of a smaller limit) below the open-file limit. The kernel hands out the lowest free number, so
// every number below it is open. Out of descriptors, Qt 6.4's listener tries
// accept() again on every turn of the loop for as long as that lasts, at full
// CPU (docs/design.md, "Open files"); one that stops in time never gets there.
bool nearOpenFileLimit(long descriptor);
// The same for the descriptor the kernel would hand out next, found by
// duplicating `open`, any descriptor of the caller's.
bool openFilesNearLimit(int open);

// Stops a listener accepting, also from inside its own accept loop (where
// pauseAccepting() alone lets the loop go on until accept() fails), and lets
// it accept again.
void stopAccepting(QTcpServer *server);
void startAccepting(QTcpServer *server);

} // namespace Middleman
