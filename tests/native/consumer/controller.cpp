#include <crackseg/subscriber.hpp>
#include <cstdio>
int main() {
    crackseg::Subscriber sub;  // tcp://127.0.0.1:5557, topic crackseg/mask, newest message only
    for (crackseg::MaskMessage msg;;) {
        if (!sub.receive(msg, std::chrono::seconds(3))) std::puts("link down: no message for 3 s");
        else if (!msg.is_heartbeat())
            std::printf("frame %llu: %.2f %% crack\n", (unsigned long long)msg.frame_id, msg.stats.coverage_pct);
    }
}
