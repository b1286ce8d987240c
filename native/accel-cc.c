/*
 * accel-cc: the per-compile client of `accel cc daemon`.
 *
 * Installed as $ACCEL_HOME/bin/accel-cc and linked from $ACCEL_HOME/masquerade/{gcc,g++,cc,...}; as a launcher
 * it takes the compiler first, by name or path (`accel-cc gcc -c x.c`, CMAKE_<LANG>_COMPILER_LAUNCHER). It sends
 * {argv, cwd, environment, pid} to the daemon over $ACCEL_HOME/run/cc.sock, relays the compiler's output and
 * exits with its code. It must never hang or break a build:
 *   - no daemon: start one (`accel cc daemon --detach`) and retry for a moment; still none: exec
 *     `accel cc -- <compiler> ...` (correct, slower);
 *   - the daemon goes silent (no keep-alive) or dies mid-request: run the real compiler directly.
 * The home is found from this file's own location ($ACCEL_HOME/bin/accel-cc), so a masquerade link carries
 * its store with it. Protocol: docs/cc.md ("The daemon"). Statically linked: no loader, ~1 ms to start.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAGIC "ACCEL-CC/1"

/* Room for the longest name appended to it ("/run/start.lock"). */
static char home[PATH_MAX - 64];
static char self_path[PATH_MAX];
static const char *compiler_name; /* as invoked: "gcc", or argv[1] of `accel-cc gcc ...` */
static char **compiler_args;      /* the compiler's arguments, NULL-terminated */
static int compiler_argc;

static int env_int(const char *name, int fallback) {
  const char *v = getenv(name);
  return v && *v ? atoi(v) : fallback;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- growing request buffer ---- */
static char *buf;
static size_t buf_len, buf_cap;

static void put(const void *data, size_t n) {
  if (buf_len + n > buf_cap) {
    buf_cap = (buf_len + n) * 2 + 4096;
    buf = realloc(buf, buf_cap);
    if (!buf) {
      perror("accel-cc");
      exit(70);
    }
  }
  memcpy(buf + buf_len, data, n);
  buf_len += n;
}

static void put_str(const char *s) { put(s, strlen(s) + 1); }

static void put_int(long v) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%ld", v);
  put_str(tmp);
}

/* ---- running the compiler without the daemon ---- */

/* The real compiler: `name` on PATH, skipping anything that is this client (the masquerade links). */
static int find_compiler(const char *name, char *out) {
  if (strchr(name, '/')) {
    snprintf(out, PATH_MAX, "%s", name);
    return access(out, X_OK) == 0 ? 0 : -1;
  }
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  char masquerade[PATH_MAX];
  snprintf(masquerade, sizeof masquerade, "%s/masquerade", home);
  while (*path) {
    const char *end = strchr(path, ':');
    size_t len = end ? (size_t)(end - path) : strlen(path);
    if (len > 0 && len < PATH_MAX - strlen(name) - 2 && !(len == strlen(masquerade) && !strncmp(path, masquerade, len))) {
      char candidate[PATH_MAX], real[PATH_MAX];
      struct stat st;
      snprintf(candidate, sizeof candidate, "%.*s/%s", (int)len, path, name);
      if (access(candidate, X_OK) == 0 && stat(candidate, &st) == 0 && S_ISREG(st.st_mode) &&
          realpath(candidate, real) && strcmp(real, self_path) != 0) {
        snprintf(out, PATH_MAX, "%s", candidate);
        return 0;
      }
    }
    if (!end) break;
    path = end + 1;
  }
  return -1;
}

static void exec_compiler(const char *path) {
  char **argv = calloc((size_t)compiler_argc + 2, sizeof *argv);
  argv[0] = (char *)path;
  for (int i = 0; i < compiler_argc; i++) argv[i + 1] = compiler_args[i];
  execv(path, argv);
  fprintf(stderr, "accel-cc: cannot run %s: %s\n", path, strerror(errno));
  exit(127);
}

static void run_compiler_directly(const char *why) {
  char path[PATH_MAX];
  if (why) fprintf(stderr, "accel-cc: %s; running %s without the cache\n", why, compiler_name);
  if (find_compiler(compiler_name, path) != 0) {
    fprintf(stderr, "accel-cc: %s: command not found\n", compiler_name);
    exit(127);
  }
  exec_compiler(path);
}

/* `accel cc -- <compiler> ...`: the slow path that still caches. */
static void exec_accel_cc(void) {
  char accel[PATH_MAX];
  snprintf(accel, sizeof accel, "%s/bin/accel", home);
  char **argv = calloc((size_t)compiler_argc + 8, sizeof *argv);
  int n = 0;
  argv[n++] = accel;
  argv[n++] = "--home";
  argv[n++] = home;
  argv[n++] = "cc";
  argv[n++] = "--";
  argv[n++] = (char *)compiler_name;
  for (int i = 0; i < compiler_argc; i++) argv[n++] = compiler_args[i];
  execv(accel, argv);
  run_compiler_directly("accel is not installed beside this client");
}

/* ---- the daemon ---- */

static int connect_daemon(int timeout_ms) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if ((size_t)snprintf(addr.sun_path, sizeof addr.sun_path, "%s/run/cc.sock", home) >= sizeof addr.sun_path) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    /* A full backlog (a burst of clients) shows as EAGAIN: wait for it to drain, within the time-out. */
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof err;
    if (errno != EAGAIN && errno != EINPROGRESS) goto fail;
    if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) goto fail;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  return fd;
fail:
  close(fd);
  return -1;
}

/* One daemon start for a burst of clients: whoever creates the start lock starts it, the rest wait. */
static void start_daemon(void) {
  char lock[PATH_MAX], run_dir[PATH_MAX], accel[PATH_MAX];
  snprintf(run_dir, sizeof run_dir, "%s/run", home);
  snprintf(lock, sizeof lock, "%s/run/start.lock", home);
  snprintf(accel, sizeof accel, "%s/bin/accel", home);
  mkdir(run_dir, 0700);
  int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    struct stat st;
    /* A starter that died leaves its lock: take it over after 10 s. */
    if (stat(lock, &st) == 0 && time(NULL) - st.st_mtime > 10) unlink(lock);
    return;
  }
  close(fd);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    execl(accel, accel, "--home", home, "-q", "cc", "daemon", "--detach", (char *)NULL);
    _exit(127);
  }
  if (pid > 0) {
    /* --detach returns once the daemon listens; bound the wait so a wedged start cannot hang the build. */
    long long deadline = now_ms() + env_int("ACCEL_CC_START_TIMEOUT_MS", 5000);
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (now_ms() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      sleep_ms(5);
    }
  }
  unlink(lock);
}

static int read_secret(char *out, size_t size) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/run/cc.secret", home);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, out, size - 1);
  close(fd);
  if (n <= 0) return -1;
  out[n] = 0;
  out[strcspn(out, "\n")] = 0;
  return 0;
}

static int send_all(int fd, const char *data, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    data += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads exactly n bytes; -1 on end, error, or `silence_ms` without a byte. */
static int recv_all(int fd, void *out, size_t n, int silence_ms) {
  char *p = out;
  while (n > 0) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, silence_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    ssize_t got = recv(fd, p, n, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return -1;
    p += got;
    n -= (size_t)got;
  }
  return 0;
}

static void write_all(int fd, const char *data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    data += w;
    n -= (size_t)w;
  }
}

/* Sends the request and relays the answer; returns only when the daemon failed us. */
static const char *talk(int fd, const char *secret) {
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return "the working directory is gone";
  buf_len = 0;
  put("\0\0\0\0", 4); /* length, filled in below */
  put_str(MAGIC);
  put_str(secret);
  put_str("compile");
  put_int((long)getpid());
  mode_t mask = umask(0);
  umask(mask);
  put_int((long)mask);
  put_str(cwd);
  put_int(compiler_argc + 1);
  put_str(compiler_name);
  for (int i = 0; i < compiler_argc; i++) put_str(compiler_args[i]);
  int envc = 0;
  for (char **e = environ; *e; e++) envc++;
  put_int(envc);
  for (char **e = environ; *e; e++) put_str(*e);
  uint32_t body = (uint32_t)(buf_len - 4);
  unsigned char len[4] = {body & 0xff, (body >> 8) & 0xff, (body >> 16) & 0xff, body >> 24};
  memcpy(buf, len, 4);
  if (send_all(fd, buf, buf_len) != 0) return "the daemon closed the connection";

  int silence = env_int("ACCEL_CC_SILENCE_MS", 30000);
  for (;;) {
    unsigned char head[5];
    if (recv_all(fd, head, 5, silence) != 0) return "the daemon stopped answering";
    uint32_t n = head[1] | (uint32_t)head[2] << 8 | (uint32_t)head[3] << 16 | (uint32_t)head[4] << 24;
    char *payload = malloc(n + 1);
    if (!payload || recv_all(fd, payload, n, silence) != 0) return "the daemon stopped answering";
    payload[n] = 0;
    switch (head[0]) {
      case 'k': /* keep-alive while the compile runs */
        break;
      case 'o':
        write_all(1, payload, n);
        break;
      case 'e':
        write_all(2, payload, n);
        break;
      case 'x':
        exit(atoi(payload));
      case 'r': /* not cacheable: the compiler runs here, with our terminal and stdin */
        close(fd);
        exec_compiler(payload);
        break;
      default:
        return "the daemon answered something this client does not understand";
    }
    free(payload);
  }
}

/* Whether `name`, a path, is this client (a masquerade link, or accel-cc itself). */
static int is_self(const char *name) {
  char real[PATH_MAX];
  return strchr(name, '/') && realpath(name, real) && strcmp(real, self_path) == 0;
}

/*
 * A launcher handed accel itself as the compiler: CMake configured with the masquerade directory first on PATH
 * records `/…/masquerade/c++`, and with CMAKE_CXX_COMPILER_LAUNCHER=accel-cc it runs `accel-cc /…/masquerade/c++
 * …`; a wrapper script may run `accel-cc accel-cc gcc …`. Sent as is, the "compiler" would be this client: a
 * masquerade link stands for its own name (found on PATH past the masquerade directory, as when it is run
 * directly), and a repeated accel-cc is dropped.
 */
static int unwrap_self(void) {
  for (;;) {
    const char *base = strrchr(compiler_name, '/') ? strrchr(compiler_name, '/') + 1 : compiler_name;
    int self = is_self(compiler_name);
    if (strcmp(base, "accel-cc") == 0 || (self && strncmp(base, "accel-cc", 8) == 0)) {
      if (compiler_argc == 0) return -1;
      compiler_name = compiler_args[0];
      compiler_args++;
      compiler_argc--;
    } else if (self) {
      compiler_name = base;
    } else {
      return 0;
    }
  }
}

int main(int argc, char **argv) {
  const char *invoked = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
  if (!realpath("/proc/self/exe", self_path)) {
    perror("accel-cc: /proc/self/exe");
    return 70;
  }
  /* $ACCEL_HOME/bin/accel-cc → $ACCEL_HOME */
  if (strlen(self_path) >= sizeof home) {
    fprintf(stderr, "accel-cc: %s: path too long\n", self_path);
    return 70;
  }
  memcpy(home, self_path, strlen(self_path) + 1);
  for (int i = 0; i < 2; i++) {
    char *slash = strrchr(home, '/');
    if (slash) *slash = 0;
  }
  if (strncmp(invoked, "accel-cc", 8) == 0) {
    if (argc < 2) {
      fprintf(stderr, "usage: accel-cc <compiler> [args...]\n  or link it as gcc/g++/cc/c++/clang/clang++\n");
      return 2;
    }
    compiler_name = argv[1];
    compiler_args = argv + 2;
    compiler_argc = argc - 2;
    if (unwrap_self() != 0) {
      fprintf(stderr, "accel-cc: no compiler given after %s\n", compiler_name);
      return 2;
    }
  } else {
    compiler_name = invoked;
    compiler_args = argv + 1;
    compiler_argc = argc - 1;
  }

  int connect_timeout = env_int("ACCEL_CC_CONNECT_TIMEOUT_MS", 2000);
  int fd = connect_daemon(connect_timeout);
  if (fd < 0) {
    start_daemon();
    long long deadline = now_ms() + env_int("ACCEL_CC_START_TIMEOUT_MS", 5000);
    while (fd < 0 && now_ms() < deadline) {
      sleep_ms(10);
      fd = connect_daemon(connect_timeout);
    }
    if (fd < 0) exec_accel_cc();
  }
  char secret[128];
  if (read_secret(secret, sizeof secret) != 0) {
    close(fd);
    exec_accel_cc();
  }
  const char *why = talk(fd, secret);
  close(fd);
  run_compiler_directly(why);
  return 127;
}
