// main.cpp - the C++ program (build/bin/demo-cpp), linked with $(CXX): runs
// the C modules through the registry, then the C++ ones, and prints one line
// per module plus a total, all deterministic.
#include <cstdio>

#include "demo.hpp"

int main()
{
    demo::Registry reg;
    reg.add_c_modules();
    reg.add("cpp.banner", demo::banner_run);
    reg.add("cpp.tokenizer", demo::tokenizer_run);
    reg.add("cpp.wordfreq", demo::wordfreq_run);
    reg.add("cpp.shapes", demo::shapes_run);

    std::printf("%s\n", demo::banner().c_str());
    std::uint32_t total = DEMO_FNV_OFFSET;
    for (const auto &e : reg.entries()) {
        std::uint32_t v = e.run();
        std::printf("%-16s 0x%08lx\n", e.name.c_str(), static_cast<unsigned long>(v));
        total = demo_mix(total, v);
    }
    std::printf("%-16s %lu\n", "modules", static_cast<unsigned long>(reg.entries().size()));
    std::printf("%-16s 0x%08lx\n", "total", static_cast<unsigned long>(total));
    return 0;
}
