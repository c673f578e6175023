// crackseg_listen_cpp: `crackseg listen` in C++, the smallest useful controller.
//
// Subscribes to the mask stream and prints one line per mask frame, in the same format and with the
// same options as the Python command (crackseg.edge.cli.listen; the live test compares the two):
//   seq      7  frame    100  latency     3.2 ms  coverage   4.69 %  components    2  skeleton     14 px  max ...
// Heartbeats are not printed. Exits 0 after --count frames (or on Ctrl-C), 1 when nothing at all
// arrived for --timeout seconds; messages missed (sequence gaps) and rejected go to stderr at the end.
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "crackseg/subscriber.hpp"

namespace {

constexpr const char* kUsage =
    "usage: crackseg_listen_cpp [--connect URL] [--topic TOPIC] [--count N] [--timeout S] [--conflate]\n"
    "                           [--curve-server-key FILE [--curve-public-key FILE --curve-secret-key FILE]]\n"
    "  --connect URL             publisher address (default: tcp://127.0.0.1:5557)\n"
    "  --topic TOPIC             topic prefix (default: crackseg/mask)\n"
    "  --count N                 exit after N mask frames (default: run until Ctrl-C)\n"
    "  --timeout S               fail when nothing arrives for S seconds (default 0: wait forever)\n"
    "  --conflate                keep only the newest message (a control loop's view)\n"
    "  --curve-server-key FILE   the publisher's CurveZMQ public key: enables encryption\n"
    "  --curve-public-key FILE   this client's public key (default: an ephemeral keypair)\n"
    "  --curve-secret-key FILE   this client's secret key\n"
    "key files hold a bare Z85 key or a ZeroMQ certificate (zmq.auth.create_certificates)\n";

volatile std::sig_atomic_t g_stop = 0;

extern "C" void request_stop(int /*signal*/) { g_stop = 1; }

struct Args {
    crackseg::SubscriberOptions options;
    long count = 0;  // 0: no limit
    double timeout_s = 0;
    std::string server_key, public_key, secret_key;  // key files
};

[[noreturn]] void usage_error(const std::string& message) {
    std::fprintf(stderr, "crackseg_listen_cpp: %s\n%s", message.c_str(), kUsage);
    std::exit(2);
}

long parse_count(const char* text) {
    char* end = nullptr;
    const long value = std::strtol(text, &end, 10);
    if (end == text || *end != '\0' || value < 1) {
        usage_error(std::string("--count must be an integer of at least 1, got '") + text + "'");
    }
    return value;
}

double parse_seconds(const char* text) {
    char* end = nullptr;
    const double value = std::strtod(text, &end);
    if (end == text || *end != '\0' || !(value >= 0)) {
        usage_error(std::string("--timeout must be a number of seconds >= 0, got '") + text + "'");
    }
    return value;
}

Args parse_args(int argc, char** argv) {
    Args args;
    args.options.conflate = false;  // as `crackseg listen`: show every frame unless asked otherwise
    for (int i = 1; i < argc; ++i) {
        const std::string flag = argv[i];
        if (flag == "-h" || flag == "--help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        }
        if (flag == "--conflate") {
            args.options.conflate = true;
            continue;
        }
        if (i + 1 >= argc) {
            usage_error("unknown option or missing value: " + flag);
        }
        const char* value = argv[++i];
        if (flag == "--connect") {
            args.options.endpoint = value;
        } else if (flag == "--topic") {
            args.options.topic = value;
        } else if (flag == "--count") {
            args.count = parse_count(value);
        } else if (flag == "--timeout") {
            args.timeout_s = parse_seconds(value);
        } else if (flag == "--curve-server-key") {
            args.server_key = value;
        } else if (flag == "--curve-public-key") {
            args.public_key = value;
        } else if (flag == "--curve-secret-key") {
            args.secret_key = value;
        } else {
            usage_error("unknown option: " + flag);
        }
    }
    if (args.server_key.empty() && !(args.public_key.empty() && args.secret_key.empty())) {
        usage_error("a CurveZMQ client keypair needs --curve-server-key too");
    }
    return args;
}

// Loads the key files named on the command line (after parsing, so usage errors come first).
void load_keys(Args& args) {
    if (args.server_key.empty()) {
        return;
    }
    crackseg::CurveClientKeys keys;
    keys.server_public = crackseg::load_curve_key(args.server_key);
    if (!args.public_key.empty()) {
        keys.client_public = crackseg::load_curve_key(args.public_key);
    }
    if (!args.secret_key.empty()) {
        keys.client_secret = crackseg::load_curve_key(args.secret_key);
    }
    args.options.curve = keys;
}

void print_frame(const crackseg::MaskMessage& msg, std::int64_t receive_ns) {
    const crackseg::CrackStats& s = msg.stats;
    const double latency_ms = static_cast<double>(receive_ns - msg.capture_ns) / 1e6;
    std::printf("seq %6" PRIu64 "  frame %6" PRIu64 "  latency %7.1f ms  coverage %6.2f %%  components %4" PRIu32
                "  skeleton %6" PRIu32 " px  max width %5.1f px\n",
                msg.seq, msg.frame_id, latency_ms, static_cast<double>(s.coverage_pct), s.components, s.skeleton_px,
                static_cast<double>(s.max_width_px));
    std::fflush(stdout);  // one line per frame as it arrives, even into a pipe
}

int listen(const Args& args) {
    crackseg::Subscriber subscriber(args.options);
    crackseg::MaskMessage msg;
    auto last_heard = std::chrono::steady_clock::now();
    long frames = 0;
    int status = 0;
    while (!g_stop && (args.count == 0 || frames < args.count)) {
        const crackseg::Received got = subscriber.receive(msg, std::chrono::milliseconds(100));
        const auto now = std::chrono::steady_clock::now();
        if (!got) {
            if (args.timeout_s > 0 && now - last_heard >= std::chrono::duration<double>(args.timeout_s)) {
                std::fprintf(stderr,
                             "crackseg_listen_cpp: nothing received from %s for %g s (is 'crackseg run' publishing "
                             "there, with the same topic and keys?)\n",
                             args.options.endpoint.c_str(), args.timeout_s);
                status = 1;
                break;
            }
            continue;
        }
        last_heard = now;
        if (!msg.is_heartbeat()) {
            print_frame(msg, got.receive_ns);
            ++frames;
        }
    }
    if (subscriber.missed() > 0 || subscriber.rejected() > 0) {
        std::fprintf(stderr, "%" PRIu64 " message(s) missed (sequence gaps), %" PRIu64 " malformed (last: %s)\n",
                     subscriber.missed(), subscriber.rejected(), crackseg::to_string(subscriber.last_error()));
    }
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    Args args = parse_args(argc, argv);
    std::signal(SIGINT, request_stop);
    std::signal(SIGTERM, request_stop);
    try {
        load_keys(args);
        return listen(args);
    } catch (const crackseg::SubscriberError& e) {
        std::fprintf(stderr, "crackseg_listen_cpp: %s\n", e.what());
        return 1;
    }
}
