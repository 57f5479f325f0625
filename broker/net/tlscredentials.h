#pragma once
// TlsCredentials: the broker's certificate chain and private key, read from the
// PEM files of a TlsConfig and checked against each other (docs/protocol.md §1,
// wss://; docs/configuration.md, [tls]). A plain value, usable on any thread.

#include "brokerconfig.h"

#include <QDateTime>
#include <QList>
#include <QSslCertificate>
#include <QSslConfiguration>
#include <QSslKey>
#include <QString>

namespace Middleman {

class TlsCredentials
{
public:
    // Reads both files and checks them: a readable PEM certificate, a readable
    // PEM private key (decrypted with the passphrase when it is encrypted), and
    // a key that belongs to the certificate. On failure: false and a one-line
    // reason naming the setting and the file, never key material or the passphrase.
    bool load(const TlsConfig &config, QString *error);

    // What the server side of a wss:// connection uses: this chain and key, TLS 1.2
    // or later, no client certificates.
    QSslConfiguration serverConfiguration() const;

    // Why the certificate is not valid at `now` ("expired on ...", "not valid
    // before ..."), or an empty string. The broker starts anyway and warns.
    QString validityProblem(const QDateTime &now) const;
    // "CN=..., valid until ...": for the log.
    QString summary() const;

    const QList<QSslCertificate> &chain() const { return m_chain; }

private:
    QList<QSslCertificate> m_chain; // the server certificate first
    QSslKey m_key;
};

} // namespace Middleman
