#ifndef GREET_H
#define GREET_H

#include <stddef.h>

#define GREET_VERSION "1.2.0"

/* Writes "Hello, NAME!" into buf (NUL-terminated, at most size bytes); returns the length it needed. */
int greet_format(char *buf, size_t size, const char *name);

/* The library's version at run time (it may differ from the header's GREET_VERSION). */
const char *greet_version(void);

#endif
