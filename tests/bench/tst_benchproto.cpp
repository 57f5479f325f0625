// Unit tests of the load generator's wire codecs: exact encoder bytes, and
// streaming parsers that must give the same events however the input is split.

#include "mqttproto.h"
#include "natsproto.h"

#include <QByteArray>
#include <QByteArrayList>
#include <QTest>

#include <stdexcept>
#include <string>
#include <string_view>

using namespace std::string_literals;
using namespace std::string_view_literals;

namespace {

QByteArray bytes(std::string_view s)
{
    return QByteArray(s.data(), qsizetype(s.size()));
}

// --- NATS helpers ---------------------------------------------------------

QByteArray describe(const bench::nats::Event& e)
{
    using Kind = bench::nats::Event::Kind;
    switch (e.kind) {
    case Kind::Info: return "INFO|" + bytes(e.text);
    case Kind::Msg:
        return "MSG|" + bytes(e.subject) + '|' + QByteArray::number(quint64(e.sid)) + '|'
            + bytes(e.replyTo) + '|' + bytes(e.payload).toHex();
    case Kind::Ping: return "PING";
    case Kind::Pong: return "PONG";
    case Kind::Ok: return "OK";
    case Kind::Err: return "ERR|" + bytes(e.text);
    }
    return "?";
}

struct NatsRun {
    QByteArrayList events;
    bool failed = false;
    std::string error;
};

// Feeds `input` in pieces cut at `cuts` (ascending offsets) and drains events after
// each feed, as the views die at the next feed().
NatsRun runNats(std::string_view input, const std::vector<std::size_t>& cuts)
{
    bench::nats::Parser parser;
    NatsRun run;
    std::size_t start = 0;
    auto drain = [&] {
        bench::nats::Event e;
        while (parser.next(e))
            run.events << describe(e);
    };
    for (const std::size_t cut : cuts) {
        parser.feed(input.substr(start, cut - start));
        drain();
        start = cut;
    }
    parser.feed(input.substr(start));
    drain();
    run.failed = parser.failed();
    run.error = parser.error();
    return run;
}

NatsRun runNatsWhole(std::string_view input) { return runNats(input, {}); }

NatsRun runNatsBytewise(std::string_view input)
{
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < input.size(); ++i)
        cuts.push_back(i);
    return runNats(input, cuts);
}

// --- MQTT helpers ---------------------------------------------------------

QByteArray describe(const bench::mqtt::Packet& p)
{
    return QByteArray::number(p.type) + '|' + QByteArray::number(p.flags) + '|' + bytes(p.topic)
        + '|' + bytes(p.payload).toHex() + '|' + QByteArray::number(p.packetId) + '|'
        + QByteArray::number(p.returnCode) + '|' + (p.sessionPresent ? "sp" : "-");
}

struct MqttRun {
    QByteArrayList packets;
    bool failed = false;
    std::string error;
};

MqttRun runMqtt(std::string_view input, const std::vector<std::size_t>& cuts)
{
    bench::mqtt::Parser parser;
    MqttRun run;
    std::size_t start = 0;
    auto drain = [&] {
        bench::mqtt::Packet p;
        while (parser.next(p))
            run.packets << describe(p);
    };
    for (const std::size_t cut : cuts) {
        parser.feed(input.substr(start, cut - start));
        drain();
        start = cut;
    }
    parser.feed(input.substr(start));
    drain();
    run.failed = parser.failed();
    run.error = parser.error();
    return run;
}

MqttRun runMqttBytewise(std::string_view input)
{
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < input.size(); ++i)
        cuts.push_back(i);
    return runMqtt(input, cuts);
}

// A server-side stream touching every NATS event kind and the awkward payloads.
const std::string kNatsStream =
    "INFO {\"server_id\":\"N1\",\"max_payload\":1048576}\r\n"
    "PING\r\n"
    "+OK\r\n"
    "MSG a.b 1 5\r\nhello\r\n"
    "MSG a.b 22 _INBOX.x 4\r\nMSG \r\n"
    "msg\tq.r\t  7 \t 2\r\n\r\n\r\n"
    "MSG bin 3 6\r\n\0\x01\r\n\xff\0\r\n"s
    "MSG empty 4 0\r\n\r\n"
    "PONG\r\n"
    "-ERR 'Unknown Protocol Operation'\r\n"
    "ping\r\n";

const QByteArrayList kNatsStreamEvents = {
    "INFO|{\"server_id\":\"N1\",\"max_payload\":1048576}",
    "PING",
    "OK",
    "MSG|a.b|1||" + QByteArray("hello").toHex(),
    "MSG|a.b|22|_INBOX.x|" + QByteArray("MSG ").toHex(),
    "MSG|q.r|7||" + QByteArray("\r\n").toHex(),
    "MSG|bin|3||" + QByteArray("\0\x01\r\n\xff\0", 6).toHex(),
    "MSG|empty|4||",
    "PONG",
    "ERR|Unknown Protocol Operation",
    "PING",
};

// Server-side MQTT packets of every kind the load generator meets.
const std::string kMqttStream =
    "\x20\x02\x00\x00"s                          // CONNACK accepted
    "\x20\x02\x01\x05"s                          // CONNACK session present, not authorized
    "\x90\x03\x00\x07\x00"s                      // SUBACK id 7, QoS 0 granted
    "\x90\x04\x00\x08\x80\x01"s                  // SUBACK id 8, failure then QoS 1
    "\x30\x08\x00\x03" "a/b" "xyz"s              // PUBLISH QoS 0
    "\x32\x08\x00\x01" "t" "\x12\x34" "\0\r\n"s  // PUBLISH QoS 1, id 0x1234
    "\x3d\x05\x00\x03" "a/b"s;                   // PUBLISH QoS 2 DUP RETAIN, see below
// The last PUBLISH above (flags 0xD: DUP, QoS 2, RETAIN) has remaining length 5:
// topic "a/b" uses all of it, leaving no room for the packet id, so it is malformed.
// kMqttGoodStream drops it.
const std::string kMqttGoodStream = kMqttStream.substr(0, kMqttStream.size() - 7)
    + "\xb0\x02\x00\x09"s // UNSUBACK id 9
    + "\xd0\x00"s         // PINGRESP
    + "\x30\x02\x00\x00"s // PUBLISH empty topic, empty payload
    + "\x40\x02\xab\xcd"s // PUBACK id 0xabcd
    + "\x3d\x08\x00\x03" "a/b" "\x00\x2a" "!"s; // PUBLISH QoS 2 DUP RETAIN, id 42

const QByteArrayList kMqttGoodStreamPackets = {
    "2|0|||0|0|-",
    "2|0|||0|5|sp",
    "9|0||00|7|0|-",
    "9|0||8001|8|128|-",
    "3|0|a/b|" + QByteArray("xyz").toHex() + "|0|0|-",
    "3|2|t|" + QByteArray("\0\r\n", 3).toHex() + "|4660|0|-",
    "11|0|||9|0|-",
    "13|0|||0|0|-",
    "3|0|||0|0|-",
    "4|0|||43981|0|-",
    "3|13|a/b|21|42|0|-",
};

} // namespace

class TestBenchProto : public QObject {
    Q_OBJECT

private Q_SLOTS:
    // NATS encoders
    void natsConnectCommand();
    void natsConnectEscapesName();
    void natsSubUnsub();
    void natsPubPong();
    // NATS parser
    void natsParseWhole();
    void natsParseBytewise();
    void natsParseEveryTwoWaySplit();
    void natsParseManyCoalescedMessages();
    void natsParseIncompleteWaits();
    void natsParseMalformed_data();
    void natsParseMalformed();
    void natsParseFailureIsSticky();
    void natsParseResetAfterFailure();
    // MQTT encoders
    void mqttConnectPacket();
    void mqttConnectPacketVariants();
    void mqttSubscribeUnsubscribe();
    void mqttPublish();
    void mqttPublishLongPayloadUsesTwoLengthBytes();
    void mqttPingreqDisconnect();
    void mqttEncodersRejectOversize();
    // MQTT remaining length
    void mqttRemainingLength_data();
    void mqttRemainingLength();
    void mqttRemainingLengthRejects();
    // MQTT parser
    void mqttParseWhole();
    void mqttParseBytewise();
    void mqttParseEveryTwoWaySplit();
    void mqttParseLargePublishSplit();
    void mqttParseTruncatedVarintWaits();
    void mqttParseMalformed_data();
    void mqttParseMalformed();
    void mqttParseFailureIsSticky();
};

// --- NATS encoders ----------------------------------------------------------

void TestBenchProto::natsConnectCommand()
{
    QCOMPARE(bytes(bench::nats::connectCommand("bench-1")),
             QByteArray("CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"bench-1\","
                        "\"lang\":\"cpp\",\"version\":\"1\",\"protocol\":1,\"echo\":true,"
                        "\"headers\":false,\"no_responders\":false}\r\nPING\r\n"));
}

void TestBenchProto::natsConnectEscapesName()
{
    const std::string command = bench::nats::connectCommand("a\"b\\c\nd\x01"s + "\xc3\xa9");
    QVERIFY2(command.find(R"("name":"a\"b\\c\nd\u0001)" "\xc3\xa9" "\",") != std::string::npos,
             command.c_str());
    // Nothing in the name may end the control line early.
    QCOMPARE(command.find("\r\n"), command.size() - 8);
}

void TestBenchProto::natsSubUnsub()
{
    std::string out;
    bench::nats::appendSub(out, "bench.t.>", "", 1);
    QCOMPARE(bytes(out), QByteArray("SUB bench.t.> 1\r\n"));
    bench::nats::appendSub(out, "a.*", "workers", 18446744073709551615ull);
    QCOMPARE(bytes(out), QByteArray("SUB bench.t.> 1\r\nSUB a.* workers 18446744073709551615\r\n"));
    out.clear();
    bench::nats::appendUnsub(out, 42);
    bench::nats::appendUnsub(out, 0);
    QCOMPARE(bytes(out), QByteArray("UNSUB 42\r\nUNSUB 0\r\n"));
}

void TestBenchProto::natsPubPong()
{
    std::string out;
    bench::nats::appendPub(out, "x.y", "", "hello");
    QCOMPARE(bytes(out), QByteArray("PUB x.y 5\r\nhello\r\n"));
    out.clear();
    bench::nats::appendPub(out, "x.y", "_INBOX.1", "a\r\nb\0"sv);
    QCOMPARE(bytes(out), bytes("PUB x.y _INBOX.1 5\r\na\r\nb\0\r\n"s));
    out.clear();
    bench::nats::appendPub(out, "e", "", "");
    bench::nats::appendPong(out);
    QCOMPARE(bytes(out), QByteArray("PUB e 0\r\n\r\nPONG\r\n"));
}

// --- NATS parser ------------------------------------------------------------

void TestBenchProto::natsParseWhole()
{
    const NatsRun run = runNatsWhole(kNatsStream);
    QVERIFY2(!run.failed, run.error.c_str());
    QCOMPARE(run.events, kNatsStreamEvents);
}

void TestBenchProto::natsParseBytewise()
{
    const NatsRun run = runNatsBytewise(kNatsStream);
    QVERIFY2(!run.failed, run.error.c_str());
    QCOMPARE(run.events, kNatsStreamEvents);
}

void TestBenchProto::natsParseEveryTwoWaySplit()
{
    for (std::size_t cut = 0; cut <= kNatsStream.size(); ++cut) {
        const NatsRun run = runNats(kNatsStream, {cut});
        QVERIFY2(!run.failed, run.error.c_str());
        if (run.events != kNatsStreamEvents)
            QFAIL(qPrintable(QStringLiteral("split at %1 gives other events").arg(cut)));
    }
}

void TestBenchProto::natsParseManyCoalescedMessages()
{
    // Many messages in chunks of an odd size, so compaction runs with partial
    // messages left over; every payload must come out intact and in order.
    std::string stream;
    const int count = 20000;
    for (int i = 0; i < count; ++i) {
        const std::string payload = "p" + std::to_string(i) + "\r\nMSG x 1 2\r\n";
        stream += "MSG s." + std::to_string(i % 7) + " " + std::to_string(i) + " "
            + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
    }
    bench::nats::Parser parser;
    int seen = 0;
    bool inOrder = true;
    std::size_t maxBuffered = 0;
    for (std::size_t at = 0; at < stream.size(); at += 1037) {
        parser.feed(std::string_view(stream).substr(at, 1037));
        maxBuffered = std::max(maxBuffered, parser.buffered());
        bench::nats::Event e;
        while (parser.next(e)) {
            const std::string expected = "p" + std::to_string(seen) + "\r\nMSG x 1 2\r\n";
            inOrder = inOrder && e.kind == bench::nats::Event::Kind::Msg
                && e.sid == uint64_t(seen) && e.payload == expected
                && e.subject == "s." + std::to_string(seen % 7);
            ++seen;
        }
    }
    QVERIFY2(!parser.failed(), parser.error().c_str());
    QCOMPARE(seen, count);
    QVERIFY(inOrder);
    QCOMPARE(parser.buffered(), std::size_t(0));
    QVERIFY(maxBuffered < 1037 + 64);
}

void TestBenchProto::natsParseIncompleteWaits()
{
    bench::nats::Parser parser;
    bench::nats::Event e;
    parser.feed("MSG a 1 10\r\n01234");
    QVERIFY(!parser.next(e));
    QVERIFY(!parser.failed());
    parser.feed("56789\r");
    QVERIFY(!parser.next(e));
    QVERIFY(!parser.failed());
    parser.feed("\nPI");
    QVERIFY(parser.next(e));
    QCOMPARE(describe(e), "MSG|a|1||" + QByteArray("0123456789").toHex());
    QVERIFY(!parser.next(e));
    parser.feed("NG\r\n");
    QVERIFY(parser.next(e));
    QCOMPARE(describe(e), QByteArray("PING"));
    QVERIFY(!parser.next(e));
    QCOMPARE(parser.buffered(), std::size_t(0));
}

void TestBenchProto::natsParseMalformed_data()
{
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<int>("goodEvents");
    QTest::newRow("bad length") << QByteArray("MSG a 1 x5\r\nhello\r\n") << 0;
    QTest::newRow("negative length") << QByteArray("MSG a 1 -5\r\nhello\r\n") << 0;
    QTest::newRow("length too large") << QByteArray("MSG a 1 99999999999\r\nhello\r\n") << 0;
    QTest::newRow("length overflows") << QByteArray("MSG a 1 99999999999999999999999\r\n") << 0;
    QTest::newRow("length too short") << QByteArray("MSG a 1 3\r\nhello\r\n") << 0;
    QTest::newRow("missing CRLF after payload") << QByteArray("PING\r\nMSG a 1 5\r\nhelloPING\r\n") << 1;
    // Two stray bytes where the CRLF belongs, then a valid op: no silent resync.
    QTest::newRow("other bytes after payload") << QByteArray("MSG a 1 5\r\nhelloXXPING\r\n") << 0;
    QTest::newRow("only CR after payload") << QByteArray("MSG a 1 5\r\nhello\rX") << 0;
    QTest::newRow("bad sid") << QByteArray("MSG a b 5\r\nhello\r\n") << 0;
    QTest::newRow("too few MSG args") << QByteArray("MSG a 5\r\nhello\r\n") << 0;
    QTest::newRow("too many MSG args") << QByteArray("MSG a 1 r x 5\r\nhello\r\n") << 0;
    QTest::newRow("unknown op") << QByteArray("+OK\r\nPUB a 1\r\nx\r\n") << 1;
    QTest::newRow("garbage op") << QByteArray("\x01\x02\r\n") << 0;
    QTest::newRow("HMSG") << QByteArray("HMSG a 1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n") << 0;
    QTest::newRow("empty line") << QByteArray("\r\n") << 0;
    QTest::newRow("LF without CR") << QByteArray("PING\n") << 0;
    QTest::newRow("PING with argument") << QByteArray("PING now\r\n") << 0;
    QTest::newRow("op prefix") << QByteArray("PINGPONG\r\n") << 0;
}

void TestBenchProto::natsParseMalformed()
{
    QFETCH(QByteArray, input);
    QFETCH(int, goodEvents);
    const std::string_view view(input.constData(), std::size_t(input.size()));
    for (const NatsRun& run : {runNatsWhole(view), runNatsBytewise(view)}) {
        QVERIFY(run.failed);
        QVERIFY(!run.error.empty());
        QCOMPARE(run.events.size(), goodEvents);
    }
}

void TestBenchProto::natsParseFailureIsSticky()
{
    bench::nats::Parser parser;
    bench::nats::Event e;
    parser.feed("BOGUS\r\n");
    QVERIFY(!parser.next(e));
    QVERIFY(parser.failed());
    const std::string error = parser.error();
    QVERIFY(error.find("BOGUS") != std::string::npos);
    parser.feed("PING\r\n");
    QVERIFY(!parser.next(e));
    QCOMPARE(bytes(parser.error()), bytes(error));
}

void TestBenchProto::natsParseResetAfterFailure()
{
    bench::nats::Parser parser;
    bench::nats::Event e;
    parser.feed("MSG a 1 2\r\nxyz\r\n");
    QVERIFY(!parser.next(e));
    QVERIFY(parser.failed());
    parser.reset();
    QVERIFY(!parser.failed());
    QVERIFY(parser.error().empty());
    parser.feed("PONG\r\n");
    QVERIFY(parser.next(e));
    QCOMPARE(describe(e), QByteArray("PONG"));
}

// --- MQTT encoders ----------------------------------------------------------

void TestBenchProto::mqttConnectPacket()
{
    QCOMPARE(bytes(bench::mqtt::connectPacket("b1", 60)),
             bytes("\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02" "b1"s));
}

void TestBenchProto::mqttConnectPacketVariants()
{
    QCOMPARE(bytes(bench::mqtt::connectPacket("", 0, false)),
             bytes("\x10\x0c\x00\x04MQTT\x04\x00\x00\x00\x00\x00"s));
    const std::string id(200, 'c');
    const std::string packet = bench::mqtt::connectPacket(id, 0x1234);
    // 10 + 2 + 200 = 212 needs two length bytes: 0xd4 0x01.
    QCOMPARE(bytes(packet.substr(0, 15)),
             bytes("\x10\xd4\x01\x00\x04MQTT\x04\x02\x12\x34\x00\xc8"s));
    QCOMPARE(packet.size(), std::size_t(3 + 212));
    QCOMPARE(bytes(packet.substr(15)), bytes(id));
}

void TestBenchProto::mqttSubscribeUnsubscribe()
{
    std::string out;
    bench::mqtt::appendSubscribe(out, 1, "bench/#");
    QCOMPARE(bytes(out), bytes("\x82\x0c\x00\x01\x00\x07" "bench/#" "\x00"s));
    out.clear();
    bench::mqtt::appendUnsubscribe(out, 0xbeef, "a/+");
    QCOMPARE(bytes(out), bytes("\xa2\x07\xbe\xef\x00\x03" "a/+"s));
}

void TestBenchProto::mqttPublish()
{
    std::string out;
    bench::mqtt::appendPublish(out, "t/1", "hi");
    QCOMPARE(bytes(out), bytes("\x30\x07\x00\x03t/1hi"s));
    bench::mqtt::appendPublish(out, "", "\0\xff"sv);
    QCOMPARE(bytes(out), bytes("\x30\x07\x00\x03t/1hi" "\x30\x04\x00\x00\x00\xff"s));
}

void TestBenchProto::mqttPublishLongPayloadUsesTwoLengthBytes()
{
    std::string out;
    const std::string payload(124, 'p'); // 2 + 1 + 124 = 127: one length byte
    bench::mqtt::appendPublish(out, "t", payload);
    QCOMPARE(bytes(out.substr(0, 5)), bytes("\x30\x7f\x00\x01t"s));
    out.clear();
    bench::mqtt::appendPublish(out, "t", payload + "q"); // 128: two length bytes
    QCOMPARE(bytes(out.substr(0, 6)), bytes("\x30\x80\x01\x00\x01t"s));
    QCOMPARE(out.size(), std::size_t(3 + 128));
}

void TestBenchProto::mqttPingreqDisconnect()
{
    std::string out;
    bench::mqtt::appendPingreq(out);
    bench::mqtt::appendDisconnect(out);
    QCOMPARE(bytes(out), bytes("\xc0\x00\xe0\x00"s));
}

void TestBenchProto::mqttEncodersRejectOversize()
{
    std::string out;
    const std::string longTopic(65536, 't');
    QVERIFY_THROWS_EXCEPTION(std::length_error, bench::mqtt::appendPublish(out, longTopic, ""));
    QVERIFY_THROWS_EXCEPTION(std::length_error, bench::mqtt::appendSubscribe(out, 1, longTopic));
    QVERIFY_THROWS_EXCEPTION(std::length_error, bench::mqtt::appendUnsubscribe(out, 1, longTopic));
    QVERIFY_THROWS_EXCEPTION(std::length_error, bench::mqtt::connectPacket(longTopic, 1));
    QVERIFY(out.empty());
    // The largest topic still fits.
    bench::mqtt::appendPublish(out, longTopic.substr(1), "");
    QCOMPARE(bytes(out.substr(0, 6)), bytes("\x30\x81\x80\x04\xff\xff"s));
}

// --- MQTT remaining length --------------------------------------------------

void TestBenchProto::mqttRemainingLength_data()
{
    QTest::addColumn<quint32>("value");
    QTest::addColumn<QByteArray>("encoded");
    QTest::newRow("0") << quint32(0) << QByteArray("\x00", 1);
    QTest::newRow("127") << quint32(127) << QByteArray("\x7f");
    QTest::newRow("128") << quint32(128) << QByteArray("\x80\x01");
    QTest::newRow("16383") << quint32(16383) << QByteArray("\xff\x7f");
    QTest::newRow("16384") << quint32(16384) << QByteArray("\x80\x80\x01");
    QTest::newRow("2097151") << quint32(2097151) << QByteArray("\xff\xff\x7f");
    QTest::newRow("2097152") << quint32(2097152) << QByteArray("\x80\x80\x80\x01");
    QTest::newRow("268435455") << quint32(268435455) << QByteArray("\xff\xff\xff\x7f");
}

void TestBenchProto::mqttRemainingLength()
{
    QFETCH(quint32, value);
    QFETCH(QByteArray, encoded);
    std::string out = "x";
    bench::mqtt::appendRemainingLength(out, value);
    QCOMPARE(bytes(out), "x" + encoded);

    const std::string_view view(encoded.constData(), std::size_t(encoded.size()));
    uint32_t decoded = 0xdeadbeef;
    std::size_t consumed = 99;
    // Trailing bytes after the field are not part of it.
    const std::string withTail = std::string(view) + "\x05\x80"s;
    QCOMPARE(bench::mqtt::decodeRemainingLength(withTail, decoded, consumed),
             bench::mqtt::DecodeResult::Ok);
    QCOMPARE(decoded, value);
    QCOMPARE(consumed, view.size());
    // Every proper prefix is incomplete, not malformed.
    for (std::size_t n = 0; n < view.size(); ++n)
        QCOMPARE(bench::mqtt::decodeRemainingLength(view.substr(0, n), decoded, consumed),
                 bench::mqtt::DecodeResult::NeedMore);
}

void TestBenchProto::mqttRemainingLengthRejects()
{
    std::string out;
    QVERIFY_THROWS_EXCEPTION(std::length_error,
                             bench::mqtt::appendRemainingLength(out, 268435456));
    QVERIFY_THROWS_EXCEPTION(std::length_error,
                             bench::mqtt::appendRemainingLength(out, 0xffffffffu));
    QVERIFY(out.empty());
    uint32_t value = 0;
    std::size_t consumed = 0;
    QCOMPARE(bench::mqtt::decodeRemainingLength("\xff\xff\xff\xff\x01"sv, value, consumed),
             bench::mqtt::DecodeResult::Malformed);
    QCOMPARE(bench::mqtt::decodeRemainingLength("\x80\x80\x80\x80"sv, value, consumed),
             bench::mqtt::DecodeResult::Malformed);
}

// --- MQTT parser ------------------------------------------------------------

void TestBenchProto::mqttParseWhole()
{
    const MqttRun run = runMqtt(kMqttGoodStream, {});
    QVERIFY2(!run.failed, run.error.c_str());
    QCOMPARE(run.packets, kMqttGoodStreamPackets);
}

void TestBenchProto::mqttParseBytewise()
{
    const MqttRun run = runMqttBytewise(kMqttGoodStream);
    QVERIFY2(!run.failed, run.error.c_str());
    QCOMPARE(run.packets, kMqttGoodStreamPackets);
}

void TestBenchProto::mqttParseEveryTwoWaySplit()
{
    for (std::size_t cut = 0; cut <= kMqttGoodStream.size(); ++cut) {
        const MqttRun run = runMqtt(kMqttGoodStream, {cut});
        QVERIFY2(!run.failed, run.error.c_str());
        if (run.packets != kMqttGoodStreamPackets)
            QFAIL(qPrintable(QStringLiteral("split at %1 gives other packets").arg(cut)));
    }
}

void TestBenchProto::mqttParseLargePublishSplit()
{
    // 3-byte remaining length, payload with every byte value, then a PINGRESP.
    std::string payload;
    for (int i = 0; i < 200000; ++i)
        payload += char(i * 7 % 256);
    std::string stream;
    bench::mqtt::appendPublish(stream, "big/one", payload);
    stream += "\xd0\x00"s;
    QCOMPARE(bytes(stream.substr(0, 4)), bytes("\x30\xc9\x9a\x0c"s)); // 200009
    const std::vector<std::vector<std::size_t>> splits = {
        {}, {1}, {2}, {3}, {4}, {5}, {13}, {stream.size() - 2}, {stream.size() - 1},
        {1, 2, 3, 4, 100, 150000, stream.size() - 1}};
    for (const auto& cuts : splits) {
        bench::mqtt::Parser parser;
        std::size_t start = 0;
        int publishes = 0;
        int pings = 0;
        auto drain = [&] {
            bench::mqtt::Packet p;
            while (parser.next(p)) {
                if (p.type == bench::mqtt::PUBLISH && p.topic == "big/one" && p.payload == payload)
                    ++publishes;
                else if (p.type == bench::mqtt::PINGRESP)
                    ++pings;
            }
        };
        for (const std::size_t cut : cuts) {
            parser.feed(std::string_view(stream).substr(start, cut - start));
            drain();
            start = cut;
        }
        parser.feed(std::string_view(stream).substr(start));
        drain();
        QVERIFY2(!parser.failed(), parser.error().c_str());
        QCOMPARE(publishes, 1);
        QCOMPARE(pings, 1);
        QCOMPARE(parser.buffered(), std::size_t(0));
    }
}

void TestBenchProto::mqttParseTruncatedVarintWaits()
{
    // A varint cut short by the transport is incomplete, not an error.
    bench::mqtt::Parser parser;
    bench::mqtt::Packet p;
    parser.feed("\x30\x80"sv);
    QVERIFY(!parser.next(p));
    QVERIFY(!parser.failed());
    parser.feed("\x80"sv);
    QVERIFY(!parser.next(p));
    QVERIFY(!parser.failed());
    parser.feed("\x01"sv); // 16384
    QVERIFY(!parser.next(p));
    QVERIFY(!parser.failed());
    std::string body = "\x00\x01t"s + std::string(16384 - 3, 'x');
    parser.feed(body);
    QVERIFY2(parser.next(p), parser.error().c_str());
    QCOMPARE(p.type, uint8_t(bench::mqtt::PUBLISH));
    QCOMPARE(bytes(p.topic), QByteArray("t"));
    QCOMPARE(p.payload.size(), std::size_t(16384 - 3));
    QVERIFY(!parser.next(p));
}

void TestBenchProto::mqttParseMalformed_data()
{
    QTest::addColumn<QByteArray>("input");
    QTest::addColumn<int>("goodPackets");
    auto qb = [](const std::string& s) { return bytes(s); };
    QTest::newRow("oversize varint") << qb("\x30\xff\xff\xff\xff\x01"s) << 0;
    QTest::newRow("oversize varint after good packet") << qb("\xd0\x00\x30\x80\x80\x80\x80"s) << 1;
    QTest::newRow("topic length beyond packet") << qb("\x30\x04\x00\x05" "ab"s) << 0;
    QTest::newRow("truncated topic length") << qb("\x30\x01\x00"s) << 0;
    QTest::newRow("QoS 1 without packet id") << qb("\x32\x04\x00\x02" "ab"s) << 0;
    QTest::newRow("QoS 1 with half a packet id") << qb("\x32\x05\x00\x02" "ab\x01"s) << 0;
    QTest::newRow("QoS 2 DUP RETAIN without packet id") << qb(kMqttStream) << 6;
    QTest::newRow("QoS 3") << qb("\x36\x03\x00\x01t"s) << 0;
    QTest::newRow("reserved type 0") << qb("\x00\x00"s) << 0;
    QTest::newRow("reserved type 15") << qb("\xf0\x00"s) << 0;
    QTest::newRow("short CONNACK") << qb("\x20\x01\x00"s) << 0;
    QTest::newRow("long CONNACK") << qb("\x20\x03\x00\x00\x00"s) << 0;
    QTest::newRow("CONNACK reserved flag") << qb("\x20\x02\x02\x00"s) << 0;
    QTest::newRow("SUBACK without code") << qb("\x90\x02\x00\x01"s) << 0;
    QTest::newRow("UNSUBACK too long") << qb("\xb0\x03\x00\x01\x00"s) << 0;
    QTest::newRow("PINGRESP with body") << qb("\xd0\x01\x00"s) << 0;
    QTest::newRow("PINGRESP with flags") << qb("\xd1\x00"s) << 0;
}

void TestBenchProto::mqttParseMalformed()
{
    QFETCH(QByteArray, input);
    QFETCH(int, goodPackets);
    const std::string_view view(input.constData(), std::size_t(input.size()));
    for (const MqttRun& run : {runMqtt(view, {}), runMqttBytewise(view)}) {
        QVERIFY(run.failed);
        QVERIFY(!run.error.empty());
        QCOMPARE(run.packets.size(), goodPackets);
    }
}

void TestBenchProto::mqttParseFailureIsSticky()
{
    bench::mqtt::Parser parser;
    bench::mqtt::Packet p;
    parser.feed("\x30\x04\x00\x05" "ab"sv);
    QVERIFY(!parser.next(p));
    QVERIFY(parser.failed());
    parser.feed("\xd0\x00"sv);
    QVERIFY(!parser.next(p));
    parser.reset();
    QVERIFY(!parser.failed());
    parser.feed("\xd0\x00"sv);
    QVERIFY(parser.next(p));
    QCOMPARE(p.type, uint8_t(bench::mqtt::PINGRESP));
}

QTEST_GUILESS_MAIN(TestBenchProto)
#include "tst_benchproto.moc"
