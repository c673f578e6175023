// crackseg::Subscriber against a libzmq PUB socket on loopback: topic handling, the received /
// rejected / missed counters, set-up errors, and CurveZMQ key files in every form load_curve_key reads.
#include <zmq.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "check.hpp"
#include "crackseg/subscriber.hpp"
#include "message_builder.hpp"

namespace {

using crackseg_test::Bytes;
using crackseg_test::Case;

// A bound PUB socket on a free loopback port, owned for one test case.
class Publisher {
public:
    Publisher() : context_(zmq_ctx_new()), socket_(zmq_socket(context_, ZMQ_PUB)) {
        const int linger = 0;
        zmq_setsockopt(socket_, ZMQ_LINGER, &linger, sizeof linger);
        zmq_bind(socket_, "tcp://127.0.0.1:*");
        char endpoint[256];
        std::size_t size = sizeof endpoint;
        zmq_getsockopt(socket_, ZMQ_LAST_ENDPOINT, endpoint, &size);
        endpoint_ = endpoint;
    }
    ~Publisher() {
        zmq_close(socket_);
        zmq_ctx_term(context_);
    }
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    const std::string& endpoint() const { return endpoint_; }

    void send(const std::string& topic, const Bytes& body) {
        Bytes frame(topic.begin(), topic.end());
        frame.insert(frame.end(), body.begin(), body.end());
        zmq_send(socket_, frame.data(), frame.size(), 0);
    }

private:
    void* context_;
    void* socket_;
    std::string endpoint_;
};

Bytes heartbeat(std::uint64_t seq) {
    crackseg::MaskMessage msg;
    msg.seq = seq;
    return crackseg_test::encode_message(msg, {});
}

// PUB drops messages until the subscription has propagated: repeat a heartbeat until one arrives, then
// drain the copies so each case starts from an empty queue with the link up.
bool connect(Publisher& pub, crackseg::Subscriber& sub) {
    crackseg::MaskMessage msg;
    for (int attempt = 0; attempt < 500; ++attempt) {
        pub.send(crackseg::kDefaultTopic, heartbeat(1));
        if (sub.receive(msg, std::chrono::milliseconds(10))) {
            while (sub.receive(msg, std::chrono::milliseconds(50))) {
            }
            return true;
        }
    }
    return false;
}

crackseg::SubscriberOptions options_for(const Publisher& pub) {
    crackseg::SubscriberOptions options;
    options.endpoint = pub.endpoint();
    options.conflate = false;  // the cases count every message
    return options;
}

std::string write_file(const std::string& name, const std::string& text) {
    const std::string path = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/" + name;
    std::ofstream(path) << text;
    return path;
}

template <typename F>
bool throws_subscriber_error(F&& f) {
    try {
        f();
    } catch (const crackseg::SubscriberError&) {
        return true;
    }
    return false;
}

constexpr const char* kKeyA = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
constexpr const char* kKeyB = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";

const std::vector<Case> kCases = {
    {"valid messages arrive; malformed ones and seq gaps are counted",
     [] {
         Publisher pub;
         crackseg::Subscriber sub(options_for(pub));
         CHECK(connect(pub, sub));
         const std::uint64_t received = sub.received();
         pub.send(crackseg::kDefaultTopic, Bytes{1, 2, 3});  // malformed body
         pub.send("crackseg/mask2", heartbeat(2));           // a longer topic slips through the prefix match
         pub.send("other/topic", heartbeat(3));              // not subscribed: never delivered
         pub.send(crackseg::kDefaultTopic, heartbeat(5));    // 2, 3 and 4 never arrive here
         crackseg::MaskMessage msg;
         const crackseg::Received got = sub.receive(msg, std::chrono::seconds(5));
         CHECK(got.message);
         CHECK_EQ(msg.seq, 5u);
         CHECK(got.receive_ns > 0);
         CHECK_EQ(sub.received(), received + 1);
         CHECK_EQ(sub.rejected(), 2u);
         CHECK_EQ(sub.last_error(), crackseg::WireError::bad_magic);
         CHECK_EQ(sub.missed(), 3u);
     }},
    {"receive times out when nothing arrives",
     [] {
         Publisher pub;
         crackseg::Subscriber sub(options_for(pub));
         crackseg::MaskMessage msg;
         const auto start = std::chrono::steady_clock::now();
         CHECK(!sub.receive(msg, std::chrono::milliseconds(50)));
         CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(50));
     }},
    {"conflation keeps only the newest message",
     [] {
         Publisher pub;
         crackseg::SubscriberOptions options = options_for(pub);
         options.conflate = true;
         crackseg::Subscriber sub(options);
         CHECK(connect(pub, sub));
         for (std::uint64_t seq = 10; seq < 20; ++seq) {
             pub.send(crackseg::kDefaultTopic, heartbeat(seq));
         }
         std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let all ten arrive
         crackseg::MaskMessage msg;
         CHECK(sub.receive(msg, std::chrono::seconds(5)).message);
         CHECK_EQ(msg.seq, 19u);
         CHECK(!sub.receive(msg, std::chrono::milliseconds(50)));
     }},
    {"an invalid endpoint or Curve key is a SubscriberError",
     [] {
         crackseg::SubscriberOptions options;
         options.endpoint = "nonsense://x";
         CHECK(throws_subscriber_error([&] { crackseg::Subscriber sub(options); }));
         options.endpoint = crackseg::kDefaultEndpoint;
         options.curve = crackseg::CurveClientKeys{"too short", "", ""};
         CHECK(throws_subscriber_error([&] { crackseg::Subscriber sub(options); }));
         options.curve = crackseg::CurveClientKeys{kKeyA, kKeyB, ""};  // half a keypair
         CHECK(throws_subscriber_error([&] { crackseg::Subscriber sub(options); }));
         options.curve = crackseg::CurveClientKeys{kKeyA, "", ""};  // ephemeral client keypair
         CHECK(!throws_subscriber_error([&] { crackseg::Subscriber sub(options); }));
     }},
    {"load_curve_key reads bare keys and ZeroMQ certificates",
     [] {
         CHECK_EQ(crackseg::load_curve_key(write_file("crackseg_bare.key", std::string(kKeyA) + "\n")),
                  std::string(kKeyA));
         const std::string cert = std::string("#   ZeroMQ CURVE **Secret** Certificate\n") +
                                  "metadata\ncurve\n    public-key = \"" + kKeyA + "\"\n    secret-key = \"" + kKeyB +
                                  "\"\n";
         CHECK_EQ(crackseg::load_curve_key(write_file("crackseg_cert.key_secret", cert)), std::string(kKeyB));
         const std::string public_cert = std::string("curve\n    public-key = \"") + kKeyA + "\"\n";
         CHECK_EQ(crackseg::load_curve_key(write_file("crackseg_cert.key", public_cert)), std::string(kKeyA));
         CHECK(throws_subscriber_error([] { crackseg::load_curve_key(write_file("crackseg_bad.key", "short\n")); }));
         CHECK(throws_subscriber_error([] { crackseg::load_curve_key("/nonexistent/crackseg.key"); }));
     }},
};

}  // namespace

int main() { return crackseg_test::run_all(kCases); }
