#include "commandline.h"

#include "configfile.h"
#include "keystore.h"
#include "logging.h"
#include "tlscredentials.h"

#include <QLoggingCategory>

namespace Middleman {

namespace {
const QString kConfig = QStringLiteral("config");
const QString kListen = QStringLiteral("listen");
const QString kServiceKey = QStringLiteral("service-key");
const QString kClientKey = QStringLiteral("client-key");
const QString kRequestTimeout = QStringLiteral("request-timeout");
const QString kLogLevel = QStringLiteral("log-level");
const QString kTlsCert = QStringLiteral("tls-cert");
const QString kTlsKey = QStringLiteral("tls-key");
}

void BrokerOptions::addTo(QCommandLineParser *parser)
{
    parser->addOptions({
        {kConfig, QStringLiteral("Read settings from the TOML file <file>."), QStringLiteral("file")},
        {kListen, QStringLiteral("Listen on <host:port> (default 127.0.0.1:8765)."), QStringLiteral("host:port")},
        {kServiceKey, QStringLiteral("Accept <key> as a service key (repeatable; may be sha256:<hex>)."),
         QStringLiteral("key")},
        {kClientKey, QStringLiteral("Accept <key> as a client key (repeatable; may be sha256:<hex>)."),
         QStringLiteral("key")},
        {kRequestTimeout, QStringLiteral("Default request timeout in milliseconds (default 30000)."),
         QStringLiteral("ms")},
        {kLogLevel, QStringLiteral("Log level: debug, info, warning or error (default info)."),
         QStringLiteral("level")},
        {kTlsCert, QStringLiteral("Serve wss:// with the PEM certificate (and chain) in <file>; needs --tls-key."),
         QStringLiteral("file")},
        {kTlsKey, QStringLiteral("The PEM private key for --tls-cert."), QStringLiteral("file")},
    });
}

bool BrokerOptions::read(const QCommandLineParser &parser, BrokerConfig *config, QString *logLevel,
                         QString *error)
{
    if (parser.isSet(kConfig) && !loadConfigFile(parser.value(kConfig), config, logLevel, error))
        return false;
    if (parser.isSet(kListen)
        && !parseListenAddress(parser.value(kListen), &config->listenAddress, &config->port, error)) {
        return false;
    }
    const QStringList serviceKeys = parser.values(kServiceKey);
    for (const QString &key : serviceKeys)
        config->serviceKeys.append(
            KeyConfig{QStringLiteral("service-%1").arg(config->serviceKeys.size() + 1), key.toUtf8()});
    const QStringList clientKeys = parser.values(kClientKey);
    for (const QString &key : clientKeys)
        config->clientKeys.append(
            KeyConfig{QStringLiteral("client-%1").arg(config->clientKeys.size() + 1), key.toUtf8()});
    if (parser.isSet(kRequestTimeout)) {
        bool ok = false;
        const int ms = parser.value(kRequestTimeout).toInt(&ok);
        if (!ok || ms <= 0) {
            if (error)
                *error = QStringLiteral("--request-timeout needs a positive number of milliseconds");
            return false;
        }
        config->requestTimeoutMs = ms;
        config->maxRequestTimeoutMs = qMax(config->maxRequestTimeoutMs, ms);
    }
    if (parser.isSet(kLogLevel) && logLevel)
        *logLevel = parser.value(kLogLevel);
    // Relative to the working directory, as usual on a command line.
    if (parser.isSet(kTlsCert))
        config->tls.certificateFile = parser.value(kTlsCert);
    if (parser.isSet(kTlsKey))
        config->tls.privateKeyFile = parser.value(kTlsKey);
    if (!config->validate(error))
        return false;
    // The files are checked now, so a bad certificate or key is a configuration
    // error (exit status 2) and not a failure to listen.
    if (config->tls.enabled() && !TlsCredentials().load(config->tls, error))
        return false;
    if (parser.isSet(kConfig)) {
        qCInfo(lcConfig).noquote() << "configuration from" << parser.value(kConfig) << "with"
                                   << config->serviceKeys.size() << "service keys,"
                                   << config->clientKeys.size() << "client keys and" << config->grants.size()
                                   << "permanent grants";
    }
    return true;
}

bool BrokerOptions::anySet(const QCommandLineParser &parser)
{
    for (const QString &name :
         {kConfig, kListen, kServiceKey, kClientKey, kRequestTimeout, kLogLevel, kTlsCert, kTlsKey}) {
        if (parser.isSet(name))
            return true;
    }
    return false;
}

bool applyLogLevel(const QString &level, QString *error)
{
    static const QStringList levels{QStringLiteral("debug"), QStringLiteral("info"), QStringLiteral("warning"),
                                    QStringLiteral("error")};
    const qsizetype index = levels.indexOf(level.toLower());
    if (index < 0) {
        if (error)
            *error = QStringLiteral("unknown log level '%1' (debug, info, warning or error)").arg(level);
        return false;
    }
    QStringList rules;
    for (qsizetype i = 0; i < levels.size(); ++i) {
        const QString name = levels.at(i) == QLatin1String("error") ? QStringLiteral("critical") : levels.at(i);
        rules << QStringLiteral("middleman.*.%1=%2").arg(name, i >= index ? QStringLiteral("true")
                                                                          : QStringLiteral("false"));
    }
    QLoggingCategory::setFilterRules(rules.join(QLatin1Char('\n')));
    return true;
}

QList<GeneratedKey> ensureKeys(BrokerConfig *config)
{
    if (!config->serviceKeys.isEmpty() || !config->clientKeys.isEmpty())
        return {};
    const GeneratedKey service{Role::Service, KeyStore::generateKey()};
    const GeneratedKey client{Role::Client, KeyStore::generateKey()};
    config->serviceKeys.append(KeyConfig{QStringLiteral("generated-service"), service.key});
    config->clientKeys.append(KeyConfig{QStringLiteral("generated-client"), client.key});
    return {service, client};
}

} // namespace Middleman
