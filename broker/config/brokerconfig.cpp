#include "brokerconfig.h"

#include "keystore.h"

#include <QSet>

namespace Middleman {

bool BrokerConfig::validate(QString *error) const
{
    auto fail = [error](const QString &why) {
        if (error)
            *error = why;
        return false;
    };
    auto positive = [&](qint64 value, const char *name) {
        return value > 0 || fail(QStringLiteral("%1 must be positive").arg(QLatin1StringView(name)));
    };
    if (!positive(codec.maxMessageSize, "max_message_size") || !positive(codec.maxHeaders, "max_headers")
        || !positive(codec.maxHeaderBytes, "max_header_bytes")
        || !positive(codec.maxTargetLength, "max_target_length") || !positive(maxFrameSize, "max_frame_size")
        || !positive(handshakeTimeoutMs, "handshake_timeout_ms")
        || !positive(requestTimeoutMs, "request_timeout_ms")
        || !positive(maxRequestTimeoutMs, "max_request_timeout_ms")
        || !positive(pingIntervalMs, "ping_interval_ms") || !positive(maxMissedPings, "max_missed_pings")
        || !positive(shutdownGraceMs, "shutdown_grace_ms") || !positive(maxConnections, "max_connections")) {
        return false;
    }
    // Named as the role's table spells them, whether set there or in [limits].
    for (const auto &[limits, roleName] : {std::pair{&clientLimits, "client"}, std::pair{&serviceLimits, "service"}}) {
        const char *const role = roleName; // clang before 16 cannot capture a structured binding
        const auto name = [role](const char *key) {
            return QStringLiteral("limits.%1.%2").arg(QLatin1StringView(role), QLatin1StringView(key));
        };
        const auto positiveLimit = [&](qint64 value, const char *key) {
            return value > 0 || fail(name(key) + QStringLiteral(" must be positive"));
        };
        if (!positiveLimit(limits->outboundQueueBytes, "outbound_queue_bytes")
            || !positiveLimit(limits->maxSubscriptions, "max_subscriptions")
            || !positiveLimit(limits->maxPendingRequests, "max_pending_requests")
            || !positiveLimit(limits->messageBurst, "message_burst")) {
            return false;
        }
        if (limits->maxMessagesPerSecond < 0)
            return fail(name("max_messages_per_second") + QStringLiteral(" must not be negative (0: no limit)"));
    }
    if (maxConnectionsPerAddress < 0)
        return fail(QStringLiteral("max_connections_per_address must not be negative (0: no limit)"));
    if (failedKeysBeforeBackoff < 0)
        return fail(QStringLiteral("failed_keys_before_backoff must not be negative"));
    if (failedKeyBackoffMs < 0)
        return fail(QStringLiteral("failed_key_backoff_ms must not be negative (0: no back-off)"));
    if (failedKeyBackoffMs > 0 && maxFailedKeyBackoffMs < failedKeyBackoffMs)
        return fail(QStringLiteral("max_failed_key_backoff_ms must be at least failed_key_backoff_ms"));
    if (idleSpinUs < 0 || idleSpinUs > kMaxIdleSpinUs)
        return fail(QStringLiteral("idle_spin_us must be from 0 (off) to %1").arg(kMaxIdleSpinUs));
    if (shutdownGraceMs > 3600 * 1000)
        return fail(QStringLiteral("shutdown_grace_ms must not exceed one hour (3600000)"));
    if (maxFrameSize < codec.maxMessageSize)
        return fail(QStringLiteral("max_frame_size must be at least max_message_size"));
    if (requestTimeoutMs > maxRequestTimeoutMs)
        return fail(QStringLiteral("request_timeout_ms must not exceed max_request_timeout_ms"));
    if (tls.enabled() && tls.certificateFile.isEmpty())
        return fail(QStringLiteral("tls: a private key needs a certificate (tls.certificate or --tls-cert)"));
    if (tls.enabled() && tls.privateKeyFile.isEmpty())
        return fail(QStringLiteral("tls: a certificate needs a private key (tls.private_key or --tls-key)"));
    if (!tls.enabled() && !tls.privateKeyPassphrase.isEmpty())
        return fail(QStringLiteral("tls.private_key_passphrase is set but no private key is configured"));
    for (const QList<KeyConfig> *keys : {&serviceKeys, &clientKeys}) {
        for (const KeyConfig &key : *keys) {
            QString why;
            if (!KeyStore::checkKey(key.key, &why))
                return fail(QStringLiteral("key '%1': %2").arg(key.name, why));
        }
    }
    // One key must mean one role and one name.
    QSet<QByteArray> digests;
    for (const QList<KeyConfig> *keys : {&serviceKeys, &clientKeys}) {
        for (const KeyConfig &key : *keys) {
            const QByteArray digest = key.key.startsWith("sha256:") ? key.key.toLower() : KeyStore::hashedForm(key.key);
            if (digests.contains(digest))
                return fail(QStringLiteral("key '%1' is configured more than once").arg(key.name));
            digests.insert(digest);
        }
    }
    for (const QString &origin : allowedOrigins) {
        if (origin.trimmed().isEmpty() || origin.trimmed() != origin)
            return fail(QStringLiteral("allowed_origins: '%1' is not an origin").arg(origin));
    }
    for (const GrantConfig &grant : grants) {
        if (grant.kind != Command::Epub && grant.kind != Command::Esub && grant.kind != Command::Ereq)
            return fail(QStringLiteral("grant kind must be EPUB, ESUB or EREQ"));
        QByteArray why;
        if (!Target::isPattern(grant.pattern, codec.maxTargetLength, &why))
            return fail(QStringLiteral("grant '%1': %2")
                            .arg(QString::fromUtf8(grant.pattern), QString::fromUtf8(why)));
    }
    return true;
}

} // namespace Middleman
