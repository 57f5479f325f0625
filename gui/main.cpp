// middleman-console: the broker library on its own thread, shown live in a
// window. Takes the daemon's options; given any, the broker starts at launch.
// Closing the window or SIGINT/SIGTERM stop the broker gracefully, then quit.

#include "brokerhost.h"
#include "commandline.h"
#include "eventloop.h"
#include "mainwindow.h"
#include "openfiles.h"
#include "signalwatcher.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QThread>

#include <cstdio>

using namespace Middleman;

int main(int argc, char *argv[])
{
    raiseOpenFileLimit(); // as the daemon: each connection holds a descriptor
    preferScalableEventDispatcher(); // the window's thread; the broker's gets epoll below
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("middleman-console"));
    QApplication::setApplicationVersion(QStringLiteral(MIDDLEMAN_VERSION));

    QCommandLineParser parser;
    parser.setApplicationDescription(
        QStringLiteral("Console for the middleman broker: hosts it and shows connections, topics, "
                       "pending requests and traffic live."));
    parser.addHelpOption();
    parser.addVersionOption();
    BrokerOptions::addTo(&parser);
    if (!parser.parse(QCoreApplication::arguments())) {
        std::fprintf(stderr, "middleman-console: %s\n", qPrintable(parser.errorText()));
        return 2;
    }
    if (parser.isSet(QStringLiteral("help")))
        parser.showHelp(0);
    if (parser.isSet(QStringLiteral("version")))
        parser.showVersion();
    if (!parser.positionalArguments().isEmpty()) {
        std::fprintf(stderr, "middleman-console: unexpected argument '%s'\n",
                     qPrintable(parser.positionalArguments().first()));
        return 2;
    }

    BrokerConfig config;
    QString logLevel = QStringLiteral("info");
    QString error;
    if (!BrokerOptions::read(parser, &config, &logLevel, &error) || !applyLogLevel(logLevel, &error)) {
        std::fprintf(stderr, "middleman-console: %s\n", qPrintable(error));
        return 2;
    }
    // As the daemon: with no keys configured, one of each kind for this run,
    // printed once and shown in the window, never logged.
    QString keysNote;
    const QList<GeneratedKey> generated = ensureKeys(&config);
    if (!generated.isEmpty()) {
        QStringList parts;
        std::printf("No keys configured; generated for this run:\n");
        for (const GeneratedKey &key : generated) {
            const char *role = key.role == Role::Service ? "service" : "client";
            std::printf("  %s key: %s\n", role, key.key.constData());
            parts.append(QStringLiteral("%1 key %2").arg(QLatin1String(role), QString::fromLatin1(key.key)));
        }
        std::fflush(stdout);
        keysNote = QStringLiteral("Generated for this run: ") + parts.join(QStringLiteral(" · "));
    }

    // The engine runs on its own thread, so neither side can stall the other.
    QThread engineThread;
    engineThread.setObjectName(QStringLiteral("broker"));
    auto *host = new BrokerHost;
    installBrokerEventDispatcher(&engineThread); // epoll (docs/design.md, "Event loop")
    host->moveToThread(&engineThread);
    QObject::connect(&engineThread, &QThread::finished, host, &QObject::deleteLater);
    engineThread.start();

    MainWindow window(config, keysNote);
    connectConsole(host, &window);
    QObject::connect(host, &BrokerHost::started, &window, [](const QUrl &url) {
        std::printf("middleman-console listening on %s\n", qPrintable(url.toString()));
        std::fflush(stdout);
    });
    QObject::connect(host, &BrokerHost::startFailed, &window, [](const QString &why) {
        std::fprintf(stderr, "middleman-console: not started: %s\n", qPrintable(why));
    });
    // SIGINT/SIGTERM close the window, which stops the broker gracefully first.
    SignalWatcher stopSignals;
    QObject::connect(&stopSignals, &SignalWatcher::stopRequested, &window, &QWidget::close);
    window.show();
    if (BrokerOptions::anySet(parser))
        window.requestStart();

    const int code = app.exec();
    engineThread.quit();
    engineThread.wait();
    return code;
}
