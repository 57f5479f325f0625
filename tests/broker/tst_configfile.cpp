// Unit tests for the broker's configuration: the TOML file (configfile.h), the
// listen address, BrokerConfig::validate and the shared command line
// (commandline.h: flags over the file, keys, log level).

#include "brokerconfig.h"
#include "commandline.h"
#include "configfile.h"
#include "keystore.h"
#include "logging.h"

#include <QCommandLineParser>
#include <QFile>
#include <QTemporaryDir>
#include <QTest>

#include <functional>

using namespace Middleman;

using Mutator = std::function<void(BrokerConfig *)>;
Q_DECLARE_METATYPE(Mutator)

namespace {

const QString kSource = QStringLiteral("cfg.toml");

// Every number of a BrokerConfig by its TOML name, to compare whole configs.
QList<std::pair<QByteArray, qint64>> numbers(const BrokerConfig &c)
{
    return {
        {"port", c.port},
        {"max_message_size", c.codec.maxMessageSize},
        {"max_frame_size", c.maxFrameSize},
        {"max_headers", c.codec.maxHeaders},
        {"max_header_bytes", c.codec.maxHeaderBytes},
        {"max_target_length", c.codec.maxTargetLength},
        {"client.max_messages_per_second", c.clientLimits.maxMessagesPerSecond},
        {"client.message_burst", c.clientLimits.messageBurst},
        {"client.rate_limit_action", qint64(c.clientLimits.rateLimitAction)},
        {"client.outbound_queue_bytes", c.clientLimits.outboundQueueBytes},
        {"client.max_subscriptions", c.clientLimits.maxSubscriptions},
        {"client.max_pending_requests", c.clientLimits.maxPendingRequests},
        {"service.max_messages_per_second", c.serviceLimits.maxMessagesPerSecond},
        {"service.message_burst", c.serviceLimits.messageBurst},
        {"service.rate_limit_action", qint64(c.serviceLimits.rateLimitAction)},
        {"service.outbound_queue_bytes", c.serviceLimits.outboundQueueBytes},
        {"service.max_subscriptions", c.serviceLimits.maxSubscriptions},
        {"service.max_pending_requests", c.serviceLimits.maxPendingRequests},
        {"handshake_timeout_ms", c.handshakeTimeoutMs},
        {"max_connections", c.maxConnections},
        {"max_connections_per_address", c.maxConnectionsPerAddress},
        {"failed_keys_before_backoff", c.failedKeysBeforeBackoff},
        {"failed_key_backoff_ms", c.failedKeyBackoffMs},
        {"max_failed_key_backoff_ms", c.maxFailedKeyBackoffMs},
        {"request_timeout_ms", c.requestTimeoutMs},
        {"max_request_timeout_ms", c.maxRequestTimeoutMs},
        {"ping_interval_ms", c.pingIntervalMs},
        {"max_missed_pings", c.maxMissedPings},
        {"shutdown_grace_ms", c.shutdownGraceMs},
        {"idle_spin_us", c.idleSpinUs},
    };
}

// Names of the fields where two configs differ.
QList<QByteArray> differences(const BrokerConfig &a, const BrokerConfig &b)
{
    QList<QByteArray> names;
    const auto na = numbers(a);
    const auto nb = numbers(b);
    for (qsizetype i = 0; i < na.size(); ++i) {
        if (na.at(i).second != nb.at(i).second)
            names.append(na.at(i).first);
    }
    if (a.listenAddress != b.listenAddress)
        names.append("listen");
    if (a.serviceKeys.size() != b.serviceKeys.size())
        names.append("service_keys");
    if (a.clientKeys.size() != b.clientKeys.size())
        names.append("client_keys");
    if (a.grants.size() != b.grants.size())
        names.append("grants");
    return names;
}

// A per-role key of [limits] sets the field of both roles.
QList<QByteArray> bothRoles(const QByteArray &key)
{
    return {"client." + key, "service." + key};
}

QStringList names(const QList<KeyConfig> &keys)
{
    QStringList out;
    for (const KeyConfig &key : keys)
        out.append(key.name);
    return out;
}

QList<QByteArray> secrets(const QList<KeyConfig> &keys)
{
    QList<QByteArray> out;
    for (const KeyConfig &key : keys)
        out.append(key.key);
    return out;
}

bool parseArgs(QCommandLineParser *parser, const QStringList &args)
{
    BrokerOptions::addTo(parser);
    return parser->parse(QStringList{QStringLiteral("middleman")} + args);
}

} // namespace

class tst_ConfigFile : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    // loadConfigText
    void loadEverything();
    void loadEachLimit_data();
    void loadEachLimit();
    void loadRoleLimits_data();
    void loadRoleLimits();
    void absentMeansDefault_data();
    void absentMeansDefault();
    void loadErrors_data();
    void loadErrors();
    void loadFileMissing();
    void exampleHoldsTheDefaults();
    // parseListenAddress
    void parseListenAddress_data();
    void parseListenAddress();
    // BrokerConfig::validate
    void validate_data();
    void validate();
    // BrokerOptions, ensureKeys, applyLogLevel
    void flagsOverrideConfig_data();
    void flagsOverrideConfig();
    void keyFlagsAppendNamedKeys();
    void readErrors_data();
    void readErrors();
    void ensureKeys_data();
    void ensureKeys();
    void applyLogLevel_data();
    void applyLogLevel();

private:
    QString writeConfig(const QByteArray &text);

    QTemporaryDir m_dir;
    int m_files = 0;
};

void tst_ConfigFile::initTestCase()
{
    QVERIFY2(m_dir.isValid(), qPrintable(m_dir.errorString()));
    // ctest sets QT_LOGGING_RULES=middleman.*.debug=false, and the environment
    // wins over applyLogLevel's rules: without it the debug level is checked too.
    qunsetenv("QT_LOGGING_RULES");
}

QString tst_ConfigFile::writeConfig(const QByteArray &text)
{
    const QString path = m_dir.filePath(QStringLiteral("config-%1.toml").arg(++m_files));
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(text) != text.size())
        qFatal("cannot write %s", qPrintable(path));
    return path;
}

void tst_ConfigFile::loadEverything()
{
    const QByteArray digest = KeyStore::hashedForm("hidden");
    const QByteArray text = "listen = \"0.0.0.0:9001\"\n"
                            "log_level = \"debug\"\n"
                            "\n"
                            "[[service_keys]]\n"
                            "name = \"billing\"\n"
                            "key = \"svc-key-1\"\n"
                            "\n"
                            "[[service_keys]]\n" // no name: one is made up
                            "key = \"" + digest + "\"\n"
                            "\n"
                            "[[client_keys]]\n"
                            "name = \"web\"\n"
                            "key = \"cli-key\"\n"
                            "\n"
                            "[[grants]]\n"
                            "kind = \"ESUB\"\n"
                            "pattern = \"chat.>\"\n"
                            "[[grants]]\n"
                            "kind = \"epub\"\n" // case-insensitive, like commands on the wire
                            "pattern = \"chat.*\"\n"
                            "[[grants]]\n"
                            "kind = \"EREQ\"\n"
                            "pattern = \"svc.math\"\n"
                            "\n"
                            "[limits]\n"
                            "max_message_size = 2000000\n"
                            "max_frame_size = 5000000\n"
                            "max_headers = 32\n"
                            "max_header_bytes = 8192\n"
                            "max_target_length = 128\n"
                            "outbound_queue_bytes = 1048576\n"
                            "max_subscriptions = 50\n"
                            "max_pending_requests = 60\n"
                            "handshake_timeout_ms = 2000\n"
                            "request_timeout_ms = 1500\n"
                            "max_request_timeout_ms = 9000\n"
                            "ping_interval_ms = 700\n"
                            "max_missed_pings = 5\n"
                            "shutdown_grace_ms = 100\n";

    BrokerConfig config;
    QString logLevel;
    QString error;
    QVERIFY2(loadConfigText(text, kSource, &config, &logLevel, &error), qPrintable(error));
    QVERIFY(error.isEmpty());

    QCOMPARE(config.listenAddress, QHostAddress(QStringLiteral("0.0.0.0")));
    QCOMPARE(config.port, quint16(9001));
    QCOMPARE(logLevel, QStringLiteral("debug"));

    QCOMPARE(names(config.serviceKeys), (QStringList{QStringLiteral("billing"), QStringLiteral("service-2")}));
    QCOMPARE(secrets(config.serviceKeys), (QList<QByteArray>{"svc-key-1", digest}));
    QCOMPARE(names(config.clientKeys), QStringList{QStringLiteral("web")});
    QCOMPARE(secrets(config.clientKeys), QList<QByteArray>{"cli-key"});

    QCOMPARE(config.grants.size(), qsizetype(3));
    QCOMPARE(config.grants.at(0).kind, Command::Esub);
    QCOMPARE(config.grants.at(0).pattern, QByteArrayLiteral("chat.>"));
    QCOMPARE(config.grants.at(1).kind, Command::Epub);
    QCOMPARE(config.grants.at(1).pattern, QByteArrayLiteral("chat.*"));
    QCOMPARE(config.grants.at(2).kind, Command::Ereq);
    QCOMPARE(config.grants.at(2).pattern, QByteArrayLiteral("svc.math"));

    QCOMPARE(config.codec.maxMessageSize, qsizetype(2000000));
    QCOMPARE(config.maxFrameSize, qint64(5000000));
    QCOMPARE(config.codec.maxHeaders, 32);
    QCOMPARE(config.codec.maxHeaderBytes, qsizetype(8192));
    QCOMPARE(config.codec.maxTargetLength, 128);
    for (const RoleLimits *limits : {&config.clientLimits, &config.serviceLimits}) {
        QCOMPARE(limits->outboundQueueBytes, qint64(1048576));
        QCOMPARE(limits->maxSubscriptions, 50);
        QCOMPARE(limits->maxPendingRequests, 60);
    }
    QCOMPARE(config.handshakeTimeoutMs, 2000);
    QCOMPARE(config.requestTimeoutMs, 1500);
    QCOMPARE(config.maxRequestTimeoutMs, 9000);
    QCOMPARE(config.pingIntervalMs, 700);
    QCOMPARE(config.maxMissedPings, 5);
    QCOMPARE(config.shutdownGraceMs, 100);

    // What was read is a valid configuration, and its keys work.
    QVERIFY2(config.validate(&error), qPrintable(error));
    KeyStore keys;
    for (const KeyConfig &key : std::as_const(config.serviceKeys))
        keys.add(Role::Service, key);
    const std::optional<KeyStore::Match> match = keys.lookup("hidden");
    QVERIFY(match);
    QCOMPARE(match->name, QStringLiteral("service-2"));
}

void tst_ConfigFile::loadEachLimit_data()
{
    QTest::addColumn<QByteArray>("name");
    QTest::addColumn<qint64>("value");
    QTest::addColumn<QList<QByteArray>>("fields"); // empty: the field named `name`

    // Each [limits] key reaches its own field, and only it; a per-role key
    // reaches the field of both roles. Large values for the 64-bit sizes check
    // nothing is cut to 32 bits on the way.
    const auto row = [](const char *tag, const char *name, qint64 value, const QList<QByteArray> &fields = {}) {
        QTest::addRow("%s", tag) << QByteArray(name) << value << fields;
    };
    const auto one = [&](const char *name, qint64 value) { row(name, name, value); };
    const auto both = [&](const char *name, qint64 value) { row(name, name, value, bothRoles(name)); };
    one("max_message_size", 5'000'000'000);
    one("max_frame_size", 6'000'000'000);
    one("max_headers", 7);
    one("max_header_bytes", 3'000'000'000);
    one("max_target_length", 64);
    one("handshake_timeout_ms", 1234);
    one("request_timeout_ms", 2345);
    one("max_request_timeout_ms", 3456);
    one("ping_interval_ms", 4567);
    one("max_missed_pings", 9);
    one("shutdown_grace_ms", 5678);
    one("idle_spin_us", 321);
    one("max_connections", 12);
    one("max_connections_per_address", 13);
    one("failed_keys_before_backoff", 14);
    one("failed_key_backoff_ms", 15);
    one("max_failed_key_backoff_ms", 16);
    both("outbound_queue_bytes", 4'294'967'296);
    both("max_subscriptions", 3);
    both("max_pending_requests", 4);
    both("max_messages_per_second", 77);
    both("message_burst", 88);
    row("narrow field at int max", "max_subscriptions", 2147483647, bothRoles("max_subscriptions"));
}

void tst_ConfigFile::loadEachLimit()
{
    QFETCH(QByteArray, name);
    QFETCH(qint64, value);
    QFETCH(QList<QByteArray>, fields);
    if (fields.isEmpty())
        fields = {name};

    BrokerConfig config;
    QString error;
    QVERIFY2(loadConfigText("[limits]\n" + name + " = " + QByteArray::number(value) + '\n', kSource, &config,
                            nullptr, &error),
             qPrintable(error));
    QCOMPARE(differences(config, BrokerConfig()), fields);
    for (const auto &[field, number] : numbers(config)) {
        if (fields.contains(field))
            QCOMPARE(number, value);
    }
}

void tst_ConfigFile::loadRoleLimits_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QList<std::pair<QByteArray, qint64>>>("changed"); // every field that differs from the default
    using Changes = QList<std::pair<QByteArray, qint64>>;
    const qint64 refuse = qint64(RateLimitAction::Refuse);

    QTest::addRow("[limits.client] sets clients only")
        << QByteArrayLiteral("[limits.client]\nmax_messages_per_second = 50\nmessage_burst = 60\n"
                             "rate_limit_action = \"refuse\"\nmax_pending_requests = 70\n"
                             "max_subscriptions = 80\noutbound_queue_bytes = 90\n")
        << Changes{{"client.max_messages_per_second", 50}, {"client.message_burst", 60},
                   {"client.rate_limit_action", refuse},   {"client.outbound_queue_bytes", 90},
                   {"client.max_subscriptions", 80},       {"client.max_pending_requests", 70}};
    QTest::addRow("[limits.service] sets services only")
        << QByteArrayLiteral("[limits.service]\nmax_messages_per_second = 5000\nrate_limit_action = \"refuse\"\n")
        << Changes{{"service.max_messages_per_second", 5000}, {"service.rate_limit_action", refuse}};
    QTest::addRow("a key in [limits] sets both roles")
        << QByteArrayLiteral("[limits]\nrate_limit_action = \"refuse\"\nmax_messages_per_second = 5\n")
        << Changes{{"client.max_messages_per_second", 5}, {"client.rate_limit_action", refuse},
                   {"service.max_messages_per_second", 5}, {"service.rate_limit_action", refuse}};
    QTest::addRow("a role table wins over [limits]")
        << QByteArrayLiteral("[limits]\nmax_subscriptions = 7\n[limits.service]\nmax_subscriptions = 9\n")
        << Changes{{"client.max_subscriptions", 7}, {"service.max_subscriptions", 9}};
    QTest::addRow("a role table wins, written first")
        << QByteArrayLiteral("[limits.client]\nmax_subscriptions = 9\n[limits]\nmax_subscriptions = 7\n")
        << Changes{{"client.max_subscriptions", 9}, {"service.max_subscriptions", 7}};
    QTest::addRow("inline role tables")
        << QByteArrayLiteral("[limits]\nclient = { max_pending_requests = 3 }\nservice = { max_pending_requests = 4 }\n")
        << Changes{{"client.max_pending_requests", 3}, {"service.max_pending_requests", 4}};
    QTest::addRow("pace spelled out") << QByteArrayLiteral("[limits.client]\nrate_limit_action = \"pace\"\n")
                                      << Changes{};
    QTest::addRow("empty role tables") << QByteArrayLiteral("[limits.client]\n[limits.service]\n") << Changes{};
}

void tst_ConfigFile::loadRoleLimits()
{
    QFETCH(QByteArray, text);
    using Changes = QList<std::pair<QByteArray, qint64>>;
    QFETCH(Changes, changed);

    BrokerConfig config;
    QString error;
    QVERIFY2(loadConfigText(text, kSource, &config, nullptr, &error), qPrintable(error));
    Changes actual;
    const auto defaults = numbers(BrokerConfig());
    const auto loaded = numbers(config);
    for (qsizetype i = 0; i < loaded.size(); ++i) {
        if (loaded.at(i).second != defaults.at(i).second)
            actual.append(loaded.at(i));
    }
    QCOMPARE(actual, changed);
    QVERIFY2(config.validate(&error), qPrintable(error));
}

void tst_ConfigFile::absentMeansDefault_data()
{
    QTest::addColumn<QByteArray>("text");

    QTest::addRow("empty file") << QByteArray();
    QTest::addRow("only comments and blank lines") << QByteArrayLiteral("# nothing here\n\n   # still nothing\n");
    QTest::addRow("empty limits table") << QByteArrayLiteral("[limits]\n");
    QTest::addRow("empty key and grant lists")
        << QByteArrayLiteral("service_keys = []\nclient_keys = []\ngrants = []\n");
}

void tst_ConfigFile::absentMeansDefault()
{
    QFETCH(QByteArray, text);

    BrokerConfig config;
    QString logLevel = QStringLiteral("keep");
    QString error;
    QVERIFY2(loadConfigText(text, kSource, &config, &logLevel, &error), qPrintable(error));
    QCOMPARE(differences(config, BrokerConfig()), QList<QByteArray>());
    QCOMPARE(config.listenAddress, QHostAddress(QHostAddress::LocalHost));
    QCOMPARE(config.port, quint16(8765));
    QVERIFY(config.serviceKeys.isEmpty());
    QVERIFY(config.clientKeys.isEmpty());
    QVERIFY(config.grants.isEmpty());
    QCOMPARE(logLevel, QStringLiteral("keep"));

    // Loading over a config keeps what the file does not mention.
    BrokerConfig before;
    before.port = 1;
    before.requestTimeoutMs = 77;
    before.serviceKeys.append(KeyConfig{QStringLiteral("earlier"), QByteArrayLiteral("k")});
    QVERIFY2(loadConfigText(text, kSource, &before, nullptr, &error), qPrintable(error));
    QCOMPARE(before.port, quint16(1));
    QCOMPARE(before.requestTimeoutMs, 77);
    QCOMPARE(names(before.serviceKeys), QStringList{QStringLiteral("earlier")});
}

void tst_ConfigFile::loadErrors_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<QString>("expected"); // part of the error

    QTest::addRow("bad TOML, line 3") << QByteArrayLiteral("listen = \"127.0.0.1:1\"\nlog_level = \"info\"\n"
                                                           "this is = = wrong\n")
                                      << QStringLiteral("cfg.toml:3:");
    QTest::addRow("unterminated string, line 2")
        << QByteArrayLiteral("log_level = \"info\"\nlisten = \"127.0.0.1:1\n") << QStringLiteral("cfg.toml:2:");
    QTest::addRow("duplicate key, line 2") << QByteArrayLiteral("listen = \"127.0.0.1:1\"\nlisten = \"127.0.0.1:2\"\n")
                                           << QStringLiteral("cfg.toml:2:");
    QTest::addRow("unknown top-level key") << QByteArrayLiteral("lissen = \"127.0.0.1:1\"\n")
                                           << QStringLiteral("cfg.toml: unknown key 'lissen'");
    QTest::addRow("unknown table") << QByteArrayLiteral("[limit]\nmax_headers = 3\n")
                                   << QStringLiteral("unknown key 'limit'");
    QTest::addRow("unknown limits key") << QByteArrayLiteral("[limits]\nmax_msg_size = 5\n")
                                        << QStringLiteral("limits: unknown key 'max_msg_size'");
    QTest::addRow("listen not a string") << QByteArrayLiteral("listen = 8765\n")
                                         << QStringLiteral("listen must be a string");
    QTest::addRow("listen without port") << QByteArrayLiteral("listen = \"127.0.0.1\"\n")
                                         << QStringLiteral("listen: expected HOST:PORT");
    QTest::addRow("listen with bad host") << QByteArrayLiteral("listen = \"example.com:80\"\n")
                                          << QStringLiteral("listen: invalid host");
    QTest::addRow("log_level not a string") << QByteArrayLiteral("log_level = 3\n")
                                            << QStringLiteral("log_level must be a string");
    QTest::addRow("limits not a table") << QByteArrayLiteral("limits = 5\n")
                                        << QStringLiteral("limits must be a table");
    QTest::addRow("limit as a string") << QByteArrayLiteral("[limits]\nmax_headers = \"64\"\n")
                                       << QStringLiteral("limits.max_headers must be an integer");
    QTest::addRow("limit as a float") << QByteArrayLiteral("[limits]\nmax_headers = 64.0\n")
                                      << QStringLiteral("limits.max_headers must be an integer");
    QTest::addRow("limit as a boolean") << QByteArrayLiteral("[limits]\nmax_subscriptions = true\n")
                                        << QStringLiteral("limits.max_subscriptions must be an integer");
    QTest::addRow("limit too large for its field") << QByteArrayLiteral("[limits]\nmax_headers = 3000000000\n")
                                                   << QStringLiteral("limits.max_headers is out of range");
    QTest::addRow("role table not a table") << QByteArrayLiteral("[limits]\nclient = 5\n")
                                            << QStringLiteral("limits.client must be a table ([limits.client])");
    QTest::addRow("unknown role table") << QByteArrayLiteral("[limits.admin]\nmax_subscriptions = 5\n")
                                        << QStringLiteral("limits: unknown key 'admin'");
    QTest::addRow("unknown key in a role table") << QByteArrayLiteral("[limits.service]\nmax_subs = 5\n")
                                                 << QStringLiteral("limits.service: unknown key 'max_subs'");
    QTest::addRow("shared limit in a role table")
        << QByteArrayLiteral("[limits.client]\nmax_frame_size = 5\n")
        << QStringLiteral("limits.client: max_frame_size is the same for every role; set it in [limits]");
    QTest::addRow("role limit as a string") << QByteArrayLiteral("[limits.client]\nmax_subscriptions = \"5\"\n")
                                            << QStringLiteral("limits.client.max_subscriptions must be an integer");
    QTest::addRow("role limit too large") << QByteArrayLiteral("[limits.service]\nmessage_burst = 3000000000\n")
                                          << QStringLiteral("limits.service.message_burst is out of range");
    QTest::addRow("unknown rate_limit_action")
        << QByteArrayLiteral("[limits.client]\nrate_limit_action = \"drop\"\n")
        << QStringLiteral("limits.client.rate_limit_action must be \"pace\" or \"refuse\", not 'drop'");
    QTest::addRow("rate_limit_action in capitals")
        << QByteArrayLiteral("[limits]\nrate_limit_action = \"PACE\"\n")
        << QStringLiteral("limits.rate_limit_action must be \"pace\" or \"refuse\", not 'PACE'");
    QTest::addRow("rate_limit_action not a string") << QByteArrayLiteral("[limits]\nrate_limit_action = 1\n")
                                                    << QStringLiteral("limits.rate_limit_action must be a string");
    QTest::addRow("keys not an array") << QByteArrayLiteral("service_keys = \"k\"\n")
                                       << QStringLiteral("service_keys must be an array of tables");
    QTest::addRow("keys entry not a table") << QByteArrayLiteral("client_keys = [\"k\"]\n")
                                            << QStringLiteral("client_keys entry 1 must be a table");
    QTest::addRow("missing key") << QByteArrayLiteral("[[client_keys]]\nname = \"web\"\n")
                                 << QStringLiteral("client_keys entry 1: missing key");
    QTest::addRow("second entry missing key")
        << QByteArrayLiteral("[[service_keys]]\nkey = \"a\"\n[[service_keys]]\nname = \"b\"\n")
        << QStringLiteral("service_keys entry 2: missing key");
    QTest::addRow("key not a string") << QByteArrayLiteral("[[service_keys]]\nkey = 5\n")
                                      << QStringLiteral("service_keys entry 1 key must be a string");
    QTest::addRow("key name not a string") << QByteArrayLiteral("[[service_keys]]\nname = 5\nkey = \"a\"\n")
                                           << QStringLiteral("service_keys entry 1 name must be a string");
    QTest::addRow("unknown field in a key") << QByteArrayLiteral("[[service_keys]]\nkey = \"a\"\nsecret = \"b\"\n")
                                            << QStringLiteral("service_keys entry 1: unknown key 'secret'");
    QTest::addRow("grant kind PUB") << QByteArrayLiteral("[[grants]]\nkind = \"PUB\"\npattern = \"a\"\n")
                                    << QStringLiteral("grants entry 1: kind must be EPUB, ESUB or EREQ");
    QTest::addRow("grant kind nonsense") << QByteArrayLiteral("[[grants]]\nkind = \"ALLOW\"\npattern = \"a\"\n")
                                         << QStringLiteral("kind must be EPUB, ESUB or EREQ");
    QTest::addRow("grant kind not a string") << QByteArrayLiteral("[[grants]]\nkind = 1\npattern = \"a\"\n")
                                             << QStringLiteral("grants entry 1 kind must be a string");
    QTest::addRow("grant without pattern") << QByteArrayLiteral("[[grants]]\nkind = \"ESUB\"\n")
                                           << QStringLiteral("grants entry 1: needs kind and pattern");
    QTest::addRow("grant without kind") << QByteArrayLiteral("[[grants]]\npattern = \"a\"\n")
                                        << QStringLiteral("grants entry 1: needs kind and pattern");
    QTest::addRow("unknown field in a grant")
        << QByteArrayLiteral("[[grants]]\nkind = \"ESUB\"\npattern = \"a\"\nttl = 5\n")
        << QStringLiteral("grants entry 1: unknown key 'ttl'");
    QTest::addRow("grants not an array") << QByteArrayLiteral("[grants]\nkind = \"ESUB\"\n")
                                         << QStringLiteral("grants must be an array of tables");
}

void tst_ConfigFile::loadErrors()
{
    QFETCH(QByteArray, text);
    QFETCH(QString, expected);

    BrokerConfig config;
    QString error;
    QVERIFY(!loadConfigText(text, kSource, &config, nullptr, &error));
    QVERIFY2(error.startsWith(kSource + QLatin1Char(':')), qPrintable(error)); // names the file
    QVERIFY2(error.contains(expected), qPrintable(error));
    // The error is optional.
    BrokerConfig again;
    QVERIFY(!loadConfigText(text, kSource, &again, nullptr, nullptr));
}

void tst_ConfigFile::loadFileMissing()
{
    BrokerConfig config;
    QString error;
    const QString path = m_dir.filePath(QStringLiteral("does-not-exist.toml"));
    QVERIFY(!loadConfigFile(path, &config, nullptr, &error));
    QVERIFY2(error.contains(path), qPrintable(error));

    QVERIFY2(loadConfigFile(writeConfig("listen = \"127.0.0.1:4242\"\n"), &config, nullptr, &error),
             qPrintable(error));
    QCOMPARE(config.port, quint16(4242));
    // Errors name the file they came from.
    const QString bad = writeConfig("bogus = 1\n");
    QVERIFY(!loadConfigFile(bad, &config, nullptr, &error));
    QVERIFY2(error.startsWith(bad) && error.contains(QStringLiteral("unknown key 'bogus'")), qPrintable(error));
}

void tst_ConfigFile::exampleHoldsTheDefaults()
{
    // resources/middleman.example.toml shows every limit at its default, for
    // both roles, so that it documents them.
    BrokerConfig config;
    QString error;
    QVERIFY2(loadConfigFile(QStringLiteral(MIDDLEMAN_EXAMPLE_CONFIG), &config, nullptr, &error), qPrintable(error));
    QCOMPARE(differences(config, BrokerConfig()), (QList<QByteArray>{"service_keys", "client_keys", "grants"}));
}

void tst_ConfigFile::parseListenAddress_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<bool>("ok");
    QTest::addColumn<QHostAddress>("address");
    QTest::addColumn<int>("port");
    QTest::addColumn<QString>("why");

    const QHostAddress none;
    QTest::addRow("ipv4 loopback") << QStringLiteral("127.0.0.1:8765") << true
                                   << QHostAddress(QStringLiteral("127.0.0.1")) << 8765 << QString();
    QTest::addRow("ipv4 any") << QStringLiteral("0.0.0.0:80") << true << QHostAddress(QStringLiteral("0.0.0.0"))
                              << 80 << QString();
    QTest::addRow("ipv6 loopback in brackets") << QStringLiteral("[::1]:9000") << true
                                               << QHostAddress(QStringLiteral("::1")) << 9000 << QString();
    QTest::addRow("ipv6 any in brackets") << QStringLiteral("[::]:1234") << true
                                          << QHostAddress(QStringLiteral("::")) << 1234 << QString();
    QTest::addRow("localhost") << QStringLiteral("localhost:1") << true << QHostAddress(QHostAddress::LocalHost)
                               << 1 << QString();
    QTest::addRow("star is every address") << QStringLiteral("*:80") << true << QHostAddress(QHostAddress::Any)
                                           << 80 << QString();
    QTest::addRow("port 0 (any free port)") << QStringLiteral("127.0.0.1:0") << true
                                            << QHostAddress(QStringLiteral("127.0.0.1")) << 0 << QString();
    QTest::addRow("highest port") << QStringLiteral("127.0.0.1:65535") << true
                                  << QHostAddress(QStringLiteral("127.0.0.1")) << 65535 << QString();

    QTest::addRow("empty") << QString() << false << none << 0 << QStringLiteral("HOST:PORT");
    QTest::addRow("missing port") << QStringLiteral("127.0.0.1") << false << none << 0
                                  << QStringLiteral("HOST:PORT");
    QTest::addRow("missing host") << QStringLiteral(":80") << false << none << 0 << QStringLiteral("HOST:PORT");
    QTest::addRow("empty port") << QStringLiteral("127.0.0.1:") << false << none << 0
                                << QStringLiteral("invalid port");
    QTest::addRow("port 70000") << QStringLiteral("127.0.0.1:70000") << false << none << 0
                                << QStringLiteral("invalid port");
    QTest::addRow("port 65536") << QStringLiteral("127.0.0.1:65536") << false << none << 0
                                << QStringLiteral("invalid port");
    QTest::addRow("negative port") << QStringLiteral("127.0.0.1:-1") << false << none << 0
                                   << QStringLiteral("invalid port");
    QTest::addRow("service name as port") << QStringLiteral("127.0.0.1:http") << false << none << 0
                                          << QStringLiteral("invalid port");
    QTest::addRow("ipv6 brackets without port") << QStringLiteral("[::1]") << false << none << 0
                                                << QStringLiteral("invalid port");
    QTest::addRow("host name") << QStringLiteral("example.com:80") << false << none << 0
                               << QStringLiteral("invalid host");
    QTest::addRow("ipv4 octet too large") << QStringLiteral("256.1.1.1:80") << false << none << 0
                                          << QStringLiteral("invalid host");
    QTest::addRow("ipv6 missing closing bracket") << QStringLiteral("[::1:9000") << false << none << 0
                                                  << QStringLiteral("invalid host");
}

void tst_ConfigFile::parseListenAddress()
{
    QFETCH(QString, text);
    QFETCH(bool, ok);
    QFETCH(QHostAddress, address);
    QFETCH(int, port);
    QFETCH(QString, why);

    const QHostAddress untouched(QStringLiteral("10.9.8.7"));
    QHostAddress parsedAddress = untouched;
    quint16 parsedPort = 4321;
    QString error;
    QCOMPARE(Middleman::parseListenAddress(text, &parsedAddress, &parsedPort, &error), ok);
    if (ok) {
        QVERIFY2(error.isEmpty(), qPrintable(error));
        QCOMPARE(parsedAddress, address);
        QCOMPARE(parsedPort, quint16(port));
    } else {
        QVERIFY2(error.contains(why), qPrintable(error));
        // A refused address leaves the previous one alone.
        QCOMPARE(parsedAddress, untouched);
        QCOMPARE(parsedPort, quint16(4321));
    }
}

void tst_ConfigFile::validate_data()
{
    QTest::addColumn<Mutator>("change");
    QTest::addColumn<QString>("why"); // empty: valid

    const auto row = [](const char *name, Mutator change, const QString &why) {
        QTest::newRow(name) << change << why;
    };
    const QString positive = QStringLiteral(" must be positive");

    row("defaults", [](BrokerConfig *) {}, QString());
    row("max_message_size zero", [](BrokerConfig *c) { c->codec.maxMessageSize = 0; },
        QStringLiteral("max_message_size") + positive);
    row("max_headers negative", [](BrokerConfig *c) { c->codec.maxHeaders = -1; },
        QStringLiteral("max_headers") + positive);
    row("max_header_bytes zero", [](BrokerConfig *c) { c->codec.maxHeaderBytes = 0; },
        QStringLiteral("max_header_bytes") + positive);
    row("max_target_length zero", [](BrokerConfig *c) { c->codec.maxTargetLength = 0; },
        QStringLiteral("max_target_length") + positive);
    row("max_frame_size zero", [](BrokerConfig *c) { c->maxFrameSize = 0; },
        QStringLiteral("max_frame_size") + positive);
    row("client outbound_queue_bytes negative", [](BrokerConfig *c) { c->clientLimits.outboundQueueBytes = -5; },
        QStringLiteral("limits.client.outbound_queue_bytes") + positive);
    row("service outbound_queue_bytes zero", [](BrokerConfig *c) { c->serviceLimits.outboundQueueBytes = 0; },
        QStringLiteral("limits.service.outbound_queue_bytes") + positive);
    row("client max_subscriptions zero", [](BrokerConfig *c) { c->clientLimits.maxSubscriptions = 0; },
        QStringLiteral("limits.client.max_subscriptions") + positive);
    row("service max_pending_requests negative", [](BrokerConfig *c) { c->serviceLimits.maxPendingRequests = -1; },
        QStringLiteral("limits.service.max_pending_requests") + positive);
    row("service message_burst zero", [](BrokerConfig *c) { c->serviceLimits.messageBurst = 0; },
        QStringLiteral("limits.service.message_burst") + positive);
    row("client max_messages_per_second negative", [](BrokerConfig *c) { c->clientLimits.maxMessagesPerSecond = -1; },
        QStringLiteral("limits.client.max_messages_per_second must not be negative (0: no limit)"));
    row("client max_messages_per_second off", [](BrokerConfig *c) { c->clientLimits.maxMessagesPerSecond = 0; },
        QString());
    row("max_connections zero", [](BrokerConfig *c) { c->maxConnections = 0; },
        QStringLiteral("max_connections") + positive);
    row("max_connections_per_address negative", [](BrokerConfig *c) { c->maxConnectionsPerAddress = -1; },
        QStringLiteral("max_connections_per_address must not be negative (0: no limit)"));
    row("max_connections_per_address off", [](BrokerConfig *c) { c->maxConnectionsPerAddress = 0; }, QString());
    row("handshake_timeout_ms zero", [](BrokerConfig *c) { c->handshakeTimeoutMs = 0; },
        QStringLiteral("handshake_timeout_ms") + positive);
    row("request_timeout_ms zero", [](BrokerConfig *c) { c->requestTimeoutMs = 0; },
        QStringLiteral("request_timeout_ms") + positive);
    row("max_request_timeout_ms zero", [](BrokerConfig *c) { c->maxRequestTimeoutMs = 0; },
        QStringLiteral("max_request_timeout_ms") + positive);
    row("ping_interval_ms zero", [](BrokerConfig *c) { c->pingIntervalMs = 0; },
        QStringLiteral("ping_interval_ms") + positive);
    row("max_missed_pings zero", [](BrokerConfig *c) { c->maxMissedPings = 0; },
        QStringLiteral("max_missed_pings") + positive);
    row("shutdown_grace_ms negative", [](BrokerConfig *c) { c->shutdownGraceMs = -1; },
        QStringLiteral("shutdown_grace_ms") + positive);

    row("shutdown_grace_ms over an hour", [](BrokerConfig *c) { c->shutdownGraceMs = 3600 * 1000 + 1; },
        QStringLiteral("shutdown_grace_ms must not exceed one hour (3600000)"));
    row("shutdown_grace_ms of an hour", [](BrokerConfig *c) { c->shutdownGraceMs = 3600 * 1000; }, QString());
    row("idle_spin_us negative", [](BrokerConfig *c) { c->idleSpinUs = -1; },
        QStringLiteral("idle_spin_us must be from 0 (off) to 1000"));
    row("idle_spin_us over a millisecond", [](BrokerConfig *c) { c->idleSpinUs = 1001; },
        QStringLiteral("idle_spin_us must be from 0 (off) to 1000"));
    row("idle_spin_us off", [](BrokerConfig *c) { c->idleSpinUs = 0; }, QString());
    row("idle_spin_us of a millisecond", [](BrokerConfig *c) { c->idleSpinUs = 1000; }, QString());
    row("same key for two roles", [](BrokerConfig *c) {
        c->serviceKeys = {KeyConfig{QStringLiteral("a"), "k1"}};
        c->clientKeys = {KeyConfig{QStringLiteral("b"), "k1"}};
    }, QStringLiteral("key 'b' is configured more than once"));
    row("same key plain and hashed", [](BrokerConfig *c) {
        c->serviceKeys = {KeyConfig{QStringLiteral("a"), "k1"},
                          KeyConfig{QStringLiteral("b"), KeyStore::hashedForm("k1").toUpper().replace("SHA256:", "sha256:")}};
    }, QStringLiteral("key 'b' is configured more than once"));
    row("distinct keys", [](BrokerConfig *c) {
        c->serviceKeys = {KeyConfig{QStringLiteral("a"), "k1"}};
        c->clientKeys = {KeyConfig{QStringLiteral("b"), "k2"}};
    }, QString());

    row("request timeout above the cap", [](BrokerConfig *c) { c->requestTimeoutMs = c->maxRequestTimeoutMs + 1; },
        QStringLiteral("request_timeout_ms must not exceed max_request_timeout_ms"));
    row("request timeout at the cap", [](BrokerConfig *c) { c->requestTimeoutMs = c->maxRequestTimeoutMs; },
        QString());
    row("frame smaller than a message",
        [](BrokerConfig *c) {
            c->codec.maxMessageSize = 1001;
            c->maxFrameSize = 1000;
        },
        QStringLiteral("max_frame_size must be at least max_message_size"));
    row("frame as large as a message",
        [](BrokerConfig *c) {
            c->codec.maxMessageSize = 1000;
            c->maxFrameSize = 1000;
        },
        QString());

    row("good keys, plain and sha256",
        [](BrokerConfig *c) {
            c->serviceKeys.append(KeyConfig{QStringLiteral("svc"), QByteArrayLiteral("plain-key")});
            c->clientKeys.append(KeyConfig{QStringLiteral("cli"), KeyStore::hashedForm("x")});
        },
        QString());
    row("service key with a space",
        [](BrokerConfig *c) { c->serviceKeys.append(KeyConfig{QStringLiteral("svc"), QByteArrayLiteral("a b")}); },
        QStringLiteral("key 'svc': key contains white space"));
    row("empty client key",
        [](BrokerConfig *c) { c->clientKeys.append(KeyConfig{QStringLiteral("cli"), QByteArray()}); },
        QStringLiteral("key 'cli': empty key"));
    row("sha256 key too short",
        [](BrokerConfig *c) {
            c->clientKeys.append(KeyConfig{QStringLiteral("web"), KeyStore::hashedForm("x").chopped(2)});
        },
        QStringLiteral("key 'web': a sha256: key needs exactly 64 hex digits"));
    row("sha256 key not hex",
        [](BrokerConfig *c) {
            c->serviceKeys.append(KeyConfig{QStringLiteral("svc"), "sha256:" + QByteArray(64, 'z')});
        },
        QStringLiteral("key 'svc': a sha256: key needs exactly 64 hex digits"));
    row("bad key after a good one",
        [](BrokerConfig *c) {
            c->clientKeys.append(KeyConfig{QStringLiteral("good"), QByteArrayLiteral("fine")});
            c->clientKeys.append(KeyConfig{QStringLiteral("bad"), QByteArrayLiteral("not fine")});
        },
        QStringLiteral("key 'bad'"));

    row("good wildcard grants",
        [](BrokerConfig *c) {
            c->grants.append(GrantConfig{Command::Esub, QByteArrayLiteral("chat.>")});
            c->grants.append(GrantConfig{Command::Epub, QByteArrayLiteral("chat.*.in")});
            c->grants.append(GrantConfig{Command::Ereq, QByteArrayLiteral(">")});
        },
        QString());
    row("grant with '>' not last",
        [](BrokerConfig *c) { c->grants.append(GrantConfig{Command::Esub, QByteArrayLiteral("a.>.b")}); },
        QStringLiteral("grant 'a.>.b'"));
    row("grant with an empty token",
        [](BrokerConfig *c) { c->grants.append(GrantConfig{Command::Esub, QByteArrayLiteral("a..b")}); },
        QStringLiteral("grant 'a..b'"));
    row("grant with a space",
        [](BrokerConfig *c) { c->grants.append(GrantConfig{Command::Epub, QByteArrayLiteral("a b")}); },
        QStringLiteral("grant 'a b'"));
    row("empty grant pattern", [](BrokerConfig *c) { c->grants.append(GrantConfig{Command::Epub, QByteArray()}); },
        QStringLiteral("grant ''"));
    row("grant longer than max_target_length",
        [](BrokerConfig *c) {
            c->codec.maxTargetLength = 8;
            c->grants.append(GrantConfig{Command::Esub, QByteArrayLiteral("abcd.efgh")});
        },
        QStringLiteral("grant 'abcd.efgh'"));
    row("grant of kind PUB",
        [](BrokerConfig *c) { c->grants.append(GrantConfig{Command::Pub, QByteArrayLiteral("a")}); },
        QStringLiteral("grant kind must be EPUB, ESUB or EREQ"));
}

void tst_ConfigFile::validate()
{
    QFETCH(Mutator, change);
    QFETCH(QString, why);

    BrokerConfig config;
    change(&config);
    QString error;
    const bool valid = config.validate(&error);
    if (why.isEmpty()) {
        QVERIFY2(valid, qPrintable(error));
    } else {
        QVERIFY(!valid);
        QVERIFY2(error.contains(why), qPrintable(error));
        QVERIFY(!config.validate(nullptr)); // the error is optional
    }
}

void tst_ConfigFile::flagsOverrideConfig_data()
{
    QTest::addColumn<QStringList>("flags");
    QTest::addColumn<QHostAddress>("address");
    QTest::addColumn<int>("port");
    QTest::addColumn<int>("requestTimeout");
    QTest::addColumn<int>("maxRequestTimeout");
    QTest::addColumn<QString>("logLevel");

    const QHostAddress fromFile(QStringLiteral("127.0.0.1"));
    // The file says: 127.0.0.1:1111, request timeout 5000 capped at 60000, warning.
    QTest::addRow("file alone") << QStringList() << fromFile << 1111 << 5000 << 60000 << QStringLiteral("warning");
    QTest::addRow("--listen") << QStringList{QStringLiteral("--listen"), QStringLiteral("[::1]:2222")}
                              << QHostAddress(QStringLiteral("::1")) << 2222 << 5000 << 60000
                              << QStringLiteral("warning");
    QTest::addRow("--listen=") << QStringList{QStringLiteral("--listen=*:3333")} << QHostAddress(QHostAddress::Any)
                               << 3333 << 5000 << 60000 << QStringLiteral("warning");
    QTest::addRow("--request-timeout under the cap")
        << QStringList{QStringLiteral("--request-timeout"), QStringLiteral("7000")} << fromFile << 1111 << 7000
        << 60000 << QStringLiteral("warning");
    // Decision (commandline.cpp): a flag above the configured cap raises the cap
    // rather than failing validation.
    QTest::addRow("--request-timeout above the cap raises it")
        << QStringList{QStringLiteral("--request-timeout"), QStringLiteral("90000")} << fromFile << 1111 << 90000
        << 90000 << QStringLiteral("warning");
    QTest::addRow("--log-level") << QStringList{QStringLiteral("--log-level"), QStringLiteral("debug")} << fromFile
                                 << 1111 << 5000 << 60000 << QStringLiteral("debug");
    QTest::addRow("every flag") << QStringList{QStringLiteral("--log-level"), QStringLiteral("error"),
                                               QStringLiteral("--request-timeout"), QStringLiteral("100"),
                                               QStringLiteral("--listen"), QStringLiteral("localhost:4444")}
                                << QHostAddress(QHostAddress::LocalHost) << 4444 << 100 << 60000
                                << QStringLiteral("error");
}

void tst_ConfigFile::flagsOverrideConfig()
{
    QFETCH(QStringList, flags);
    QFETCH(QHostAddress, address);
    QFETCH(int, port);
    QFETCH(int, requestTimeout);
    QFETCH(int, maxRequestTimeout);
    QFETCH(QString, logLevel);

    const QString path = writeConfig("listen = \"127.0.0.1:1111\"\nlog_level = \"warning\"\n"
                                     "[limits]\nrequest_timeout_ms = 5000\nmax_request_timeout_ms = 60000\n");
    // The flags win wherever they stand relative to --config.
    for (const bool configFirst : {true, false}) {
        const QStringList config{QStringLiteral("--config"), path};
        QCommandLineParser parser;
        QVERIFY2(parseArgs(&parser, configFirst ? config + flags : flags + config), qPrintable(parser.errorText()));
        BrokerConfig result;
        QString level;
        QString error;
        QVERIFY2(BrokerOptions::read(parser, &result, &level, &error), qPrintable(error));
        QCOMPARE(result.listenAddress, address);
        QCOMPARE(result.port, quint16(port));
        QCOMPARE(result.requestTimeoutMs, requestTimeout);
        QCOMPARE(result.maxRequestTimeoutMs, maxRequestTimeout);
        QCOMPARE(level, logLevel);
    }
}

void tst_ConfigFile::keyFlagsAppendNamedKeys()
{
    const QByteArray hashed = KeyStore::hashedForm("s3");
    {
        // After the file's keys, numbered on from them.
        const QString path = writeConfig("[[service_keys]]\nname = \"alpha\"\nkey = \"k1\"\n");
        QCommandLineParser parser;
        QVERIFY(parseArgs(&parser, {QStringLiteral("--service-key"), QStringLiteral("s2"),
                                    QStringLiteral("--client-key"), QStringLiteral("c1"), QStringLiteral("--config"),
                                    path, QStringLiteral("--service-key"), QString::fromLatin1(hashed)}));
        BrokerConfig config;
        QString error;
        QVERIFY2(BrokerOptions::read(parser, &config, nullptr, &error), qPrintable(error));
        QCOMPARE(names(config.serviceKeys),
                 (QStringList{QStringLiteral("alpha"), QStringLiteral("service-2"), QStringLiteral("service-3")}));
        QCOMPARE(secrets(config.serviceKeys), (QList<QByteArray>{"k1", "s2", hashed}));
        QCOMPARE(names(config.clientKeys), QStringList{QStringLiteral("client-1")});
        QCOMPARE(secrets(config.clientKeys), QList<QByteArray>{"c1"});
        // And keys given as flags need no generated ones.
        QVERIFY(Middleman::ensureKeys(&config).isEmpty());
    }
    {
        // Without a file.
        QCommandLineParser parser;
        QVERIFY(parseArgs(&parser, {QStringLiteral("--client-key"), QStringLiteral("a"),
                                    QStringLiteral("--client-key"), QStringLiteral("b")}));
        BrokerConfig config;
        QString error;
        QVERIFY2(BrokerOptions::read(parser, &config, nullptr, &error), qPrintable(error));
        QVERIFY(config.serviceKeys.isEmpty());
        QCOMPARE(names(config.clientKeys), (QStringList{QStringLiteral("client-1"), QStringLiteral("client-2")}));
        QCOMPARE(secrets(config.clientKeys), (QList<QByteArray>{"a", "b"}));
    }
    {
        // No flags at all: the defaults, valid, log level untouched.
        QCommandLineParser parser;
        QVERIFY(parseArgs(&parser, {}));
        BrokerConfig config;
        QString level = QStringLiteral("keep");
        QString error;
        QVERIFY2(BrokerOptions::read(parser, &config, &level, &error), qPrintable(error));
        QCOMPARE(differences(config, BrokerConfig()), QList<QByteArray>());
        QCOMPARE(level, QStringLiteral("keep"));
    }
}

void tst_ConfigFile::readErrors_data()
{
    QTest::addColumn<QByteArray>("file"); // empty: no --config
    QTest::addColumn<QStringList>("flags");
    QTest::addColumn<QString>("why");

    const auto flags = [](std::initializer_list<const char *> list) {
        QStringList out;
        for (const char *item : list)
            out.append(QString::fromLatin1(item));
        return out;
    };
    QTest::addRow("--listen without port") << QByteArray() << flags({"--listen", "127.0.0.1"})
                                           << QStringLiteral("HOST:PORT");
    QTest::addRow("--listen port 70000") << QByteArray() << flags({"--listen", "127.0.0.1:70000"})
                                         << QStringLiteral("invalid port");
    QTest::addRow("--request-timeout zero") << QByteArray() << flags({"--request-timeout", "0"})
                                            << QStringLiteral("--request-timeout");
    QTest::addRow("--request-timeout negative") << QByteArray() << flags({"--request-timeout=-5"})
                                                << QStringLiteral("--request-timeout");
    QTest::addRow("--request-timeout not a number") << QByteArray() << flags({"--request-timeout", "soon"})
                                                    << QStringLiteral("--request-timeout");
    QTest::addRow("--service-key with a space") << QByteArray() << flags({"--service-key", "a b"})
                                                << QStringLiteral("key 'service-1'");
    QTest::addRow("--client-key short sha256") << QByteArray() << flags({"--client-key", "sha256:abcd"})
                                               << QStringLiteral("64 hex digits");
    QTest::addRow("--config missing") << QByteArray() << flags({"--config", "/nonexistent/middleman.toml"})
                                      << QStringLiteral("cannot read /nonexistent/middleman.toml");
    QTest::addRow("--config with an unknown key") << QByteArrayLiteral("bogus = 1\n") << QStringList()
                                                  << QStringLiteral("unknown key 'bogus'");
    QTest::addRow("--config with an invalid limit")
        << QByteArrayLiteral("[limits]\nmax_subscriptions = 0\n") << QStringList()
        << QStringLiteral("max_subscriptions must be positive");
    QTest::addRow("file timeout above its cap")
        << QByteArrayLiteral("[limits]\nrequest_timeout_ms = 9000\nmax_request_timeout_ms = 1000\n")
        << QStringList() << QStringLiteral("must not exceed");
    QTest::addRow("bad listen flag over a good file") << QByteArrayLiteral("listen = \"127.0.0.1:1\"\n")
                                                      << flags({"--listen", "nowhere:1"})
                                                      << QStringLiteral("invalid host");
}

void tst_ConfigFile::readErrors()
{
    QFETCH(QByteArray, file);
    QFETCH(QStringList, flags);
    QFETCH(QString, why);

    if (!file.isEmpty())
        flags << QStringLiteral("--config") << writeConfig(file);
    QCommandLineParser parser;
    QVERIFY2(parseArgs(&parser, flags), qPrintable(parser.errorText()));
    BrokerConfig config;
    QString error;
    QVERIFY(!BrokerOptions::read(parser, &config, nullptr, &error));
    QVERIFY2(error.contains(why), qPrintable(error));
}

void tst_ConfigFile::ensureKeys_data()
{
    QTest::addColumn<int>("serviceKeys");
    QTest::addColumn<int>("clientKeys");
    QTest::addColumn<bool>("generates");

    QTest::addRow("no keys: one of each") << 0 << 0 << true;
    // Decision (commandline.h): any configured key means no generated ones,
    // even when the other kind is missing.
    QTest::addRow("service key only") << 1 << 0 << false;
    QTest::addRow("client key only") << 0 << 1 << false;
    QTest::addRow("both kinds") << 2 << 3 << false;
}

void tst_ConfigFile::ensureKeys()
{
    QFETCH(int, serviceKeys);
    QFETCH(int, clientKeys);
    QFETCH(bool, generates);

    BrokerConfig config;
    for (int i = 0; i < serviceKeys; ++i)
        config.serviceKeys.append(KeyConfig{QStringLiteral("s%1").arg(i), "service-" + QByteArray::number(i)});
    for (int i = 0; i < clientKeys; ++i)
        config.clientKeys.append(KeyConfig{QStringLiteral("c%1").arg(i), "client-" + QByteArray::number(i)});

    const QList<GeneratedKey> generated = Middleman::ensureKeys(&config);
    if (!generates) {
        QVERIFY(generated.isEmpty());
        QCOMPARE(config.serviceKeys.size(), qsizetype(serviceKeys));
        QCOMPARE(config.clientKeys.size(), qsizetype(clientKeys));
        return;
    }
    QCOMPARE(generated.size(), qsizetype(2));
    QCOMPARE(generated.at(0).role, Role::Service);
    QCOMPARE(generated.at(1).role, Role::Client);
    QVERIFY(generated.at(0).key != generated.at(1).key);
    // The config now holds exactly the keys returned for printing, and they are valid.
    QCOMPARE(secrets(config.serviceKeys), QList<QByteArray>{generated.at(0).key});
    QCOMPARE(secrets(config.clientKeys), QList<QByteArray>{generated.at(1).key});
    QCOMPARE(names(config.serviceKeys), QStringList{QStringLiteral("generated-service")});
    QCOMPARE(names(config.clientKeys), QStringList{QStringLiteral("generated-client")});
    QString error;
    QVERIFY2(config.validate(&error), qPrintable(error));
    // Once is enough: a second call generates nothing more.
    QVERIFY(Middleman::ensureKeys(&config).isEmpty());
    QCOMPARE(config.serviceKeys.size(), qsizetype(1));
    QCOMPARE(config.clientKeys.size(), qsizetype(1));
}

void tst_ConfigFile::applyLogLevel_data()
{
    QTest::addColumn<QString>("level");
    QTest::addColumn<bool>("ok");
    QTest::addColumn<bool>("debug");
    QTest::addColumn<bool>("info");
    QTest::addColumn<bool>("warning");

    QTest::addRow("debug") << QStringLiteral("debug") << true << true << true << true;
    QTest::addRow("info") << QStringLiteral("info") << true << false << true << true;
    QTest::addRow("warning") << QStringLiteral("warning") << true << false << false << true;
    QTest::addRow("error") << QStringLiteral("error") << true << false << false << false;
    QTest::addRow("upper case") << QStringLiteral("WARNING") << true << false << false << true;
    QTest::addRow("empty") << QString() << false << false << false << false;
    QTest::addRow("unknown") << QStringLiteral("verbose") << false << false << false << false;
    QTest::addRow("abbreviation") << QStringLiteral("warn") << false << false << false << false;
    QTest::addRow("Qt's name critical") << QStringLiteral("critical") << false << false << false << false;
    QTest::addRow("surrounding space") << QStringLiteral(" info") << false << false << false << false;
}

void tst_ConfigFile::applyLogLevel()
{
    QFETCH(QString, level);
    QFETCH(bool, ok);
    QFETCH(bool, debug);
    QFETCH(bool, info);
    QFETCH(bool, warning);

    // A known starting point, so a refused level visibly changes nothing.
    QVERIFY(Middleman::applyLogLevel(QStringLiteral("info"), nullptr));

    QString error;
    QCOMPARE(Middleman::applyLogLevel(level, &error), ok);
    if (!ok) {
        QVERIFY2(error.contains(QStringLiteral("unknown log level")), qPrintable(error));
        QVERIFY2(error.contains(QLatin1Char('\'') + level + QLatin1Char('\'')), qPrintable(error));
        debug = false; // still "info"
        info = true;
        warning = true;
    }
    for (const QLoggingCategory *category : {&lcBroker(), &lcSession(), &lcConfig()}) {
        QCOMPARE(category->isDebugEnabled(), debug); // initTestCase cleared QT_LOGGING_RULES
        QCOMPARE(category->isInfoEnabled(), info);
        QCOMPARE(category->isWarningEnabled(), warning);
        QVERIFY(category->isCriticalEnabled()); // errors always show
    }
    // Categories outside middleman.* are left alone.
    QVERIFY(QLoggingCategory::defaultCategory()->isWarningEnabled());
}

QTEST_APPLESS_MAIN(tst_ConfigFile)
#include "tst_configfile.moc"
