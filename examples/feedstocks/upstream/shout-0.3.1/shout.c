#include <ctype.h>

#include <greet.h>

#include "shout.h"

int shout_format(char *buf, size_t size, const char *name) {
  int n = greet_format(buf, size, name);
  for (size_t i = 0; i < size && buf[i] != '\0'; i++) buf[i] = (char)toupper((unsigned char)buf[i]);
  return n;
}

const char *shout_version(void) { return SHOUT_VERSION; }
