// ZeroMQ subscriber for the crackseg mask stream (edge/WIRE.md, "Transport").
//
// The C++ counterpart of crackseg.edge.runtime.sinks.subscribe.Subscriber: one SUB socket on one topic, the
// contract's loopback default, CurveZMQ as the option for links that leave the vehicle. receive()
// strips the topic, decodes with crackseg::decode_message and hands out valid messages only;
// malformed ones are counted and skipped, because a subscriber faces whatever arrives.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "crackseg/wire.hpp"

namespace crackseg {

inline constexpr const char* kDefaultEndpoint = "tcp://127.0.0.1:5557";
inline constexpr const char* kDefaultTopic = "crackseg/mask";
inline constexpr std::size_t kCurveKeyLen = 40;  // a CurveZMQ key as Z85 text

// A socket that could not be set up or used (bad endpoint or key, no CurveZMQ in libzmq, context
// terminated), or a key file that holds no key. Malformed messages are not errors: see rejected().
class SubscriberError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// CurveZMQ keys of a subscriber (the Curve client), Z85 text of kCurveKeyLen characters each. Leave both client
// keys empty for an ephemeral keypair (enough when the publisher does not authenticate clients).
struct CurveClientKeys {
    std::string server_public;  // the publisher's (Curve server's) public key
    std::string client_public;
    std::string client_secret;
};

struct SubscriberOptions {
    std::string endpoint = kDefaultEndpoint;
    std::string topic = kDefaultTopic;  // must not be a prefix of another topic on the same endpoint
    // Keep only the newest message (ZMQ_CONFLATE, safe since every message is one frame), so a control
    // loop never works through a backlog. With several topics use one subscriber each.
    bool conflate = true;
    int receive_hwm = 1000;  // queue depth when conflate is false
    std::optional<CurveClientKeys> curve;
};

// Outcome of receive(): whether a valid message arrived, and when.
struct Received {
    bool message = false;  // false: nothing valid arrived in time (or a signal interrupted the wait)
    // Wall-clock time the message left the socket, ns since the Unix epoch, comparable with
    // MaskMessage::capture_ns for capture-to-receive latency (across hosts, synchronise the clocks).
    std::int64_t receive_ns = 0;

    explicit operator bool() const noexcept { return message; }
};

// Owns its ZeroMQ context and socket; movable, not copyable. Like any ZeroMQ socket it is not
// thread-safe: use it from one thread at a time.
class Subscriber {
public:
    // Connects (ZeroMQ connects in the background: the publisher may start later); throws SubscriberError.
    explicit Subscriber(const SubscriberOptions& options = {});

    // Waits up to `timeout` for the next valid message and decodes it into `out`, reusing its buffers.
    Received receive(MaskMessage& out, std::chrono::milliseconds timeout);

    std::uint64_t received() const noexcept { return received_; }  // valid messages, frames and heartbeats
    std::uint64_t rejected() const noexcept { return rejected_; }  // malformed messages skipped
    std::uint64_t missed() const noexcept { return missed_; }      // messages never seen, from gaps in seq
    WireError last_error() const noexcept { return last_error_; }  // why the latest rejected message was

private:
    struct ContextCloser {
        void operator()(void* context) const noexcept;
    };
    struct SocketCloser {
        void operator()(void* socket) const noexcept;
    };

    // Decodes one received frame; false (and counted) when it is malformed.
    bool accept(const std::uint8_t* data, std::size_t size, MaskMessage& out);

    // Declared in this order so the socket closes before its context terminates.
    std::unique_ptr<void, ContextCloser> context_;
    std::unique_ptr<void, SocketCloser> socket_;
    std::string topic_;
    std::uint64_t received_ = 0;
    std::uint64_t rejected_ = 0;
    std::uint64_t missed_ = 0;
    std::optional<std::uint64_t> last_seq_;
    WireError last_error_ = WireError::ok;
};

// A CurveZMQ key (40 Z85 characters) from a file holding just the key, or from a ZeroMQ certificate
// (pyzmq's zmq.auth.create_certificates), whose secret key is taken when present, else its public key.
// Keys belong in files, not on command lines where `ps` shows them. Throws SubscriberError.
std::string load_curve_key(const std::string& path);

}  // namespace crackseg
