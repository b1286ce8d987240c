// tokenizer.cpp - splits text on a separator, dropping empty tokens.
#include "demo.hpp"

namespace demo {

std::vector<std::string> tokenize(const std::string &text, char sep)
{
    std::vector<std::string> out;
    std::string cur;
    for (char c : text) {
        if (c == sep) {
            if (!cur.empty())
                out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty())
        out.push_back(cur);
    return out;
}

std::uint32_t tokenizer_run()
{
    const auto tokens = tokenize("  gcc -O2 -Wall  -c main.c -o main.o ", ' ');
    std::uint32_t h = demo_mix(DEMO_FNV_OFFSET, static_cast<std::uint32_t>(tokens.size()));
    for (const auto &t : tokens)
        h = demo_mix(h, static_cast<std::uint32_t>(t.size()) * 31u + static_cast<unsigned char>(t[0]));
    return h;
}

} // namespace demo
