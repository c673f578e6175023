// The SUB socket behind crackseg::Subscriber, on libzmq's C API (no cppzmq dependency).
#include "crackseg/subscriber.hpp"

#include <zmq.h>

#include <cerrno>
#include <cstring>

namespace crackseg {
namespace {

[[noreturn]] void fail(const std::string& what) { throw SubscriberError(what + ": " + zmq_strerror(zmq_errno())); }

void set_option(void* socket, int option, const void* value, std::size_t size, const char* name) {
    if (zmq_setsockopt(socket, option, value, size) != 0) {
        fail(std::string("cannot set ") + name);
    }
}

void set_int(void* socket, int option, int value, const char* name) {
    set_option(socket, option, &value, sizeof value, name);
}

void set_curve_keys(void* socket, const CurveClientKeys& keys) {
    if (!zmq_has("curve")) {
        throw SubscriberError("this libzmq was built without CurveZMQ support");
    }
    if (keys.client_public.empty() != keys.client_secret.empty()) {
        throw SubscriberError("a CurveZMQ client keypair needs both the public and the secret key");
    }
    std::string public_key = keys.client_public;
    std::string secret_key = keys.client_secret;
    if (public_key.empty()) {
        char z85_public[kCurveKeyLen + 1];
        char z85_secret[kCurveKeyLen + 1];
        if (zmq_curve_keypair(z85_public, z85_secret) != 0) {
            fail("cannot generate a CurveZMQ keypair");
        }
        public_key = z85_public;
        secret_key = z85_secret;
    }
    if (keys.server_public.size() != kCurveKeyLen || public_key.size() != kCurveKeyLen ||
        secret_key.size() != kCurveKeyLen) {
        throw SubscriberError("CurveZMQ keys must be Z85 text of 40 characters");
    }
    set_option(socket, ZMQ_CURVE_SERVERKEY, keys.server_public.data(), kCurveKeyLen, "the CurveZMQ server key");
    set_option(socket, ZMQ_CURVE_PUBLICKEY, public_key.data(), kCurveKeyLen, "the CurveZMQ public key");
    set_option(socket, ZMQ_CURVE_SECRETKEY, secret_key.data(), kCurveKeyLen, "the CurveZMQ secret key");
}

// Owns one received frame until it is decoded.
class Frame {
public:
    Frame() { zmq_msg_init(&msg_); }
    ~Frame() { zmq_msg_close(&msg_); }
    Frame(const Frame&) = delete;
    Frame& operator=(const Frame&) = delete;

    zmq_msg_t* get() { return &msg_; }
    const std::uint8_t* data() { return static_cast<const std::uint8_t*>(zmq_msg_data(&msg_)); }
    std::size_t size() { return zmq_msg_size(&msg_); }

private:
    zmq_msg_t msg_;
};

std::int64_t now_ns() {
    using namespace std::chrono;
    return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

void Subscriber::ContextCloser::operator()(void* context) const noexcept { zmq_ctx_term(context); }

void Subscriber::SocketCloser::operator()(void* socket) const noexcept { zmq_close(socket); }

Subscriber::Subscriber(const SubscriberOptions& options) : topic_(options.topic) {
    context_.reset(zmq_ctx_new());
    if (!context_) {
        fail("cannot create a ZeroMQ context");
    }
    socket_.reset(zmq_socket(context_.get(), ZMQ_SUB));
    if (!socket_) {
        fail("cannot create a ZeroMQ SUB socket");
    }
    void* socket = socket_.get();
    set_int(socket, ZMQ_LINGER, 0, "ZMQ_LINGER");  // closing never waits on the network
    // Options that shape the queue must precede connect.
    if (options.conflate) {
        set_int(socket, ZMQ_CONFLATE, 1, "ZMQ_CONFLATE");
    } else {
        set_int(socket, ZMQ_RCVHWM, options.receive_hwm, "ZMQ_RCVHWM");
    }
    if (options.curve) {
        set_curve_keys(socket, *options.curve);
    }
    set_option(socket, ZMQ_SUBSCRIBE, topic_.data(), topic_.size(), "the topic subscription");
    if (zmq_connect(socket, options.endpoint.c_str()) != 0) {
        fail("cannot connect to " + options.endpoint);
    }
}

Received Subscriber::receive(MaskMessage& out, std::chrono::milliseconds timeout) {
    using std::chrono::steady_clock;
    const auto deadline = steady_clock::now() + timeout;
    zmq_pollitem_t item{socket_.get(), 0, ZMQ_POLLIN, 0};
    for (;;) {
        // Rounded up, and polled again if zmq_poll's coarser clock wakes it early: never less than `timeout`.
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - steady_clock::now()).count();
        const int ready = zmq_poll(&item, 1, left > 0 ? static_cast<long>(left) : 0);
        if (ready < 0) {
            if (zmq_errno() == EINTR) {
                return {};  // a signal the caller may want to act on
            }
            fail("cannot poll the SUB socket");
        }
        if (ready == 0) {
            if (steady_clock::now() >= deadline) {
                return {};
            }
            continue;
        }
        Frame frame;
        if (zmq_msg_recv(frame.get(), socket_.get(), ZMQ_DONTWAIT) < 0) {
            if (zmq_errno() == EAGAIN || zmq_errno() == EINTR) {
                continue;
            }
            fail("cannot receive from the SUB socket");
        }
        const std::int64_t receive_ns = now_ns();
        if (accept(frame.data(), frame.size(), out)) {
            return {true, receive_ns};
        }
    }
}

bool Subscriber::accept(const std::uint8_t* data, std::size_t size, MaskMessage& out) {
    // libzmq delivers only frames that start with the subscribed prefix; checking costs nothing and
    // keeps a surprise from becoming an out-of-bounds read. A longer topic that slipped through the
    // prefix match leaves bytes that fail the magic check.
    const bool has_topic =
        size >= topic_.size() && (topic_.empty() || std::memcmp(data, topic_.data(), topic_.size()) == 0);
    const WireError error =
        has_topic ? decode_message(data + topic_.size(), size - topic_.size(), out) : WireError::bad_magic;
    if (error != WireError::ok) {
        ++rejected_;
        last_error_ = error;
        return false;
    }
    if (last_seq_ && out.seq > *last_seq_) {
        missed_ += out.seq - *last_seq_ - 1;
    }
    last_seq_ = out.seq;
    ++received_;
    return true;
}

}  // namespace crackseg
