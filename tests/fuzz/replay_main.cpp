// Replays stored inputs through a fuzz target's LLVMFuzzerTestOneInput, for the normal
// build and ctest (docs/fuzzing.md): every seed and every regression fixture stays green.
// Arguments: directories; every regular file in them, in name order, is one input.

#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <cstdint>
#include <cstdio>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

int main(int argc, char **argv)
{
    const QStringList dirs = [&] {
        QStringList out;
        for (int i = 1; i < argc; ++i)
            out.append(QString::fromLocal8Bit(argv[i]));
        return out;
    }();
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    int inputs = 0;
    for (const QString &dir : dirs) {
        const QFileInfo dirInfo(dir);
        if (!dirInfo.isDir()) {
            std::fprintf(stderr, "not a directory: %s\n", qPrintable(dir));
            return 2;
        }
        const QFileInfoList files = QDir(dir).entryInfoList(QDir::Files, QDir::Name);
        for (const QFileInfo &file : files) {
            QFile in(file.filePath());
            if (!in.open(QIODevice::ReadOnly)) {
                std::fprintf(stderr, "cannot read %s\n", qPrintable(file.filePath()));
                return 2;
            }
            const QByteArray data = in.readAll();
            std::fprintf(stderr, "replay %s (%lld bytes)\n", qPrintable(file.filePath()), static_cast<long long>(data.size()));
            LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t *>(data.constData()), size_t(data.size()));
            ++inputs;
        }
    }
    std::fprintf(stderr, "%d inputs replayed\n", inputs);
    return inputs > 0 ? 0 : 1;
}
