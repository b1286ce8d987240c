#include <stdio.h>

#include "greet.h"

int greet_format(char *buf, size_t size, const char *name) {
  return snprintf(buf, size, "Hello, %s!", name != NULL && name[0] != '\0' ? name : "world");
}

const char *greet_version(void) { return GREET_VERSION; }
