#pragma once
// SessionHarness: an in-process broker on 127.0.0.1:0 with persistent peers, shared
// by the fuzz targets that drive whole sessions (fuzz_session, fuzz_frames). Built
// once per process (lazy static); lives on the main thread, which runs the event
// loop only inside waitUntil().
//
// Peers: a bystander service subscribed to kEchoTarget that answers every REQ it
// gets, a fuzz service and a fuzz client. After every input the harness proves the
// broker still serves (the bystander's PUB to itself arrives), checks every frame the
// broker sent with the codec, puts the fuzz peers back into their first state
// (reconnecting those that hold subscriptions, grants or requests, or that the broker
// closed) and then checks the broker's tables against that state exactly.

#include "broker.h"
#include "codec.h"
#include "fuzzcheck.h"
#include "fuzzpeer.h"

#include <QCoreApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QLoggingCategory>
#include <QTimer>

#include <algorithm>
#include <functional>
#include <memory>

namespace Middleman::Fuzz {

inline const QByteArray kServiceKey = "fuzz-service-key";
inline const QByteArray kClientKey = "fuzz-client-key";
inline const QByteArray kBystanderKey = "fuzz-bystander-key";
inline const QByteArray kEchoTarget = "bystander.echo";
// Long enough for a broker under ASan and UBSan on a busy machine; reaching it is a failure.
inline constexpr int kTimeoutMs = 20000;

inline BrokerConfig harnessConfig()
{
    BrokerConfig config;
    config.port = 0;
    config.serviceKeys = {KeyConfig{QStringLiteral("fuzz-service"), kServiceKey},
                          KeyConfig{QStringLiteral("bystander"), kBystanderKey}};
    config.clientKeys = {KeyConfig{QStringLiteral("fuzz-client"), kClientKey}};
    // Permanent grants (docs/protocol.md §4.5), so that the fuzz client may PUB, SUB and REQ anywhere.
    config.grants = {GrantConfig{Command::Epub, ">"}, GrantConfig{Command::Esub, ">"},
                     GrantConfig{Command::Ereq, ">"}};
    // Small limits, so that short inputs reach every limit (413, 1009, 429 for
    // subscriptions and requests). No message rate limit: it depends on the clock.
    config.codec.maxMessageSize = 1024;
    config.codec.maxHeaders = 8;
    config.codec.maxHeaderBytes = 256;
    config.codec.maxTargetLength = 64;
    config.maxFrameSize = 2048;
    config.forEachRole([](RoleLimits &limits) {
        limits.maxSubscriptions = 16;
        limits.maxPendingRequests = 16;
        limits.maxMessagesPerSecond = 0;
    });
    // No back-off for bad keys: fuzz_frames sends arbitrary first frames from
    // 127.0.0.1, and a blocked address would end the run (tst_limits tests it).
    config.failedKeyBackoffMs = 0;
    config.requestTimeoutMs = 5000;
    config.maxRequestTimeoutMs = 5000;
    return config;
}

class SessionHarness
{
public:
    struct Slot
    {
        std::unique_ptr<FuzzPeer> peer;
        quint64 id = 0;
        QByteArray key;
        quint64 syncTag = 0;
        bool synced = false;
    };

    static SessionHarness &instance()
    {
        static SessionHarness harness;
        return harness;
    }

    Broker &broker() { return *m_broker; }
    QUrl url() const { return m_broker->serverUrl(); }
    Slot &service() { return m_service; }
    Slot &client() { return m_client; }

    // Runs the event loop until `done` holds; false after timeoutMs.
    bool waitUntil(const std::function<bool()> &done, int timeoutMs = kTimeoutMs)
    {
        if (done())
            return true;
        QElapsedTimer clock;
        clock.start();
        QTimer deadline; // wakes the loop when nothing else does
        deadline.setSingleShot(true);
        deadline.start(timeoutMs);
        while (!done()) {
            if (clock.elapsed() >= timeoutMs)
                return false;
            m_loop->processEvents(QEventLoop::WaitForMoreEvents);
            // Sessions the broker let go are deleted later; outside exec() that is here.
            QCoreApplication::sendPostedEvents(nullptr, QEvent::DeferredDelete);
        }
        return true;
    }

    // A peer past the handshake, or a failed property.
    void connect(Slot &slot)
    {
        slot.peer = std::make_unique<FuzzPeer>();
        FuzzPeer *peer = slot.peer.get();
        peer->open(url(), slot.key);
        fuzzCheck(waitUntil([peer] { return peer->accepted || peer->failed(); }) && peer->accepted,
                  "a peer with a valid key was not accepted", peer->protocolErrors.join(' '));
        slot.id = idByPort(peer->localPort());
        fuzzCheck(slot.id != 0, "an accepted peer is not in Broker::peers()");
        slot.synced = false;
    }

    // Sends OPT with a ReqID of its own (section 4.7: answered in order with the
    // rest), which also turns batching off again.
    void startSync(Slot &slot)
    {
        slot.syncTag = ++m_tags;
        slot.synced = false;
        const QByteArray tag = "fuzz-sync-" + QByteArray::number(slot.syncTag);
        Slot *s = &slot;
        slot.peer->received = [s, tag](const Message &m) {
            if (m.command == Command::Res && m.header(HeaderName::ReqId) == tag && m.header(HeaderName::Status) == "200")
                s->synced = true;
        };
        slot.peer->sendText("OPT -\nReqID: " + tag + "\nBatch: off\n.\n");
    }

    // After an input: the fuzz peers' syncs come back (or the broker closed them for a
    // reason allowed by `allowedClose`), the bystander is still served and has
    // answered every request it got, and every frame the broker sent parsed.
    void settle(const std::function<bool(int closeCode)> &allowedClose)
    {
        startSync(m_service);
        startSync(m_client);
        const QByteArray echo = "echo-" + QByteArray::number(++m_tags);
        bool echoed = false;
        m_bystander.peer->received = [this, &echo, &echoed](const Message &m) {
            if (m.command == Command::Pub && m.target == kEchoTarget && m.body == echo)
                echoed = true;
            else if (m.command == Command::Req)
                answer(m);
        };
        m_bystander.peer->sendText("PUB " + kEchoTarget + "\n\n" + echo + "\n.\n");
        const quint64 bystander = m_bystander.id;
        const bool served = waitUntil([&] {
            if (!echoed)
                return false;
            for (Slot *slot : {&m_service, &m_client}) {
                if (!slot->synced && !slot->peer->failed())
                    return false;
            }
            const QList<RequestInfo> pending = m_broker->pendingRequests();
            return std::none_of(pending.cbegin(), pending.cend(),
                                [bystander](const RequestInfo &r) { return r.responder == bystander; });
        });
        fuzzCheck(echoed, "the bystander's PUB to itself did not arrive: the broker stopped serving");
        fuzzCheck(served, "a peer's OPT was not answered, or the bystander's answers did not get through");
        m_bystander.peer->received = nullptr;
        for (Slot *slot : {&m_bystander, &m_service, &m_client}) {
            FuzzPeer &peer = *slot->peer;
            peer.received = nullptr;
            fuzzCheck(peer.badMessages.isEmpty(), "the broker sent a message the codec refuses",
                      peer.badMessages.isEmpty() ? QByteArray() : peer.badMessages.first().reason);
            fuzzCheck(peer.protocolErrors.isEmpty(), "the broker broke RFC 6455",
                      peer.protocolErrors.join(' '));
            if (peer.disconnected && !peer.closeReceived)
                fuzzCheck(false, "the broker dropped a connection without a close frame");
            if (peer.closeReceived)
                fuzzCheck(slot != &m_bystander && allowedClose(peer.closeCode), "the broker closed a peer unexpectedly",
                          QByteArray::number(peer.closeCode));
        }
    }

    // Puts the fuzz peers back into their first state and checks the tables exactly:
    // three peers, the permanent grants, the bystander's one subscription, no request.
    // Subscriptions are undone with UNSUB and requests answered by the fuzz service
    // (a round trip); a peer the broker closed, and a service holding grants (they
    // only end with the service), is reconnected, which also proves that a gone
    // peer leaves nothing behind.
    void reset()
    {
        QList<quint64> gone;
        for (Slot *slot : {&m_service, &m_client}) {
            if (slot->peer->closeReceived || slot->peer->disconnected || !m_broker->grantsOf(slot->id).isEmpty()) {
                slot->peer->abort();
                gone.append(slot->id);
            }
        }
        if (!gone.isEmpty()) {
            fuzzCheck(waitUntil([&] {
                          return std::none_of(gone.cbegin(), gone.cend(),
                                              [this](quint64 id) { return m_broker->peer(id).has_value(); });
                      }),
                      "a disconnected peer stays in Broker::peers()");
            for (const quint64 id : std::as_const(gone)) {
                fuzzCheck(m_broker->subscriptionsOf(id).isEmpty(), "a gone peer keeps subscriptions");
                fuzzCheck(m_broker->grantsOf(id).isEmpty(), "a gone peer keeps grants");
                const QList<RequestInfo> pending = m_broker->pendingRequests();
                fuzzCheck(std::none_of(pending.cbegin(), pending.cend(),
                                       [id](const RequestInfo &r) { return r.requester == id || r.responder == id; }),
                          "a gone peer keeps requests");
            }
            for (Slot *slot : {&m_service, &m_client}) {
                if (gone.contains(slot->id))
                    connect(*slot);
            }
        }

        QList<Slot *> cleaned;
        const QList<RequestInfo> pending = m_broker->pendingRequests();
        for (const RequestInfo &r : pending) {
            if (r.responder == m_service.id) {
                // Binary: targets and tokens are bytes a peer chose, not always UTF-8.
                m_service.peer->sendBinary("RES " + r.target + "\nReqID: " + r.token + "\n.\n");
                if (!cleaned.contains(&m_service))
                    cleaned.append(&m_service);
            }
        }
        for (Slot *slot : {&m_service, &m_client}) {
            const QList<QByteArray> patterns = m_broker->subscriptionsOf(slot->id);
            for (const QByteArray &pattern : patterns)
                slot->peer->sendBinary("UNSUB " + pattern + "\n.\n");
            if (!patterns.isEmpty() && !cleaned.contains(slot))
                cleaned.append(slot);
        }
        if (!cleaned.isEmpty()) {
            for (Slot *slot : std::as_const(cleaned))
                startSync(*slot);
            fuzzCheck(waitUntil([&cleaned] {
                          return std::all_of(cleaned.cbegin(), cleaned.cend(),
                                             [](Slot *slot) { return slot->synced || slot->peer->failed(); });
                      }),
                      "the broker did not answer the reset's OPT");
            for (Slot *slot : std::as_const(cleaned))
                fuzzCheck(slot->synced, "the broker closed a peer for UNSUB or RES");
        }
        checkBaseline();
    }

    // What the broker must look like between inputs.
    void checkBaseline()
    {
        fuzzCheck(waitUntil([this] { return m_broker->connectionCount() == 3; }),
                  "connections linger after their peers left", QByteArray::number(m_broker->connectionCount()));
        fuzzCheck(m_broker->peers().size() == 3, "Broker::peers() does not list exactly the three peers");
        fuzzCheck(m_broker->pendingRequests().isEmpty(), "requests stay pending with nobody to answer them");
        QList<GrantTable::Grant> grants = m_broker->grants();
        fuzzCheck(grants.size() == 3, "grants other than the permanent ones remain",
                  QByteArray::number(grants.size()));
        fuzzCheck(m_broker->subscriptionsOf(m_bystander.id) == QList<QByteArray>{kEchoTarget},
                  "the bystander's subscription changed");
        fuzzCheck(m_broker->subscriptionsOf(m_service.id).isEmpty() && m_broker->subscriptionsOf(m_client.id).isEmpty(),
                  "subscriptions remain after the reset");
    }

private:
    SessionHarness()
    {
        // The broker logs every connection at info level: too much for millions of inputs.
        QLoggingCategory::setFilterRules(QStringLiteral("middleman.*.debug=false\nmiddleman.*.info=false"));
        static int argc = 1;
        static char name[] = "fuzz";
        static char *argv[] = {name, nullptr};
        if (!QCoreApplication::instance())
            new QCoreApplication(argc, argv);
        m_loop = std::make_unique<QEventLoop>();
        const BrokerConfig config = harnessConfig();
        QString error;
        fuzzCheck(config.validate(&error), "harness config invalid", error.toUtf8());
        m_broker = std::make_unique<Broker>(config);
        fuzzCheck(m_broker->listen(), "listen failed", m_broker->errorString().toUtf8());
        m_bystander.key = kBystanderKey;
        m_service.key = kServiceKey;
        m_client.key = kClientKey;
        connect(m_bystander);
        m_bystander.peer->sendText("SUB " + kEchoTarget + "\n.\n");
        connect(m_service);
        connect(m_client);
        settle([](int) { return false; });
        checkBaseline();
    }

    void answer(const Message &request)
    {
        m_bystander.peer->sendBinary("RES " + request.target + "\nReqID: " + request.header(HeaderName::ReqId)
                                   + "\n\nanswered\n.\n");
    }

    quint64 idByPort(quint16 port) const
    {
        const QList<PeerInfo> peers = m_broker->peers();
        for (const PeerInfo &peer : peers) {
            if (peer.port == port)
                return peer.id;
        }
        return 0;
    }

    std::unique_ptr<QEventLoop> m_loop;
    std::unique_ptr<Broker> m_broker;
    Slot m_bystander;
    Slot m_service;
    Slot m_client;
    quint64 m_tags = 0;
};

} // namespace Middleman::Fuzz
