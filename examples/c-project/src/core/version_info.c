/* version_info.c - exposes the version from the generated header. */
#include "core.h"
#include "version.h" /* $(BUILD)/generated/version.h, written by the Makefile */

const char *demo_version_string(void)
{
    return APP_NAME " " APP_VERSION;
}

uint32_t core_version_run(void)
{
    return demo_checksum_str(demo_version_string());
}
