// Unit tests for the codec: FrameReader, validateMessage, serialize and parseOne
// (docs/protocol.md §3, message syntax, and the per-command rules of section 4).

#include "codec.h"
#include "message.h"

#include <QTest>

#include <limits>

using namespace Middleman;

namespace Middleman {
// Readable QCOMPARE failures for messages.
char *toString(const Message &m)
{
    QByteArray out = commandName(m.command).toByteArray() + ' ' + m.target;
    for (const Header &h : m.headers)
        out += " [" + h.name + ": " + h.value + ']';
    out += " body=";
    char *body = QTest::toPrettyCString(m.body.constData(), m.body.size());
    out += body;
    delete[] body;
    if (m.binary)
        out += " (binary)";
    return qstrdup(out.constData());
}
} // namespace Middleman

Q_DECLARE_METATYPE(Middleman::Message)
Q_DECLARE_METATYPE(Middleman::CodecLimits)
Q_DECLARE_METATYPE(Middleman::Direction)

namespace {

Header hdr(const char *name, const QByteArray &value)
{
    return Header{QByteArray(name), value};
}

Message makeMessage(Command command, const QByteArray &target, const QList<Header> &headers = {},
                    const QByteArray &body = QByteArray(), bool binary = false)
{
    Message m;
    m.command = command;
    m.target = target;
    m.headers = headers;
    m.body = body;
    m.binary = binary;
    return m;
}

// One line per item a reader returns: "SUB a" for a message, "ERR 400" for an error.
QByteArrayList trace(QByteArrayView frame, const CodecLimits &limits = CodecLimits())
{
    QByteArrayList out;
    FrameReader reader(frame, limits);
    Message m;
    ParseError e;
    for (int guard = 0; guard < 1000; ++guard) {
        switch (reader.next(m, e)) {
        case FrameReader::Item::Message:
            out.append(QByteArray(commandName(m.command).toByteArray() + ' ' + m.target));
            break;
        case FrameReader::Item::Error:
            out.append(QByteArray("ERR " + QByteArray::number(e.status)));
            break;
        case FrameReader::Item::End:
            return out;
        }
    }
    out.append(QByteArrayLiteral("reader did not end"));
    return out;
}

QByteArray repeated(const QByteArray &line, int count)
{
    QByteArray out;
    for (int i = 0; i < count; ++i)
        out += line;
    return out;
}

CodecLimits smallMessages(qsizetype maxMessageSize)
{
    CodecLimits limits;
    limits.maxMessageSize = maxMessageSize;
    return limits;
}

CodecLimits shortTargets(int maxTargetLength)
{
    CodecLimits limits;
    limits.maxTargetLength = maxTargetLength;
    return limits;
}

} // namespace

class tst_Codec : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void commandNames_data();
    void commandNames();
    void headerNames_data();
    void headerNames();
    void roundTrip_data();
    void roundTrip();
    void roundTripBodyWithCr();
    void serializeWireForm_data();
    void serializeWireForm();
    void parse_data();
    void parse();
    void parseBinaryFlag();
    void parseFromBroker();
    void headerLimitsAtTheEdge();
    void parseErrors_data();
    void parseErrors();
    void recovery_data();
    void recovery();
    void endIsFinal();
    void validate_data();
    void validate();
    void parseOne();
    void quoteInReason_data();
    void quoteInReason();
    void timeoutHeader_data();
    void timeoutHeader();
};

void tst_Codec::commandNames_data()
{
    QTest::addColumn<QByteArray>("name");
    QTest::addColumn<bool>("known");
    QTest::addColumn<int>("command");
    QTest::addColumn<QByteArray>("wireName");

    QTest::addRow("SUB") << QByteArrayLiteral("SUB") << true << int(Command::Sub) << QByteArrayLiteral("SUB");
    QTest::addRow("lower case sub") << QByteArrayLiteral("sub") << true << int(Command::Sub) << QByteArrayLiteral("SUB");
    QTest::addRow("UNSUB") << QByteArrayLiteral("UNSUB") << true << int(Command::Unsub) << QByteArrayLiteral("UNSUB");
    QTest::addRow("UNS alias") << QByteArrayLiteral("UNS") << true << int(Command::Unsub) << QByteArrayLiteral("UNSUB");
    QTest::addRow("mixed case uns alias") << QByteArrayLiteral("uNs") << true << int(Command::Unsub) << QByteArrayLiteral("UNSUB");
    QTest::addRow("PUB") << QByteArrayLiteral("Pub") << true << int(Command::Pub) << QByteArrayLiteral("PUB");
    QTest::addRow("REQ") << QByteArrayLiteral("req") << true << int(Command::Req) << QByteArrayLiteral("REQ");
    QTest::addRow("RES") << QByteArrayLiteral("RES") << true << int(Command::Res) << QByteArrayLiteral("RES");
    QTest::addRow("EPUB") << QByteArrayLiteral("epub") << true << int(Command::Epub) << QByteArrayLiteral("EPUB");
    QTest::addRow("ESUB") << QByteArrayLiteral("ESUB") << true << int(Command::Esub) << QByteArrayLiteral("ESUB");
    QTest::addRow("EREQ") << QByteArrayLiteral("eReQ") << true << int(Command::Ereq) << QByteArrayLiteral("EREQ");
    QTest::addRow("OPT") << QByteArrayLiteral("opt") << true << int(Command::Opt) << QByteArrayLiteral("OPT");
    QTest::addRow("ERR") << QByteArrayLiteral("ERR") << true << int(Command::Err) << QByteArrayLiteral("ERR");
    QTest::addRow("empty") << QByteArray() << false << 0 << QByteArray();
    QTest::addRow("unknown") << QByteArrayLiteral("FOO") << false << 0 << QByteArray();
    QTest::addRow("prefix of a command") << QByteArrayLiteral("SU") << false << 0 << QByteArray();
    QTest::addRow("command with suffix") << QByteArrayLiteral("SUBX") << false << 0 << QByteArray();
    QTest::addRow("UN is no alias") << QByteArrayLiteral("UN") << false << 0 << QByteArray();
}

void tst_Codec::commandNames()
{
    QFETCH(QByteArray, name);
    QFETCH(bool, known);
    QFETCH(int, command);
    QFETCH(QByteArray, wireName);

    const std::optional<Command> parsed = commandFromName(name);
    QCOMPARE(parsed.has_value(), known);
    if (known) {
        QCOMPARE(int(*parsed), command);
        QCOMPARE(commandName(*parsed).toByteArray(), wireName);
        // The wire name reads back as the same command.
        QVERIFY(commandFromName(wireName) == parsed);
    }
}

void tst_Codec::headerNames_data()
{
    QTest::addColumn<QByteArray>("a");
    QTest::addColumn<QByteArray>("b");
    QTest::addColumn<bool>("equal");

    QTest::addRow("same") << QByteArrayLiteral("ReqID") << QByteArrayLiteral("ReqID") << true;
    QTest::addRow("case differs") << QByteArrayLiteral("ReqID") << QByteArrayLiteral("rEQid") << true;
    QTest::addRow("all letters") << QByteArrayLiteral("abcdefghijklmnopqrstuvwxyz")
                                 << QByteArrayLiteral("ABCDEFGHIJKLMNOPQRSTUVWXYZ") << true;
    QTest::addRow("digits and dashes") << QByteArrayLiteral("X-1_a") << QByteArrayLiteral("x-1_A") << true;
    QTest::addRow("empty") << QByteArray() << QByteArray() << true;
    QTest::addRow("prefix") << QByteArrayLiteral("ReqI") << QByteArrayLiteral("ReqID") << false;
    QTest::addRow("other letter") << QByteArrayLiteral("ReqIE") << QByteArrayLiteral("ReqID") << false;
    // Pairs 0x20 apart that are not letters stay different.
    QTest::addRow("@ and `") << QByteArrayLiteral("a@") << QByteArrayLiteral("a`") << false;
    QTest::addRow("[ and {") << QByteArrayLiteral("a[") << QByteArrayLiteral("a{") << false;
    QTest::addRow("^ and ~") << QByteArrayLiteral("^") << QByteArrayLiteral("~") << false;
    QTest::addRow("0 and DLE") << QByteArrayLiteral("0") << QByteArrayLiteral("\x10") << false;
    // Bytes from 0x80 up are compared exactly: no Latin-1 folding of UTF-8 bytes.
    QTest::addRow("Latin-1 upper and lower") << QByteArrayLiteral("\xc4") << QByteArrayLiteral("\xe4") << false;
    QTest::addRow("UTF-8 same bytes") << QByteArrayLiteral("Gr\xc3\xbc\xc3\x9f" "e")
                                      << QByteArrayLiteral("gR\xc3\xbc\xc3\x9f" "E") << true;
    QTest::addRow("UTF-8 Ä and ä") << QByteArrayLiteral("\xc3\x84") << QByteArrayLiteral("\xc3\xa4") << false;
}

void tst_Codec::headerNames()
{
    QFETCH(QByteArray, a);
    QFETCH(QByteArray, b);
    QFETCH(bool, equal);
    QCOMPARE(headerNameEquals(a, b), equal);
    QCOMPARE(headerNameEquals(b, a), equal);

    // A header looked up by either spelling is found exactly when the names are equal.
    Message m;
    m.headers.append(Header{a, QByteArrayLiteral("v")});
    QCOMPARE(m.hasHeader(b), equal);
    QCOMPARE(m.header(b), equal ? QByteArrayLiteral("v") : QByteArray());
}

void tst_Codec::roundTrip_data()
{
    QTest::addColumn<Message>("message");

    QTest::addRow("empty body") << makeMessage(Command::Pub, QByteArrayLiteral("chat.room1"));
    QTest::addRow("short SUB") << makeMessage(Command::Sub, QByteArrayLiteral("chat.>"));
    QTest::addRow("UNSUB") << makeMessage(Command::Unsub, QByteArrayLiteral("chat.*"));
    QTest::addRow("one-line body")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("hello"));
    QTest::addRow("multi-line body")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("line 1\nline 2\n\nline 4"));
    QTest::addRow("body lines starting with a dot")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral(".\n..\n.x\nmid.dle\n."));
    QTest::addRow("body of a lone dot") << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("."));
    QTest::addRow("body of only LF") << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("\n"));
    QTest::addRow("body of two LFs") << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("\n\n"));
    QTest::addRow("body ending in LF")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("text\n"));
    QTest::addRow("body starting with LF")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("\ntext"));
    QTest::addRow("body looking like a message")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("PUB b\n\nx\n.\n"));
    QTest::addRow("body with NUL, no CR")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("a\0b\n\0"));
    QTest::addRow("binary body with Content-Length")
        << makeMessage(Command::Pub, QByteArrayLiteral("bin"), {hdr("Content-Length", QByteArrayLiteral("10"))},
                       QByteArrayLiteral("\0\x01\r\n.\n\xff\r\0\n"), true);
    QTest::addRow("CRLF body with Content-Length")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {hdr("Content-Length", QByteArrayLiteral("12"))},
                       QByteArrayLiteral("line\r\nline\r\n"));
    QTest::addRow("empty body with Content-Length")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {hdr("Content-Length", QByteArrayLiteral("0"))});
    QTest::addRow("Content-Length body of only LF")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {hdr("Content-Length", QByteArrayLiteral("1"))},
                       QByteArrayLiteral("\n"));
    QTest::addRow("lower-case Content-Length name kept")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {hdr("content-length", QByteArrayLiteral("3"))},
                       QByteArrayLiteral("a\rb"));
    QTest::addRow("repeated header names")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"),
                       {hdr("X-Tag", QByteArrayLiteral("1")), hdr("x-tag", QByteArrayLiteral("2")),
                        hdr("X-Tag", QByteArrayLiteral("3"))},
                       QByteArrayLiteral("b"));
    QTest::addRow("header order kept")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"),
                       {hdr("Zeta", QByteArrayLiteral("z")), hdr("Alpha", QByteArrayLiteral("a")),
                        hdr("Mid", QByteArrayLiteral("m"))});
    QTest::addRow("header values with colons and inner spaces")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"),
                       {hdr("Url", QByteArrayLiteral("http://x:80/y")), hdr("Note", QByteArrayLiteral("a  b"))});
    QTest::addRow("empty header value")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {hdr("Empty", QByteArrayLiteral(""))});
    QTest::addRow("REQ with ReqID and Timeout")
        << makeMessage(Command::Req, QByteArrayLiteral("svc.echo"),
                       {hdr("ReqID", QByteArrayLiteral("r-1")), hdr("Timeout", QByteArrayLiteral("500"))},
                       QByteArrayLiteral("ping"));
    QTest::addRow("RES with Status")
        << makeMessage(Command::Res, QByteArrayLiteral("svc.echo"),
                       {hdr("ReqID", QByteArrayLiteral("r-1")), hdr("Status", QByteArrayLiteral("503"))},
                       QByteArrayLiteral("no responder"));
    QTest::addRow("grant") << makeMessage(Command::Esub, QByteArrayLiteral("public.>"));
    QTest::addRow("OPT") << makeMessage(Command::Opt, QByteArrayLiteral("-"), {hdr("Batch", QByteArrayLiteral("on"))});
    QTest::addRow("long body") << makeMessage(Command::Pub, QByteArrayLiteral("a"), {},
                                              repeated(QByteArrayLiteral("0123456789.\n.abc\n"), 1000));
    QTest::addRow("max length target") << makeMessage(Command::Pub, QByteArray(Target::DefaultMaxLength, 't'));
    QTest::addRow("binary frame type") << makeMessage(Command::Pub, QByteArrayLiteral("a"), {},
                                                      QByteArrayLiteral("x"), true);
}

void tst_Codec::roundTrip()
{
    QFETCH(Message, message);

    const QByteArray wire = serialize(message);
    FrameReader reader(wire, CodecLimits(), message.binary);
    Message parsed;
    ParseError error;
    QCOMPARE(reader.next(parsed, error), FrameReader::Item::Message);
    QCOMPARE(parsed, message);
    QCOMPARE(reader.next(parsed, error), FrameReader::Item::End);

    // Serialising what was parsed gives the same bytes.
    QCOMPARE(serialize(parsed), wire);

    // Two copies in one frame come back as two messages.
    const QByteArray doubled = wire + wire;
    FrameReader twice(doubled, CodecLimits(), message.binary);
    QCOMPARE(twice.next(parsed, error), FrameReader::Item::Message);
    QCOMPARE(parsed, message);
    QCOMPARE(twice.next(parsed, error), FrameReader::Item::Message);
    QCOMPARE(parsed, message);
    QCOMPARE(twice.next(parsed, error), FrameReader::Item::End);
}

// A body holding CR cannot survive dot-stuffing: the serializer adds Content-Length.
void tst_Codec::roundTripBodyWithCr()
{
    const QByteArray body = QByteArrayLiteral("a\r\nb\rc\r");
    const Message m = makeMessage(Command::Pub, QByteArrayLiteral("a"), {hdr("X", QByteArrayLiteral("1"))}, body);
    const QByteArray wire = serialize(m);
    QVERIFY2(wire.contains("\nContent-Length: 7\n"), wire.constData());

    Message parsed;
    ParseError error;
    QVERIFY2(Middleman::parseOne(wire, CodecLimits(), &parsed, &error), error.reason.constData());
    QCOMPARE(parsed.body, body);
    QCOMPARE(parsed.header("X"), QByteArrayLiteral("1"));
    QCOMPARE(parsed.header(HeaderName::ContentLength), QByteArrayLiteral("7"));
    QCOMPARE(parsed.headers.size(), 2);
}

void tst_Codec::serializeWireForm_data()
{
    QTest::addColumn<Message>("message");
    QTest::addColumn<QByteArray>("wire");

    QTest::addRow("no headers, no body")
        << makeMessage(Command::Sub, QByteArrayLiteral("a.*")) << QByteArrayLiteral("SUB a.*\n\n.\n");
    QTest::addRow("UNSUB written in full")
        << makeMessage(Command::Unsub, QByteArrayLiteral("a")) << QByteArrayLiteral("UNSUB a\n\n.\n");
    QTest::addRow("headers and body")
        << makeMessage(Command::Req, QByteArrayLiteral("svc"), {hdr("ReqID", QByteArrayLiteral("7"))},
                       QByteArrayLiteral("x\ny"))
        << QByteArrayLiteral("REQ svc\nReqID: 7\n\nx\ny\n.\n");
    QTest::addRow("dot-stuffing")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral(".\n..x\ny."))
        << QByteArrayLiteral("PUB a\n\n..\n...x\ny.\n.\n");
    QTest::addRow("body of only LF")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {}, QByteArrayLiteral("\n"))
        << QByteArrayLiteral("PUB a\n\n\n\n.\n");
    QTest::addRow("Content-Length rewritten to the real size")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {hdr("Content-Length", QByteArrayLiteral("99"))},
                       QByteArrayLiteral("abc"))
        << QByteArrayLiteral("PUB a\nContent-Length: 3\n\nabc\n.\n");
    QTest::addRow("Content-Length kept in place, no dot-stuffing")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"),
                       {hdr("A", QByteArrayLiteral("1")), hdr("Content-Length", QByteArrayLiteral("")),
                        hdr("B", QByteArrayLiteral("2"))},
                       QByteArrayLiteral(".\n"))
        << QByteArrayLiteral("PUB a\nA: 1\nContent-Length: 2\nB: 2\n\n.\n\n.\n");
    QTest::addRow("repeated Content-Length written once")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"),
                       {hdr("content-length", QByteArrayLiteral("1")), hdr("Content-Length", QByteArrayLiteral("2"))},
                       QByteArrayLiteral("xy"))
        << QByteArrayLiteral("PUB a\ncontent-length: 2\n\nxy\n.\n");
    QTest::addRow("Content-Length added for CR")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {hdr("X", QByteArrayLiteral("1"))},
                       QByteArrayLiteral("a\r\nb"))
        << QByteArrayLiteral("PUB a\nX: 1\nContent-Length: 4\n\na\r\nb\n.\n");
    QTest::addRow("Content-Length with empty body")
        << makeMessage(Command::Pub, QByteArrayLiteral("a"), {hdr("Content-Length", QByteArrayLiteral("5"))})
        << QByteArrayLiteral("PUB a\nContent-Length: 0\n\n\n.\n");
}

void tst_Codec::serializeWireForm()
{
    QFETCH(Message, message);
    QFETCH(QByteArray, wire);
    QCOMPARE(serialize(message), wire);

    // And it parses back to the same body.
    Message parsed;
    ParseError error;
    QVERIFY2(Middleman::parseOne(wire, CodecLimits(), &parsed, &error), error.reason.constData());
    QCOMPARE(parsed.body, message.body);
    QCOMPARE(parsed.target, message.target);
}

void tst_Codec::parse_data()
{
    QTest::addColumn<QByteArray>("frame");
    QTest::addColumn<QList<Message>>("expected");

    const QByteArray a = QByteArrayLiteral("a");
    QTest::addRow("LF line ends")
        << QByteArrayLiteral("PUB a\nX: 1\n\nhello\nworld\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("X", "1")}, QByteArrayLiteral("hello\nworld"))};
    QTest::addRow("CRLF line ends")
        << QByteArrayLiteral("PUB a\r\nX: 1\r\n\r\nhello\r\nworld\r\n.\r\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("X", "1")}, QByteArrayLiteral("hello\nworld"))};
    QTest::addRow("mixed line ends")
        << QByteArrayLiteral("PUB a\r\nX: 1\n\r\nhello\nworld\r\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("X", "1")}, QByteArrayLiteral("hello\nworld"))};
    QTest::addRow("short form without blank line")
        << QByteArrayLiteral("SUB a\n.\n") << QList<Message>{makeMessage(Command::Sub, a)};
    QTest::addRow("short form CRLF")
        << QByteArrayLiteral("SUB a\r\n.\r\n") << QList<Message>{makeMessage(Command::Sub, a)};
    QTest::addRow("empty body as no line")
        << QByteArrayLiteral("PUB a\n\n.\n") << QList<Message>{makeMessage(Command::Pub, a)};
    QTest::addRow("empty body as one empty line")
        << QByteArrayLiteral("PUB a\n\n\n.\n") << QList<Message>{makeMessage(Command::Pub, a)};
    QTest::addRow("body of only LF")
        << QByteArrayLiteral("PUB a\n\n\n\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {}, QByteArrayLiteral("\n"))};
    QTest::addRow("final dot without LF")
        << QByteArrayLiteral("PUB a\n\nhi\n.") << QList<Message>{makeMessage(Command::Pub, a, {}, QByteArrayLiteral("hi"))};
    QTest::addRow("final dot without LF, short form")
        << QByteArrayLiteral("SUB a\n.") << QList<Message>{makeMessage(Command::Sub, a)};
    QTest::addRow("final dot without LF, Content-Length")
        << QByteArrayLiteral("PUB a\nContent-Length: 2\n\nhi\n.")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("Content-Length", "2")}, QByteArrayLiteral("hi"))};
    QTest::addRow("dot-stuffing removed")
        << QByteArrayLiteral("PUB a\n\n..\n...x\n.y\nz.\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {}, QByteArrayLiteral(".\n..x\ny\nz."))};
    QTest::addRow("dot-stuffed CRLF line")
        << QByteArrayLiteral("PUB a\r\n\r\n..\r\n.\r\n")
        << QList<Message>{makeMessage(Command::Pub, a, {}, QByteArrayLiteral("."))};
    QTest::addRow("several messages in one frame")
        << QByteArrayLiteral("SUB a\n.\nPUB a\n\none\n.\nREQ a\nReqID: 1\n\ntwo\n.\n")
        << QList<Message>{makeMessage(Command::Sub, a), makeMessage(Command::Pub, a, {}, QByteArrayLiteral("one")),
                          makeMessage(Command::Req, a, {hdr("ReqID", "1")}, QByteArrayLiteral("two"))};
    QTest::addRow("blank lines between messages")
        << QByteArrayLiteral("\n\r\nSUB a\n.\n\n\n \t\nPUB a\n\n.\n\r\n\n")
        << QList<Message>{makeMessage(Command::Sub, a), makeMessage(Command::Pub, a)};
    QTest::addRow("case-insensitive commands")
        << QByteArrayLiteral("sub a\n.\nPuB a\n\n.\nePuB a.>\n.\n")
        << QList<Message>{makeMessage(Command::Sub, a), makeMessage(Command::Pub, a),
                          makeMessage(Command::Epub, QByteArrayLiteral("a.>"))};
    QTest::addRow("UNS alias")
        << QByteArrayLiteral("UNS a.*\n.\nuns a\n.\nUnSuB a\n.\n")
        << QList<Message>{makeMessage(Command::Unsub, QByteArrayLiteral("a.*")), makeMessage(Command::Unsub, a),
                          makeMessage(Command::Unsub, a)};
    QTest::addRow("trailing blanks after the target")
        << QByteArrayLiteral("SUB a \t\n.\n") << QList<Message>{makeMessage(Command::Sub, a)};
    QTest::addRow("header values trimmed")
        << QByteArrayLiteral("PUB a\nA:x\nB:   y  \nC:\tz\t\nD:\nE: inner  space \n\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a,
                                      {hdr("A", "x"), hdr("B", "y"), hdr("C", "z"), hdr("D", ""),
                                       hdr("E", "inner  space")})};
    QTest::addRow("header name case and order kept, repeats kept")
        << QByteArrayLiteral("PUB a\nreqid: 1\nX-B: 2\nX-A: 3\nx-b: 4\n\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a,
                                      {hdr("reqid", "1"), hdr("X-B", "2"), hdr("X-A", "3"), hdr("x-b", "4")})};
    QTest::addRow("colon in header value")
        << QByteArrayLiteral("PUB a\nUrl: ws://h:1/p\n\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("Url", "ws://h:1/p")})};
    QTest::addRow("Content-Length body byte-exact")
        << QByteArrayLiteral("PUB a\nContent-Length: 9\n\n\0\r\n.\n\xff\r\n.\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("Content-Length", "9")},
                                      QByteArrayLiteral("\0\r\n.\n\xff\r\n."))};
    QTest::addRow("Content-Length body, no dot-stuffing removed")
        << QByteArrayLiteral("PUB a\nContent-Length: 3\n\n..x\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("Content-Length", "3")}, QByteArrayLiteral("..x"))};
    QTest::addRow("Content-Length with CRLF framing")
        << QByteArrayLiteral("PUB a\r\nContent-Length: 4\r\n\r\na\r\nb\r\n.\r\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("Content-Length", "4")}, QByteArrayLiteral("a\r\nb"))};
    QTest::addRow("Content-Length zero")
        << QByteArrayLiteral("PUB a\nContent-Length: 0\n\n\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("Content-Length", "0")})};
    QTest::addRow("Content-Length name case-insensitive, value trimmed")
        << QByteArrayLiteral("PUB a\ncontent-LENGTH:  2 \n\nab\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("content-LENGTH", "2")}, QByteArrayLiteral("ab"))};
    QTest::addRow("Content-Length repeated with the same value")
        << QByteArrayLiteral("PUB a\nContent-Length: 2\nContent-Length: 2\n\nab\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("Content-Length", "2"), hdr("Content-Length", "2")},
                                      QByteArrayLiteral("ab"))};
    QTest::addRow("Content-Length message followed by another")
        << QByteArrayLiteral("PUB a\nContent-Length: 4\n\n.\n.\n\n.\nSUB a\n.\n")
        << QList<Message>{makeMessage(Command::Pub, a, {hdr("Content-Length", "4")}, QByteArrayLiteral(".\n.\n")),
                          makeMessage(Command::Sub, a)};
    QTest::addRow("wildcards in SUB and grants")
        << QByteArrayLiteral("SUB a.*.>\n.\nESUB >\n.\nEREQ *.x\n.\n")
        << QList<Message>{makeMessage(Command::Sub, QByteArrayLiteral("a.*.>")),
                          makeMessage(Command::Esub, QByteArrayLiteral(">")),
                          makeMessage(Command::Ereq, QByteArrayLiteral("*.x"))};
    QTest::addRow("OPT with dash target")
        << QByteArrayLiteral("OPT -\nBatch: on\n\n.\n")
        << QList<Message>{makeMessage(Command::Opt, QByteArrayLiteral("-"), {hdr("Batch", "on")})};
    QTest::addRow("RES with ReqID")
        << QByteArrayLiteral("RES svc\nReqID: abc\n\nok\n.\n")
        << QList<Message>{makeMessage(Command::Res, QByteArrayLiteral("svc"), {hdr("ReqID", "abc")},
                                      QByteArrayLiteral("ok"))};
    QTest::addRow("max length target")
        << QByteArray("PUB " + QByteArray(256, 'x') + "\n\n.\n")
        << QList<Message>{makeMessage(Command::Pub, QByteArray(256, 'x'))};
    QTest::addRow("only blank lines") << QByteArrayLiteral("\n\r\n\n") << QList<Message>{};
    QTest::addRow("empty frame") << QByteArray() << QList<Message>{};
}

void tst_Codec::parse()
{
    QFETCH(QByteArray, frame);
    QFETCH(QList<Message>, expected);

    FrameReader reader(frame, CodecLimits());
    for (const Message &want : std::as_const(expected)) {
        Message m;
        ParseError error;
        const FrameReader::Item item = reader.next(m, error);
        QVERIFY2(item == FrameReader::Item::Message, error.reason.constData());
        QCOMPARE(m, want);
    }
    Message m;
    ParseError error;
    QCOMPARE(reader.next(m, error), FrameReader::Item::End);
}

void tst_Codec::parseBinaryFlag()
{
    const QByteArray frame = QByteArrayLiteral("PUB a\n\nx\n.\nPUB b\n\ny\n.\n");
    for (const bool binary : {false, true}) {
        FrameReader reader(frame, CodecLimits(), binary);
        Message m;
        ParseError error;
        QCOMPARE(reader.next(m, error), FrameReader::Item::Message);
        QCOMPARE(m.binary, binary);
        QCOMPARE(reader.next(m, error), FrameReader::Item::Message);
        QCOMPARE(m.binary, binary);
    }
}

// What the broker sends (ERR included) reads back with Direction::FromBroker.
void tst_Codec::parseFromBroker()
{
    const Message err = makeMessage(Command::Err, QByteArrayLiteral("-"),
                                    {hdr("Status", "400"), hdr("Command", "FOO")},
                                    QByteArrayLiteral("unknown command 'FOO'"));
    // The last one: the answer to an OPT without ReqID (docs/protocol.md §4.7).
    const QByteArray frame = serialize(err) + "ERR chat.*\nStatus: 403\n\nnot allowed\n.\n" + "RES -\nStatus: 200\n\n.\n";

    FrameReader reader(frame, CodecLimits(), false, Direction::FromBroker);
    Message m;
    ParseError error;
    QCOMPARE(reader.next(m, error), FrameReader::Item::Message);
    QCOMPARE(m, err);
    QCOMPARE(reader.next(m, error), FrameReader::Item::Message);
    QCOMPARE(m.target, QByteArrayLiteral("chat.*"));
    QCOMPARE(m.header(HeaderName::Status), QByteArrayLiteral("403"));
    QCOMPARE(reader.next(m, error), FrameReader::Item::Message);
    QCOMPARE(m, makeMessage(Command::Res, QByteArrayLiteral("-"), {hdr("Status", "200")}));
    QCOMPARE(reader.next(m, error), FrameReader::Item::End);

    // The same frame from a peer is refused message by message.
    QCOMPARE(trace(frame), (QByteArrayList{QByteArrayLiteral("ERR 400"), QByteArrayLiteral("ERR 400"),
                                           QByteArrayLiteral("ERR 400")}));
}

// The limits themselves are allowed; one more is refused (parseErrors covers that side).
void tst_Codec::headerLimitsAtTheEdge()
{
    const CodecLimits limits;
    QCOMPARE(limits.maxHeaders, 64);
    QCOMPARE(limits.maxHeaderBytes, 16 * 1024);

    QByteArray frame = "PUB a\n" + repeated(QByteArrayLiteral("H: v\n"), 64) + "\n.\n";
    Message m;
    ParseError error;
    QVERIFY2(Middleman::parseOne(frame, limits, &m, &error), error.reason.constData());
    QCOMPARE(m.headers.size(), 64);

    // One header line of exactly 16 KiB, its LF included.
    frame = "PUB a\nH: " + QByteArray(16 * 1024 - 4, 'v') + "\n\n.\n";
    QVERIFY2(Middleman::parseOne(frame, limits, &m, &error), error.reason.constData());
    QCOMPARE(m.header("H").size(), 16 * 1024 - 4);

    // The same with CRLF: the CR counts as header text too.
    frame = "PUB a\r\nH: " + QByteArray(16 * 1024 - 5, 'v') + "\r\n\r\n.\r\n";
    QVERIFY2(Middleman::parseOne(frame, limits, &m, &error), error.reason.constData());
    frame = "PUB a\r\nH: " + QByteArray(16 * 1024 - 4, 'v') + "\r\n\r\n.\r\n";
    QVERIFY(!Middleman::parseOne(frame, limits, &m, &error));
    QCOMPARE(error.status, 413);

    // A message of exactly the size limit passes.
    const QByteArray exact = QByteArrayLiteral("PUB a\n\n0123456789\n.\n");
    QVERIFY2(Middleman::parseOne(exact, smallMessages(exact.size()), &m, &error), error.reason.constData());
    QVERIFY(!Middleman::parseOne(exact, smallMessages(exact.size() - 1), &m, &error));
    QCOMPARE(error.status, 413);
}

void tst_Codec::parseErrors_data()
{
    QTest::addColumn<QByteArray>("frame");
    QTest::addColumn<CodecLimits>("limits");
    QTest::addColumn<int>("status");
    QTest::addColumn<QByteArray>("reason");
    QTest::addColumn<QByteArray>("command");
    QTest::addColumn<QByteArray>("target");
    QTest::addColumn<QByteArray>("reqId");

    const CodecLimits defaults;
    const QByteArray none;
    const QByteArray pub = QByteArrayLiteral("PUB");
    const QByteArray a = QByteArrayLiteral("a");

    // Command line.
    QTest::addRow("unknown command") << QByteArrayLiteral("FOO a\n.\n") << defaults << 400
                                     << QByteArrayLiteral("unknown command 'FOO'") << none << none << none;
    QTest::addRow("command without target, unknown") << QByteArrayLiteral("HELLO\n.\n") << defaults << 400
                                                     << QByteArrayLiteral("unknown command") << none << none << none;
    QTest::addRow("tab instead of space") << QByteArrayLiteral("SUB\ta\n.\n") << defaults << 400
                                          << QByteArrayLiteral("unknown command") << none << none << none;
    QTest::addRow("missing target") << QByteArrayLiteral("SUB\n.\n") << defaults << 400
                                    << QByteArrayLiteral("missing target") << QByteArrayLiteral("SUB") << none << none;
    QTest::addRow("missing target after space") << QByteArrayLiteral("PUB \n\nx\n.\n") << defaults << 400
                                                << QByteArrayLiteral("missing target") << pub << none << none;
    QTest::addRow("target with control char") << QByteArrayLiteral("PUB a\x01" "b\n\n.\n") << defaults << 400
                                              << QByteArrayLiteral("control character") << pub
                                              << none << none;
    QTest::addRow("target with a space") << QByteArrayLiteral("PUB a b\n\n.\n") << defaults << 400
                                         << QByteArrayLiteral("space") << pub << none << none;
    QTest::addRow("two spaces before target") << QByteArrayLiteral("PUB  a\n\n.\n") << defaults << 400
                                              << QByteArrayLiteral("space") << pub << none << none;
    QTest::addRow("target too long (default limit)")
        << QByteArray("PUB " + QByteArray(257, 'x') + "\n\n.\n") << defaults << 400
        << QByteArrayLiteral("target too long") << pub << none << none;
    QTest::addRow("target too long (configured limit)")
        << QByteArrayLiteral("SUB abcdefghi\n.\n") << shortTargets(8) << 400
        << QByteArrayLiteral("target too long") << QByteArrayLiteral("SUB") << none << none;

    QTest::addRow("ReqID kept when the target is refused")
        << QByteArray("REQ " + QByteArray(300, 'a') + "\nReqID: r1\n\n.\n") << defaults << 400
        << QByteArrayLiteral("target too long") << QByteArrayLiteral("REQ") << none << QByteArrayLiteral("r1");
    QTest::addRow("ReqID kept when an earlier header is refused")
        << QByteArrayLiteral("REQ a\nbad header\nReqID: r2\n\n.\n") << defaults << 400
        << QByteArrayLiteral("malformed header line") << QByteArrayLiteral("REQ") << QByteArrayLiteral("a")
        << QByteArrayLiteral("r2");
    QTest::addRow("ReqID control characters replaced")
        << QByteArrayLiteral("REQ a\x01\nReqID: r\x02" "3\n\n.\n") << defaults << 400
        << QByteArrayLiteral("control character") << QByteArrayLiteral("REQ") << none << QByteArrayLiteral("r?3");

    QTest::addRow("long ReqID echoed whole")
        << QByteArray("REQ a.*\nReqID: " + QByteArray(80, 'r') + "\n\n.\n") << defaults << 400
        << QByteArrayLiteral("wildcards") << QByteArrayLiteral("REQ") << QByteArrayLiteral("a.*")
        << QByteArray(80, 'r');

    // Headers.
    QTest::addRow("too many headers")
        << QByteArray("PUB a\nReqID: 5\n" + repeated(QByteArrayLiteral("H: v\n"), 64) + "\n.\n") << defaults
        << 413 << QByteArrayLiteral("too many headers") << pub << a << QByteArrayLiteral("5");
    QTest::addRow("header section too large")
        << QByteArray("PUB a\nH: " + QByteArray(16 * 1024 - 3, 'v') + "\n\n.\n") << defaults << 413
        << QByteArrayLiteral("header section too large") << pub << a << none;
    QTest::addRow("header section too large over many lines")
        << QByteArray("PUB a\n" + repeated("H: " + QByteArray(1020, 'v') + '\n', 17) + "\n.\n") << defaults
        << 413 << QByteArrayLiteral("header section too large") << pub << a << none;
    QTest::addRow("malformed header line") << QByteArrayLiteral("REQ a\nReqID: 7\nno colon here\n\n.\n") << defaults
                                           << 400 << QByteArrayLiteral("malformed header line 'no colon here'")
                                           << QByteArrayLiteral("REQ") << a << QByteArrayLiteral("7");
    QTest::addRow("empty header name") << QByteArrayLiteral("PUB a\n: v\n\n.\n") << defaults << 400
                                       << QByteArrayLiteral("invalid header name") << pub << a << none;
    QTest::addRow("space in header name") << QByteArrayLiteral("PUB a\nX Y: v\n\n.\n") << defaults << 400
                                          << QByteArrayLiteral("invalid header name 'X Y'") << pub << a << none;
    QTest::addRow("space before colon") << QByteArrayLiteral("PUB a\nX : v\n\n.\n") << defaults << 400
                                        << QByteArrayLiteral("invalid header name") << pub << a << none;
    QTest::addRow("folded header line") << QByteArrayLiteral("PUB a\nX: v\n w: x\n\n.\n") << defaults << 400
                                        << QByteArrayLiteral("invalid header name") << pub << a << none;
    QTest::addRow("control char in header name") << QByteArrayLiteral("PUB a\nX\x01: v\n\n.\n") << defaults << 400
                                                 << QByteArrayLiteral("invalid header name 'X?'") << pub << a << none;

    // Content-Length.
    QTest::addRow("Content-Length not a number") << QByteArrayLiteral("PUB a\nContent-Length: abc\n\nabc\n.\n")
                                                 << defaults << 400 << QByteArrayLiteral("invalid Content-Length")
                                                 << pub << a << none;
    QTest::addRow("Content-Length negative") << QByteArrayLiteral("PUB a\nContent-Length: -1\n\n\n.\n") << defaults
                                             << 400 << QByteArrayLiteral("invalid Content-Length") << pub << a << none;
    QTest::addRow("Content-Length with plus sign") << QByteArrayLiteral("PUB a\nContent-Length: +1\n\nx\n.\n")
                                                   << defaults << 400 << QByteArrayLiteral("invalid Content-Length")
                                                   << pub << a << none;
    QTest::addRow("Content-Length with trailing junk") << QByteArrayLiteral("PUB a\nContent-Length: 1x\n\nx\n.\n")
                                                       << defaults << 400 << QByteArrayLiteral("invalid Content-Length")
                                                       << pub << a << none;
    QTest::addRow("Content-Length empty") << QByteArrayLiteral("PUB a\nContent-Length:\n\n\n.\n") << defaults << 400
                                          << QByteArrayLiteral("invalid Content-Length") << pub << a << none;
    QTest::addRow("Content-Length huge") << QByteArrayLiteral("PUB a\nContent-Length: 99999999999999999999\n\nx\n.\n")
                                         << defaults << 400 << QByteArrayLiteral("invalid Content-Length") << pub << a
                                         << none;
    QTest::addRow("Content-Length conflicting") << QByteArrayLiteral("REQ a\nReqID: q\nContent-Length: 1\ncontent-length: 2\n\nxy\n.\n")
                                                << defaults << 400 << QByteArrayLiteral("invalid Content-Length")
                                                << QByteArrayLiteral("REQ") << a << QByteArrayLiteral("q");
    QTest::addRow("Content-Length past frame end") << QByteArrayLiteral("PUB a\nContent-Length: 100\n\nabc\n.\n")
                                                   << defaults << 400 << QByteArrayLiteral("past the end of the frame")
                                                   << pub << a << none;
    QTest::addRow("body longer than Content-Length") << QByteArrayLiteral("PUB a\nContent-Length: 2\n\nabc\n.\n")
                                                     << defaults << 400
                                                     << QByteArrayLiteral("does not end where Content-Length says")
                                                     << pub << a << none;
    QTest::addRow("body shorter than Content-Length") << QByteArrayLiteral("PUB a\nContent-Length: 5\n\nab\n.\n")
                                                      << defaults << 400
                                                      << QByteArrayLiteral("does not end where Content-Length says")
                                                      << pub << a << none;
    QTest::addRow("Content-Length body without terminator") << QByteArrayLiteral("PUB a\nContent-Length: 2\n\nab\n")
                                                            << defaults << 400
                                                            << QByteArrayLiteral("does not end where Content-Length says")
                                                            << pub << a << none;
    QTest::addRow("Content-Length body, terminator without LF before it")
        << QByteArrayLiteral("PUB a\nContent-Length: 2\n\nab.\n") << defaults << 400
        << QByteArrayLiteral("does not end where Content-Length says") << pub << a << none;

    // Framing.
    QTest::addRow("command line without LF") << QByteArrayLiteral("PUB a") << defaults << 400
                                             << QByteArrayLiteral("message not terminated") << pub << a << none;
    QTest::addRow("unknown command without LF") << QByteArrayLiteral("hello") << defaults << 400
                                                << QByteArrayLiteral("message not terminated") << none << none << none;
    QTest::addRow("no blank line, no terminator") << QByteArrayLiteral("PUB a\nX: 1\n") << defaults << 400
                                                  << QByteArrayLiteral("message not terminated") << pub << a << none;
    QTest::addRow("body without terminator") << QByteArrayLiteral("PUB a\nReqID: 9\n\nhello\nworld\n") << defaults
                                             << 400 << QByteArrayLiteral("message not terminated") << pub << a
                                             << QByteArrayLiteral("9");
    QTest::addRow("terminator dot-stuffed away") << QByteArrayLiteral("PUB a\n\nhello\n..\n") << defaults << 400
                                                 << QByteArrayLiteral("message not terminated") << pub << a << none;
    QTest::addRow("message too large") << QByteArray("PUB a\nReqID: r1\n\n" + QByteArray(100, 'x') + "\n.\n")
                                       << smallMessages(64) << 413 << QByteArrayLiteral("message too large") << pub
                                       << a << QByteArrayLiteral("r1");
    QTest::addRow("message too large by its headers")
        << QByteArray("SUB a\n" + repeated(QByteArrayLiteral("H: v\n"), 20) + ".\n") << smallMessages(64) << 413
        << QByteArrayLiteral("message too large") << QByteArrayLiteral("SUB") << a << none;
    QTest::addRow("message too large with Content-Length")
        << QByteArray("PUB a\nContent-Length: 100\n\n" + QByteArray(100, '\0') + "\n.\n") << smallMessages(64)
        << 413 << QByteArrayLiteral("message too large") << pub << a << none;

    // Rules per command (validateMessage).
    QTest::addRow("star in PUB target") << QByteArrayLiteral("PUB chat.*\n\nx\n.\n") << defaults << 400
                                        << QByteArrayLiteral("wildcards") << pub << QByteArrayLiteral("chat.*") << none;
    QTest::addRow("gt in PUB target") << QByteArrayLiteral("pub >\n\nx\n.\n") << defaults << 400
                                      << QByteArrayLiteral("wildcards") << pub << QByteArrayLiteral(">") << none;
    QTest::addRow("wildcard in REQ target") << QByteArrayLiteral("REQ svc.>\nReqID: 3\n\nx\n.\n") << defaults << 400
                                            << QByteArrayLiteral("wildcards") << QByteArrayLiteral("REQ")
                                            << QByteArrayLiteral("svc.>") << QByteArrayLiteral("3");
    QTest::addRow("empty token in PUB target") << QByteArrayLiteral("PUB a..b\n\n.\n") << defaults << 400
                                               << QByteArrayLiteral("empty token") << pub << QByteArrayLiteral("a..b")
                                               << none;
    QTest::addRow("gt not last in SUB") << QByteArrayLiteral("SUB a.>.b\n.\n") << defaults << 400
                                        << QByteArrayLiteral("'>' must be the last token") << QByteArrayLiteral("SUB")
                                        << QByteArrayLiteral("a.>.b") << none;
    QTest::addRow("empty token in SUB") << QByteArrayLiteral("SUB a..b\n.\n") << defaults << 400
                                        << QByteArrayLiteral("empty token") << QByteArrayLiteral("SUB")
                                        << QByteArrayLiteral("a..b") << none;
    QTest::addRow("trailing dot in UNS") << QByteArrayLiteral("UNS a.\n.\n") << defaults << 400
                                         << QByteArrayLiteral("empty token") << QByteArrayLiteral("UNSUB")
                                         << QByteArrayLiteral("a.") << none;
    QTest::addRow("invalid grant pattern") << QByteArrayLiteral("EPUB >.a\n.\n") << defaults << 400
                                           << QByteArrayLiteral("last token") << QByteArrayLiteral("EPUB")
                                           << QByteArrayLiteral(">.a") << none;
    QTest::addRow("REQ without ReqID") << QByteArrayLiteral("REQ svc\n\nx\n.\n") << defaults << 400
                                       << QByteArrayLiteral("missing ReqID") << QByteArrayLiteral("REQ")
                                       << QByteArrayLiteral("svc") << none;
    QTest::addRow("REQ with empty ReqID") << QByteArrayLiteral("REQ svc\nReqID:  \n\nx\n.\n") << defaults << 400
                                          << QByteArrayLiteral("missing ReqID") << QByteArrayLiteral("REQ")
                                          << QByteArrayLiteral("svc") << none;
    QTest::addRow("RES without ReqID") << QByteArrayLiteral("RES svc\nStatus: 200\n\nx\n.\n") << defaults << 400
                                       << QByteArrayLiteral("missing ReqID") << QByteArrayLiteral("RES")
                                       << QByteArrayLiteral("svc") << none;
    QTest::addRow("ERR from a peer") << QByteArrayLiteral("ERR a\nStatus: 400\nReqID: 4\n\nbad\n.\n") << defaults
                                     << 400 << QByteArrayLiteral("broker only") << QByteArrayLiteral("ERR") << a
                                     << QByteArrayLiteral("4");
}

void tst_Codec::parseErrors()
{
    QFETCH(QByteArray, frame);
    QFETCH(CodecLimits, limits);
    QFETCH(int, status);
    QFETCH(QByteArray, reason);
    QFETCH(QByteArray, command);
    QFETCH(QByteArray, target);
    QFETCH(QByteArray, reqId);

    FrameReader reader(frame, limits);
    Message m;
    ParseError error;
    QCOMPARE(reader.next(m, error), FrameReader::Item::Error);
    QCOMPARE(error.status, status);
    QVERIFY2(error.reason.contains(reason), error.reason.constData());
    QVERIFY(!error.reason.contains('\n'));
    QCOMPARE(error.command, command);
    QCOMPARE(error.target, target);
    QCOMPARE(error.reqId, reqId);
    // Whatever is left of such a frame holds no further message.
    QCOMPARE(reader.next(m, error), FrameReader::Item::End);

    // parseOne reports the same.
    ParseError single;
    QVERIFY(!Middleman::parseOne(frame, limits, &m, &single));
    QCOMPARE(single.status, status);
    QVERIFY2(single.reason.contains(reason), single.reason.constData());
}

void tst_Codec::recovery_data()
{
    QTest::addColumn<QByteArray>("frame");
    QTest::addColumn<CodecLimits>("limits");
    QTest::addColumn<QByteArrayList>("expected");

    const CodecLimits defaults;
    const QByteArray next = QByteArrayLiteral("SUB next\n.\n");
    const QByteArray subNext = QByteArrayLiteral("SUB next");
    const QByteArray err400 = QByteArrayLiteral("ERR 400");
    const QByteArray err413 = QByteArrayLiteral("ERR 413");

    // Recoverable: reading goes on after the refused message's terminator.
    QTest::addRow("after unknown command") << QByteArray("FOO a\nX: 1\n\nbody\n.\n" + next) << defaults
                                           << QByteArrayList{err400, subNext};
    QTest::addRow("after unknown command, short form") << QByteArray("FOO a\n.\n" + next) << defaults
                                                       << QByteArrayList{err400, subNext};
    QTest::addRow("after missing target") << QByteArray("PUB\n\nx\n.\n" + next) << defaults
                                          << QByteArrayList{err400, subNext};
    QTest::addRow("after bad header") << QByteArray("PUB a\nbad\nY: 2\n\nbody\n..\n.\n" + next) << defaults
                                      << QByteArrayList{err400, subNext};
    QTest::addRow("after too many headers")
        << QByteArray("PUB a\n" + repeated(QByteArrayLiteral("H: v\n"), 70) + "\nbody\n.\n" + next) << defaults
        << QByteArrayList{err413, subNext};
    QTest::addRow("after header section too large")
        << QByteArray("PUB a\nH: " + QByteArray(17 * 1024, 'v') + "\n\n.\n" + next) << defaults
        << QByteArrayList{err413, subNext};
    QTest::addRow("after message too large")
        << QByteArray("PUB a\n\n" + QByteArray(200, 'x') + "\n.\n" + next) << smallMessages(64)
        << QByteArrayList{err413, subNext};
    QTest::addRow("after message too large with Content-Length")
        << QByteArray("PUB a\nContent-Length: 7\n\nx\n.\ny.z\n.\n" + next) << smallMessages(24)
        << QByteArrayList{err413, subNext};
    QTest::addRow("after wildcard PUB") << QByteArray("PUB a.*\n\nx\n.\n" + next) << defaults
                                        << QByteArrayList{err400, subNext};
    QTest::addRow("after ERR from a peer") << QByteArray("ERR a\n\nx\n.\n" + next) << defaults
                                           << QByteArrayList{err400, subNext};
    QTest::addRow("after missing ReqID") << QByteArray("REQ a\n\nx\n.\n" + next) << defaults
                                         << QByteArrayList{err400, subNext};
    QTest::addRow("errors between good messages")
        << QByteArray("SUB first\n.\nFOO x\n.\n\nPUB a.>\n\n.\n" + next) << defaults
        << QByteArrayList{QByteArrayLiteral("SUB first"), err400, err400, subNext};
    // A refused message's Content-Length body may hold "\n.\n"; it is not the terminator.
    QTest::addRow("after bad header, Content-Length body holding a dot line")
        << QByteArray("PUB a\nbad\nContent-Length: 9\n\nx\n.\nPUB y\n.\n" + next) << defaults
        << QByteArrayList{err400, subNext};
    QTest::addRow("after bad header following Content-Length, body holding a dot line")
        << QByteArray("PUB a\nContent-Length: 9\nbad\n\nx\n.\nPUB y\n.\n" + next) << defaults
        << QByteArrayList{err400, subNext};
    QTest::addRow("after unknown command with Content-Length body holding a dot line")
        << QByteArray("FOO a\nContent-Length: 9\n\nx\n.\nPUB y\n.\n" + next) << defaults
        << QByteArrayList{err400, subNext};
    QTest::addRow("after too many headers with Content-Length body holding a dot line")
        << QByteArray("PUB a\nContent-Length: 9\n" + repeated(QByteArrayLiteral("H: v\n"), 70)
                      + "\nx\n.\nPUB y\n.\n" + next) << defaults
        << QByteArrayList{err413, subNext};

    // Framing errors: the rest of the frame is dropped.
    QTest::addRow("not terminated ends the frame") << QByteArray("SUB first\n.\nPUB a\n\nbody\n") << defaults
                                                   << QByteArrayList{QByteArrayLiteral("SUB first"), err400};
    QTest::addRow("bad Content-Length ends the frame")
        << QByteArray("PUB a\nContent-Length: x\n\nab\n.\n" + next) << defaults << QByteArrayList{err400};
    QTest::addRow("conflicting Content-Length ends the frame")
        << QByteArray("PUB a\nContent-Length: 1\nContent-Length: 2\n\nab\n.\n" + next) << defaults
        << QByteArrayList{err400};
    QTest::addRow("body not where Content-Length says ends the frame")
        << QByteArray("PUB a\nContent-Length: 1\n\nab\n.\n" + next) << defaults << QByteArrayList{err400};
    QTest::addRow("Content-Length past the end ends the frame")
        << QByteArray("SUB first\n.\nPUB a\nContent-Length: 1000\n\nab\n.\n" + next) << defaults
        << QByteArrayList{QByteArrayLiteral("SUB first"), err400};
    QTest::addRow("unknown command without terminator ends the frame") << QByteArrayLiteral("FOO a\n\nbody\n")
                                                                       << defaults << QByteArrayList{err400};
    QTest::addRow("bad Content-Length in a refused message ends the frame")
        << QByteArray("FOO a\nContent-Length: x\n\nab\n.\n" + next) << defaults << QByteArrayList{err400};
}

void tst_Codec::recovery()
{
    QFETCH(QByteArray, frame);
    QFETCH(CodecLimits, limits);
    QFETCH(QByteArrayList, expected);
    QCOMPARE(trace(frame, limits), expected);
}

void tst_Codec::endIsFinal()
{
    const QByteArray frame = QByteArrayLiteral("SUB a\n.\nPUB a\n");
    FrameReader reader(frame, CodecLimits()); // the reader keeps a view: the frame must outlive it
    Message m;
    ParseError error;
    QCOMPARE(reader.next(m, error), FrameReader::Item::Message);
    QCOMPARE(reader.next(m, error), FrameReader::Item::Error);
    QCOMPARE(reader.next(m, error), FrameReader::Item::End);
    QCOMPARE(reader.next(m, error), FrameReader::Item::End);
}

void tst_Codec::validate_data()
{
    QTest::addColumn<Message>("message");
    QTest::addColumn<Direction>("direction");
    QTest::addColumn<bool>("valid");
    QTest::addColumn<QByteArray>("reason");

    const QList<Header> withReqId = {hdr("ReqID", "1")};
    const Direction peer = Direction::FromPeer;
    const Direction broker = Direction::FromBroker;
    QTest::addRow("PUB literal") << makeMessage(Command::Pub, QByteArrayLiteral("a.b")) << peer << true << QByteArray();
    QTest::addRow("PUB pattern") << makeMessage(Command::Pub, QByteArrayLiteral("a.*")) << peer << false
                                 << QByteArrayLiteral("wildcards");
    QTest::addRow("REQ literal with ReqID") << makeMessage(Command::Req, QByteArrayLiteral("a"), withReqId) << peer << true
                                            << QByteArray();
    QTest::addRow("REQ lower-case reqid") << makeMessage(Command::Req, QByteArrayLiteral("a"), {hdr("reqid", "x")}) << peer
                                          << true << QByteArray();
    QTest::addRow("REQ without ReqID") << makeMessage(Command::Req, QByteArrayLiteral("a")) << peer << false
                                       << QByteArrayLiteral("missing ReqID");
    QTest::addRow("REQ pattern") << makeMessage(Command::Req, QByteArrayLiteral(">"), withReqId) << peer << false
                                 << QByteArrayLiteral("wildcards");
    QTest::addRow("RES with ReqID") << makeMessage(Command::Res, QByteArrayLiteral("a"), withReqId) << peer << true
                                    << QByteArray();
    QTest::addRow("RES to dash") << makeMessage(Command::Res, QByteArrayLiteral("-"), withReqId) << peer << true << QByteArray();
    QTest::addRow("RES without ReqID") << makeMessage(Command::Res, QByteArrayLiteral("a")) << peer << false
                                       << QByteArrayLiteral("missing ReqID");
    QTest::addRow("SUB pattern") << makeMessage(Command::Sub, QByteArrayLiteral("a.*.>")) << peer << true << QByteArray();
    QTest::addRow("SUB bad pattern") << makeMessage(Command::Sub, QByteArrayLiteral("a.>.b")) << peer << false
                                     << QByteArrayLiteral("last token");
    QTest::addRow("UNSUB pattern") << makeMessage(Command::Unsub, QByteArrayLiteral(">")) << peer << true << QByteArray();
    QTest::addRow("EPUB pattern") << makeMessage(Command::Epub, QByteArrayLiteral("x.*")) << peer << true << QByteArray();
    QTest::addRow("ESUB empty token") << makeMessage(Command::Esub, QByteArrayLiteral("x..y")) << peer << false
                                      << QByteArrayLiteral("empty token");
    QTest::addRow("EREQ too long") << makeMessage(Command::Ereq, QByteArray(257, 'x')) << peer << false
                                   << QByteArrayLiteral("too long");
    QTest::addRow("OPT dash") << makeMessage(Command::Opt, QByteArrayLiteral("-")) << peer << true << QByteArray();
    QTest::addRow("OPT empty target") << makeMessage(Command::Opt, QByteArray()) << peer << false
                                      << QByteArrayLiteral("missing target");
    QTest::addRow("ERR") << makeMessage(Command::Err, QByteArrayLiteral("a")) << peer << false
                         << QByteArrayLiteral("broker only");
    // Direction::FromBroker: what a peer (or a test) reads from the broker.
    QTest::addRow("ERR from the broker") << makeMessage(Command::Err, QByteArrayLiteral("-"), {hdr("Status", "400")})
                                         << broker << true << QByteArray();
    QTest::addRow("ERR from the broker, no target") << makeMessage(Command::Err, QByteArray()) << broker << false
                                                    << QByteArrayLiteral("missing target");
    QTest::addRow("PUB pattern from the broker") << makeMessage(Command::Pub, QByteArrayLiteral("a.*")) << broker
                                                 << false << QByteArrayLiteral("wildcards");
    // The broker's answer to an OPT without ReqID (docs/protocol.md §4.7); found by fuzz_session.
    QTest::addRow("RES from the broker without ReqID") << makeMessage(Command::Res, QByteArrayLiteral("-"), {hdr("Status", "200")})
                                                       << broker << true << QByteArray();
    QTest::addRow("REQ from the broker without ReqID") << makeMessage(Command::Req, QByteArrayLiteral("a")) << broker
                                                       << false << QByteArrayLiteral("missing ReqID");
}

void tst_Codec::validate()
{
    QFETCH(Message, message);
    QFETCH(Direction, direction);
    QFETCH(bool, valid);
    QFETCH(QByteArray, reason);

    ParseError error;
    QCOMPARE(validateMessage(message, CodecLimits(), &error, direction), valid);
    QCOMPARE(validateMessage(message, CodecLimits(), nullptr, direction), valid);
    if (!valid) {
        QCOMPARE(error.status, 400);
        QVERIFY2(error.reason.contains(reason), error.reason.constData());
        QCOMPARE(error.command, commandName(message.command).toByteArray());
        QCOMPARE(error.reqId, message.header(HeaderName::ReqId));
    }
}

void tst_Codec::parseOne()
{
    Message m;
    ParseError error;
    QVERIFY(Middleman::parseOne(QByteArrayLiteral("\nSUB a\n.\n\n"), CodecLimits(), &m, &error));
    QCOMPARE(m, makeMessage(Command::Sub, QByteArrayLiteral("a")));

    QVERIFY(!Middleman::parseOne(QByteArray(), CodecLimits(), &m, &error));
    QCOMPARE(error.status, 400);
    QVERIFY(error.reason.contains("empty frame"));

    QVERIFY(!Middleman::parseOne(QByteArrayLiteral("SUB a\n.\nSUB b\n.\n"), CodecLimits(), &m, &error));
    QVERIFY(error.reason.contains("more than one message"));

    // A trailing error counts as a second item too.
    QVERIFY(!Middleman::parseOne(QByteArrayLiteral("SUB a\n.\nFOO\n.\n"), CodecLimits(), &m, &error));
    QVERIFY(error.reason.contains("more than one message"));

    // Null out-parameters are allowed.
    QVERIFY(Middleman::parseOne(QByteArrayLiteral("SUB a\n.\n"), CodecLimits(), nullptr, nullptr));
    QVERIFY(!Middleman::parseOne(QByteArrayLiteral("FOO a\n.\n"), CodecLimits(), nullptr, nullptr));
}

// docs/protocol.md §10, decision 11: a positive whole number of
// milliseconds; too large for 64 bits reads as the largest (then capped).
void tst_Codec::timeoutHeader_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<qint64>("expected"); // -1: invalid

    QTest::addRow("one") << QByteArray("1") << qint64(1);
    QTest::addRow("seconds") << QByteArray("2000") << qint64(2000);
    QTest::addRow("largest") << QByteArray("9223372036854775807") << std::numeric_limits<qint64>::max();
    QTest::addRow("past 64 bits") << QByteArray("99999999999999999999999") << std::numeric_limits<qint64>::max();
    QTest::addRow("zero") << QByteArray("0") << qint64(-1);
    QTest::addRow("negative") << QByteArray("-5") << qint64(-1);
    QTest::addRow("empty") << QByteArray("") << qint64(-1);
    QTest::addRow("word") << QByteArray("soon") << qint64(-1);
    QTest::addRow("unit") << QByteArray("5s") << qint64(-1);
    QTest::addRow("fraction") << QByteArray("1.5") << qint64(-1);
    QTest::addRow("negative past 64 bits") << QByteArray("-99999999999999999999999") << qint64(-1);
}

void tst_Codec::timeoutHeader()
{
    QFETCH(QByteArray, text);
    QFETCH(qint64, expected);
    const std::optional<qint64> parsed = parseTimeoutMs(text);
    if (expected < 0)
        QVERIFY2(!parsed, qPrintable(QString::number(parsed.value_or(0))));
    else
        QCOMPARE(parsed, std::optional<qint64>(expected));
}

void tst_Codec::quoteInReason_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<int>("limit");
    QTest::addColumn<QByteArray>("quoted");
    const QByteArray e = QByteArrayLiteral("\xc3\xa9"); // U+00E9, two bytes
    QTest::addRow("short") << QByteArrayLiteral("FOO") << 64 << QByteArrayLiteral("FOO");
    QTest::addRow("exactly the limit") << QByteArray(64, 'x') << 64 << QByteArray(64, 'x');
    QTest::addRow("over the limit") << QByteArray(65, 'x') << 64 << QByteArray(QByteArray(64, 'x') + "...");
    QTest::addRow("control characters") << QByteArrayLiteral("a\rb\0c\x7f") << 64 << QByteArrayLiteral("a?b?c?");
    QTest::addRow("cut between characters") << e.repeated(40) << 64 << QByteArray(e.repeated(32) + "...");
    QTest::addRow("cut inside a character") << QByteArray('x' + e.repeated(40)) << 64
                                            << QByteArray('x' + e.repeated(31) + "...");
    const QByteArray euro = QByteArrayLiteral("\xe2\x82\xac"); // U+20AC, three bytes
    QTest::addRow("cut after a lead byte") << QByteArray("xx" + euro) << 3 << QByteArrayLiteral("xx...");
    QTest::addRow("cut after one continuation byte") << QByteArray("x" + euro) << 3 << QByteArrayLiteral("x...");
    // Bytes that are not UTF-8 (binary frames) lose at most three bytes more.
    QTest::addRow("only continuation bytes") << QByteArray(10, '\x80') << 5
                                             << QByteArray(QByteArray(2, '\x80') + "...");
}

void tst_Codec::quoteInReason()
{
    QFETCH(QByteArray, text);
    QFETCH(int, limit);
    QFETCH(QByteArray, quoted);
    QCOMPARE(Middleman::quoteInReason(text, limit), quoted);
}

QTEST_APPLESS_MAIN(tst_Codec)
#include "tst_codec.moc"
