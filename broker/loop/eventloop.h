#pragma once

#include <QByteArray>

class QThread;

namespace Middleman {

// Chooses Qt's own poll()-based event dispatcher over the GLib one, unless
// QT_NO_GLIB is already set in the environment. Call before the application
// object is made. The GLib dispatcher does work in proportion to the number of
// open sockets on every turn of the loop and every time a socket starts or
// stops waiting to write; with 10 000 connections middleman-bench measured
// 5x the topics throughput and 4x faster connection opening without it
// (docs/design.md, "Event loop").
void preferScalableEventDispatcher();

// Gives `thread` (the main thread when null: call before the application object
// is made; another thread: before it starts) the epoll-based dispatcher
// (epolldispatcher.h), whose turn costs what the ready sockets cost rather than
// what the open ones do. MIDDLEMAN_EVENT_DISPATCHER=qt in the environment keeps
// Qt's own instead. Returns false when Qt's is kept.
bool installBrokerEventDispatcher(QThread *thread = nullptr);

// The class name of this thread's event dispatcher, for the log.
QByteArray eventDispatcherName();

} // namespace Middleman
