#pragma once
// Message: one protocol message as a plain value (docs/protocol.md §3). No thread affinity.

#include <QByteArray>
#include <QByteArrayView>
#include <QList>

#include <optional>

namespace Middleman {

// Section 4: the commands. Err is sent by the broker only.
enum class Command : quint8 { Sub, Unsub, Pub, Req, Res, Epub, Esub, Ereq, Opt, Err };

// Upper-case wire name ("SUB", "PUB", ...).
QByteArrayView commandName(Command command);
// Case-insensitive; accepts the alias UNS for UNSUB (section 4.1).
std::optional<Command> commandFromName(QByteArrayView name);

struct Header
{
    QByteArray name;
    QByteArray value;
};

// Well-known header names (sections 3.5, 4 and 5). Comparison is always case-insensitive.
namespace HeaderName {
inline constexpr QByteArrayView ReqId = "ReqID";
inline constexpr QByteArrayView ClientId = "Client-Id";
inline constexpr QByteArrayView Status = "Status";
inline constexpr QByteArrayView Timeout = "Timeout";
inline constexpr QByteArrayView ContentLength = "Content-Length";
inline constexpr QByteArrayView Command = "Command";
inline constexpr QByteArrayView Batch = "Batch";
}

// Equal ignoring ASCII case; bytes from 0x80 up compare exactly (a name is
// bytes, not Latin-1). Inline: the parser and every header lookup call it.
inline bool headerNameEquals(QByteArrayView a, QByteArrayView b)
{
    if (a.size() != b.size())
        return false;
    for (qsizetype i = 0; i < a.size(); ++i) {
        const auto x = static_cast<unsigned char>(a[i]);
        const auto y = static_cast<unsigned char>(b[i]);
        if (x == y)
            continue;
        const unsigned char lower = x | 0x20;
        if ((x ^ y) != 0x20 || lower < 'a' || lower > 'z')
            return false;
    }
    return true;
}

// A QByteArray over bytes with static storage (a string literal, such as the
// header names above or commandName()), without copying them.
inline QByteArray staticBytes(QByteArrayView literal)
{
    return QByteArray::fromRawData(literal.data(), literal.size());
}

class Message
{
public:
    Command command = Command::Pub;
    QByteArray target;
    QList<Header> headers; // order kept, names may repeat (section 3.3)
    QByteArray body;
    bool binary = false; // WebSocket frame type it arrived in / leaves in (section 1)

    // First value under `name`, or a null QByteArray.
    QByteArray header(QByteArrayView name) const;
    bool hasHeader(QByteArrayView name) const;
    // Replaces the first header called `name` in place and drops the others;
    // appends it when there was none. Used for reserved headers (section 5).
    void setHeader(QByteArrayView name, const QByteArray &value);
    // Returns how many headers were removed.
    qsizetype removeHeader(QByteArrayView name);

    friend bool operator==(const Message &a, const Message &b);
};

bool operator==(const Header &a, const Header &b);

} // namespace Middleman
