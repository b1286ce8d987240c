/* modules.h - the table of C modules (src/core/module_table.c) that both
 * programs run and fold into their checksum. */
#ifndef DEMO_MODULES_H
#define DEMO_MODULES_H

#include "common.h"

DEMO_BEGIN_C_DECLS

typedef uint32_t (*demo_module_fn)(void);

typedef struct demo_module {
    const char *name;
    demo_module_fn run;
} demo_module;

extern const demo_module demo_modules[];
extern const size_t demo_module_count;

DEMO_END_C_DECLS

#endif /* DEMO_MODULES_H */
