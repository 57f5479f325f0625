#pragma once
// The daemon `middleman` run as a process by a test, with everything it printed
// collected as it arrives. MIDDLEMAN_BIN_DIR is where the build put it.

#include <QByteArray>
#include <QObject>
#include <QProcess>
#include <QProcessEnvironment>
#include <QTest>
#include <QUrl>

namespace Middleman::Testing {

inline QString daemonPath()
{
    return QStringLiteral(MIDDLEMAN_BIN_DIR) + QStringLiteral("/middleman");
}

class DaemonProcess : public QObject
{
    Q_OBJECT
public:
    DaemonProcess()
    {
        // ctest's QT_LOGGING_RULES would override --log-level; the daemon's own
        // settings are what is tested.
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.remove(QStringLiteral("QT_LOGGING_RULES"));
        process.setProcessEnvironment(env);
        connect(&process, &QProcess::readyReadStandardOutput, this, [this] { out += process.readAllStandardOutput(); });
        connect(&process, &QProcess::readyReadStandardError, this, [this] { err += process.readAllStandardError(); });
    }
    ~DaemonProcess() override
    {
        if (process.state() != QProcess::NotRunning) {
            process.kill();
            process.waitForFinished(5000);
        }
    }

    bool start(const QStringList &args, const QString &workDir = {})
    {
        if (!workDir.isEmpty())
            process.setWorkingDirectory(workDir);
        process.start(daemonPath(), args);
        return process.waitForStarted(5000);
    }

    // Waits until standard output holds `needle` (false if the process ends first).
    bool waitForOutput(const QByteArray &needle, int timeoutMs = 10000)
    {
        return QTest::qWaitFor(
                   [&] { return out.contains(needle) || process.state() == QProcess::NotRunning; }, timeoutMs)
            && out.contains(needle);
    }

    // The URL from the whole line "middleman listening on <url>".
    QUrl waitForListening()
    {
        const QByteArray marker = "middleman listening on ";
        if (!QTest::qWaitFor([&] { return (out.contains(marker) && out.indexOf('\n', out.indexOf(marker)) > 0)
                                       || process.state() == QProcess::NotRunning; },
                             10000)
            || !out.contains(marker)) {
            return {};
        }
        const qsizetype start = out.indexOf(marker) + marker.size();
        return QUrl(QString::fromUtf8(out.mid(start, out.indexOf('\n', start) - start)));
    }

    // Waits for the exit; what it printed last is in out and err afterwards.
    bool waitForFinished(int timeoutMs = 10000)
    {
        const bool done = QTest::qWaitFor([&] { return process.state() == QProcess::NotRunning; }, timeoutMs);
        out += process.readAllStandardOutput();
        err += process.readAllStandardError();
        return done;
    }

    // SIGTERM; true on a clean exit with code 0.
    bool stop()
    {
        process.terminate();
        return waitForFinished() && process.exitStatus() == QProcess::NormalExit && process.exitCode() == 0;
    }

    QProcess process;
    QByteArray out;
    QByteArray err;
};

} // namespace Middleman::Testing
