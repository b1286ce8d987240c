// registry.cpp - the list of modules the C++ program runs.
#include "demo.hpp"
#include "modules.h"

namespace demo {

void Registry::add(const std::string &name, ModuleFn fn)
{
    entries_.push_back(ModuleEntry{name, fn});
}

void Registry::add_c_modules()
{
    for (std::size_t i = 0; i < demo_module_count; i++)
        add(demo_modules[i].name, demo_modules[i].run);
}

} // namespace demo
