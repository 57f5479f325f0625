#pragma once
// The options the daemon and the console share, read into a BrokerConfig:
// --config FILE, --listen HOST:PORT, --service-key KEY..., --client-key KEY...,
// --request-timeout MS, --log-level LEVEL, --tls-cert FILE, --tls-key FILE. Flags
// override the config file.

#include "brokerconfig.h"

#include <QCommandLineParser>
#include <QList>
#include <QString>

namespace Middleman {

struct GeneratedKey
{
    Role role;
    QByteArray key;
};

class BrokerOptions
{
public:
    static void addTo(QCommandLineParser *parser);
    // Reads --config, then applies the flags over it and validates the result.
    static bool read(const QCommandLineParser &parser, BrokerConfig *config, QString *logLevel,
                     QString *error);
    // True when any of these options was given (the console then starts at launch).
    static bool anySet(const QCommandLineParser &parser);
};

// "debug", "info", "warning" or "error": sets the middleman.* logging rules.
bool applyLogLevel(const QString &level, QString *error);

// With no keys configured, makes one service key and one client key
// (docs/protocol.md §10, decision 20: a usable default that is never silently
// open) and returns them so the caller can print them once. Returns nothing
// when keys were configured.
QList<GeneratedKey> ensureKeys(BrokerConfig *config);

} // namespace Middleman
