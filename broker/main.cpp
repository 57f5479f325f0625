// middleman: the headless broker. Reads options and config, starts the library,
// stops gracefully on SIGINT/SIGTERM.

#include "broker.h"
#include "commandline.h"
#include "keystore.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QSocketNotifier>

#include <csignal>
#include <cstdio>
#include <sys/socket.h>
#include <unistd.h>

using namespace Middleman;

namespace {

int g_signalFd[2] = {-1, -1};

void onSignal(int)
{
    const char byte = 1;
    [[maybe_unused]] const auto written = ::write(g_signalFd[0], &byte, 1);
}

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
    // SIGINT/SIGTERM reach the event loop through a socket pair. Installed before
    // "listening on" is printed, so a stop right after it is already graceful.
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, g_signalFd) != 0) {
        std::perror("middleman: socketpair");
        return 1;
    }
    QSocketNotifier notifier(g_signalFd[1], QSocketNotifier::Read);
    QObject::connect(&notifier, &QSocketNotifier::activated, &broker, [&broker, &notifier] {
        char byte;
        [[maybe_unused]] const auto got = ::read(g_signalFd[1], &byte, 1);
        notifier.setEnabled(false);
        broker.shutdown();
    });
    QObject::connect(&broker, &Broker::stopped, &app, [] { QCoreApplication::exit(0); });
    struct sigaction action = {};
    action.sa_handler = onSignal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);

    if (!broker.listen()) {
        std::fprintf(stderr, "middleman: %s\n", qPrintable(broker.errorString()));
        return 1;
    }
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
