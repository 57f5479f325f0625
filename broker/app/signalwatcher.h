#pragma once
// SignalWatcher: SIGINT and SIGTERM delivered to the event loop as a Qt signal
// (through a socket pair, the async-signal-safe way). One per process.

#include <QObject>

class QSocketNotifier;

namespace Middleman {

class SignalWatcher : public QObject
{
    Q_OBJECT
public:
    explicit SignalWatcher(QObject *parent = nullptr);
    ~SignalWatcher() override;

    // False when the socket pair could not be made (errorString() says why).
    bool isValid() const { return m_notifier != nullptr; }
    QString errorString() const { return m_error; }

Q_SIGNALS:
    // The first SIGINT or SIGTERM. A second one gets the default action (the
    // process ends), so a stop that hangs can still be forced.
    void stopRequested(int signal);

private:
    QSocketNotifier *m_notifier = nullptr;
    QString m_error;
};

} // namespace Middleman
