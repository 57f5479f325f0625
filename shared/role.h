#pragma once
// What an API key makes a connection (docs/protocol.md §4.6): a service, a
// trusted backend, or a client, a browser or an app. None until its key is
// accepted.

#include <QtGlobal>

namespace Middleman {

enum class Role : quint8 { None, Service, Client };

} // namespace Middleman
