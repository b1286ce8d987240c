/* main.c - the C program (build/bin/demo): runs every C module and prints
 * one line per module plus a total, all deterministic. */
#include <stdio.h>

#include "modules.h"
#include "version.h" /* generated */

int main(void)
{
    uint32_t total = DEMO_FNV_OFFSET;

    printf("%s %s (C)\n", APP_NAME, APP_VERSION);
    for (size_t i = 0; i < demo_module_count; i++) {
        uint32_t v = demo_modules[i].run();
        printf("%-16s 0x%08lx\n", demo_modules[i].name, (unsigned long)v);
        total = demo_mix(total, v);
    }
    printf("%-16s %lu\n", "modules", (unsigned long)demo_module_count);
    printf("%-16s 0x%08lx\n", "total", (unsigned long)total);
    return 0;
}
