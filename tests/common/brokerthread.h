#pragma once
// BrokerThread: a Broker on a QThread of its own, as the console runs it
// (gui/main.cpp, BrokerHost), for tests whose peers run on the test's thread.
// Header-only. Everything the test does with the broker goes through call(): a
// blocking queued call onto the broker's thread, never a direct call across
// threads.

#include "broker.h"
#include "testpeer.h"

#include <QThread>

#include <utility>

namespace Middleman::Testing {

class BrokerThread
{
public:
    explicit BrokerThread(const BrokerConfig &config)
    {
        m_thread.setObjectName(QStringLiteral("broker"));
        m_thread.start();
        m_anchor.moveToThread(&m_thread);
        call([&] {
            m_broker = new Broker(config);
            m_listening = m_broker->listen();
            m_url = m_broker->serverUrl();
        });
    }
    ~BrokerThread()
    {
        call([&] {
            delete m_broker;
            m_broker = nullptr;
        });
        m_thread.quit();
        m_thread.wait();
    }
    BrokerThread(const BrokerThread &) = delete;
    BrokerThread &operator=(const BrokerThread &) = delete;

    // Runs f on the broker's thread and waits for it: the only way to touch the broker.
    template <typename F>
    void call(F &&f)
    {
        QMetaObject::invokeMethod(&m_anchor, std::forward<F>(f), Qt::BlockingQueuedConnection);
    }
    // For connect() to its signals only (connect is thread-safe; calls are not).
    Broker *signalSource() const { return m_broker; }
    bool isListening() const { return m_listening; }
    QUrl url() const { return m_url; }

    BrokerStats stats()
    {
        BrokerStats out;
        call([&] { out = m_broker->stats(); });
        return out;
    }
    qsizetype connectionCount()
    {
        qsizetype out = 0;
        call([&] { out = m_broker->connectionCount(); });
        return out;
    }
    quint64 idByPort(quint16 port)
    {
        quint64 out = 0;
        call([&] { out = peerIdByPort(*m_broker, port); });
        return out;
    }

private:
    QThread m_thread;
    QObject m_anchor; // lives on m_thread; the context of every call
    Broker *m_broker = nullptr;
    bool m_listening = false;
    QUrl m_url;
};

} // namespace Middleman::Testing
