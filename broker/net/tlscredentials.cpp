#include "tlscredentials.h"

#include <QFile>
#include <QSslSocket>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <memory>

namespace Middleman {

namespace {

// Qt's QSslKey cannot tell a wrong passphrase from a broken file, nor say whether
// a key belongs to a certificate; libcrypto (which Qt's TLS backend uses on
// Debian anyway) can. It checks the files here; Qt does the TLS itself.
struct BioFree
{
    void operator()(BIO *bio) const { BIO_free(bio); }
};
struct PkeyFree
{
    void operator()(EVP_PKEY *key) const { EVP_PKEY_free(key); }
};
struct X509Free
{
    void operator()(X509 *cert) const { X509_free(cert); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

bool readFile(const QString &path, const QString &setting, QByteArray *out, QString *error)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        *error = QStringLiteral("%1: cannot read %2: %3").arg(setting, path, file.errorString());
        return false;
    }
    *out = file.readAll();
    return true;
}

// OpenSSL's passphrase callback. Without a passphrase it refuses, so an encrypted
// key never makes OpenSSL prompt on the terminal.
int passphraseCallback(char *buffer, int size, int /*rwflag*/, void *user)
{
    const auto *passphrase = static_cast<const QByteArray *>(user);
    if (!passphrase || passphrase->isEmpty() || size <= 0)
        return -1;
    const int length = int(qMin(passphrase->size(), qsizetype(size)));
    std::memcpy(buffer, passphrase->constData(), size_t(length));
    return length;
}

bool isEncryptedPem(const QByteArray &pem)
{
    return pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || pem.contains("Proc-Type: 4,ENCRYPTED");
}

QString when(const QDateTime &moment)
{
    return moment.toUTC().toString(Qt::ISODate);
}

} // namespace

bool TlsCredentials::load(const TlsConfig &config, QString *error)
{
    QString why;
    auto fail = [&](const QString &reason) {
        ERR_clear_error(); // nothing of ours left in the thread's queue for Qt's backend
        if (error)
            *error = reason;
        return false;
    };
    if (!QSslSocket::supportsSsl()) {
        return fail(QStringLiteral("tls: Qt has no working TLS backend here (is libssl3 installed?); %1")
                        .arg(QSslSocket::sslLibraryVersionString()));
    }
    const QString certSetting = QStringLiteral("tls.certificate");
    const QString keySetting = QStringLiteral("tls.private_key");

    QByteArray certPem;
    if (!readFile(config.certificateFile, certSetting, &certPem, &why))
        return fail(why);
    const QList<QSslCertificate> chain = QSslCertificate::fromData(certPem, QSsl::Pem);
    if (chain.isEmpty() || chain.first().isNull())
        return fail(QStringLiteral("%1: no PEM certificate in %2").arg(certSetting, config.certificateFile));

    QByteArray keyPem;
    if (!readFile(config.privateKeyFile, keySetting, &keyPem, &why))
        return fail(why);
    const bool encrypted = isEncryptedPem(keyPem);
    Bio keyBio(BIO_new_mem_buf(keyPem.constData(), int(keyPem.size())));
    QByteArray passphrase = config.privateKeyPassphrase; // OpenSSL's callback takes a non-const pointer
    Pkey key(keyBio ? PEM_read_bio_PrivateKey(keyBio.get(), nullptr, passphraseCallback, &passphrase) : nullptr);
    keyBio.reset();
    keyPem.fill('\0'); // the only copy of the file's bytes
    if (!key) {
        // Told apart, because each needs a different fix.
        if (encrypted && config.privateKeyPassphrase.isEmpty()) {
            return fail(QStringLiteral("%1: %2 is encrypted; set tls.private_key_passphrase")
                            .arg(keySetting, config.privateKeyFile));
        }
        if (encrypted) {
            return fail(QStringLiteral("%1: cannot decrypt %2: wrong passphrase")
                            .arg(keySetting, config.privateKeyFile));
        }
        return fail(QStringLiteral("%1: no PEM private key in %2").arg(keySetting, config.privateKeyFile));
    }

    QSsl::KeyAlgorithm algorithm = QSsl::Opaque;
    switch (EVP_PKEY_get_base_id(key.get())) {
    case EVP_PKEY_RSA: algorithm = QSsl::Rsa; break;
    case EVP_PKEY_EC: algorithm = QSsl::Ec; break;
    case EVP_PKEY_DSA: algorithm = QSsl::Dsa; break;
    default:
        return fail(QStringLiteral("%1: the key in %2 is of a type Qt cannot serve with (use RSA or EC)")
                        .arg(keySetting, config.privateKeyFile));
    }

    const QByteArray leafDer = chain.first().toDer();
    const auto *derData = reinterpret_cast<const unsigned char *>(leafDer.constData());
    Cert leaf(d2i_X509(nullptr, &derData, long(leafDer.size())));
    if (!leaf)
        return fail(QStringLiteral("%1: cannot decode the certificate in %2").arg(certSetting, config.certificateFile));
    if (X509_check_private_key(leaf.get(), key.get()) != 1) {
        return fail(QStringLiteral("%1: the key in %2 does not belong to the certificate in %3")
                        .arg(keySetting, config.privateKeyFile, config.certificateFile));
    }

    // Qt gets the key already decrypted, as unencrypted PKCS#8 PEM in memory that
    // OpenSSL wipes when it is freed; the passphrase goes no further than here.
    Bio secure(BIO_new(BIO_s_secmem()));
    if (!secure || PEM_write_bio_PrivateKey(secure.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return fail(QStringLiteral("%1: cannot use the key in %2").arg(keySetting, config.privateKeyFile));
    char *data = nullptr;
    const long size = BIO_get_mem_data(secure.get(), &data);
    QByteArray plain(data, qsizetype(size));
    const QSslKey qtKey(plain, algorithm, QSsl::Pem, QSsl::PrivateKey);
    plain.fill('\0');
    if (qtKey.isNull())
        return fail(QStringLiteral("%1: Qt's TLS backend cannot use the key in %2").arg(keySetting, config.privateKeyFile));

    ERR_clear_error();
    m_chain = chain;
    m_key = qtKey;
    return true;
}

QSslConfiguration TlsCredentials::serverConfiguration() const
{
    QSslConfiguration configuration = QSslConfiguration::defaultConfiguration();
    configuration.setLocalCertificateChain(m_chain);
    configuration.setPrivateKey(m_key);
    configuration.setProtocol(QSsl::TlsV1_2OrLater);
    // Peers prove who they are with their API key (docs/protocol.md §2), not a certificate.
    configuration.setPeerVerifyMode(QSslSocket::VerifyNone);
    return configuration;
}

QString TlsCredentials::validityProblem(const QDateTime &now) const
{
    if (m_chain.isEmpty())
        return {};
    const QSslCertificate &leaf = m_chain.first();
    if (leaf.expiryDate().isValid() && now > leaf.expiryDate())
        return QStringLiteral("the certificate expired on %1").arg(when(leaf.expiryDate()));
    if (leaf.effectiveDate().isValid() && now < leaf.effectiveDate())
        return QStringLiteral("the certificate is not valid before %1").arg(when(leaf.effectiveDate()));
    return {};
}

QString TlsCredentials::summary() const
{
    if (m_chain.isEmpty())
        return {};
    const QSslCertificate &leaf = m_chain.first();
    return QStringLiteral("certificate %1, valid until %2, chain of %3")
        .arg(leaf.subjectDisplayName(), when(leaf.expiryDate()))
        .arg(m_chain.size());
}

} // namespace Middleman
