// Follows the table of well-formed byte sequences in the Unicode Standard (ch. 3, table 3-7): the
// second byte's range depends on the lead byte, which is what rules out overlongs and surrogates.
#include "utf8.hpp"

namespace crackseg::detail {
namespace {

struct LeadRule {
    std::uint8_t last_lead;             // the rule covers lead bytes up to this one
    std::size_t length;                 // bytes in the sequence; 0: the byte cannot start one
    std::uint8_t second_lo, second_hi;  // allowed range of the second byte
};

// Table 3-7 row by row, ascending: the first row whose last_lead is >= the lead byte applies.
constexpr LeadRule kRules[] = {
    {0x7F, 1, 0, 0},        // ASCII
    {0xC1, 0, 0, 0},        // continuation bytes, overlong 2-byte leads
    {0xDF, 2, 0x80, 0xBF},  //
    {0xE0, 3, 0xA0, 0xBF},  // no overlong 3-byte forms
    {0xEC, 3, 0x80, 0xBF},  //
    {0xED, 3, 0x80, 0x9F},  // no UTF-16 surrogates
    {0xEF, 3, 0x80, 0xBF},  //
    {0xF0, 4, 0x90, 0xBF},  // no overlong 4-byte forms
    {0xF3, 4, 0x80, 0xBF},  //
    {0xF4, 4, 0x80, 0x8F},  // nothing above U+10FFFF
    {0xFF, 0, 0, 0},        // never valid
};

const LeadRule& rule_for(std::uint8_t lead) {
    const LeadRule* rule = kRules;
    while (rule->last_lead < lead) {
        ++rule;
    }
    return *rule;
}

bool is_continuation(std::uint8_t byte) { return (byte & 0xC0) == 0x80; }

}  // namespace

bool is_valid_utf8(const std::uint8_t* data, std::size_t size) {
    std::size_t i = 0;
    while (i < size) {
        const LeadRule& rule = rule_for(data[i]);
        if (rule.length == 0 || rule.length > size - i) {
            return false;
        }
        if (rule.length > 1) {
            const std::uint8_t second = data[i + 1];
            if (second < rule.second_lo || second > rule.second_hi) {
                return false;
            }
            for (std::size_t k = 2; k < rule.length; ++k) {
                if (!is_continuation(data[i + k])) {
                    return false;
                }
            }
        }
        i += rule.length;
    }
    return true;
}

}  // namespace crackseg::detail
