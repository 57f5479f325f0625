// docs/protocol.md §4.3, §4.4, §5, §7: REQ/RES over real WebSockets — routing to one
// service, ReqID rewriting, Client-Id, balancing, grants, timeouts, disconnects,
// late and foreign answers, the pending-request limit, frame types and counters.

#include "testpeer.h"

#include <QElapsedTimer>

using namespace Middleman;
using namespace Middleman::Testing;

namespace {

const QByteArray kTarget = "svc.echo";

QByteArray reqIdOf(const Message &m)
{
    return m.header(HeaderName::ReqId);
}

QByteArray statusOf(const Message &m)
{
    return m.header(HeaderName::Status);
}

qsizetype headerCount(const Message &m, QByteArrayView name)
{
    return std::count_if(m.headers.cbegin(), m.headers.cend(),
                         [&](const Header &h) { return headerNameEquals(h.name, name); });
}

Message withReqId(Command command, const QByteArray &target, const QByteArray &reqId, const QByteArray &body = {})
{
    return msg(command, target, {{"ReqID", reqId}}, body);
}

} // namespace

class tst_ReqRes : public QObject
{
    Q_OBJECT
public:
    // The broker runs on the daemon's event dispatcher (eventloop.h).
    static void initMain() { installBrokerEventDispatcher(); }

private Q_SLOTS:
    void init();
    void cleanup();

    void deliveredToOneServiceWithRewrittenIds();
    void sameReqIdFromTwoRequesters();
    void leastOutstandingWins();
    void idleRespondersTakeTurns();
    void tiesTakeTurns_data();
    void tiesTakeTurns();
    void clientNeedsEreqGrant_data();
    void clientNeedsEreqGrant();
    void subscribedClientsNeverRespond();
    void malformedRequest_data();
    void malformedRequest();
    void noResponder();
    void timeout_data();
    void timeout();
    void responderDisconnects();
    void unknownAndDuplicateAnswers();
    void answerFromOtherService();
    void answerFromClient();
    void requesterDisconnects();
    void orphanedRequestExpires();
    void pendingRequestLimit();
    void frameTypeAndBody_data();
    void frameTypeAndBody();
    void statsCounters();

private:
    void restartBroker(const BrokerConfig &config);
    // Connects and returns the broker's id for the new connection (0 on failure).
    quint64 connectPeer(TestPeer &peer, const QByteArray &key);
    bool subscribe(TestPeer &peer, const QByteArray &pattern);
    bool grant(TestPeer &service, Command kind, const QByteArray &pattern);
    QByteArray clientIdOf(quint64 id) const;

    std::unique_ptr<Broker> m_broker;
};

void tst_ReqRes::init()
{
    m_broker = startBroker();
}

void tst_ReqRes::cleanup()
{
    m_broker.reset();
}

void tst_ReqRes::restartBroker(const BrokerConfig &config)
{
    m_broker.reset();
    m_broker = startBroker(config);
}

quint64 tst_ReqRes::connectPeer(TestPeer &peer, const QByteArray &key)
{
    QSignalSpy connected(m_broker.get(), &Broker::peerConnected);
    if (!peer.connectWithKey(m_broker->serverUrl(), key) || connected.size() != 1)
        return 0;
    return connected.at(0).at(0).value<PeerInfo>().id;
}

bool tst_ReqRes::subscribe(TestPeer &peer, const QByteArray &pattern)
{
    QSignalSpy added(m_broker.get(), &Broker::subscriptionAdded);
    peer.send(msg(Command::Sub, pattern));
    return QTest::qWaitFor([&] { return added.size() == 1; }, 5000);
}

bool tst_ReqRes::grant(TestPeer &service, Command kind, const QByteArray &pattern)
{
    QSignalSpy added(m_broker.get(), &Broker::grantAdded);
    service.send(msg(kind, pattern));
    return QTest::qWaitFor([&] { return added.size() == 1; }, 5000);
}

QByteArray tst_ReqRes::clientIdOf(quint64 id) const
{
    const std::optional<PeerInfo> info = m_broker->peer(id);
    return info ? info->clientId : QByteArray();
}

// 4.3, 4.4, 5: one service gets the REQ with the broker's ReqID and the
// requester's Client-Id (a forged one is replaced); the RES comes back with the
// requester's ReqID and everything else as the service sent it.
void tst_ReqRes::deliveredToOneServiceWithRewrittenIds()
{
    TestPeer svcA, svcB, granter, client;
    QVERIFY(connectPeer(svcA, kServiceKey));
    QVERIFY(connectPeer(svcB, kServiceKey2));
    QVERIFY(connectPeer(granter, kServiceKey));
    const quint64 clientId = connectPeer(client, kClientKey);
    QVERIFY(clientId);
    QVERIFY(grant(granter, Command::Ereq, kTarget));
    for (TestPeer *svc : {&svcA, &svcB}) {
        QVERIFY(subscribe(*svc, kTarget));
        QVERIFY(subscribe(*svc, "marker"));
    }

    QSignalSpy started(m_broker.get(), &Broker::requestStarted);
    QSignalSpy finished(m_broker.get(), &Broker::requestFinished);
    client.send(msg(Command::Req, kTarget,
                    {{"ReqID", "r1"}, {"X-Trace", "abc"}, {"Client-Id", "forged"}, {"Client-Id", "forged2"}},
                    "ping"));
    QVERIFY(QTest::qWaitFor([&] { return !svcA.messages.isEmpty() || !svcB.messages.isEmpty(); }, 5000));
    TestPeer &chosen = svcA.messages.isEmpty() ? svcB : svcA;
    TestPeer &other = svcA.messages.isEmpty() ? svcA : svcB;
    const std::optional<Message> req = chosen.waitFor(Command::Req, kTarget);
    QVERIFY(req);

    // Exactly one service: a PUB processed after the REQ reaches both, and the
    // other service still has no REQ.
    granter.send(msg(Command::Pub, "marker"));
    QVERIFY(other.waitFor(Command::Pub, "marker"));
    QVERIFY(chosen.waitFor(Command::Pub, "marker"));
    QVERIFY(!other.waitFor(Command::Req, {}, 0));
    QVERIFY(!chosen.waitFor(Command::Req, {}, 0));

    const QByteArray token = reqIdOf(*req);
    QVERIFY(!token.isEmpty());
    QVERIFY(token != "r1");
    QCOMPARE(headerCount(*req, HeaderName::ReqId), 1);
    QCOMPARE(headerCount(*req, HeaderName::ClientId), 1);
    const QByteArray expectedClientId = clientIdOf(clientId);
    QVERIFY(!expectedClientId.isEmpty());
    QCOMPARE(req->header(HeaderName::ClientId), expectedClientId);
    QCOMPARE(req->header("X-Trace"), QByteArray("abc"));
    QCOMPARE(req->body, QByteArray("ping"));
    QVERIFY(!req->binary);

    QCOMPARE(started.size(), 1);
    const auto info = started.at(0).at(0).value<RequestInfo>();
    QCOMPARE(info.token, token);
    QCOMPARE(info.reqId, QByteArray("r1"));
    QCOMPARE(info.requester, clientId);
    QCOMPARE(info.target, kTarget);

    chosen.send(msg(Command::Res, kTarget, {{"ReqID", token}, {"X-Answer", "42"}, {"X-Multi", "a"}, {"X-Multi", "b"}},
                    "pong\n.dotted"));
    const std::optional<Message> res = client.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    const QList<Header> expectedHeaders{{"ReqID", "r1"}, {"X-Answer", "42"}, {"X-Multi", "a"}, {"X-Multi", "b"}};
    QCOMPARE(res->headers, expectedHeaders);
    QCOMPARE(res->body, QByteArray("pong\n.dotted"));
    QVERIFY(!res->hasHeader(HeaderName::Status));
    QVERIFY(!res->hasHeader(HeaderName::ClientId));

    QTRY_COMPARE(finished.size(), 1);
    QCOMPARE(finished.at(0).at(0).toByteArray(), token);
    QCOMPARE(finished.at(0).at(1).toInt(), 200);
    QVERIFY(m_broker->pendingRequests().isEmpty());
    QVERIFY(svcA.badFrames.isEmpty() && svcB.badFrames.isEmpty() && client.badFrames.isEmpty());
}

// 4.3: ReqIDs chosen by different peers never collide.
void tst_ReqRes::sameReqIdFromTwoRequesters()
{
    TestPeer svc, req1, req2;
    QVERIFY(connectPeer(svc, kServiceKey));
    const quint64 id1 = connectPeer(req1, kClientKey);
    const quint64 id2 = connectPeer(req2, kServiceKey2);
    QVERIFY(id1 && id2);
    QVERIFY(grant(svc, Command::Ereq, kTarget));
    QVERIFY(subscribe(svc, kTarget));

    req1.send(withReqId(Command::Req, kTarget, "same", "from 1"));
    req2.send(withReqId(Command::Req, kTarget, "same", "from 2"));
    QVERIFY(svc.waitForCount(2));
    QCOMPARE(m_broker->pendingRequests().size(), 2);
    const Message a = svc.messages.takeFirst();
    const Message b = svc.messages.takeFirst();
    QVERIFY(reqIdOf(a) != reqIdOf(b));
    QVERIFY(reqIdOf(a) != "same" && reqIdOf(b) != "same");
    QCOMPARE(QSet<QByteArray>({a.header(HeaderName::ClientId), b.header(HeaderName::ClientId)}),
             QSet<QByteArray>({clientIdOf(id1), clientIdOf(id2)}));

    // Answer in reverse order, echoing who asked.
    for (const Message *m : {&b, &a})
        svc.send(withReqId(Command::Res, kTarget, reqIdOf(*m), "answer for " + m->body));
    const std::optional<Message> res1 = req1.waitFor(Command::Res, kTarget);
    const std::optional<Message> res2 = req2.waitFor(Command::Res, kTarget);
    QVERIFY(res1 && res2);
    QCOMPARE(reqIdOf(*res1), QByteArray("same"));
    QCOMPARE(reqIdOf(*res2), QByteArray("same"));
    QCOMPARE(res1->body, QByteArray("answer for from 1"));
    QCOMPARE(res2->body, QByteArray("answer for from 2"));
    QVERIFY(svc.messages.isEmpty());
}

// 4.3: the responder with the fewest outstanding requests wins.
void tst_ReqRes::leastOutstandingWins()
{
    TestPeer svcX, svcY, requester;
    const quint64 idX = connectPeer(svcX, kServiceKey);
    const quint64 idY = connectPeer(svcY, kServiceKey2);
    QVERIFY(idX && idY);
    QVERIFY(connectPeer(requester, kServiceKey));
    QVERIFY(subscribe(svcX, kTarget));
    QVERIFY(subscribe(svcY, kTarget));

    QSignalSpy started(m_broker.get(), &Broker::requestStarted);
    // Sends one REQ, waits until its responder has it and returns the responder.
    auto request = [&](const QByteArray &reqId) -> quint64 {
        const qsizetype before = started.size();
        requester.send(withReqId(Command::Req, kTarget, reqId));
        if (!QTest::qWaitFor([&] { return started.size() == before + 1; }, 5000))
            return 0;
        const quint64 responder = started.at(before).at(0).value<RequestInfo>().responder;
        TestPeer &svc = responder == idX ? svcX : svcY;
        return svc.waitFor(Command::Req, kTarget) ? responder : 0;
    };

    // Four held requests: A first, then B (fewer), then A (tie, in turn), then B
    // (fewer). A holds 2, B holds 2, and B was chosen last.
    const quint64 idA = request("h1");
    QVERIFY(idA);
    const quint64 idB = idA == idX ? idY : idX;
    QCOMPARE(request("h2"), idB);
    QCOMPARE(request("h3"), idA);
    QCOMPARE(request("h4"), idB);

    // B answers one: loads are now A 2, B 1, and B was chosen last, so round
    // robin alone would pick A; least outstanding must pick B.
    TestPeer &peerB = idB == idX ? svcX : svcY;
    const std::optional<RequestInfo> answered = [&]() -> std::optional<RequestInfo> {
        for (const QList<QVariant> &args : std::as_const(started)) {
            const auto info = args.at(0).value<RequestInfo>();
            if (info.responder == idB)
                return info;
        }
        return std::nullopt;
    }();
    QVERIFY(answered);
    peerB.send(withReqId(Command::Res, kTarget, answered->token));
    const std::optional<Message> res = requester.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(reqIdOf(*res), QByteArray("h2"));
    QCOMPARE(m_broker->pendingRequests().size(), 3);

    QCOMPARE(request("n"), idB);
    QCOMPARE(m_broker->pendingRequests().size(), 4);
}

// 4.3: loads 1/0/0 over three responders: the busy one is skipped and the two
// idle ones take turns. Every request is answered before the next, so the loads
// stay 1/0/0 and only the turn decides between the idle two; round robin over
// all three would reach the busy one within three requests.
void tst_ReqRes::idleRespondersTakeTurns()
{
    std::vector<std::unique_ptr<TestPeer>> services;
    QList<quint64> ids;
    for (int i = 0; i < 3; ++i) {
        services.push_back(std::make_unique<TestPeer>());
        ids.append(connectPeer(*services.back(), i % 2 ? kServiceKey2 : kServiceKey));
        QVERIFY(ids.back());
        QVERIFY(subscribe(*services.back(), kTarget));
    }
    TestPeer requester;
    QVERIFY(connectPeer(requester, kServiceKey));

    QSignalSpy started(m_broker.get(), &Broker::requestStarted);
    requester.send(withReqId(Command::Req, kTarget, "held"));
    QTRY_COMPARE(started.size(), 1);
    const quint64 busy = started.at(0).at(0).value<RequestInfo>().responder;
    QVERIFY(services.at(ids.indexOf(busy))->waitFor(Command::Req, kTarget));

    QList<quint64> order;
    for (int i = 0; i < 4; ++i) {
        const QByteArray reqId = "n" + QByteArray::number(i);
        requester.send(withReqId(Command::Req, kTarget, reqId));
        QTRY_COMPARE(started.size(), i + 2);
        const quint64 responder = started.at(i + 1).at(0).value<RequestInfo>().responder;
        QVERIFY2(responder != busy, reqId.constData());
        order.append(responder);
        TestPeer &svc = *services.at(ids.indexOf(responder));
        const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
        QVERIFY(req);
        svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req)));
        const std::optional<Message> res = requester.waitFor(Command::Res, kTarget);
        QVERIFY(res);
        QCOMPARE(reqIdOf(*res), reqId);
    }
    // Any two successive requests went to the two idle responders, one each.
    for (int i = 1; i < order.size(); ++i)
        QVERIFY2(order.at(i) != order.at(i - 1), qPrintable(QString::number(i)));
    QCOMPARE(order.at(2), order.at(0));
    QCOMPARE(m_broker->pendingRequests().size(), 1);
    QVERIFY(services.at(ids.indexOf(busy))->sync());
    QVERIFY(services.at(ids.indexOf(busy))->messages.isEmpty());
}

// 4.3: responders with equal load are chosen in turn.
void tst_ReqRes::tiesTakeTurns_data()
{
    QTest::addColumn<int>("responders");
    QTest::addRow("two responders") << 2;
    QTest::addRow("three responders") << 3;
}

void tst_ReqRes::tiesTakeTurns()
{
    QFETCH(int, responders);
    std::vector<std::unique_ptr<TestPeer>> services;
    QList<quint64> ids;
    for (int i = 0; i < responders; ++i) {
        services.push_back(std::make_unique<TestPeer>());
        ids.append(connectPeer(*services.back(), i % 2 ? kServiceKey2 : kServiceKey));
        QVERIFY(ids.back());
        QVERIFY(subscribe(*services.back(), i % 2 ? QByteArray("svc.*") : kTarget));
    }
    TestPeer requester;
    QVERIFY(connectPeer(requester, kServiceKey));

    QSignalSpy started(m_broker.get(), &Broker::requestStarted);
    QList<quint64> order;
    for (int i = 0; i < 2 * responders; ++i) {
        requester.send(withReqId(Command::Req, kTarget, QByteArray::number(i)));
        QTRY_COMPARE(started.size(), i + 1);
        const quint64 responder = started.at(i).at(0).value<RequestInfo>().responder;
        order.append(responder);
        TestPeer &svc = *services.at(ids.indexOf(responder));
        const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
        QVERIFY(req);
        svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req)));
        const std::optional<Message> res = requester.waitFor(Command::Res, kTarget);
        QVERIFY(res);
        QCOMPARE(reqIdOf(*res), QByteArray::number(i));
    }
    // Every responder once per round, in the same order both rounds.
    const QList<quint64> round = order.mid(0, responders);
    QCOMPARE(QSet<quint64>(round.cbegin(), round.cend()).size(), responders);
    QCOMPARE(order.mid(responders), round);
}

// 4.3, 4.5: a client's REQ needs an EREQ grant matching the target.
void tst_ReqRes::clientNeedsEreqGrant_data()
{
    QTest::addColumn<QByteArray>("grantCommand"); // null: no grant
    QTest::addColumn<QByteArray>("grantPattern");
    QTest::addColumn<bool>("allowed");
    QTest::addRow("no grant") << QByteArray() << QByteArray() << false;
    QTest::addRow("exact grant") << QByteArray("EREQ") << kTarget << true;
    QTest::addRow("star grant") << QByteArray("EREQ") << QByteArray("svc.*") << true;
    QTest::addRow("rest grant") << QByteArray("EREQ") << QByteArray(">") << true;
    QTest::addRow("grant on other target") << QByteArray("EREQ") << QByteArray("svc.other") << false;
    QTest::addRow("ESUB grant is not EREQ") << QByteArray("ESUB") << kTarget << false;
    QTest::addRow("EPUB grant is not EREQ") << QByteArray("EPUB") << kTarget << false;
}

void tst_ReqRes::clientNeedsEreqGrant()
{
    QFETCH(QByteArray, grantCommand);
    QFETCH(QByteArray, grantPattern);
    QFETCH(bool, allowed);

    TestPeer svc, client;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(connectPeer(client, kClientKey));
    QVERIFY(subscribe(svc, kTarget));
    if (!grantCommand.isNull())
        QVERIFY(grant(svc, *commandFromName(grantCommand), grantPattern));

    client.send(withReqId(Command::Req, kTarget, "g1", "q"));
    if (allowed) {
        const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
        QVERIFY(req);
        svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req), "a"));
        const std::optional<Message> res = client.waitFor(Command::Res, kTarget);
        QVERIFY(res);
        QCOMPARE(reqIdOf(*res), QByteArray("g1"));
        QCOMPARE(res->body, QByteArray("a"));
        QCOMPARE(m_broker->stats().requests, 1u);
    } else {
        const std::optional<Message> err = client.waitFor(Command::Err, kTarget);
        QVERIFY(err);
        QCOMPARE(statusOf(*err), QByteArray("403"));
        QCOMPARE(reqIdOf(*err), QByteArray("g1"));
        QCOMPARE(err->header(HeaderName::Command), QByteArray("REQ"));
        QVERIFY(!err->body.isEmpty());
        QCOMPARE(m_broker->stats().requests, 0u);
        QVERIFY(m_broker->pendingRequests().isEmpty());
        // The refused REQ never reached the service: a PUB sent after it did.
        QVERIFY(subscribe(svc, "marker"));
        svc.send(msg(Command::Pub, "marker"));
        QVERIFY(svc.waitFor(Command::Pub, "marker"));
        QVERIFY(!svc.waitFor(Command::Req, {}, 0));
    }
}

// 4.3: only services answer requests; a client subscribed to the target is never chosen.
void tst_ReqRes::subscribedClientsNeverRespond()
{
    TestPeer svc, client, requester;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(connectPeer(client, kClientKey));
    QVERIFY(connectPeer(requester, kServiceKey2));
    QVERIFY(grant(svc, Command::Esub, "svc.>"));
    QVERIFY(subscribe(client, kTarget));

    // Only a client subscribed: no responder.
    requester.send(withReqId(Command::Req, kTarget, "c1"));
    std::optional<Message> res = requester.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(statusOf(*res), QByteArray("503"));
    QCOMPARE(reqIdOf(*res), QByteArray("c1"));

    // With a service subscribed too, every REQ goes to the service.
    QVERIFY(subscribe(svc, kTarget));
    for (int i = 0; i < 4; ++i) {
        requester.send(withReqId(Command::Req, kTarget, "s" + QByteArray::number(i)));
        const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
        QVERIFY(req);
        svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req)));
        QVERIFY(requester.waitFor(Command::Res, kTarget));
    }
    // A PUB after them reaches the client; it never saw a REQ.
    requester.send(msg(Command::Pub, kTarget, {}, "marker"));
    QVERIFY(client.waitFor(Command::Pub, kTarget));
    QVERIFY(!client.waitFor(Command::Req, {}, 0));
    QVERIFY(client.messages.isEmpty());
    QCOMPARE(m_broker->stats().requests, 4u);
}

// 3, 4.3: a REQ without ReqID, or with a Timeout that is not a positive number, gets ERR 400.
void tst_ReqRes::malformedRequest_data()
{
    QTest::addColumn<QByteArray>("wire");
    QTest::addColumn<QByteArray>("errReqId"); // null: the ERR carries none
    QTest::addColumn<QByteArray>("errCommand");
    QTest::addRow("REQ without ReqID") << QByteArray("REQ svc.echo\n\nbody\n.\n") << QByteArray() << QByteArray("REQ");
    QTest::addRow("REQ with empty ReqID") << QByteArray("REQ svc.echo\nReqID:\n\n.\n") << QByteArray()
                                          << QByteArray("REQ");
    QTest::addRow("Timeout not a number") << QByteArray("REQ svc.echo\nReqID: t1\nTimeout: soon\n\n.\n")
                                          << QByteArray("t1") << QByteArray("REQ");
    QTest::addRow("Timeout zero") << QByteArray("REQ svc.echo\nReqID: t2\nTimeout: 0\n\n.\n") << QByteArray("t2")
                                  << QByteArray("REQ");
    QTest::addRow("Timeout negative") << QByteArray("REQ svc.echo\nReqID: t3\nTimeout: -5\n\n.\n")
                                      << QByteArray("t3") << QByteArray("REQ");
    QTest::addRow("Timeout fractional") << QByteArray("REQ svc.echo\nReqID: t4\nTimeout: 1.5\n\n.\n")
                                        << QByteArray("t4") << QByteArray("REQ");
    QTest::addRow("Timeout empty") << QByteArray("REQ svc.echo\nReqID: t5\nTimeout:\n\n.\n") << QByteArray("t5")
                                   << QByteArray("REQ");
    QTest::addRow("RES without ReqID") << QByteArray("RES svc.echo\n\n.\n") << QByteArray() << QByteArray("RES");
}

void tst_ReqRes::malformedRequest()
{
    QFETCH(QByteArray, wire);
    QFETCH(QByteArray, errReqId);
    QFETCH(QByteArray, errCommand);

    TestPeer svc, requester;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(connectPeer(requester, kServiceKey2));
    QVERIFY(subscribe(svc, kTarget));

    // A valid REQ after the bad one in the same frame is still processed (section 3.8).
    requester.send(wire + "REQ svc.echo\nReqID: after\n\n.\n");
    const std::optional<Message> err = requester.waitFor(Command::Err);
    QVERIFY(err);
    QCOMPARE(statusOf(*err), QByteArray("400"));
    QCOMPARE(err->target, kTarget);
    QCOMPARE(err->header(HeaderName::Command), errCommand);
    QCOMPARE(reqIdOf(*err), errReqId);
    QVERIFY(!err->body.isEmpty());

    const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
    QVERIFY(req);
    QCOMPARE(m_broker->pendingRequests().size(), 1);
    QCOMPARE(m_broker->pendingRequests().first().reqId, QByteArray("after"));
    QCOMPARE(m_broker->stats().requests, 1u);
    svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req)));
    const std::optional<Message> res = requester.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(reqIdOf(*res), QByteArray("after"));
    QVERIFY(svc.messages.isEmpty());
}

// 4.3: no responder: RES t at once with the ReqID, Status 503 and a reason.
void tst_ReqRes::noResponder()
{
    TestPeer svc, client;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(connectPeer(client, kClientKey));
    QVERIFY(grant(svc, Command::Ereq, "svc.>"));
    QVERIFY(subscribe(svc, "svc.other")); // a responder, but not for this target

    QSignalSpy started(m_broker.get(), &Broker::requestStarted);
    client.send(msg(Command::Req, kTarget, {{"ReqID", "nr"}, {"X-Keep", "1"}}, "q"));
    const std::optional<Message> res = client.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(reqIdOf(*res), QByteArray("nr"));
    QCOMPARE(statusOf(*res), QByteArray("503"));
    QVERIFY(!res->body.isEmpty());
    QVERIFY(!res->binary);
    QCOMPARE(started.size(), 0);
    QVERIFY(m_broker->pendingRequests().isEmpty());
    const BrokerStats stats = m_broker->stats();
    QCOMPARE(stats.requestsNoResponder, 1u);
    QCOMPARE(stats.requests, 0u);
    QCOMPARE(stats.errorsSent, 0u);
}

// 4.3: Timeout header overrides the configured default, capped by configuration;
// an expired request is answered 504 and its late RES gets ERR 404.
void tst_ReqRes::timeout_data()
{
    QTest::addColumn<int>("defaultMs");
    QTest::addColumn<int>("capMs");
    QTest::addColumn<QByteArray>("header"); // null: no Timeout header
    QTest::addColumn<int>("effectiveMs");
    QTest::addRow("header overrides long default") << 30000 << 300000 << QByteArray("150") << 150;
    QTest::addRow("header longer than default") << 100 << 1000 << QByteArray("250") << 250;
    QTest::addRow("configured default without header") << 200 << 300000 << QByteArray() << 200;
    QTest::addRow("huge header capped") << 100 << 200 << QByteArray("100000000") << 200;
    QTest::addRow("header beyond 64 bits capped") << 100 << 200 << QByteArray("99999999999999999999999") << 200;
}

void tst_ReqRes::timeout()
{
    QFETCH(int, defaultMs);
    QFETCH(int, capMs);
    QFETCH(QByteArray, header);
    QFETCH(int, effectiveMs);

    BrokerConfig config = testConfig();
    config.requestTimeoutMs = defaultMs;
    config.maxRequestTimeoutMs = capMs;
    restartBroker(config);

    TestPeer svc, client;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(connectPeer(client, kClientKey));
    QVERIFY(grant(svc, Command::Ereq, kTarget));
    QVERIFY(subscribe(svc, kTarget));

    QList<Header> headers{{"ReqID", "slow"}};
    if (!header.isNull())
        headers.append({"Timeout", header});
    QSignalSpy started(m_broker.get(), &Broker::requestStarted);
    QSignalSpy finished(m_broker.get(), &Broker::requestFinished);
    QElapsedTimer elapsed;
    elapsed.start();
    client.send(msg(Command::Req, kTarget, headers));
    const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
    QVERIFY(req);
    QCOMPARE(started.size(), 1);
    // The deadline the broker set, read right when the request started.
    const qint64 remaining = started.at(0).at(0).value<RequestInfo>().remainingMs;
    QVERIFY2(remaining <= effectiveMs && remaining >= effectiveMs - 50, QByteArray::number(remaining).constData());

    const std::optional<Message> res = client.waitFor(Command::Res, kTarget, 10000);
    QVERIFY(res);
    QVERIFY(elapsed.elapsed() >= effectiveMs - 5);
    QCOMPARE(reqIdOf(*res), QByteArray("slow"));
    QCOMPARE(statusOf(*res), QByteArray("504"));
    QVERIFY2(res->body.contains(QByteArray(QByteArray::number(effectiveMs) + " ms")), res->body.constData());
    QCOMPARE(finished.size(), 1);
    QCOMPARE(finished.at(0).at(1).toInt(), 504);
    QVERIFY(m_broker->pendingRequests().isEmpty());

    // The late answer is refused and never reaches the requester.
    svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req), "late"));
    const std::optional<Message> err = svc.waitFor(Command::Err, kTarget);
    QVERIFY(err);
    QCOMPARE(statusOf(*err), QByteArray("404"));
    QCOMPARE(reqIdOf(*err), reqIdOf(*req));
    QCOMPARE(err->header(HeaderName::Command), QByteArray("RES"));
    QVERIFY(grant(svc, Command::Esub, "marker"));
    QVERIFY(subscribe(client, "marker"));
    svc.send(msg(Command::Pub, "marker"));
    QVERIFY(client.waitFor(Command::Pub, "marker"));
    QVERIFY(!client.waitFor(Command::Res, {}, 0));

    const BrokerStats stats = m_broker->stats();
    QCOMPARE(stats.requests, 1u);
    QCOMPARE(stats.requestsTimedOut, 1u);
    QCOMPARE(stats.responses, 0u);
    QCOMPARE(stats.responsesUnknown, 1u);
}

// 4.3: the responder leaving before it answers gives the requester 503.
void tst_ReqRes::responderDisconnects()
{
    TestPeer svc, other, requester;
    const quint64 svcId = connectPeer(svc, kServiceKey);
    QVERIFY(svcId);
    QVERIFY(connectPeer(other, kServiceKey2));
    QVERIFY(connectPeer(requester, kServiceKey2));
    QVERIFY(subscribe(svc, kTarget));

    QSignalSpy finished(m_broker.get(), &Broker::requestFinished);
    requester.send(withReqId(Command::Req, kTarget, "gone1"));
    requester.send(withReqId(Command::Req, kTarget, "gone2"));
    QVERIFY(svc.waitForCount(2));
    QCOMPARE(m_broker->peer(svcId)->pendingRequests, 0); // it holds them; it waits for none

    QSignalSpy disconnected(m_broker.get(), &Broker::peerDisconnected);
    svc.socket.close();
    QTRY_COMPARE(disconnected.size(), 1);
    QVERIFY(requester.waitForCount(2));
    QList<QByteArray> reqIds;
    for (const Message &res : std::as_const(requester.messages)) {
        QCOMPARE(res.command, Command::Res);
        QCOMPARE(res.target, kTarget);
        QCOMPARE(statusOf(res), QByteArray("503"));
        QVERIFY(!res.body.isEmpty());
        reqIds.append(reqIdOf(res));
    }
    QCOMPARE(QSet<QByteArray>(reqIds.cbegin(), reqIds.cend()), (QSet<QByteArray>{"gone1", "gone2"}));
    QCOMPARE(finished.size(), 2);
    QCOMPARE(finished.at(0).at(1).toInt(), 503);
    QVERIFY(m_broker->pendingRequests().isEmpty());
    QCOMPARE(m_broker->stats().requestsResponderGone, 2u);

    // With the responder gone, the next REQ has none.
    requester.messages.clear();
    requester.send(withReqId(Command::Req, kTarget, "after"));
    const std::optional<Message> res = requester.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(statusOf(*res), QByteArray("503"));
    QCOMPARE(m_broker->stats().requestsNoResponder, 1u);
}

// 4.4: unknown ReqID and a second answer get ERR 404; the requester sees one RES.
void tst_ReqRes::unknownAndDuplicateAnswers()
{
    TestPeer svc, requester;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(connectPeer(requester, kServiceKey2));
    QVERIFY(subscribe(svc, kTarget));
    QVERIFY(subscribe(requester, "marker"));

    svc.send(withReqId(Command::Res, kTarget, "never-issued"));
    std::optional<Message> err = svc.waitFor(Command::Err, kTarget);
    QVERIFY(err);
    QCOMPARE(statusOf(*err), QByteArray("404"));
    QCOMPARE(reqIdOf(*err), QByteArray("never-issued"));
    QCOMPARE(err->header(HeaderName::Command), QByteArray("RES"));

    requester.send(withReqId(Command::Req, kTarget, "once"));
    const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
    QVERIFY(req);
    // The requester's own ReqID is not a token the service may use.
    svc.send(withReqId(Command::Res, kTarget, "once"));
    err = svc.waitFor(Command::Err, kTarget);
    QVERIFY(err);
    QCOMPARE(statusOf(*err), QByteArray("404"));
    QCOMPARE(m_broker->pendingRequests().size(), 1);

    svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req), "first"));
    svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req), "second"));
    err = svc.waitFor(Command::Err, kTarget);
    QVERIFY(err);
    QCOMPARE(statusOf(*err), QByteArray("404"));
    QCOMPARE(reqIdOf(*err), reqIdOf(*req));

    svc.send(msg(Command::Pub, "marker"));
    QVERIFY(requester.waitFor(Command::Pub, "marker"));
    const std::optional<Message> res = requester.waitFor(Command::Res, kTarget, 0);
    QVERIFY(res);
    QCOMPARE(res->body, QByteArray("first"));
    QVERIFY(requester.messages.isEmpty());

    const BrokerStats stats = m_broker->stats();
    QCOMPARE(stats.responses, 1u);
    QCOMPARE(stats.responsesUnknown, 3u);
}

// 4.4: only the connection the request went to may answer it.
void tst_ReqRes::answerFromOtherService()
{
    TestPeer svcA, svcB, requester;
    const quint64 idA = connectPeer(svcA, kServiceKey);
    QVERIFY(idA);
    QVERIFY(connectPeer(svcB, kServiceKey2));
    QVERIFY(connectPeer(requester, kServiceKey2));
    QVERIFY(subscribe(svcA, kTarget));

    requester.send(withReqId(Command::Req, kTarget, "mine"));
    const std::optional<Message> req = svcA.waitFor(Command::Req, kTarget);
    QVERIFY(req);
    QCOMPARE(m_broker->pendingRequests().first().responder, idA);

    svcB.send(withReqId(Command::Res, kTarget, reqIdOf(*req), "stolen"));
    const std::optional<Message> err = svcB.waitFor(Command::Err, kTarget);
    QVERIFY(err);
    QCOMPARE(statusOf(*err), QByteArray("404"));
    QCOMPARE(reqIdOf(*err), reqIdOf(*req));
    QCOMPARE(m_broker->pendingRequests().size(), 1);

    svcA.send(withReqId(Command::Res, kTarget, reqIdOf(*req), "real"));
    const std::optional<Message> res = requester.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(res->body, QByteArray("real"));
    QCOMPARE(reqIdOf(*res), QByteArray("mine"));
    QVERIFY(requester.messages.isEmpty());
    QVERIFY(svcA.messages.isEmpty());
}

// 4.4: a client sending RES gets ERR 403, even with a live token.
void tst_ReqRes::answerFromClient()
{
    TestPeer svc, client, requester;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(connectPeer(client, kClientKey));
    QVERIFY(connectPeer(requester, kServiceKey2));
    QVERIFY(subscribe(svc, kTarget));

    requester.send(withReqId(Command::Req, kTarget, "c"));
    const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
    QVERIFY(req);

    client.send(withReqId(Command::Res, kTarget, reqIdOf(*req), "forged"));
    const std::optional<Message> err = client.waitFor(Command::Err, kTarget);
    QVERIFY(err);
    QCOMPARE(statusOf(*err), QByteArray("403"));
    QCOMPARE(reqIdOf(*err), reqIdOf(*req));
    QCOMPARE(err->header(HeaderName::Command), QByteArray("RES"));
    QCOMPARE(m_broker->pendingRequests().size(), 1);
    QCOMPARE(m_broker->stats().responsesUnknown, 0u);

    svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req), "real"));
    const std::optional<Message> res = requester.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(res->body, QByteArray("real"));
}

// 4.3: the requester leaving drops its requests silently; a late RES is discarded
// without an ERR to the service.
void tst_ReqRes::requesterDisconnects()
{
    TestPeer svc;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(grant(svc, Command::Ereq, kTarget));
    QVERIFY(subscribe(svc, kTarget));
    QVERIFY(subscribe(svc, "marker"));

    auto client = std::make_unique<TestPeer>();
    const quint64 clientId = connectPeer(*client, kClientKey);
    QVERIFY(clientId);
    client->send(withReqId(Command::Req, kTarget, "bye"));
    const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
    QVERIFY(req);
    QCOMPARE(m_broker->peer(clientId)->pendingRequests, 1);

    QSignalSpy disconnected(m_broker.get(), &Broker::peerDisconnected);
    QSignalSpy finished(m_broker.get(), &Broker::requestFinished);
    client->socket.close();
    QTRY_COMPARE(disconnected.size(), 1);
    client.reset();
    QCOMPARE(m_broker->stats().requestsOrphaned, 1u);
    // The request stays with the responder (its load stays right) but has no requester.
    const QList<RequestInfo> pending = m_broker->pendingRequests();
    QCOMPARE(pending.size(), 1);
    QCOMPARE(pending.first().requester, 0u);
    QCOMPARE(finished.size(), 0);

    svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req), "nobody listens"));
    svc.send(msg(Command::Pub, "marker"));
    QVERIFY(svc.waitFor(Command::Pub, "marker"));
    QVERIFY(!svc.waitFor(Command::Err, {}, 0));
    QVERIFY(svc.messages.isEmpty());

    QCOMPARE(finished.size(), 1);
    QCOMPARE(finished.at(0).at(0).toByteArray(), reqIdOf(*req));
    QCOMPARE(finished.at(0).at(1).toInt(), 0);
    const BrokerStats stats = m_broker->stats();
    QCOMPARE(stats.responsesDiscarded, 1u);
    QCOMPARE(stats.responses, 0u);
    QCOMPARE(stats.responsesUnknown, 0u);
    QCOMPARE(stats.errorsSent, 0u);
    QVERIFY(m_broker->pendingRequests().isEmpty());
}

// 4.3: an orphaned request that expires answers nobody and counts no 504.
void tst_ReqRes::orphanedRequestExpires()
{
    TestPeer svc;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(subscribe(svc, kTarget));
    auto requester = std::make_unique<TestPeer>();
    QVERIFY(connectPeer(*requester, kServiceKey2));
    requester->send(msg(Command::Req, kTarget, {{"ReqID", "o"}, {"Timeout", "150"}}));
    const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
    QVERIFY(req);

    QSignalSpy disconnected(m_broker.get(), &Broker::peerDisconnected);
    QSignalSpy finished(m_broker.get(), &Broker::requestFinished);
    requester->socket.close();
    QTRY_COMPARE(disconnected.size(), 1);
    QTRY_COMPARE(finished.size(), 1);
    QCOMPARE(finished.at(0).at(1).toInt(), 0);
    QVERIFY(m_broker->pendingRequests().isEmpty());
    const BrokerStats stats = m_broker->stats();
    QCOMPARE(stats.requestsOrphaned, 1u);
    QCOMPARE(stats.requestsTimedOut, 0u);

    // Once expired, the answer is for an unknown request.
    svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req)));
    const std::optional<Message> err = svc.waitFor(Command::Err, kTarget);
    QVERIFY(err);
    QCOMPARE(statusOf(*err), QByteArray("404"));
}

// 7: pending requests per connection are limited; over it ERR 429.
void tst_ReqRes::pendingRequestLimit()
{
    BrokerConfig config = testConfig();
    config.forEachRole([](RoleLimits &limits) { limits.maxPendingRequests = 2; });
    restartBroker(config);

    TestPeer svc, client, other;
    QVERIFY(connectPeer(svc, kServiceKey));
    const quint64 clientId = connectPeer(client, kClientKey);
    QVERIFY(clientId);
    QVERIFY(connectPeer(other, kServiceKey2));
    QVERIFY(grant(svc, Command::Ereq, kTarget));
    QVERIFY(subscribe(svc, kTarget));

    client.send(withReqId(Command::Req, kTarget, "p1"));
    client.send(withReqId(Command::Req, kTarget, "p2"));
    client.send(withReqId(Command::Req, kTarget, "p3"));
    const std::optional<Message> err = client.waitFor(Command::Err, kTarget);
    QVERIFY(err);
    QCOMPARE(statusOf(*err), QByteArray("429"));
    QCOMPARE(reqIdOf(*err), QByteArray("p3"));
    QCOMPARE(err->header(HeaderName::Command), QByteArray("REQ"));
    QVERIFY(svc.waitForCount(2));
    QCOMPARE(m_broker->peer(clientId)->pendingRequests, 2);
    QCOMPARE(m_broker->stats().requests, 2u);

    // The limit is per connection: another requester still gets through.
    other.send(withReqId(Command::Req, kTarget, "o1"));
    QVERIFY(svc.waitForCount(3));
    QVERIFY(!other.waitFor(Command::Err, {}, 0));

    // An answer frees a slot.
    const Message first = svc.messages.takeFirst();
    svc.send(withReqId(Command::Res, kTarget, reqIdOf(first)));
    const std::optional<Message> res = client.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(reqIdOf(*res), QByteArray("p1"));
    client.send(withReqId(Command::Req, kTarget, "p4"));
    QVERIFY(svc.waitForCount(3));
    QCOMPARE(m_broker->peer(clientId)->pendingRequests, 2);
    QVERIFY(client.messages.isEmpty());
    QCOMPARE(m_broker->stats().requests, 4u);
}

// 1, 3.5: a message leaves in the frame type it arrived in; a Content-Length body is
// byte-exact both ways.
void tst_ReqRes::frameTypeAndBody_data()
{
    QTest::addColumn<bool>("reqBinary");
    QTest::addColumn<bool>("resBinary");
    QTest::addColumn<QByteArray>("body");
    QTest::addColumn<bool>("contentLength");
    static const char utf8Raw[] = "line1\r\nline2\0zero\n.\nlast \xc3\xa9\r\n";
    static const char binaryRaw[] = "\x00\xff\xfe\r\n.\r\n\n\x80raw\r";
    const QByteArray utf8Exact(utf8Raw, sizeof(utf8Raw) - 1);
    const QByteArray binaryExact(binaryRaw, sizeof(binaryRaw) - 1);
    QTest::addRow("text both ways") << false << false << QByteArray("plain\n.dot\nend") << false;
    QTest::addRow("binary request, text answer") << true << false << QByteArray("plain body") << false;
    QTest::addRow("text request, binary answer") << false << true << QByteArray("plain body") << false;
    QTest::addRow("binary both ways") << true << true << QByteArray("plain body") << false;
    QTest::addRow("text with Content-Length CRLF NUL") << false << false << utf8Exact << true;
    QTest::addRow("binary with Content-Length raw bytes") << true << true << binaryExact << true;
}

void tst_ReqRes::frameTypeAndBody()
{
    QFETCH(bool, reqBinary);
    QFETCH(bool, resBinary);
    QFETCH(QByteArray, body);
    QFETCH(bool, contentLength);

    TestPeer svc, requester;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(connectPeer(requester, kServiceKey2));
    QVERIFY(subscribe(svc, kTarget));

    Message request = withReqId(Command::Req, kTarget, "ft", body);
    if (contentLength)
        request.headers.append({"Content-Length", QByteArray::number(body.size())});
    request.binary = reqBinary;
    requester.send(request);
    const std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
    QVERIFY(req);
    QCOMPARE(req->binary, reqBinary);
    QCOMPARE(svc.frameIsBinary.last(), reqBinary);
    QCOMPARE(req->body, body);
    if (contentLength)
        QCOMPARE(req->header(HeaderName::ContentLength), QByteArray::number(body.size()));

    // The service answers with bytes of its own around the request's body.
    const QByteArray answer = "echo:" + body + QByteArray("\0\r", 2);
    Message response = withReqId(Command::Res, kTarget, reqIdOf(*req), answer);
    if (contentLength)
        response.headers.append({"Content-Length", QByteArray::number(answer.size())});
    response.binary = resBinary;
    svc.send(response);
    const std::optional<Message> res = requester.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(res->binary, resBinary);
    QCOMPARE(requester.frameIsBinary.last(), resBinary);
    QCOMPARE(res->body, answer);
    QCOMPARE(reqIdOf(*res), QByteArray("ft"));
    if (contentLength)
        QCOMPARE(res->header(HeaderName::ContentLength), QByteArray::number(answer.size()));
    QVERIFY(svc.badFrames.isEmpty() && requester.badFrames.isEmpty());
}

// 4.3, decision 26: the request counters move with each outcome.
void tst_ReqRes::statsCounters()
{
    TestPeer svc, doomed, requester;
    QVERIFY(connectPeer(svc, kServiceKey));
    QVERIFY(connectPeer(doomed, kServiceKey2));
    QVERIFY(connectPeer(requester, kServiceKey2));
    QVERIFY(subscribe(svc, kTarget));
    QVERIFY(subscribe(doomed, "svc.doomed"));

    auto expect = [&](quint64 requests, quint64 responses, quint64 noResponder, quint64 timedOut,
                      quint64 responderGone) {
        const BrokerStats s = m_broker->stats();
        return s.requests == requests && s.responses == responses && s.requestsNoResponder == noResponder
            && s.requestsTimedOut == timedOut && s.requestsResponderGone == responderGone;
    };
    QVERIFY(expect(0, 0, 0, 0, 0));

    // Answered.
    requester.send(withReqId(Command::Req, kTarget, "1"));
    std::optional<Message> req = svc.waitFor(Command::Req, kTarget);
    QVERIFY(req);
    QVERIFY(expect(1, 0, 0, 0, 0));
    svc.send(withReqId(Command::Res, kTarget, reqIdOf(*req)));
    QVERIFY(requester.waitFor(Command::Res, kTarget));
    QVERIFY(expect(1, 1, 0, 0, 0));

    // No responder.
    requester.send(withReqId(Command::Req, "svc.nobody", "2"));
    std::optional<Message> res = requester.waitFor(Command::Res, "svc.nobody");
    QVERIFY(res);
    QCOMPARE(statusOf(*res), QByteArray("503"));
    QVERIFY(expect(1, 1, 1, 0, 0));

    // Timed out.
    requester.send(msg(Command::Req, kTarget, {{"ReqID", "3"}, {"Timeout", "100"}}));
    QVERIFY(svc.waitFor(Command::Req, kTarget));
    res = requester.waitFor(Command::Res, kTarget);
    QVERIFY(res);
    QCOMPARE(statusOf(*res), QByteArray("504"));
    QVERIFY(expect(2, 1, 1, 1, 0));

    // Responder gone.
    requester.send(withReqId(Command::Req, "svc.doomed", "4"));
    QVERIFY(doomed.waitFor(Command::Req, "svc.doomed"));
    doomed.socket.close();
    res = requester.waitFor(Command::Res, "svc.doomed");
    QVERIFY(res);
    QCOMPARE(statusOf(*res), QByteArray("503"));
    QVERIFY(expect(3, 1, 1, 1, 1));

    const BrokerStats s = m_broker->stats();
    QCOMPARE(s.requestsOrphaned, 0u);
    QCOMPARE(s.responsesDiscarded, 0u);
    QCOMPARE(s.responsesUnknown, 0u);
    QCOMPARE(s.errorsSent, 0u);
}

QTEST_MAIN(tst_ReqRes)
#include "tst_reqres.moc"
