// docs/protocol.md §2, §3 and §4.8 against a corpus of malformed WebSocket messages kept as
// files in tests/badinput/ (see its README.md): each file is sent by the peer the
// manifest names, and the broker must answer exactly the expected ERRs or RESs, or
// close with the expected code and reason, while a bystander service and client
// keep being served after every row.
//
// Every peer is a RawPeer rather than a QWebSocket: it sends text frames holding
// any bytes (invalid UTF-8 included, which QWebSocket cannot), shows close codes
// and reasons exactly as sent (Qt 6.4's client reports 1013 as 1002), and never
// emits anything synchronously from a close.

#include "rawpeer.h"
#include "testpeer.h"

#include <QDir>
#include <QFileInfo>
#include <QEventLoop>
#include <QFile>
#include <QSet>
#include <QTimer>

#include <functional>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

const QString kCorpusDir = QStringLiteral(BADINPUT_DIR);
const QString kManifest = QStringLiteral("expected.tsv");

// One outcome the manifest expects (tests/badinput/README.md).
struct Outcome
{
    enum class Kind { Err, Res, Close };
    Kind kind = Kind::Err;
    int code = 0;          // ERR or RES status, or the close code
    QByteArray command;    // ERR: the Command header, empty when it must be absent
    QByteArray target;     // ERR, RES
    QByteArray reqId;      // ERR, RES: the ReqID header, empty when it must be absent
    QByteArray text;       // ERR reason, RES body, close reason
};

struct Row
{
    QString file;
    bool binary = false;
    QString sender; // "service", "client" or "handshake"
    QString expected;
};

// "\xHH" and "\\" in a manifest field stand for one byte.
QByteArray unescape(QByteArrayView text)
{
    QByteArray out;
    for (qsizetype i = 0; i < text.size(); ++i) {
        if (text.at(i) == '\\' && i + 1 < text.size() && text.at(i + 1) == '\\') {
            out += '\\';
            ++i;
        } else if (text.at(i) == '\\' && i + 3 < text.size() && text.at(i + 1) == 'x') {
            out += char(text.sliced(i + 2, 2).toByteArray().toInt(nullptr, 16));
            i += 3;
        } else {
            out += text.at(i);
        }
    }
    return out;
}

QByteArray orNone(QByteArrayView field)
{
    return field == "-" ? QByteArray() : unescape(field);
}

// Splits off `count` space-separated fields; the rest (may be empty) comes last.
QList<QByteArrayView> fields(QByteArrayView text, int count)
{
    QList<QByteArrayView> out;
    for (int i = 0; i < count; ++i) {
        const qsizetype sp = text.indexOf(' ');
        if (sp < 0) {
            out.append(text);
            text = {};
        } else {
            out.append(text.first(sp));
            text = text.sliced(sp + 1);
        }
    }
    out.append(text);
    return out;
}

// "none", or outcomes joined by " | ".
bool parseExpected(const QString &expected, QList<Outcome> *outcomes, QString *error)
{
    outcomes->clear();
    if (expected == QLatin1String("none"))
        return true;
    const QByteArray utf8 = expected.toUtf8();
    QList<QByteArrayView> parts;
    for (QByteArrayView rest(utf8);;) {
        const qsizetype bar = rest.indexOf(" | ");
        parts.append(bar < 0 ? rest : rest.first(bar));
        if (bar < 0)
            break;
        rest = rest.sliced(bar + 3);
    }
    for (const QByteArrayView part : std::as_const(parts)) {
        Outcome o;
        bool ok = false;
        if (part.startsWith("ERR ")) {
            // ERR <status> <command> <target> <reqid> <reason>
            const QList<QByteArrayView> f = fields(part.sliced(4), 4);
            o.kind = Outcome::Kind::Err;
            o.code = f.at(0).toInt(&ok);
            o.command = orNone(f.at(1));
            o.target = unescape(f.at(2));
            o.reqId = orNone(f.at(3));
            o.text = unescape(f.at(4));
        } else if (part.startsWith("RES ")) {
            // RES <status> <target> <reqid> <body>
            const QList<QByteArrayView> f = fields(part.sliced(4), 3);
            o.kind = Outcome::Kind::Res;
            o.code = f.at(0).toInt(&ok);
            o.target = unescape(f.at(1));
            o.reqId = orNone(f.at(2));
            o.text = unescape(f.at(3));
        } else if (part.startsWith("close ")) {
            // close <code> <reason>
            const QList<QByteArrayView> f = fields(part.sliced(6), 1);
            o.kind = Outcome::Kind::Close;
            o.code = f.at(0).toInt(&ok);
            o.text = unescape(f.at(1));
        }
        if (!ok) {
            *error = QStringLiteral("unreadable outcome '%1'").arg(QString::fromUtf8(part));
            return false;
        }
        outcomes->append(o);
    }
    for (const Outcome &o : std::as_const(*outcomes)) {
        if (o.kind == Outcome::Kind::Close && outcomes->size() != 1) {
            *error = QStringLiteral("a close must be the only outcome");
            return false;
        }
    }
    return true;
}

bool readManifest(QList<Row> *rows, QString *error)
{
    QFile file(kCorpusDir + QLatin1Char('/') + kManifest);
    if (!file.open(QIODevice::ReadOnly)) {
        *error = file.errorString();
        return false;
    }
    int lineNo = 0;
    while (!file.atEnd()) {
        const QByteArray line = file.readLine().chopped(1);
        ++lineNo;
        if (line.isEmpty() || line.startsWith('#'))
            continue;
        const QList<QByteArray> f = line.split('\t');
        const bool frameOk = f.size() == 4 && (f.at(1) == "text" || f.at(1) == "binary");
        const bool senderOk = f.size() == 4 && (f.at(2) == "service" || f.at(2) == "client" || f.at(2) == "handshake");
        if (!frameOk || !senderOk) {
            *error = QStringLiteral("%1:%2: expected file, text|binary, service|client|handshake, outcome")
                         .arg(kManifest)
                         .arg(lineNo);
            return false;
        }
        rows->append(Row{QString::fromUtf8(f.at(0)), f.at(1) == "binary", QString::fromUtf8(f.at(2)),
                         QString::fromUtf8(f.at(3))});
    }
    return true;
}

// Runs the event loop until `done` holds, waking on every event (no fixed sleeps,
// unlike QTest::qWaitFor's 10 ms steps, which would make 200 rows slow).
bool waitUntil(const std::function<bool()> &done, int timeoutMs = 5000)
{
    if (done())
        return true;
    QEventLoop loop;
    bool timedOut = false;
    QTimer timer;
    timer.setSingleShot(true);
    QObject::connect(&timer, &QTimer::timeout, &loop, [&timedOut] { timedOut = true; });
    timer.start(timeoutMs);
    while (!done()) {
        if (timedOut)
            return false;
        loop.processEvents(QEventLoop::WaitForMoreEvents);
        QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
    }
    return true;
}

// A broker frame as the peer received it, read back with the codec.
struct Received
{
    Message message;
    bool binary = false;
    QByteArray payload;
};

bool readFrames(const QList<RawPeer::DataMessage> &frames, QList<Received> *out, QString *error)
{
    CodecLimits limits;
    limits.maxMessageSize = 64 * 1024 * 1024;
    for (const RawPeer::DataMessage &frame : frames) {
        FrameReader reader(frame.payload, limits, frame.binary, Direction::FromBroker);
        Message message;
        ParseError parseError;
        if (reader.next(message, parseError) != FrameReader::Item::Message) {
            *error = QStringLiteral("unreadable broker frame: %1").arg(QString::fromUtf8(parseError.reason));
            return false;
        }
        Message extra;
        if (reader.next(extra, parseError) != FrameReader::Item::End) {
            *error = QStringLiteral("more than one message in a broker frame");
            return false;
        }
        out->append(Received{message, frame.binary, frame.payload});
    }
    return true;
}

// The next protocol message from the broker on `peer`.
std::optional<Message> nextMessage(RawPeer &peer)
{
    if (!waitUntil([&peer] { return !peer.messages.isEmpty() || peer.closeReceived; }) || peer.messages.isEmpty())
        return std::nullopt;
    QList<Received> received;
    QString error;
    if (!readFrames({peer.messages.takeFirst()}, &received, &error))
        return std::nullopt;
    return received.first().message;
}

// Latency, not correctness: every peer here runs without Nagle's algorithm, and
// acknowledges the broker's last frame with data (an unsolicited pong, RFC 6455
// 5.5.3). The broker's own sockets keep Nagle's algorithm, so its next small frame
// to a peer that has not answered would wait for the delayed ACK, some 40 ms a row.
void lowDelay(RawPeer &peer)
{
    peer.socket().setSocketOption(QAbstractSocket::LowDelayOption, 1);
}
void acknowledge(RawPeer &peer)
{
    peer.sendFrame(RawPeer::Pong, {});
}

// Sends `wire` and waits for the RES 200 to an OPT sent after it.
bool sendAndSync(RawPeer &peer, const QByteArray &wire)
{
    peer.sendText(wire);
    peer.sendText("OPT -\nReqID: setup\n\n.\n");
    const std::optional<Message> answer = nextMessage(peer);
    acknowledge(peer);
    return answer && answer->command == Command::Res && answer->header(HeaderName::ReqId) == "setup"
        && answer->header(HeaderName::Status) == "200" && peer.messages.isEmpty();
}

QByteArray describe(const Message &m)
{
    QByteArray text = commandName(m.command).toByteArray() + ' ' + m.target;
    for (const Header &h : m.headers)
        text += " [" + h.name + ": " + h.value + ']';
    return text + " body '" + m.body + '\'';
}

// What the broker's counters should have moved by, summed over the rows run.
struct Tally
{
    quint64 rows = 0;
    quint64 freshConnections = 0;
    quint64 handshakeRows = 0;
    quint64 errors = 0;
    quint64 tooLarge = 0;
    quint64 unknownResponses = 0;
    quint64 noResponder = 0;
    quint64 keysRefused = 0;
    quint64 protocolCloses = 0;
};

} // namespace

class tst_BadInput : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void initTestCase();
    void manifestMatchesFiles();
    void corpus_data();
    void corpus();
    void countersAndConnections();
    void cleanupTestCase();

private:
    void checkBystanders(const QByteArray &tag);
    void checkAnswers(RawPeer &peer, bool binaryRow, const QList<Outcome> &expected);

    std::unique_ptr<Broker> m_broker;
    std::unique_ptr<RawPeer> m_bystanderService;
    std::unique_ptr<RawPeer> m_bystanderClient;
    // Senders that stay connected: an ERR leaves the connection open (3.8).
    std::unique_ptr<RawPeer> m_serviceSender;
    std::unique_ptr<RawPeer> m_clientSender;
    BrokerStats m_before;
    Tally m_tally;
    int m_syncCounter = 0;
};

void tst_BadInput::initTestCase()
{
    // Small limits keep the corpus files small (tests/badinput/README.md).
    BrokerConfig config = testConfig();
    config.codec.maxMessageSize = 4096;
    config.codec.maxHeaderBytes = 1024;
    config.maxFrameSize = 32768;
    // Every handshake row must get its own 1008, not the back-off that 127.0.0.1
    // would earn after ten bad keys (tst_limits tests the back-off).
    config.failedKeyBackoffMs = 0;
    config.grants = {GrantConfig{Command::Epub, "chat.>"}, GrantConfig{Command::Esub, "chat.>"},
                     GrantConfig{Command::Ereq, "calc.>"}};
    m_broker = startBroker(config);

    m_bystanderService = std::make_unique<RawPeer>();
    m_bystanderClient = std::make_unique<RawPeer>();
    QVERIFY(m_bystanderService->connectWithKey(m_broker->serverUrl(), kServiceKey2));
    QVERIFY(m_bystanderClient->connectWithKey(m_broker->serverUrl(), kClientKey));
    lowDelay(*m_bystanderService);
    lowDelay(*m_bystanderClient);
    QVERIFY(sendAndSync(*m_bystanderService, "EPUB bystander.>\n.\nESUB bystander.>\n.\nEREQ bystander.>\n.\n"
                                             "SUB bystander.calc\n.\n"));
    QVERIFY(sendAndSync(*m_bystanderClient, "SUB bystander.news\n.\n"));

    m_before = m_broker->stats();
    m_serviceSender = std::make_unique<RawPeer>();
    m_clientSender = std::make_unique<RawPeer>();
    QVERIFY2(m_serviceSender->connectWithKey(m_broker->serverUrl(), kServiceKey),
             qPrintable(m_serviceSender->errorString()));
    QVERIFY2(m_clientSender->connectWithKey(m_broker->serverUrl(), kClientKey),
             qPrintable(m_clientSender->errorString()));
    lowDelay(*m_serviceSender);
    lowDelay(*m_clientSender);
}

void tst_BadInput::manifestMatchesFiles()
{
    QList<Row> rows;
    QString error;
    QVERIFY2(readManifest(&rows, &error), qPrintable(error));
    QSet<QString> listed;
    for (const Row &row : std::as_const(rows)) {
        QVERIFY2(!listed.contains(row.file), qPrintable(QStringLiteral("listed twice: ") + row.file));
        listed.insert(row.file);
        QList<Outcome> outcomes;
        QVERIFY2(parseExpected(row.expected, &outcomes, &error), qPrintable(row.file + QLatin1String(": ") + error));
        QVERIFY2(QFile::exists(kCorpusDir + QLatin1Char('/') + row.file),
                 qPrintable(QStringLiteral("listed but missing: ") + row.file));
    }
    const QStringList files = QDir(kCorpusDir).entryList(QDir::Files);
    for (const QString &file : files) {
        if (file == kManifest || file == QLatin1String("README.md"))
            continue;
        QVERIFY2(listed.contains(file), qPrintable(QStringLiteral("not in the manifest: ") + file));
    }
    QVERIFY2(rows.size() >= 100, qPrintable(QString::number(rows.size())));
}

void tst_BadInput::corpus_data()
{
    QTest::addColumn<QString>("file");
    QTest::addColumn<bool>("binary");
    QTest::addColumn<QString>("sender");
    QTest::addColumn<QString>("expected");
    QList<Row> rows;
    QString error;
    if (!readManifest(&rows, &error))
        qFatal("%s", qPrintable(error));
    for (const Row &row : std::as_const(rows))
        QTest::addRow("%s", qPrintable(row.file)) << row.file << row.binary << row.sender << row.expected;
}

void tst_BadInput::corpus()
{
    QFETCH(QString, file);
    QFETCH(bool, binary);
    QFETCH(QString, sender);
    QFETCH(QString, expected);

    QList<Outcome> outcomes;
    QString error;
    QVERIFY2(parseExpected(expected, &outcomes, &error), qPrintable(error));
    QFile input(kCorpusDir + QLatin1Char('/') + file);
    QVERIFY2(input.open(QIODevice::ReadOnly), qPrintable(input.errorString()));
    const QByteArray bytes = input.readAll();
    const bool closes = !outcomes.isEmpty() && outcomes.first().kind == Outcome::Kind::Close;
    ++m_tally.rows;

    // A row that ends in a close gets a connection of its own; the others share
    // the senders that stay connected through the run.
    std::unique_ptr<RawPeer> fresh;
    RawPeer *peer = nullptr;
    if (sender == QLatin1String("handshake")) {
        ++m_tally.handshakeRows;
        fresh = std::make_unique<RawPeer>();
        QVERIFY2(fresh->open(m_broker->serverUrl()), qPrintable(fresh->errorString()));
        peer = fresh.get();
    } else if (closes) {
        fresh = std::make_unique<RawPeer>();
        const QByteArray key = sender == QLatin1String("service") ? kServiceKey : kClientKey;
        QVERIFY2(fresh->connectWithKey(m_broker->serverUrl(), key), qPrintable(fresh->errorString()));
        peer = fresh.get();
    } else {
        peer = sender == QLatin1String("service") ? m_serviceSender.get() : m_clientSender.get();
    }
    if (fresh) {
        ++m_tally.freshConnections;
        lowDelay(*fresh);
    }
    peer->socket().setSocketOption(QAbstractSocket::LowDelayOption, 1);
    QVERIFY(!peer->closeReceived && !peer->disconnected);
    QVERIFY(peer->messages.isEmpty());

    peer->sendFrame(binary ? RawPeer::Binary : RawPeer::Text, bytes);

    if (closes) {
        const Outcome &close = outcomes.first();
        QVERIFY2(waitUntil([peer] { return peer->closeReceived; }), "no close frame");
        QCOMPARE(peer->closeCode, close.code);
        QCOMPARE(peer->closeReason, QString::fromUtf8(close.text));
        QVERIFY2(peer->messages.isEmpty(), "a message before the close");
        QVERIFY(waitUntil([peer] { return peer->disconnected; }));
        if (close.code == QWebSocketProtocol::CloseCodePolicyViolated)
            ++m_tally.keysRefused;
        else
            ++m_tally.protocolCloses;
    } else {
        checkAnswers(*peer, binary, outcomes);
        if (QTest::currentTestFailed())
            return;
        for (const Outcome &o : std::as_const(outcomes)) {
            if (o.kind == Outcome::Kind::Err) {
                ++m_tally.errors;
                m_tally.tooLarge += o.code == 413;
                m_tally.unknownResponses += o.code == 404;
            } else if (o.code == 503) {
                ++m_tally.noResponder;
            }
        }
    }
    QVERIFY(peer->protocolErrors.isEmpty());
    fresh.reset();
    QVERIFY(waitUntil([this] { return m_broker->connectionCount() == 4; }));

    checkBystanders(QFileInfo(file).completeBaseName().toUtf8());
}

// Everything the row's frame got back, up to the answer to an OPT sent after it
// in a frame of its own, is exactly the expected messages in order.
void tst_BadInput::checkAnswers(RawPeer &peer, bool binaryRow, const QList<Outcome> &expected)
{
    const QByteArray syncId = "row-sync-" + QByteArray::number(++m_syncCounter);
    const QByteArray syncLine = "ReqID: " + syncId + '\n';
    peer.sendText("OPT -\n" + syncLine + "\n.\n");
    QList<Received> received;
    QString error;
    const bool synced = waitUntil([&] {
        if (peer.closeReceived || peer.disconnected)
            return true;
        for (const RawPeer::DataMessage &frame : std::as_const(peer.messages)) {
            if (frame.payload.contains(syncLine))
                return true;
        }
        return false;
    });
    QVERIFY2(!peer.closeReceived && !peer.disconnected,
             qPrintable(QStringLiteral("closed: %1 %2").arg(peer.closeCode).arg(peer.closeReason)));
    QVERIFY2(synced, "no answer to the OPT sent after the row");
    QVERIFY2(readFrames(peer.messages, &received, &error), qPrintable(error));
    peer.messages.clear();

    acknowledge(peer);
    QVERIFY(!received.isEmpty());
    const Received sync = received.takeLast();
    QCOMPARE(sync.message.command, Command::Res);
    QCOMPARE(sync.message.header(HeaderName::Status), QByteArray("200"));

    QByteArrayList got;
    for (const Received &r : std::as_const(received))
        got.append(describe(r.message));
    QVERIFY2(received.size() == expected.size(),
             qPrintable(QStringLiteral("expected %1 answers, got: %2")
                            .arg(expected.size())
                            .arg(QString::fromUtf8(got.join(" || ")))));
    for (qsizetype i = 0; i < expected.size(); ++i) {
        const Outcome &want = expected.at(i);
        const Received &r = received.at(i);
        const Message &m = r.message;
        const QByteArray context = describe(m);
        // Decision 13: the broker's own messages are text frames unless their bytes
        // are not UTF-8; an answer to a text frame is always UTF-8.
        QVERIFY2(r.binary == !QByteArrayView(r.payload).isValidUtf8(), context.constData());
        if (!binaryRow)
            QVERIFY2(!r.binary, context.constData());
        QList<Header> headers;
        if (want.kind == Outcome::Kind::Err) {
            // Section 4.8: ERR, Status, [ReqID], [Command], reason.
            QVERIFY2(m.command == Command::Err, context.constData());
            headers.append(Header{"Status", QByteArray::number(want.code)});
            if (!want.reqId.isEmpty())
                headers.append(Header{"ReqID", want.reqId});
            if (!want.command.isEmpty())
                headers.append(Header{"Command", want.command});
        } else {
            // Broker-made RES: [ReqID], Status, body.
            QVERIFY2(m.command == Command::Res, context.constData());
            if (!want.reqId.isEmpty())
                headers.append(Header{"ReqID", want.reqId});
            headers.append(Header{"Status", QByteArray::number(want.code)});
        }
        QVERIFY2(m.target == want.target, context.constData());
        QVERIFY2(m.headers == headers, context.constData());
        QVERIFY2(m.body == want.text, context.constData());
    }
}

// The bystanders stay connected through the whole run: after each row a PUB from
// the service reaches the client, and a REQ from the client is answered by the service.
void tst_BadInput::checkBystanders(const QByteArray &tag)
{
    RawPeer &service = *m_bystanderService;
    RawPeer &client = *m_bystanderClient;
    QVERIFY(!service.closeReceived && !client.closeReceived);
    QVERIFY(service.messages.isEmpty() && client.messages.isEmpty());

    service.sendText(serialize(msg(Command::Pub, "bystander.news", {}, tag)));
    const std::optional<Message> news = nextMessage(client);
    QVERIFY(news.has_value());
    QCOMPARE(news->command, Command::Pub);
    QCOMPARE(news->target, QByteArray("bystander.news"));
    QCOMPARE(news->body, tag);

    client.sendText(serialize(msg(Command::Req, "bystander.calc", {{"ReqID", tag}}, "ping")));
    const std::optional<Message> request = nextMessage(service);
    QVERIFY(request.has_value());
    QCOMPARE(request->command, Command::Req);
    QCOMPARE(request->body, QByteArray("ping"));
    service.sendText(serialize(msg(Command::Res, "bystander.calc", {{"ReqID", request->header(HeaderName::ReqId)}},
                                   "pong")));
    const std::optional<Message> answer = nextMessage(client);
    acknowledge(client);
    QVERIFY(answer.has_value());
    QCOMPARE(answer->command, Command::Res);
    QCOMPARE(answer->header(HeaderName::ReqId), tag);
    QVERIFY(!answer->hasHeader(HeaderName::Status));
    QCOMPARE(answer->body, QByteArray("pong"));
    QVERIFY(service.protocolErrors.isEmpty() && client.protocolErrors.isEmpty());
}

void tst_BadInput::countersAndConnections()
{
    // The senders that stayed connected are still open, then leave cleanly.
    for (RawPeer *sender : {m_serviceSender.get(), m_clientSender.get()}) {
        QVERIFY(!sender->closeReceived && !sender->disconnected);
        QVERIFY(sender->messages.isEmpty());
        sender->sendClose(1000);
        QVERIFY(waitUntil([sender] { return sender->disconnected; }));
    }
    QVERIFY(waitUntil([this] { return m_broker->connectionCount() == 2; }));
    QCOMPARE(m_broker->peers().size(), qsizetype(2));
    QVERIFY(m_broker->pendingRequests().isEmpty());

    // Section 9 and decision 26: every refusal and close was counted.
    const BrokerStats now = m_broker->stats();
    const BrokerStats &was = m_before;
    const Tally &t = m_tally;
    QCOMPARE(now.connectionsAccepted - was.connectionsAccepted, t.freshConnections + 2);
    QCOMPARE(now.handshakesCompleted - was.handshakesCompleted, t.freshConnections - t.handshakeRows + 2);
    QCOMPARE(now.disconnects - was.disconnects, t.freshConnections + 2);
    QCOMPARE(now.errorsSent - was.errorsSent, t.errors);
    QCOMPARE(now.messagesTooLarge - was.messagesTooLarge, t.tooLarge);
    QCOMPARE(now.responsesUnknown - was.responsesUnknown, t.unknownResponses);
    QCOMPARE(now.requestsNoResponder - was.requestsNoResponder, t.noResponder);
    QCOMPARE(now.keysRefused - was.keysRefused, t.keysRefused);
    QCOMPARE(now.protocolCloses - was.protocolCloses, t.protocolCloses);
    QCOMPARE(now.limitRefusals - was.limitRefusals, quint64(0));
    QCOMPARE(now.handshakeTimeouts - was.handshakeTimeouts, quint64(0));
    // One bystander round trip per row, and nothing else reached a responder.
    QCOMPARE(now.requests - was.requests, t.rows);
    QCOMPARE(now.responses - was.responses, t.rows);
    QCOMPARE(now.requestsTimedOut - was.requestsTimedOut, quint64(0));
}

void tst_BadInput::cleanupTestCase()
{
    m_serviceSender.reset();
    m_clientSender.reset();
    // The client first: the service leaving withdraws its grants (section 4.5).
    for (RawPeer *bystander : {m_bystanderClient.get(), m_bystanderService.get()}) {
        if (bystander) {
            QVERIFY(bystander->messages.isEmpty());
            bystander->sendClose(1000);
            QVERIFY(waitUntil([bystander] { return bystander->disconnected; }));
        }
    }
    if (m_broker)
        QVERIFY(waitUntil([this] { return m_broker->connectionCount() == 0; }));
    m_bystanderService.reset();
    m_bystanderClient.reset();
    m_broker.reset();
}

QTEST_GUILESS_MAIN(tst_BadInput)
#include "tst_badinput.moc"
