// Conformance: decode every golden file of tests/golden and compare every field golden.json lists,
// the same files and index the Python tests use. A field this test does not know fails the test, so
// golden.json cannot grow a field that the native client silently ignores.
//
// usage: test_golden GOLDEN_DIR
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <string>

#include "check.hpp"
#include "crackseg/serial.h"
#include "crackseg/wire.hpp"
#include "read_file.hpp"
#include "sha256.hpp"

namespace {

using crackseg_test::Case;
using nlohmann::json;

template <typename T>
using Fields = std::map<std::string, std::function<void(const T&, const json&)>>;

// Applies the checker of every key in `want`; an unknown key is a failure of its own.
template <typename T>
void check_fields(const T& actual, const json& want, const Fields<T>& fields, const std::string& where) {
    for (const auto& [key, value] : want.items()) {
        const auto field = fields.find(key);
        if (field == fields.end()) {
            crackseg_test::fail(__FILE__, __LINE__, where + ": golden field '" + key + "' is not checked");
        } else {
            field->second(actual, value);
        }
    }
}

std::string hex(const std::uint8_t* data, std::size_t size) {
    static const char* const kHex = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < size; ++i) {
        out += kHex[data[i] >> 4];
        out += kHex[data[i] & 0xF];
    }
    return out;
}

void check_boxes(const std::vector<crackseg::CrackBox>& boxes, const json& want) {
    CHECK_EQ(boxes.size(), want.size());
    for (std::size_t i = 0; i < boxes.size() && i < want.size(); ++i) {
        const Fields<crackseg::CrackBox> fields = {
            {"x", [](const auto& b, const json& v) { CHECK_EQ(b.x, v.get<std::uint32_t>()); }},
            {"y", [](const auto& b, const json& v) { CHECK_EQ(b.y, v.get<std::uint32_t>()); }},
            {"w", [](const auto& b, const json& v) { CHECK_EQ(b.w, v.get<std::uint32_t>()); }},
            {"h", [](const auto& b, const json& v) { CHECK_EQ(b.h, v.get<std::uint32_t>()); }},
            {"pixels", [](const auto& b, const json& v) { CHECK_EQ(b.pixels, v.get<std::uint32_t>()); }},
        };
        check_fields(boxes[i], want[i], fields, "box " + std::to_string(i));
    }
}

// A pose part: null in golden.json means absent (its `present` bit clear), else every value listed.
template <typename Part>
void check_part(const crackseg::Pose& pose, crackseg::PosePart bit, const Part& part, const json& want,
                const Fields<Part>& fields, const std::string& where) {
    CHECK_EQ(pose.has(bit), !want.is_null());
    if (!want.is_null()) {
        check_fields(part, want, fields, where);
    }
}

const Fields<crackseg::Attitude> kAttitudeFields = {
    {"roll_deg", [](const auto& a, const json& v) { CHECK_EQ(a.roll_deg, v.get<double>()); }},
    {"pitch_deg", [](const auto& a, const json& v) { CHECK_EQ(a.pitch_deg, v.get<double>()); }},
    {"yaw_deg", [](const auto& a, const json& v) { CHECK_EQ(a.yaw_deg, v.get<double>()); }},
};

const Fields<crackseg::GeoPosition> kPositionFields = {
    {"lat_deg", [](const auto& p, const json& v) { CHECK_EQ(p.lat_deg, v.get<double>()); }},
    {"lon_deg", [](const auto& p, const json& v) { CHECK_EQ(p.lon_deg, v.get<double>()); }},
    {"alt_m", [](const auto& p, const json& v) { CHECK_EQ(p.alt_m, v.get<double>()); }},
    {"rel_alt_m", [](const auto& p, const json& v) { CHECK_EQ(p.rel_alt_m, v.get<double>()); }},
};

const Fields<crackseg::Pose> kPoseFields = {
    {"present", [](const auto& p, const json& v) { CHECK_EQ(p.present, v.get<std::uint8_t>()); }},
    {"stale", [](const auto& p, const json& v) { CHECK_EQ(p.stale, v.get<std::uint8_t>()); }},
    {"age_ms", [](const auto& p, const json& v) { CHECK_EQ(p.age_ms, v.get<std::uint32_t>()); }},
    {"position",
     [](const auto& p, const json& v) {
         check_part(p, crackseg::pose_position, p.position, v, kPositionFields, "pose position");
     }},
    {"attitude",
     [](const auto& p, const json& v) {
         check_part(p, crackseg::pose_attitude, p.attitude, v, kAttitudeFields, "pose attitude");
     }},
    {"gimbal",
     [](const auto& p, const json& v) {
         check_part(p, crackseg::pose_gimbal, p.gimbal, v, kAttitudeFields, "pose gimbal");
     }},
    {"chainage_m",
     [](const auto& p, const json& v) {
         CHECK_EQ(p.has(crackseg::pose_chainage), !v.is_null());
         if (!v.is_null()) {
             CHECK_EQ(p.chainage_m, v.get<double>());
         }
     }},
};

// Floats travel as binary32; golden.json holds their exact value as a double.
const Fields<crackseg::MaskMessage> kMessageFields = {
    {"kind", [](const auto& m, const json& v) { CHECK_EQ(static_cast<int>(m.kind), v.get<int>()); }},
    {"seq", [](const auto& m, const json& v) { CHECK_EQ(m.seq, v.get<std::uint64_t>()); }},
    {"frame_id", [](const auto& m, const json& v) { CHECK_EQ(m.frame_id, v.get<std::uint64_t>()); }},
    {"source_id", [](const auto& m, const json& v) { CHECK_EQ(m.source_id, v.get<std::string>()); }},
    {"capture_ns", [](const auto& m, const json& v) { CHECK_EQ(m.capture_ns, v.get<std::int64_t>()); }},
    {"publish_ns", [](const auto& m, const json& v) { CHECK_EQ(m.publish_ns, v.get<std::int64_t>()); }},
    {"model_hash",
     [](const auto& m, const json& v) {
         CHECK_EQ(hex(m.model_hash.data(), m.model_hash.size()), v.get<std::string>());
     }},
    {"threshold", [](const auto& m, const json& v) { CHECK_EQ(m.threshold, v.get<double>()); }},
    {"width", [](const auto& m, const json& v) { CHECK_EQ(m.width, v.get<std::uint32_t>()); }},
    {"height", [](const auto& m, const json& v) { CHECK_EQ(m.height, v.get<std::uint32_t>()); }},
    {"encoding", [](const auto& m, const json& v) { CHECK_EQ(static_cast<int>(m.encoding), v.get<int>()); }},
    {"mask_sha256",
     [](const auto& m, const json& v) {
         CHECK_EQ(m.mask.size(), std::size_t{m.width} * m.height);
         CHECK_EQ(crackseg_test::sha256_hex(m.mask.data(), m.mask.size()), v.get<std::string>());
     }},
    {"stats",
     [](const auto& m, const json& v) {
         const Fields<crackseg::MaskMessage> stats = {
             {"crack_pixels",
              [](const auto& s, const json& x) { CHECK_EQ(s.stats.crack_pixels, x.get<std::uint32_t>()); }},
             {"coverage_pct", [](const auto& s, const json& x) { CHECK_EQ(s.stats.coverage_pct, x.get<double>()); }},
             {"components", [](const auto& s, const json& x) { CHECK_EQ(s.stats.components, x.get<std::uint32_t>()); }},
             {"skeleton_px",
              [](const auto& s, const json& x) { CHECK_EQ(s.stats.skeleton_px, x.get<std::uint32_t>()); }},
             {"max_width_px", [](const auto& s, const json& x) { CHECK_EQ(s.stats.max_width_px, x.get<double>()); }},
             {"boxes", [](const auto& s, const json& x) { check_boxes(s.boxes, x); }},
         };
         check_fields(m, v, stats, "stats");
     }},
    {"pose",
     [](const auto& m, const json& v) {
         CHECK(m.pose.has_value());
         if (m.pose) {
             check_fields(*m.pose, v, kPoseFields, "pose");
         }
     }},
};

void check_zmq_file(const std::string& path, const json& want) {
    const std::vector<std::uint8_t> data = crackseg_test::read_file(path);
    crackseg::MaskMessage msg;
    const crackseg::WireError error = crackseg::decode_message(data.data(), data.size(), msg);
    CHECK_EQ(error, crackseg::WireError::ok);
    if (error == crackseg::WireError::ok) {
        check_fields(msg, want, kMessageFields, path);
        CHECK_EQ(msg.is_heartbeat(), msg.mask.empty());
        CHECK_EQ(msg.pose.has_value(), want.contains("pose"));  // no pose source: no pose, not zeros
    }
}

const Fields<crackseg_summary> kSummaryFields = {
    {"seq", [](const auto& s, const json& v) { CHECK_EQ(s.seq, v.get<std::uint32_t>()); }},
    {"timestamp_ms", [](const auto& s, const json& v) { CHECK_EQ(s.timestamp_ms, v.get<std::uint32_t>()); }},
    {"frame_id", [](const auto& s, const json& v) { CHECK_EQ(s.frame_id, v.get<std::uint32_t>()); }},
    {"crack_pixels", [](const auto& s, const json& v) { CHECK_EQ(s.crack_pixels, v.get<std::uint32_t>()); }},
    {"coverage_centi_pct",
     [](const auto& s, const json& v) { CHECK_EQ(s.coverage_centi_pct, v.get<std::uint16_t>()); }},
    {"components", [](const auto& s, const json& v) { CHECK_EQ(s.components, v.get<std::uint16_t>()); }},
    {"skeleton_px", [](const auto& s, const json& v) { CHECK_EQ(s.skeleton_px, v.get<std::uint32_t>()); }},
    {"max_width_px", [](const auto& s, const json& v) { CHECK_EQ(s.max_width_px, v.get<std::uint16_t>()); }},
    {"flags", [](const auto& s, const json& v) { CHECK_EQ(s.flags, v.get<std::uint8_t>()); }},
};

struct SerialOutcome {
    std::vector<crackseg_summary> summaries;
    crackseg_summary_decoder decoder;
};

// Reads a whole stream through the chunk API (bytewise=false) or one byte at a time through push.
SerialOutcome read_stream(const std::vector<std::uint8_t>& data, bool bytewise) {
    SerialOutcome out;
    crackseg_summary_decoder_init(&out.decoder);
    crackseg_summary summary;
    if (bytewise) {
        for (const std::uint8_t byte : data) {
            if (crackseg_summary_decoder_push(&out.decoder, byte, &summary) == CRACKSEG_SERIAL_SUMMARY) {
                out.summaries.push_back(summary);
            }
        }
        return out;
    }
    std::size_t offset = 0;
    while (offset < data.size()) {
        int got = 0;
        offset +=
            crackseg_summary_decoder_feed(&out.decoder, data.data() + offset, data.size() - offset, &summary, &got);
        if (got) {
            out.summaries.push_back(summary);
        }
    }
    return out;
}

const Fields<SerialOutcome> kSerialFields = {
    {"summaries",
     [](const SerialOutcome& o, const json& v) {
         CHECK_EQ(o.summaries.size(), v.size());
         CHECK_EQ(o.decoder.frames, o.summaries.size());
         for (std::size_t i = 0; i < o.summaries.size() && i < v.size(); ++i) {
             check_fields(o.summaries[i], v[i], kSummaryFields, "summary " + std::to_string(i));
         }
     }},
    {"crc_errors",
     [](const SerialOutcome& o, const json& v) { CHECK_EQ(o.decoder.crc_errors, v.get<std::uint32_t>()); }},
    {"framing_errors",
     [](const SerialOutcome& o, const json& v) { CHECK_EQ(o.decoder.framing_errors, v.get<std::uint32_t>()); }},
    {"version_errors",
     [](const SerialOutcome& o, const json& v) { CHECK_EQ(o.decoder.version_errors, v.get<std::uint32_t>()); }},
    {"pending_bytes",
     [](const SerialOutcome& o, const json& v) {
         CHECK_EQ(crackseg_summary_decoder_pending(&o.decoder), v.get<std::size_t>());
     }},
};

void check_serial_file(const std::string& path, const json& want) {
    const std::vector<std::uint8_t> data = crackseg_test::read_file(path);
    check_fields(read_stream(data, false), want, kSerialFields, path + " (chunks)");
    check_fields(read_stream(data, true), want, kSerialFields, path + " (bytes)");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s GOLDEN_DIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const json index = json::parse(crackseg_test::read_file(dir + "/golden.json"));
    std::vector<Case> cases = {
        {"sha256 matches the FIPS 180-4 vector",
         [] {
             const std::uint8_t abc[] = {'a', 'b', 'c'};
             CHECK_EQ(crackseg_test::sha256_hex(abc, 3),
                      std::string("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
         }},
        {"golden.json is for the versions this client reads",
         [&] {
             CHECK_EQ(index.at("zmq_version").get<int>(), int{crackseg::kWireVersion});
             CHECK_EQ(index.at("serial_version").get<int>(), CRACKSEG_SERIAL_VERSION);
             CHECK(!index.at("zmq").empty());
             CHECK(!index.at("serial").empty());
         }},
    };
    for (const auto& [name, want] : index.at("zmq").items()) {
        cases.push_back({"zmq " + name, [&dir, name = name, want = want] { check_zmq_file(dir + "/" + name, want); }});
    }
    for (const auto& [name, want] : index.at("serial").items()) {
        cases.push_back(
            {"serial " + name, [&dir, name = name, want = want] { check_serial_file(dir + "/" + name, want); }});
    }
    return crackseg_test::run_all(cases);
}
