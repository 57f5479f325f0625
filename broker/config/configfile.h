#pragma once
// Configuration file (TOML) and listen-address parsing; see docs/configuration.md
// and resources/middleman.example.toml. Plain functions.

#include "brokerconfig.h"

#include <QString>

namespace Middleman {

// Reads a TOML file into `config`, over what it holds. Unknown keys are errors,
// so a typo never passes silently. `logLevel` receives log_level if present.
bool loadConfigFile(const QString &path, BrokerConfig *config, QString *logLevel, QString *error);
// Same, from text (tests, and the console).
bool loadConfigText(const QByteArray &text, const QString &sourceName, BrokerConfig *config,
                    QString *logLevel, QString *error);

// "HOST:PORT" or "[IPv6]:PORT"; HOST is an IP address, "localhost" or "*" (all).
bool parseListenAddress(const QString &text, QHostAddress *address, quint16 *port, QString *error);

} // namespace Middleman
