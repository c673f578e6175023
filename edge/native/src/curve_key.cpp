// Reading CurveZMQ keys from files, as crackseg.edge.runtime.sinks.publish_zmq.load_curve_key does.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "crackseg/subscriber.hpp"

namespace crackseg {
namespace {

constexpr const char* kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

// The quoted value of a `name = "..."` line in a ZeroMQ certificate (ZPL), or "" when absent.
std::string certificate_field(const std::string& text, const std::string& name) {
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        const std::size_t start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line.compare(start, name.size(), name) != 0) {
            continue;
        }
        const std::size_t open = line.find('"', start + name.size());
        const std::size_t close = open == std::string::npos ? open : line.find('"', open + 1);
        return close == std::string::npos ? std::string() : line.substr(open + 1, close - open - 1);
    }
    return {};
}

std::string trimmed(const std::string& text) {
    const char* blank = " \t\r\n";
    const std::size_t first = text.find_first_not_of(blank);
    return first == std::string::npos ? std::string() : text.substr(first, text.find_last_not_of(blank) - first + 1);
}

}  // namespace

std::string load_curve_key(const std::string& path) {
    std::ifstream file(path);
    if (!file) {
        throw SubscriberError("cannot read CurveZMQ key file " + path + ": " + std::strerror(errno));
    }
    const std::string text{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
    std::string key = trimmed(text);
    if (text.find("public-key") != std::string::npos) {
        key = certificate_field(text, "secret-key");
        if (key.empty()) {
            key = certificate_field(text, "public-key");
        }
    }
    if (key.size() != kCurveKeyLen || key.find_first_not_of(kZ85Alphabet) != std::string::npos) {
        throw SubscriberError(path + " does not hold a CurveZMQ key (40 Z85 characters)");
    }
    return key;
}

}  // namespace crackseg
