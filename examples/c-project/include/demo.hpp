// demo.hpp - the C++ part of the example (src/cpp/).
#ifndef DEMO_DEMO_HPP
#define DEMO_DEMO_HPP

#include <cstdint>
#include <string>
#include <vector>

#include "common.h"

namespace demo {

using ModuleFn = std::uint32_t (*)();

struct ModuleEntry {
    std::string name;
    ModuleFn run;
};

// registry.cpp
class Registry {
public:
    void add(const std::string &name, ModuleFn fn);
    void add_c_modules(); // every entry of demo_modules[] (modules.h)
    const std::vector<ModuleEntry> &entries() const { return entries_; }

private:
    std::vector<ModuleEntry> entries_;
};

// banner.cpp
std::string banner();
std::uint32_t banner_run();

// tokenizer.cpp
std::vector<std::string> tokenize(const std::string &text, char sep);
std::uint32_t tokenizer_run();

// wordfreq.cpp
std::uint32_t wordfreq_run();

// shapes.cpp
std::uint32_t shapes_run();

} // namespace demo

#endif // DEMO_DEMO_HPP
