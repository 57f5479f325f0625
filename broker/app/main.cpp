// middleman: the headless broker. Reads options and config, starts the library,
// stops gracefully on SIGINT/SIGTERM.

#include "broker.h"
#include "commandline.h"
#include "eventloop.h"
#include "keystore.h"
#include "logging.h"
#include "openfiles.h"
#include "signalwatcher.h"

#include <QCommandLineParser>
#include <QCoreApplication>

#include <cstdio>

using namespace Middleman;

namespace {

int hashKey(const QStringList &args)
{
    // middleman hash-key [KEY]: prints the sha256: form; reads stdin without KEY
    // so the key stays out of the shell history.
    QByteArray key;
    if (args.size() > 1) {
        key = args.at(1).toUtf8();
    } else {
        char line[4096];
        if (std::fgets(line, sizeof line, stdin))
            key = QByteArray(line).trimmed();
    }
    QString why;
    if (!KeyStore::checkKey(key, &why)) {
        std::fprintf(stderr, "middleman: %s\n", qPrintable(why));
        return 2;
    }
    std::printf("%s\n", KeyStore::hashedForm(key).constData());
    return 0;
}

} // namespace

int main(int argc, char *argv[])
{
    // Each connection holds a descriptor (docs/configuration.md, max_connections).
    raiseOpenFileLimit();
    // epoll (docs/design.md, "Event loop"); Qt's poll()-based one on request.
    if (!installBrokerEventDispatcher())
        preferScalableEventDispatcher();
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("middleman"));
    QCoreApplication::setApplicationVersion(QStringLiteral(MIDDLEMAN_VERSION));

    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("WebSocket publish/subscribe and request/response broker.\n"
                       "  middleman hash-key [KEY]   print the sha256: form of a key"));
    parser.addHelpOption();
    parser.addVersionOption();
    BrokerOptions::addTo(&parser);
    parser.addPositionalArgument(QStringLiteral("command"), QStringLiteral("hash-key, or nothing to run"),
                                 QStringLiteral("[hash-key [KEY]]"));
    // Every usage and configuration error exits with 2; --help and --version with 0.
    if (!parser.parse(QCoreApplication::arguments())) {
        std::fprintf(stderr, "middleman: %s\n", qPrintable(parser.errorText()));
        return 2;
    }
    if (parser.isSet(QStringLiteral("help")))
        parser.showHelp(0);
    if (parser.isSet(QStringLiteral("version")))
        parser.showVersion();

    const QStringList positional = parser.positionalArguments();
    if (!positional.isEmpty()) {
        if (positional.first() == QLatin1String("hash-key"))
            return hashKey(positional);
        std::fprintf(stderr, "middleman: unknown command '%s'\n", qPrintable(positional.first()));
        return 2;
    }

    BrokerConfig config;
    QString logLevel = QStringLiteral("info");
    QString error;
    if (!BrokerOptions::read(parser, &config, &logLevel, &error) || !applyLogLevel(logLevel, &error)) {
        std::fprintf(stderr, "middleman: %s\n", qPrintable(error));
        return 2;
    }
    const QList<GeneratedKey> generated = ensureKeys(&config);

    Broker broker(config);
    // SIGINT/SIGTERM reach the event loop as a signal. Installed before
    // "listening on" is printed, so a stop right after it is already graceful.
    SignalWatcher stopSignals;
    if (!stopSignals.isValid()) {
        std::fprintf(stderr, "middleman: %s\n", qPrintable(stopSignals.errorString()));
        return 1;
    }
    QObject::connect(&stopSignals, &SignalWatcher::stopRequested, &broker, &Broker::shutdown);
    QObject::connect(&broker, &Broker::stopped, &app, [] { QCoreApplication::exit(0); });

    if (!broker.listen()) {
        std::fprintf(stderr, "middleman: %s\n", qPrintable(broker.errorString()));
        return 1;
    }
    qCDebug(lcBroker).noquote() << "event dispatcher:" << eventDispatcherName();
    std::printf("middleman listening on %s\n", qPrintable(broker.serverUrl().toString()));
    if (!generated.isEmpty()) {
        // Printed once, to standard output only; never logged.
        std::printf("No keys configured; generated for this run:\n");
        for (const GeneratedKey &key : generated) {
            std::printf("  %s key: %s\n", key.role == Role::Service ? "service" : "client",
                        key.key.constData());
        }
    }
    std::fflush(stdout);

    return app.exec();
}
