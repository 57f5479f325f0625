#pragma once

#include <string>

namespace bench {

// Markdown bullet list describing the machine the benchmark ran on: CPU model,
// logical CPUs, memory, kernel, OS, open-file limit and the current load
// average. Every line is read at call time; unreadable items say "unknown".
std::string describeMachine();

} // namespace bench
