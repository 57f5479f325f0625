#pragma once
// fuzzCheck: the one exit of every fuzz target's properties. A violated property
// prints what failed and aborts, so libFuzzer saves the input as a crash and a
// replay test fails. Header-only, no thread affinity.

#include <QByteArray>
#include <QByteArrayView>

#include <cstdio>
#include <cstdlib>

namespace Middleman {

[[noreturn]] inline void fuzzFail(const char *what, const QByteArray &detail = {})
{
    std::fprintf(stderr, "fuzz property violated: %s\n  detail (%lld bytes): %s\n", what,
                 static_cast<long long>(detail.size()),
                 detail.left(512).toPercentEncoding(" :.-_/").constData());
    std::fflush(stderr);
    std::abort();
}

inline void fuzzCheck(bool ok, const char *what, QByteArrayView detail = {})
{
    if (!ok) [[unlikely]]
        fuzzFail(what, detail.toByteArray());
}

} // namespace Middleman
