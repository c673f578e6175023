// A minimal test harness: named test functions, CHECK/CHECK_EQ that record failures and keep going,
// and an exit status for ctest. Enough for these suites without a test-framework dependency.
#pragma once

#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace crackseg_test {

inline int& failures() {
    static int count = 0;
    return count;
}

inline void fail(const char* file, int line, const std::string& what) {
    ++failures();
    std::fprintf(stderr, "%s:%d: FAILED %s\n", file, line, what.c_str());
}

template <typename T, typename = void>
struct has_to_string : std::false_type {};
template <typename T>
struct has_to_string<T, std::void_t<decltype(to_string(std::declval<T>()))>> : std::true_type {};

// How a value appears in a failure message: enums by name where their namespace has a to_string
// (found by ADL, e.g. crackseg::WireError), bytes as numbers rather than characters.
template <typename T>
auto printable(const T& value) {
    if constexpr (has_to_string<T>::value) {
        return std::string(to_string(value));
    } else if constexpr (std::is_enum_v<T>) {
        return +static_cast<std::underlying_type_t<T>>(value);
    } else if constexpr (std::is_arithmetic_v<T>) {
        return +value;
    } else {
        return value;
    }
}

template <typename A, typename B>
void check_eq(const A& actual, const B& expected, const char* text, const char* file, int line) {
    if (!(actual == expected)) {
        std::ostringstream out;
        out << text << ": got " << printable(actual) << ", expected " << printable(expected);
        fail(file, line, out.str());
    }
}

struct Case {
    std::string name;
    std::function<void()> run;
};

// Runs every case, printing each name so a crash points at its case; returns the process status.
inline int run_all(const std::vector<Case>& cases) {
    for (const Case& c : cases) {
        const int before = failures();
        c.run();
        std::printf("%s %s\n", failures() == before ? "ok  " : "FAIL", c.name.c_str());
        std::fflush(stdout);
    }
    std::printf("%d failure(s)\n", failures());
    return failures() == 0 ? 0 : 1;
}

}  // namespace crackseg_test

#define CHECK(cond) ((cond) ? void() : crackseg_test::fail(__FILE__, __LINE__, #cond))
#define CHECK_EQ(actual, expected) \
    crackseg_test::check_eq((actual), (expected), #actual " == " #expected, __FILE__, __LINE__)
