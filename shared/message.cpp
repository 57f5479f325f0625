#include "message.h"

#include <array>

namespace Middleman {

namespace {
struct CommandEntry
{
    QByteArrayView name;
    Command command;
};
constexpr std::array<CommandEntry, 11> kCommands{{
    {"SUB", Command::Sub},
    {"UNSUB", Command::Unsub},
    {"UNS", Command::Unsub},
    {"PUB", Command::Pub},
    {"REQ", Command::Req},
    {"RES", Command::Res},
    {"EPUB", Command::Epub},
    {"ESUB", Command::Esub},
    {"EREQ", Command::Ereq},
    {"OPT", Command::Opt},
    {"ERR", Command::Err},
}};
} // namespace

QByteArrayView commandName(Command command)
{
    switch (command) {
    case Command::Sub: return "SUB";
    case Command::Unsub: return "UNSUB";
    case Command::Pub: return "PUB";
    case Command::Req: return "REQ";
    case Command::Res: return "RES";
    case Command::Epub: return "EPUB";
    case Command::Esub: return "ESUB";
    case Command::Ereq: return "EREQ";
    case Command::Opt: return "OPT";
    case Command::Err: return "ERR";
    }
    Q_UNREACHABLE();
    return "ERR";
}

std::optional<Command> commandFromName(QByteArrayView name)
{
    for (const CommandEntry &entry : kCommands) {
        if (headerNameEquals(entry.name, name))
            return entry.command;
    }
    return std::nullopt;
}

QByteArray Message::header(QByteArrayView name) const
{
    for (const Header &h : headers) {
        if (headerNameEquals(h.name, name))
            return h.value;
    }
    return {};
}

bool Message::hasHeader(QByteArrayView name) const
{
    for (const Header &h : headers) {
        if (headerNameEquals(h.name, name))
            return true;
    }
    return false;
}

void Message::setHeader(QByteArrayView name, const QByteArray &value)
{
    bool replaced = false;
    for (qsizetype i = 0; i < headers.size();) {
        if (headerNameEquals(headers.at(i).name, name)) {
            if (!replaced) {
                Header &header = headers[i];
                if (header.name != name)
                    header.name = name.toByteArray(); // in the case asked for
                header.value = value;
                replaced = true;
                ++i;
            } else {
                headers.removeAt(i);
            }
        } else {
            ++i;
        }
    }
    if (!replaced)
        headers.append(Header{name.toByteArray(), value});
}

qsizetype Message::removeHeader(QByteArrayView name)
{
    return headers.removeIf([name](const Header &h) { return headerNameEquals(h.name, name); });
}

bool operator==(const Header &a, const Header &b)
{
    return a.name == b.name && a.value == b.value;
}

bool operator==(const Message &a, const Message &b)
{
    return a.command == b.command && a.target == b.target && a.headers == b.headers
        && a.body == b.body && a.binary == b.binary;
}

} // namespace Middleman
