#include <stdio.h>
#include <string.h>

#include <greet.h>
#include <shout.h>

#define HELLO_VERSION "1.0.0"

int main(int argc, char **argv) {
  char line[256];
  int loud = 0;
  const char *name = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0) {
      printf("hello %s (libgreet %s, libshout %s)\n", HELLO_VERSION, greet_version(), shout_version());
      return 0;
    }
    if (strcmp(argv[i], "--loud") == 0) {
      loud = 1;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: hello [--loud] [NAME] | --version\n");
      return 2;
    } else {
      name = argv[i];
    }
  }
  if (loud) shout_format(line, sizeof line, name);
  else greet_format(line, sizeof line, name);
  puts(line);
  return 0;
}
