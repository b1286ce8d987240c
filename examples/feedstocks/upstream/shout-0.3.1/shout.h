#ifndef SHOUT_H
#define SHOUT_H

#include <stddef.h>

#define SHOUT_VERSION "0.3.1"

/* Like greet_format, in capitals: "HELLO, NAME!". Returns the length it needed. */
int shout_format(char *buf, size_t size, const char *name);

const char *shout_version(void);

#endif
