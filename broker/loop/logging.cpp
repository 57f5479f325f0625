#include "logging.h"

namespace Middleman {
Q_LOGGING_CATEGORY(lcBroker, "middleman.broker", QtInfoMsg)
Q_LOGGING_CATEGORY(lcSession, "middleman.session", QtInfoMsg)
Q_LOGGING_CATEGORY(lcConfig, "middleman.config", QtInfoMsg)
}
