#pragma once
// Logging categories of the broker library (enable with QT_LOGGING_RULES or --log-level).

#include <QLoggingCategory>

namespace Middleman {
Q_DECLARE_LOGGING_CATEGORY(lcBroker)   // middleman.broker: listen, shutdown, limits
Q_DECLARE_LOGGING_CATEGORY(lcSession)  // middleman.session: connect, disconnect, refused keys
Q_DECLARE_LOGGING_CATEGORY(lcConfig)   // middleman.config: configuration loading
}
