// What a new user gets: the daemon on its shipped defaults, with nothing but
// keys on its command line, driven as hard as honest peers drive it. Nothing
// may be refused (docs/configuration.md, "Defaults and what they are for"):
// a busy service is never limited, and a client over its rate is slowed down
// by TCP, not answered ERR 429.

#include "daemonprocess.h"
#include "testpeer.h"

#include <QElapsedTimer>

#include <memory>
#include <vector>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

const QByteArray kService = "defaults-service-key";
const QByteArray kClient = "defaults-client-key";

// The documented default client rate and burst (docs/configuration.md).
constexpr int kClientRate = 10000;
constexpr int kClientBurst = 20000;

// Starts the daemon with a service key and a client key, on any free port.
QUrl startDaemon(DaemonProcess &daemon)
{
    if (!daemon.start({QStringLiteral("--listen"), QStringLiteral("127.0.0.1:0"), QStringLiteral("--service-key"),
                       QString::fromUtf8(kService), QStringLiteral("--client-key"), QString::fromUtf8(kClient)}))
        return {};
    return daemon.waitForListening();
}

QByteArray frameOf(const QList<Message> &messages)
{
    QByteArray wire;
    for (const Message &message : messages)
        wire += serialize(message);
    return wire;
}

} // namespace

class tst_Defaults : public QObject
{
    Q_OBJECT
public:
    // The peers' thread; the daemon picks its own dispatcher from the same
    // environment (MIDDLEMAN_EVENT_DISPATCHER).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void busyServiceAnswersEveryRequest();
    void fastClientIsSlowedNotRefused();
};

void tst_Defaults::busyServiceAnswersEveryRequest()
{
    // One service answers 50 000 requests from 16 client requesters as fast
    // as it reads them, each requester keeping 200 in flight: every requester
    // gets every answer, with no ERR and no 503 or 504.
    constexpr int kRequesters = 16;
    constexpr int kPerRequester = 3125;
    constexpr int kWindow = 200;
    DaemonProcess daemon;
    const QUrl url = startDaemon(daemon);
    QVERIFY2(url.isValid(), daemon.err.constData());

    TestPeer service;
    QVERIFY(service.connectWithKey(url, kService));
    service.send(frameOf({msg(Command::Ereq, "work.>"), msg(Command::Sub, "work.job")}));
    QVERIFY(service.sync());
    QList<Message> refused; // anything that is not a plain answer, from anyone
    qint64 answered = 0;
    service.onMessage = [&](const Message &m) {
        if (m.command != Command::Req) {
            refused.append(m);
            return;
        }
        service.send(msg(Command::Res, m.target, {{"ReqID", m.header(HeaderName::ReqId)}}, m.body));
    };

    std::vector<std::unique_ptr<TestPeer>> requesters;
    std::vector<int> sent(kRequesters, 0);
    std::vector<int> next(kRequesters, 1); // the ReqID each requester expects next
    for (int r = 0; r < kRequesters; ++r) {
        requesters.push_back(std::make_unique<TestPeer>());
        TestPeer &peer = *requesters.back();
        QVERIFY(peer.connectWithKey(url, kClient));
        const auto sendOne = [&, r] {
            ++sent[r];
            requesters[r]->send(msg(Command::Req, "work.job", {{"ReqID", QByteArray::number(sent[r])}},
                                    "job " + QByteArray::number(sent[r])));
        };
        peer.onMessage = [&, r, sendOne](const Message &m) {
            // Answers come in order: one service, and each answered at once.
            if (m.command != Command::Res || !m.header(HeaderName::Status).isNull()
                || m.header(HeaderName::ReqId) != QByteArray::number(next[r])) {
                refused.append(m);
                return;
            }
            ++next[r];
            ++answered;
            if (sent[r] < kPerRequester)
                sendOne();
        };
    }
    QElapsedTimer elapsed;
    elapsed.start();
    for (int r = 0; r < kRequesters; ++r) {
        QByteArray window;
        for (int i = 0; i < kWindow; ++i) {
            ++sent[r];
            window += serialize(msg(Command::Req, "work.job", {{"ReqID", QByteArray::number(sent[r])}},
                                    "job " + QByteArray::number(sent[r])));
        }
        requesters[r]->send(window);
    }
    QVERIFY(waitWithoutSleeping([&] { return answered == kRequesters * kPerRequester || !refused.isEmpty(); }, 90000));
    for (const Message &m : std::as_const(refused))
        qWarning().noquote() << "not an answer:" << QString::fromUtf8(serialize(m));
    QVERIFY(refused.isEmpty());
    QCOMPARE(answered, qint64(kRequesters * kPerRequester));
    for (int r = 0; r < kRequesters; ++r)
        QCOMPARE(next[r], kPerRequester + 1);
    qInfo("%d round trips in %lld ms", kRequesters * kPerRequester, elapsed.elapsed());
    QVERIFY(daemon.stop());
}

void tst_Defaults::fastClientIsSlowedNotRefused()
{
    // A client sends five times its rate for 3 s: 150 000 messages of 1 KiB
    // in frames of 50. Every one arrives, in order, with no ERR; the broker
    // takes them no faster than the rate allows, so that they back up in the
    // client's own socket (1 KiB each: 150 MiB offered, of which the kernel's
    // buffers take 36 MiB at most here, tcp_rmem and tcp_wmem); and a
    // bystander's round trips go on all the while.
    constexpr int kPerFrame = 50;
    constexpr int kFramesPerTick = 10; // every 10 ms: 50 000 messages a second
    constexpr int kTicks = 300;
    constexpr int kTotal = kPerFrame * kFramesPerTick * kTicks;
    DaemonProcess daemon;
    const QUrl url = startDaemon(daemon);
    QVERIFY2(url.isValid(), daemon.err.constData());

    TestPeer service; // grants, and answers the bystander
    QVERIFY(service.connectWithKey(url, kService));
    service.send(frameOf({msg(Command::Epub, "feed.>"), msg(Command::Esub, "feed.>"), msg(Command::Ereq, "ping"),
                          msg(Command::Sub, "ping")}));
    QVERIFY(service.sync());
    service.onMessage = [&](const Message &m) {
        if (m.command == Command::Req)
            service.send(msg(Command::Res, m.target, {{"ReqID", m.header(HeaderName::ReqId)}}, "pong"));
    };

    TestPeer subscriber;
    QVERIFY(subscriber.connectWithKey(url, kClient));
    subscriber.send(msg(Command::Sub, "feed.fast"));
    QVERIFY(subscriber.sync());
    qint64 received = 0;
    bool inOrder = true;
    QList<Message> others;
    subscriber.onMessage = [&](const Message &m) {
        if (m.command != Command::Pub) {
            others.append(m);
            return;
        }
        inOrder = inOrder && m.body.left(m.body.indexOf(' ')).toLongLong() == received;
        ++received;
    };

    // The bystander: one request at a time, the next as soon as one is answered.
    TestPeer bystander;
    QVERIFY(bystander.connectWithKey(url, kClient));
    QElapsedTimer clock;
    QList<qint64> answeredAt; // ms on `clock`
    int asked = 0;
    bool bystanderOk = true;
    const auto ask = [&] {
        bystander.send(msg(Command::Req, "ping", {{"ReqID", QByteArray::number(++asked)}}, "ping"));
    };
    bystander.onMessage = [&](const Message &m) {
        bystanderOk = bystanderOk && m.command == Command::Res && m.header(HeaderName::Status).isNull();
        answeredAt.append(clock.elapsed());
        ask();
    };

    TestPeer flooder;
    QVERIFY(flooder.connectWithKey(url, kClient));
    const QByteArray padding(1000, 'x');
    qint64 next = 0;
    qint64 mostUnsent = 0;
    int ticks = 0;
    QTimer flood;
    flood.setTimerType(Qt::PreciseTimer);
    connect(&flood, &QTimer::timeout, this, [&] {
        for (int f = 0; f < kFramesPerTick; ++f) {
            QByteArray frame;
            for (int i = 0; i < kPerFrame; ++i)
                frame += "PUB feed.fast\n\n" + QByteArray::number(next++) + ' ' + padding + "\n.\n";
            flooder.send(frame);
        }
        mostUnsent = qMax(mostUnsent, flooder.socket.bytesToWrite());
        if (++ticks == kTicks)
            flood.stop();
    });
    clock.start();
    ask();
    flood.start(10);
    QVERIFY(waitWithoutSleeping([&] { return !flood.isActive(); }, 30000));
    const qint64 floodEndMs = clock.elapsed();
    QVERIFY(waitWithoutSleeping([&] { return received == kTotal || !others.isEmpty() || !inOrder; }, 90000));
    const qint64 deliveredMs = clock.elapsed();

    QVERIFY(others.isEmpty());
    QVERIFY(inOrder);
    QCOMPARE(received, qint64(kTotal));
    QVERIFY(flooder.sync(30000));
    QVERIFY(flooder.messages.isEmpty()); // no ERR 429, nor any other
    // Slowed to its rate: the burst at once, the rest at 10 000 a second
    // (the 0.9 allows for the millisecond clock), while what it offered piled
    // up in its own socket: TCP pushed back.
    const qint64 fastestMs = qint64(1000.0 * (kTotal - kClientBurst) / kClientRate * 0.9);
    QVERIFY2(deliveredMs >= fastestMs, qPrintable(QStringLiteral("%1 ms").arg(deliveredMs)));
    QVERIFY2(mostUnsent > 16 * 1024 * 1024, qPrintable(QStringLiteral("%1 bytes unsent").arg(mostUnsent)));
    // The bystander was answered throughout, in every half second.
    QVERIFY(bystanderOk);
    for (qint64 from = 0; from + 500 <= deliveredMs; from += 500) {
        const bool any = std::any_of(answeredAt.cbegin(), answeredAt.cend(),
                                     [from](qint64 at) { return at >= from && at < from + 500; });
        QVERIFY2(any, qPrintable(QStringLiteral("no round trip from %1 to %2 ms").arg(from).arg(from + 500)));
    }
    qInfo("flood sent by %lld ms, delivered by %lld ms, %lld bytes unsent at most, %lld bystander round trips",
          floodEndMs, deliveredMs, mostUnsent, qint64(answeredAt.size()));
    QVERIFY(daemon.stop());
}

QTEST_GUILESS_MAIN(tst_Defaults)
#include "tst_defaults.moc"
