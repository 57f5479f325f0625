// Unit tests for RequestTracker: requests on their way to a service and back
// (docs/protocol.md §4.3, §4.4). Time is a parameter, so no clock and no event loop.

#include "requesttracker.h"

#include <QSet>
#include <QTest>

#include <algorithm>
#include <map>
#include <random>

using namespace Middleman;

namespace {

QList<QByteArray> tokensOf(const QList<PendingRequest> &requests)
{
    QList<QByteArray> tokens;
    for (const PendingRequest &request : requests)
        tokens.append(request.token);
    return tokens;
}

QList<QByteArray> reqIdsOf(const QList<PendingRequest> &requests)
{
    QList<QByteArray> ids;
    for (const PendingRequest &request : requests)
        ids.append(request.requesterReqId);
    return ids;
}

QList<QByteArray> sorted(QList<QByteArray> list)
{
    std::sort(list.begin(), list.end());
    return list;
}

} // namespace

// One add() call.
struct Spec
{
    quint64 requester;
    QByteArray reqId;
    quint64 responder;
    qint64 nowMs;
    qint64 timeoutMs;
};
Q_DECLARE_METATYPE(Spec)

using Specs = QList<Spec>;
using ByteArrays = QList<QByteArray>;

class tst_RequestTracker : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void addReturnsUniqueTokens();
    void addRecordsEverything();
    void findAndTake();
    void takeTwiceFails();
    void takeUnknown();
    void countsFollowAddAndTake();
    void takeExpired_data();
    void takeExpired();
    void takeExpiredRepeatedly();
    void nextDeadline_data();
    void nextDeadline();
    void takeByResponder();
    void orphan();
    void orphanThenExpire();
    void orphanThenAnswer();
    void takeAll();
    void tiesKeepRequestOrder();
    void onlyExactTokens_data();
    void onlyExactTokens();
    void listsAgreeWithAModel();
};

void tst_RequestTracker::addReturnsUniqueTokens()
{
    RequestTracker tracker;
    QSet<QByteArray> tokens;
    // Same requester, same ReqID, same responder: the tokens must still differ,
    // since ReqIDs of different peers (or repeated ones) must never collide.
    for (int i = 0; i < 1000; ++i) {
        const QByteArray token = tracker.add(7, QByteArrayLiteral("r1"), 3, QByteArrayLiteral("svc.x"), 0, 100);
        QVERIFY(!token.isEmpty());
        QVERIFY2(!tokens.contains(token), token.constData());
        tokens.insert(token);
    }
    QCOMPARE(tracker.size(), qsizetype(1000));

    // Taking requests never lets a later add reuse a token.
    const QList<QByteArray> before = tokens.values();
    for (const QByteArray &token : before)
        QVERIFY(tracker.take(token));
    QCOMPARE(tracker.size(), qsizetype(0));
    for (int i = 0; i < 100; ++i)
        QVERIFY(!tokens.contains(tracker.add(7, QByteArrayLiteral("r1"), 3, QByteArrayLiteral("svc.x"), 0, 100)));
}

void tst_RequestTracker::addRecordsEverything()
{
    RequestTracker tracker;
    const QByteArray token = tracker.add(11, QByteArrayLiteral("client-id-42"), 22, QByteArrayLiteral("math.add"),
                                         1000, 250);
    const PendingRequest *found = tracker.find(token);
    QVERIFY(found);
    QCOMPARE(found->token, token);
    QCOMPARE(found->requester, quint64(11));
    QCOMPARE(found->requesterReqId, QByteArrayLiteral("client-id-42"));
    QCOMPARE(found->responder, quint64(22));
    QCOMPARE(found->target, QByteArrayLiteral("math.add"));
    QCOMPARE(found->startedMs, qint64(1000));
    QCOMPARE(found->deadlineMs, qint64(1250));
    QCOMPARE(tracker.all().size(), qsizetype(1));
    QCOMPARE(tracker.all().first().token, token);
}

void tst_RequestTracker::findAndTake()
{
    RequestTracker tracker;
    const QByteArray a = tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 0, 100);
    const QByteArray b = tracker.add(2, QByteArrayLiteral("b"), 9, QByteArrayLiteral("t"), 0, 100);

    QVERIFY(tracker.find(a));
    QVERIFY(tracker.find(b));
    QCOMPARE(tracker.find(a)->requesterReqId, QByteArrayLiteral("a"));
    // find takes a view: the lookup works from a view into a larger buffer too.
    const QByteArray framed = "[" + b + "]";
    QVERIFY(tracker.find(QByteArrayView(framed).sliced(1, b.size())));

    const std::optional<PendingRequest> taken = tracker.take(a);
    QVERIFY(taken);
    QCOMPARE(taken->token, a);
    QCOMPARE(taken->requester, quint64(1));
    QCOMPARE(taken->requesterReqId, QByteArrayLiteral("a"));
    QVERIFY(!tracker.find(a));
    QVERIFY(tracker.find(b)); // the other one is untouched
    QCOMPARE(tracker.size(), qsizetype(1));
}

void tst_RequestTracker::takeTwiceFails()
{
    RequestTracker tracker;
    const QByteArray token = tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 0, 100);
    QVERIFY(tracker.take(token));
    // A second answer to the same request (4.4: "already answered") finds nothing.
    QVERIFY(!tracker.take(token));
    QCOMPARE(tracker.size(), qsizetype(0));
    QCOMPARE(tracker.outstanding(9), 0);
    QCOMPARE(tracker.pendingOf(1), 0);
    // ...and the deadline went with it.
    QVERIFY(!tracker.nextDeadline());
    QVERIFY(tracker.takeExpired(1000).isEmpty());
}

void tst_RequestTracker::takeUnknown()
{
    RequestTracker tracker;
    QVERIFY(!tracker.take(QByteArrayLiteral("mm-1")));
    QVERIFY(!tracker.find(QByteArrayLiteral("mm-1")));
    tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 0, 100);
    // A requester's own ReqID is not a token.
    QVERIFY(!tracker.find(QByteArrayLiteral("a")));
    QVERIFY(!tracker.take(QByteArrayLiteral("a")));
    QVERIFY(!tracker.take(QByteArray()));
    QCOMPARE(tracker.size(), qsizetype(1));
}

void tst_RequestTracker::countsFollowAddAndTake()
{
    RequestTracker tracker;
    QCOMPARE(tracker.outstanding(9), 0);
    QCOMPARE(tracker.pendingOf(1), 0);

    // Requester 1 asks responders 9 (twice) and 8; requester 2 asks 9 once.
    const QByteArray a = tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 0, 100);
    const QByteArray b = tracker.add(1, QByteArrayLiteral("b"), 9, QByteArrayLiteral("t"), 0, 100);
    const QByteArray c = tracker.add(1, QByteArrayLiteral("c"), 8, QByteArrayLiteral("t"), 0, 100);
    const QByteArray d = tracker.add(2, QByteArrayLiteral("d"), 9, QByteArrayLiteral("t"), 0, 100);
    QCOMPARE(tracker.outstanding(9), 3);
    QCOMPARE(tracker.outstanding(8), 1);
    QCOMPARE(tracker.pendingOf(1), 3);
    QCOMPARE(tracker.pendingOf(2), 1);
    // Ids are not shared between the two roles.
    QCOMPARE(tracker.outstanding(1), 0);
    QCOMPARE(tracker.pendingOf(9), 0);

    QVERIFY(tracker.take(a));
    QCOMPARE(tracker.outstanding(9), 2);
    QCOMPARE(tracker.pendingOf(1), 2);
    QVERIFY(tracker.take(d));
    QCOMPARE(tracker.outstanding(9), 1);
    QCOMPARE(tracker.pendingOf(2), 0);
    QVERIFY(tracker.take(c));
    QCOMPARE(tracker.outstanding(8), 0);
    QCOMPARE(tracker.pendingOf(1), 1);
    QVERIFY(tracker.take(b));
    QCOMPARE(tracker.outstanding(9), 0);
    QCOMPARE(tracker.pendingOf(1), 0);
    QCOMPARE(tracker.size(), qsizetype(0));

    // Counting starts again from zero, never below it.
    tracker.add(1, QByteArrayLiteral("e"), 9, QByteArrayLiteral("t"), 0, 100);
    QCOMPARE(tracker.outstanding(9), 1);
    QCOMPARE(tracker.pendingOf(1), 1);
}

void tst_RequestTracker::takeExpired_data()
{
    QTest::addColumn<Specs>("specs");
    QTest::addColumn<qint64>("now");
    QTest::addColumn<ByteArrays>("expired"); // ReqIDs, in the order expected
    QTest::addColumn<ByteArrays>("left");    // ReqIDs, any order

    const Specs three{{1, QByteArrayLiteral("late"), 9, 0, 300},
                      {1, QByteArrayLiteral("early"), 9, 0, 100},
                      {2, QByteArrayLiteral("middle"), 8, 50, 150}}; // deadlines 300, 100, 200

    QTest::addRow("empty tracker") << Specs() << qint64(1'000'000) << ByteArrays() << ByteArrays();
    QTest::addRow("before every deadline")
        << three << qint64(99) << ByteArrays() << ByteArrays{"late", "early", "middle"};
    QTest::addRow("exactly at the first deadline")
        << three << qint64(100) << ByteArrays{"early"} << ByteArrays{"late", "middle"};
    QTest::addRow("between deadlines")
        << three << qint64(250) << ByteArrays{"early", "middle"} << ByteArrays{"late"};
    QTest::addRow("one before the last deadline")
        << three << qint64(299) << ByteArrays{"early", "middle"} << ByteArrays{"late"};
    QTest::addRow("all, in deadline order not insertion order")
        << three << qint64(300) << ByteArrays{"early", "middle", "late"} << ByteArrays();
    QTest::addRow("long after")
        << three << qint64(1'000'000) << ByteArrays{"early", "middle", "late"} << ByteArrays();
    QTest::addRow("zero timeout expires at once")
        << Specs{{1, QByteArrayLiteral("now"), 9, 500, 0}} << qint64(500) << ByteArrays{"now"} << ByteArrays();
    QTest::addRow("added later, earlier deadline")
        << Specs{{1, QByteArrayLiteral("first-added"), 9, 0, 1000},
                 {1, QByteArrayLiteral("second-added"), 9, 10, 10}}
        << qint64(1000) << ByteArrays{"second-added", "first-added"} << ByteArrays();
}

void tst_RequestTracker::takeExpired()
{
    QFETCH(Specs, specs);
    QFETCH(qint64, now);
    QFETCH(ByteArrays, expired);
    QFETCH(ByteArrays, left);

    RequestTracker tracker;
    for (const Spec &spec : specs)
        tracker.add(spec.requester, spec.reqId, spec.responder, QByteArrayLiteral("t"), spec.nowMs, spec.timeoutMs);

    const QList<PendingRequest> taken = tracker.takeExpired(now);
    QCOMPARE(reqIdsOf(taken), expired);
    for (const PendingRequest &request : taken) {
        QVERIFY(request.deadlineMs <= now);
        QVERIFY(!tracker.find(request.token)); // removed
    }
    QCOMPARE(sorted(reqIdsOf(tracker.all())), sorted(left));
    for (const PendingRequest &request : tracker.all())
        QVERIFY(request.deadlineMs > now);

    // Counters follow: nothing left that expired.
    int outstanding = 0;
    for (quint64 responder : {8u, 9u})
        outstanding += tracker.outstanding(responder);
    QCOMPARE(outstanding, int(left.size()));
    QCOMPARE(tracker.pendingOf(1) + tracker.pendingOf(2), int(left.size()));
}

void tst_RequestTracker::takeExpiredRepeatedly()
{
    RequestTracker tracker;
    tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 0, 100);
    tracker.add(1, QByteArrayLiteral("b"), 9, QByteArrayLiteral("t"), 0, 200);
    QCOMPARE(reqIdsOf(tracker.takeExpired(150)), ByteArrays{"a"});
    // What was taken is not reported twice.
    QVERIFY(tracker.takeExpired(150).isEmpty());
    QCOMPARE(reqIdsOf(tracker.takeExpired(200)), ByteArrays{"b"});
    QVERIFY(tracker.takeExpired(10'000).isEmpty());
    QCOMPARE(tracker.size(), qsizetype(0));
    QCOMPARE(tracker.outstanding(9), 0);
    QCOMPARE(tracker.pendingOf(1), 0);
}

void tst_RequestTracker::nextDeadline_data()
{
    QTest::addColumn<Specs>("specs");
    QTest::addColumn<ByteArrays>("taken"); // ReqIDs answered before asking
    QTest::addColumn<qint64>("expected");  // -1: none

    const Specs three{{1, QByteArrayLiteral("a"), 9, 0, 300},
                      {1, QByteArrayLiteral("b"), 9, 0, 100},
                      {1, QByteArrayLiteral("c"), 9, 0, 200}};
    QTest::addRow("none") << Specs() << ByteArrays() << qint64(-1);
    QTest::addRow("one") << Specs{{1, QByteArrayLiteral("a"), 9, 1000, 30}} << ByteArrays() << qint64(1030);
    QTest::addRow("earliest of three") << three << ByteArrays() << qint64(100);
    QTest::addRow("earliest answered") << three << ByteArrays{"b"} << qint64(200);
    QTest::addRow("latest answered") << three << ByteArrays{"a"} << qint64(100);
    QTest::addRow("all answered") << three << ByteArrays{"a", "b", "c"} << qint64(-1);
}

void tst_RequestTracker::nextDeadline()
{
    QFETCH(Specs, specs);
    QFETCH(ByteArrays, taken);
    QFETCH(qint64, expected);

    RequestTracker tracker;
    QHash<QByteArray, QByteArray> tokenOf;
    for (const Spec &spec : specs)
        tokenOf.insert(spec.reqId, tracker.add(spec.requester, spec.reqId, spec.responder, QByteArrayLiteral("t"),
                                               spec.nowMs, spec.timeoutMs));
    for (const QByteArray &reqId : taken)
        QVERIFY(tracker.take(tokenOf.value(reqId)));

    const std::optional<qint64> next = tracker.nextDeadline();
    if (expected < 0) {
        QVERIFY(!next);
    } else {
        QVERIFY(next);
        QCOMPARE(*next, expected);
    }
}

void tst_RequestTracker::takeByResponder()
{
    RequestTracker tracker;
    const QByteArray a = tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 30, 100);
    const QByteArray b = tracker.add(2, QByteArrayLiteral("b"), 8, QByteArrayLiteral("t"), 10, 100);
    const QByteArray c = tracker.add(1, QByteArrayLiteral("c"), 9, QByteArrayLiteral("t"), 10, 500);
    const QByteArray d = tracker.add(2, QByteArrayLiteral("d"), 9, QByteArrayLiteral("t"), 20, 50);

    const QList<PendingRequest> gone = tracker.takeByResponder(9);
    // Oldest first, whatever the deadlines.
    QCOMPARE(reqIdsOf(gone), (ByteArrays{"c", "d", "a"}));
    for (const PendingRequest &request : gone)
        QCOMPARE(request.responder, quint64(9));
    QCOMPARE(tracker.outstanding(9), 0);
    QCOMPARE(tracker.pendingOf(1), 0);
    QCOMPARE(tracker.pendingOf(2), 1);
    QVERIFY(!tracker.find(a) && !tracker.find(c) && !tracker.find(d));
    QVERIFY(tracker.find(b));
    QCOMPARE(tracker.outstanding(8), 1);
    // Their deadlines went too: only b's is left.
    QCOMPARE(tracker.nextDeadline().value_or(-1), qint64(110));
    QCOMPARE(tokensOf(tracker.takeExpired(10'000)), ByteArrays{b});

    // A responder holding nothing: nothing.
    QVERIFY(tracker.takeByResponder(9).isEmpty());
    QVERIFY(tracker.takeByResponder(12345).isEmpty());
}

void tst_RequestTracker::orphan()
{
    RequestTracker tracker;
    const QByteArray a = tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 0, 100);
    const QByteArray b = tracker.add(1, QByteArrayLiteral("b"), 8, QByteArrayLiteral("t"), 0, 200);
    const QByteArray c = tracker.add(2, QByteArrayLiteral("c"), 9, QByteArrayLiteral("t"), 0, 300);

    QCOMPARE(tracker.orphan(1), qsizetype(2));

    // The requests stay, so the responders' load stays right (4.3: balancing)...
    QCOMPARE(tracker.size(), qsizetype(3));
    QCOMPARE(tracker.outstanding(9), 2);
    QCOMPARE(tracker.outstanding(8), 1);
    QCOMPARE(tracker.nextDeadline().value_or(-1), qint64(100));
    // ...but they belong to nobody: answers go nowhere.
    QVERIFY(tracker.find(a));
    QCOMPARE(tracker.find(a)->requester, quint64(0));
    QCOMPARE(tracker.find(b)->requester, quint64(0));
    QCOMPARE(tracker.find(a)->requesterReqId, QByteArrayLiteral("a"));
    QCOMPARE(tracker.pendingOf(1), 0);
    // The other requester is untouched.
    QCOMPARE(tracker.find(c)->requester, quint64(2));
    QCOMPARE(tracker.pendingOf(2), 1);

    // Orphaning again, or a requester with nothing pending, counts nothing.
    QCOMPARE(tracker.orphan(1), qsizetype(0));
    QCOMPARE(tracker.orphan(777), qsizetype(0));
    QCOMPARE(tracker.size(), qsizetype(3));
}

void tst_RequestTracker::orphanThenExpire()
{
    RequestTracker tracker;
    tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 0, 100);
    tracker.add(2, QByteArrayLiteral("b"), 9, QByteArrayLiteral("t"), 0, 100);
    tracker.orphan(1);

    const QList<PendingRequest> expired = tracker.takeExpired(100);
    QCOMPARE(expired.size(), qsizetype(2));
    QCOMPARE(tracker.size(), qsizetype(0));
    QCOMPARE(tracker.outstanding(9), 0);
    QCOMPARE(tracker.pendingOf(1), 0);
    QCOMPARE(tracker.pendingOf(2), 0);
    // The orphan expires with requester 0, so the broker sends no 504 to anyone.
    for (const PendingRequest &request : expired)
        QCOMPARE(request.requester, request.requesterReqId == "a" ? quint64(0) : quint64(2));
}

void tst_RequestTracker::orphanThenAnswer()
{
    RequestTracker tracker;
    const QByteArray a = tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 0, 100);
    tracker.orphan(1);
    // The late answer is still recognised (no ERR 404 for the service), but goes nowhere.
    const std::optional<PendingRequest> answered = tracker.take(a);
    QVERIFY(answered);
    QCOMPARE(answered->requester, quint64(0));
    QCOMPARE(tracker.outstanding(9), 0);
    QCOMPARE(tracker.size(), qsizetype(0));
    // The responder leaving later finds nothing of it.
    QVERIFY(tracker.takeByResponder(9).isEmpty());
}

void tst_RequestTracker::tiesKeepRequestOrder()
{
    // 40 requests with one deadline and one start time: their 504s and 503s must
    // go out in the order the requests were made (tokens mm-1 ... mm-14 in base 36
    // would sort differently as plain text).
    RequestTracker tracker;
    QList<QByteArray> made;
    for (int i = 0; i < 40; ++i)
        made.append(tracker.add(1, QByteArray::number(i), 2, "t", 0, 100));
    QList<QByteArray> expired;
    for (const PendingRequest &request : tracker.takeExpired(100))
        expired.append(request.token);
    QCOMPARE(expired, made);

    made.clear();
    for (int i = 0; i < 40; ++i)
        made.append(tracker.add(1, QByteArray::number(i), 2, "t", 0, 100));
    QList<QByteArray> taken;
    for (const PendingRequest &request : tracker.takeByResponder(2))
        taken.append(request.token);
    QCOMPARE(taken, made);
}

void tst_RequestTracker::takeAll()
{
    RequestTracker tracker;
    QVERIFY(tracker.takeAll().isEmpty());
    const QByteArray a = tracker.add(1, QByteArrayLiteral("a"), 9, QByteArrayLiteral("t"), 0, 100);
    const QByteArray b = tracker.add(2, QByteArrayLiteral("b"), 8, QByteArrayLiteral("t"), 0, 200);
    const QByteArray c = tracker.add(3, QByteArrayLiteral("c"), 9, QByteArrayLiteral("t"), 0, 300);
    tracker.orphan(3);

    const QList<PendingRequest> all = tracker.takeAll();
    QCOMPARE(sorted(tokensOf(all)), sorted(ByteArrays{a, b, c}));
    QCOMPARE(tracker.size(), qsizetype(0));
    QVERIFY(tracker.all().isEmpty());
    QVERIFY(!tracker.nextDeadline());
    QCOMPARE(tracker.outstanding(9), 0);
    QCOMPARE(tracker.outstanding(8), 0);
    QCOMPARE(tracker.pendingOf(1), 0);
    QCOMPARE(tracker.pendingOf(2), 0);
    QVERIFY(tracker.takeExpired(10'000).isEmpty());
    QVERIFY(tracker.takeByResponder(9).isEmpty());
    QVERIFY(!tracker.take(a));
    QVERIFY(tracker.takeAll().isEmpty());

    // The tracker is usable afterwards, with fresh tokens.
    const QByteArray d = tracker.add(1, QByteArrayLiteral("d"), 9, QByteArrayLiteral("t"), 0, 100);
    QVERIFY(d != a && d != b && d != c);
    QCOMPARE(tracker.outstanding(9), 1);
    QCOMPARE(tracker.pendingOf(1), 1);
}

void tst_RequestTracker::onlyExactTokens_data()
{
    QTest::addColumn<QByteArray>("text");
    QTest::addColumn<quint64>("number");
    QTest::newRow("first") << QByteArray("mm-1") << quint64(1);
    QTest::newRow("base 36") << QByteArray("mm-z") << quint64(35);
    QTest::newRow("two digits") << QByteArray("mm-10") << quint64(36);
    QTest::newRow("largest") << QByteArray("mm-3w5e11264sgsf") << std::numeric_limits<quint64>::max();
    QTest::newRow("over 64 bits") << QByteArray("mm-3w5e11264sgsg") << quint64(0);
    QTest::newRow("too long") << QByteArray("mm-10000000000000") << quint64(0);
    QTest::newRow("leading zero") << QByteArray("mm-01") << quint64(0);
    QTest::newRow("zero") << QByteArray("mm-0") << quint64(0);
    QTest::newRow("upper case digit") << QByteArray("mm-A") << quint64(0);
    QTest::newRow("upper case prefix") << QByteArray("MM-1") << quint64(0);
    QTest::newRow("no digits") << QByteArray("mm-") << quint64(0);
    QTest::newRow("sign") << QByteArray("mm--1") << quint64(0);
    QTest::newRow("space") << QByteArray("mm-1 ") << quint64(0);
    QTest::newRow("other prefix") << QByteArray("xx-1") << quint64(0);
    QTest::newRow("empty") << QByteArray() << quint64(0);
}

void tst_RequestTracker::onlyExactTokens()
{
    QFETCH(QByteArray, text);
    QFETCH(quint64, number);
    QCOMPARE(RequestTracker::numberOf(text), number);
    // Only the spelling the tracker makes finds a request: with request 1 and
    // 35 pending, "mm-01" or "mm-A" find nothing.
    RequestTracker tracker;
    QByteArray first;
    for (int i = 1; i <= 36; ++i) {
        const QByteArray token = tracker.add(1, QByteArray::number(i), 2, QByteArrayLiteral("t"), 0, 100);
        if (i == 1)
            first = token;
        QCOMPARE(RequestTracker::numberOf(token), quint64(i));
    }
    QCOMPARE(first, QByteArrayLiteral("mm-1"));
    const PendingRequest *found = tracker.find(text);
    QCOMPARE(found != nullptr, number >= 1 && number <= 36);
    if (found)
        QCOMPARE(found->token, text);
}

// Random adds, answers, expiries, orphans and departing responders, checked
// after every step against a plain map: the per-peer lists and counts never
// drift from the requests actually pending.
void tst_RequestTracker::listsAgreeWithAModel()
{
    RequestTracker tracker;
    std::map<QByteArray, PendingRequest> model;
    std::mt19937 random(20261126);
    const auto pick = [&random](int n) { return int(std::uniform_int_distribution<int>(0, n - 1)(random)); };
    qint64 now = 0;
    for (int step = 0; step < 4000; ++step) {
        now += pick(3);
        const int what = pick(10);
        if (what < 5 || model.empty()) {
            const quint64 requester = quint64(1 + pick(6));
            const quint64 responder = quint64(10 + pick(4));
            const QByteArray reqId = "r" + QByteArray::number(step);
            const QByteArray token = tracker.add(requester, reqId, responder, QByteArrayLiteral("t"), now, 5 + pick(60));
            model[token] = *tracker.find(token);
        } else if (what < 8) {
            auto it = model.begin();
            std::advance(it, pick(int(model.size())));
            const std::optional<PendingRequest> taken = tracker.take(it->first);
            QVERIFY(taken);
            QCOMPARE(taken->requesterReqId, it->second.requesterReqId);
            model.erase(it);
        } else if (what == 8) {
            for (const PendingRequest &request : tracker.takeExpired(now)) {
                QVERIFY(request.deadlineMs <= now);
                QCOMPARE(model.erase(request.token), size_t(1));
            }
            for (const auto &[token, request] : model)
                QVERIFY(request.deadlineMs > now);
        } else if (pick(2) == 0) {
            const quint64 requester = quint64(1 + pick(6));
            qsizetype expected = 0;
            for (auto &[token, request] : model) {
                if (request.requester == requester) {
                    request.requester = 0;
                    ++expected;
                }
            }
            QCOMPARE(tracker.orphan(requester), expected);
        } else {
            const quint64 responder = quint64(10 + pick(4));
            QList<PendingRequest> taken = tracker.takeByResponder(responder);
            QList<QByteArray> expected;
            for (const auto &[token, request] : model) {
                if (request.responder == responder)
                    expected.append(token);
            }
            QCOMPARE(sorted(tokensOf(taken)), sorted(expected));
            for (int i = 1; i < taken.size(); ++i) // in the order they were made
                QVERIFY(RequestTracker::numberOf(taken[i - 1].token) < RequestTracker::numberOf(taken[i].token));
            for (const QByteArray &token : expected)
                model.erase(token);
        }
        QCOMPARE(tracker.size(), qsizetype(model.size()));
        for (quint64 peer = 0; peer < 14; ++peer) {
            int asRequester = 0;
            int asResponder = 0;
            for (const auto &[token, request] : model) {
                asRequester += peer != 0 && request.requester == peer;
                asResponder += request.responder == peer;
            }
            QCOMPARE(tracker.pendingOf(peer), asRequester);
            QCOMPARE(tracker.outstanding(peer), asResponder);
        }
        for (const auto &[token, request] : model) {
            const PendingRequest *found = tracker.find(token);
            QVERIFY(found);
            QCOMPARE(found->requester, request.requester);
        }
    }
}

QTEST_APPLESS_MAIN(tst_RequestTracker)
#include "tst_requesttracker.moc"
