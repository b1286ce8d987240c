// wordfreq.cpp - word frequencies in a fixed text; each word hashed with the
// vendored tp_hash.h (third_party/include).
#include <map>

#include "demo.hpp"
#include "tp_hash.h"

namespace demo {

std::uint32_t wordfreq_run()
{
    static const char text[] = "a cache hit replays the object and the warnings "
                               "a cache miss runs the compiler and stores the object "
                               "the store is content addressed";
    std::map<std::string, unsigned> freq; // ordered: iteration is deterministic
    for (const auto &w : tokenize(text, ' '))
        ++freq[w];

    std::uint32_t h = DEMO_FNV_OFFSET;
    for (const auto &kv : freq) {
        h = demo_mix(h, tp_hash32(kv.first.data(), kv.first.size(), 0));
        h = demo_mix(h, kv.second);
    }
    return demo_mix(h, static_cast<std::uint32_t>(freq.size()));
}

} // namespace demo
