// banner.cpp - the C++ program's first line, from the generated version.h.
#include "demo.hpp"
#include "version.h" // $(BUILD)/generated/version.h, written by the Makefile

namespace demo {

std::string banner()
{
    return std::string(APP_NAME) + " " + APP_VERSION + " (C++)";
}

std::uint32_t banner_run()
{
    std::uint32_t h = DEMO_FNV_OFFSET;
    for (unsigned char c : banner())
        h = demo_mix(h, c);
    return h;
}

} // namespace demo
