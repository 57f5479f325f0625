#include "configfile.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <toml++/toml.h>

#include <algorithm>
#include <limits>

namespace Middleman {

namespace {

QString qs(std::string_view text)
{
    return QString::fromUtf8(text.data(), qsizetype(text.size()));
}

class Reader
{
public:
    // Relative file names in the config are taken relative to baseDir (the
    // config file's directory; empty: the working directory).
    Reader(BrokerConfig *config, QString *logLevel, const QString &baseDir = {})
        : m_config(config)
        , m_logLevel(logLevel)
        , m_baseDir(baseDir)
    {
    }

    bool read(const toml::table &root)
    {
        for (const auto &[key, node] : root) {
            const std::string_view name = key.str();
            if (name == "listen") {
                if (!string(node, QStringLiteral("listen"), &m_text))
                    return false;
                QString why;
                if (!parseListenAddress(m_text, &m_config->listenAddress, &m_config->port, &why))
                    return fail(QStringLiteral("listen: ") + why);
            } else if (name == "log_level") {
                if (!string(node, QStringLiteral("log_level"), &m_text))
                    return false;
                if (m_logLevel)
                    *m_logLevel = m_text;
            } else if (name == "service_keys" || name == "client_keys") {
                QList<KeyConfig> *keys = name == "service_keys" ? &m_config->serviceKeys : &m_config->clientKeys;
                if (!readKeys(node, qs(name), keys))
                    return false;
            } else if (name == "grants") {
                if (!readGrants(node))
                    return false;
            } else if (name == "allowed_origins") {
                const toml::array *array = node.as_array();
                if (!array)
                    return fail(QStringLiteral("allowed_origins must be an array of strings"));
                for (const toml::node &item : *array) {
                    if (!string(item, QStringLiteral("allowed_origins entry"), &m_text))
                        return false;
                    m_config->allowedOrigins.append(m_text);
                }
            } else if (name == "limits") {
                if (!readLimits(node))
                    return false;
            } else if (name == "tls") {
                if (!readTls(node))
                    return false;
            } else {
                return fail(QStringLiteral("unknown key '%1'").arg(qs(name)));
            }
        }
        return true;
    }

    QString error;

private:
    bool fail(const QString &why)
    {
        error = why;
        return false;
    }

    bool string(const toml::node &node, const QString &name, QString *out)
    {
        const auto value = node.value<std::string>();
        if (!value)
            return fail(QStringLiteral("%1 must be a string").arg(name));
        *out = QString::fromStdString(*value);
        return true;
    }

    template<typename F>
    bool eachTable(const toml::node &node, const QString &name, F &&f)
    {
        const toml::array *array = node.as_array();
        if (!array)
            return fail(QStringLiteral("%1 must be an array of tables ([[%1]])").arg(name));
        int index = 0;
        for (const toml::node &item : *array) {
            ++index;
            const toml::table *table = item.as_table();
            if (!table)
                return fail(QStringLiteral("%1 entry %2 must be a table").arg(name).arg(index));
            if (!f(*table, QStringLiteral("%1 entry %2").arg(name).arg(index)))
                return false;
        }
        return true;
    }

    bool readKeys(const toml::node &node, const QString &name, QList<KeyConfig> *keys)
    {
        return eachTable(node, name, [&](const toml::table &table, const QString &where) {
            KeyConfig key;
            for (const auto &[k, v] : table) {
                QString text;
                if (k.str() == "name" && string(v, where + QStringLiteral(" name"), &text))
                    key.name = text;
                else if (k.str() == "key" && string(v, where + QStringLiteral(" key"), &text))
                    key.key = text.toUtf8();
                else
                    return error.isEmpty() ? fail(QStringLiteral("%1: unknown key '%2'").arg(where, qs(k.str())))
                                           : false;
            }
            if (key.key.isEmpty())
                return fail(where + QStringLiteral(": missing key"));
            if (key.name.isEmpty())
                key.name = QStringLiteral("%1-%2").arg(name.chopped(5)).arg(keys->size() + 1);
            keys->append(key);
            return true;
        });
    }

    bool readGrants(const toml::node &node)
    {
        return eachTable(node, QStringLiteral("grants"), [&](const toml::table &table, const QString &where) {
            GrantConfig grant;
            bool haveKind = false;
            for (const auto &[k, v] : table) {
                QString text;
                if (k.str() == "kind" && string(v, where + QStringLiteral(" kind"), &text)) {
                    const std::optional<Command> kind = commandFromName(text.toUtf8());
                    if (!kind || (*kind != Command::Epub && *kind != Command::Esub && *kind != Command::Ereq))
                        return fail(where + QStringLiteral(": kind must be EPUB, ESUB or EREQ"));
                    grant.kind = *kind;
                    haveKind = true;
                } else if (k.str() == "pattern" && string(v, where + QStringLiteral(" pattern"), &text)) {
                    grant.pattern = text.toUtf8();
                } else {
                    return error.isEmpty() ? fail(QStringLiteral("%1: unknown key '%2'").arg(where, qs(k.str())))
                                           : false;
                }
            }
            if (!haveKind || grant.pattern.isEmpty())
                return fail(where + QStringLiteral(": needs kind and pattern"));
            m_config->grants.append(grant);
            return true;
        });
    }

    bool readLimits(const toml::node &node)
    {
        const toml::table *table = node.as_table();
        if (!table)
            return fail(QStringLiteral("limits must be a table ([limits])"));
        struct Field
        {
            const char *name;
            qint64 *wide;
            int *narrow;
        };
        qint64 maxMessageSize = m_config->codec.maxMessageSize;
        qint64 maxHeaderBytes = m_config->codec.maxHeaderBytes;
        const Field fields[] = {
            {"max_message_size", &maxMessageSize, nullptr},
            {"max_frame_size", &m_config->maxFrameSize, nullptr},
            {"max_headers", nullptr, &m_config->codec.maxHeaders},
            {"max_header_bytes", &maxHeaderBytes, nullptr},
            {"max_target_length", nullptr, &m_config->codec.maxTargetLength},
            {"handshake_timeout_ms", nullptr, &m_config->handshakeTimeoutMs},
            {"max_connections", nullptr, &m_config->maxConnections},
            {"max_connections_per_address", nullptr, &m_config->maxConnectionsPerAddress},
            {"failed_keys_before_backoff", nullptr, &m_config->failedKeysBeforeBackoff},
            {"failed_key_backoff_ms", nullptr, &m_config->failedKeyBackoffMs},
            {"max_failed_key_backoff_ms", nullptr, &m_config->maxFailedKeyBackoffMs},
            {"request_timeout_ms", nullptr, &m_config->requestTimeoutMs},
            {"max_request_timeout_ms", nullptr, &m_config->maxRequestTimeoutMs},
            {"ping_interval_ms", nullptr, &m_config->pingIntervalMs},
            {"max_missed_pings", nullptr, &m_config->maxMissedPings},
            {"shutdown_grace_ms", nullptr, &m_config->shutdownGraceMs},
            {"idle_spin_us", nullptr, &m_config->idleSpinUs},
        };
        // A per-role key in [limits] sets both roles; [limits.client] and
        // [limits.service] then set their own role, wherever they stand.
        const toml::table *roleTables[2] = {nullptr, nullptr};
        for (const auto &[k, v] : *table) {
            const std::string_view name = k.str();
            if (name == "client" || name == "service") {
                roleTables[name == "service"] = v.as_table();
                if (!roleTables[name == "service"])
                    return fail(QStringLiteral("limits.%1 must be a table ([limits.%1])").arg(qs(name)));
                continue;
            }
            if (isRoleKey(name)) {
                if (!readRoleKey(name, v, QStringLiteral("limits.") + qs(name), &m_config->clientLimits)
                    || !readRoleKey(name, v, QStringLiteral("limits.") + qs(name), &m_config->serviceLimits)) {
                    return false;
                }
                continue;
            }
            const Field *field = nullptr;
            for (const Field &f : fields) {
                if (name == f.name)
                    field = &f;
            }
            if (!field)
                return fail(QStringLiteral("limits: unknown key '%1'").arg(qs(name)));
            if (!(field->wide ? integer(v, QStringLiteral("limits.") + qs(name), field->wide)
                              : integer(v, QStringLiteral("limits.") + qs(name), field->narrow))) {
                return false;
            }
        }
        const struct
        {
            const toml::table *table;
            const char *name;
            RoleLimits *limits;
        } roles[] = {{roleTables[0], "client", &m_config->clientLimits},
                     {roleTables[1], "service", &m_config->serviceLimits}};
        for (const auto &[roleTable, role, limits] : roles) {
            if (!roleTable)
                continue;
            const QString where = QStringLiteral("limits.") + QLatin1StringView(role);
            for (const auto &[k, v] : *roleTable) {
                const std::string_view name = k.str();
                if (!isRoleKey(name)) {
                    const bool shared = std::any_of(std::begin(fields), std::end(fields),
                                                    [name](const Field &f) { return name == f.name; });
                    return fail(shared ? QStringLiteral("%1: %2 is the same for every role; set it in [limits]")
                                             .arg(where, qs(name))
                                       : QStringLiteral("%1: unknown key '%2'").arg(where, qs(name)));
                }
                if (!readRoleKey(name, v, where + QLatin1Char('.') + qs(name), limits))
                    return false;
            }
        }
        m_config->codec.maxMessageSize = qsizetype(maxMessageSize);
        m_config->codec.maxHeaderBytes = qsizetype(maxHeaderBytes);
        return true;
    }

    // The keys of RoleLimits, spelled alike in [limits] and in the role tables.
    static bool isRoleKey(std::string_view name)
    {
        return name == "max_messages_per_second" || name == "message_burst" || name == "rate_limit_action"
            || name == "max_pending_requests" || name == "max_subscriptions" || name == "outbound_queue_bytes";
    }

    bool readRoleKey(std::string_view name, const toml::node &node, const QString &where, RoleLimits *limits)
    {
        if (name == "rate_limit_action") {
            QString text;
            if (!string(node, where, &text))
                return false;
            if (text == QLatin1String("pace"))
                limits->rateLimitAction = RateLimitAction::Pace;
            else if (text == QLatin1String("refuse"))
                limits->rateLimitAction = RateLimitAction::Refuse;
            else
                return fail(QStringLiteral("%1 must be \"pace\" or \"refuse\", not '%2'").arg(where, text));
            return true;
        }
        if (name == "outbound_queue_bytes")
            return integer(node, where, &limits->outboundQueueBytes);
        int *field = name == "max_messages_per_second" ? &limits->maxMessagesPerSecond
            : name == "message_burst"                  ? &limits->messageBurst
            : name == "max_pending_requests"           ? &limits->maxPendingRequests
                                                       : &limits->maxSubscriptions;
        return integer(node, where, field);
    }

    bool integer(const toml::node &node, const QString &where, qint64 *out)
    {
        const auto value = node.value<int64_t>();
        if (!value || !node.is_integer())
            return fail(where + QStringLiteral(" must be an integer"));
        *out = *value;
        return true;
    }

    bool integer(const toml::node &node, const QString &where, int *out)
    {
        qint64 value = 0;
        if (!integer(node, where, &value))
            return false;
        if (value > std::numeric_limits<int>::max() || value < std::numeric_limits<int>::min())
            return fail(where + QStringLiteral(" is out of range"));
        *out = int(value);
        return true;
    }

    // [tls]: certificate and private key files (docs/configuration.md).
    bool readTls(const toml::node &node)
    {
        const toml::table *table = node.as_table();
        if (!table)
            return fail(QStringLiteral("tls must be a table ([tls])"));
        for (const auto &[k, v] : *table) {
            const QString where = QStringLiteral("tls.") + qs(k.str());
            QString text;
            if (k.str() == "certificate" || k.str() == "private_key") {
                if (!string(v, where, &text))
                    return false;
                if (text.isEmpty())
                    return fail(where + QStringLiteral(" must not be empty"));
                (k.str() == "certificate" ? m_config->tls.certificateFile : m_config->tls.privateKeyFile)
                    = filePath(text);
            } else if (k.str() == "private_key_passphrase") {
                // The value is a secret: no error message may quote it.
                if (!string(v, where, &text))
                    return false;
                if (text.isEmpty())
                    return fail(where + QStringLiteral(" must not be empty (leave it out for a key without one)"));
                m_config->tls.privateKeyPassphrase = text.toUtf8();
            } else {
                return fail(QStringLiteral("tls: unknown key '%1'").arg(qs(k.str())));
            }
        }
        return true;
    }

    QString filePath(const QString &path) const
    {
        if (m_baseDir.isEmpty() || QDir::isAbsolutePath(path))
            return path;
        return QDir::cleanPath(QDir(m_baseDir).filePath(path));
    }

    BrokerConfig *m_config;
    QString *m_logLevel;
    QString m_baseDir;
    QString m_text;
};

bool loadConfig(const QByteArray &text, const QString &sourceName, const QString &baseDir, BrokerConfig *config,
                QString *logLevel, QString *error)
{
    toml::table root;
    try {
        // Debian's toml++ is built with exceptions: a parse error is thrown.
        root = toml::parse(std::string_view(text.constData(), size_t(text.size())), sourceName.toStdString());
    } catch (const toml::parse_error &e) {
        if (error) {
            *error = QStringLiteral("%1:%2:%3: %4")
                         .arg(sourceName)
                         .arg(e.source().begin.line)
                         .arg(e.source().begin.column)
                         .arg(qs(e.description()));
        }
        return false;
    }
    Reader reader(config, logLevel, baseDir);
    if (!reader.read(root)) {
        if (error)
            *error = sourceName + QStringLiteral(": ") + reader.error;
        return false;
    }
    return true;
}

} // namespace

bool loadConfigText(const QByteArray &text, const QString &sourceName, BrokerConfig *config, QString *logLevel,
                    QString *error)
{
    return loadConfig(text, sourceName, QString(), config, logLevel, error);
}

bool loadConfigFile(const QString &path, BrokerConfig *config, QString *logLevel, QString *error)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        if (error)
            *error = QStringLiteral("cannot read %1: %2").arg(path, file.errorString());
        return false;
    }
    // Files named in the config are found next to it, wherever the daemon runs.
    return loadConfig(file.readAll(), path, QFileInfo(path).absolutePath(), config, logLevel, error);
}

bool parseListenAddress(const QString &text, QHostAddress *address, quint16 *port, QString *error)
{
    auto fail = [error](const QString &why) {
        if (error)
            *error = why;
        return false;
    };
    const qsizetype colon = text.lastIndexOf(QLatin1Char(':'));
    if (colon <= 0)
        return fail(QStringLiteral("expected HOST:PORT, got '%1'").arg(text));
    QString host = text.left(colon);
    bool ok = false;
    const uint portValue = text.mid(colon + 1).toUInt(&ok);
    if (!ok || portValue > 65535)
        return fail(QStringLiteral("invalid port in '%1'").arg(text));
    if (host.startsWith(QLatin1Char('[')) && host.endsWith(QLatin1Char(']')))
        host = host.mid(1, host.size() - 2);
    QHostAddress parsed;
    if (host == QLatin1String("localhost"))
        parsed = QHostAddress(QHostAddress::LocalHost);
    else if (host == QLatin1String("*"))
        parsed = QHostAddress(QHostAddress::Any);
    else if (!parsed.setAddress(host))
        return fail(QStringLiteral("invalid host '%1' (an IP address, localhost or *)").arg(host));
    *address = parsed;
    *port = quint16(portValue);
    return true;
}

} // namespace Middleman
