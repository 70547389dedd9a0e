/* Daemon.NET's native detach stage, in two builds of this one file.
 *
 * The launcher re-executes the program marked DAEMON_NET_STAGE=detach. The detach stage's whole
 * job is to leave the caller's session, point 0-2 at /dev/null, start the program again marked
 * DAEMON_NET_STAGE=daemon, and exit, so the daemon is orphaned, is not a session leader and has no
 * controlling terminal. Done here in C it costs no .NET runtime start:
 *
 * - Native AOT: linked into the executable itself, as a constructor that sees the mark before the
 *   .NET runtime starts (the process is still single-threaded). Every other run passes through.
 *   Two more constructors, run first in every process, reopen closed standard streams and refuse
 *   an address-space limit too small for the runtime, with one line instead of a silent crash.
 * - JIT (DAEMON_NET_STAGE_EXECUTABLE): a small static executable, daemon-net-stage, that the
 *   launcher starts instead of a second .NET process (saving ~35 ms of every `start`). It is
 *   started with the daemon's own argv, argv[0] being the program's absolute path, and starts
 *   exactly that. Run any other way it refuses, with exit 2.
 *
 * Descriptors need no care here: the launcher marked all it inherited close-on-exec already.
 * The marker names, message kinds and exit code are Daemon.Launching.StageProtocol's; a test fails
 * when this copy disagrees. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

extern char **environ;

static void report(long fd, const char *step, int err) {
    char line[512];
    int n = snprintf(line, sizeof line, "ERROR %s: %s\n", step, strerror(err));
    if (n > 0) (void)!write((int)fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

#ifndef DAEMON_NET_STAGE_EXECUTABLE

/* Every run of the program, first: a descriptor among 0, 1 and 2 that the caller closed
 * (`prog start >&-`) is opened on /dev/null. Otherwise the runtime's first descriptors
 * (/dev/urandom, its signal pipe) would land there and the program's output would go into them. */
__attribute__((constructor(101))) static void daemon_net_standard_streams(void) {
    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
        int null = open("/dev/null", O_RDWR); /* the lowest free number: fd itself */
        if (null >= 0 && null != fd) { (void)dup2(null, fd); (void)close(null); }
    }
}

/* Below this address-space limit (ulimit -v) the runtime's start-up fails at random, measured here:
 * exit 255 without a word, SIGSEGV or SIGABRT, anywhere from 20 to about 260 MiB. Above it, what
 * fails for lack of memory does so with a message of its own. */
#define DAEMON_NET_MIN_ADDRESS_SPACE (320ULL << 20)

__attribute__((constructor(101))) static void daemon_net_address_space(int argc, char **argv) {
    struct rlimit limit;
    if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY
        || (unsigned long long)limit.rlim_cur >= DAEMON_NET_MIN_ADDRESS_SPACE) return;
    const char *name = argc > 0 && argv[0] != NULL ? argv[0] : "daemon";
    const char *slash = strrchr(name, '/');
    if (slash != NULL) name = slash + 1;
    char line[512];
    int n = snprintf(line, sizeof line,
        "%s: the address-space limit (ulimit -v) is %llu KiB, below the %llu KiB the .NET runtime needs to start; raise it\n",
        name, (unsigned long long)limit.rlim_cur >> 10, DAEMON_NET_MIN_ADDRESS_SPACE >> 10);
    if (n > 0) (void)!write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
    int status = 1; /* LSB: status answers 4, "unknown"; every other command fails */
    for (int i = 1; i < argc; i++)
        if (argv[i] != NULL && strcmp(argv[i], "status") == 0) status = 4;
    _exit(status);
}

#endif

/* The readiness pipe's write end that the marker names, or -1 when this process is no detach
 * stage of ours. The marker is "FD:INODE": one that someone copied into an environment names no
 * such pipe, so the program runs normally (its managed code then removes the marker). */
static long detach_stage_marker(void) {
    const char *stage = getenv("DAEMON_NET_STAGE");
    const char *ready = getenv("DAEMON_NET_READY_FD");
    if (stage == NULL || strcmp(stage, "detach") != 0 || ready == NULL) return -1;
    char *end;
    long fd = strtol(ready, &end, 10);
    if (end == ready || *end != ':' || fd < 3 || fd > 1 << 20) return -1;
    const char *inode_text = end + 1;
    unsigned long long inode = strtoull(inode_text, &end, 10);
    struct stat st;
    int flags = fcntl((int)fd, F_GETFL);
    if (end == inode_text || *end != '\0' || flags < 0 || (flags & O_ACCMODE) != O_WRONLY
        || fstat((int)fd, &st) < 0 || !S_ISFIFO(st.st_mode) || (unsigned long long)st.st_ino != inode) return -1;
    return fd;
}

/* Leaves the session, starts `program` with `argv` as the daemon stage, reports its pid up the
 * pipe and exits; `fallback`, when not NULL, is tried if `program` cannot be started. */
static void detach_stage(long fd, const char *program, const char *fallback, char **argv) {
    if (setsid() < 0) { report(fd, "cannot create a new session (setsid)", errno); _exit(1); }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) { report(fd, "cannot open /dev/null", errno); _exit(1); }
    for (int target = 0; target <= 2; target++) {
        if (dup2(null, target) < 0) { report(fd, "cannot redirect a standard stream to /dev/null", errno); _exit(1); }
    }

    setenv("DAEMON_NET_STAGE", "daemon", 1);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    /* StageProtocol.ResetSignals says why each; StageProtocolTests keeps the two lists equal. */
    int stops[] = { SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGTERM };
    for (size_t i = 0; i < sizeof stops / sizeof stops[0]; i++) sigaddset(&defaults, stops[i]);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    pid_t daemon;
    int err = posix_spawn(&daemon, program, NULL, &attributes, argv, environ);
    if (err != 0 && fallback != NULL) err = posix_spawn(&daemon, fallback, NULL, &attributes, argv, environ);
    if (err != 0) { report(fd, "cannot start the daemon", err); _exit(1); }
    /* Its pid to the launcher at once: a launcher that gives up can name what to kill. */
    char line[32];
    int n = snprintf(line, sizeof line, "PID %d\n", (int)daemon);
    if (n > 0) (void)!write((int)fd, line, (size_t)n);
    _exit(0);
}

#ifdef DAEMON_NET_STAGE_EXECUTABLE

/* Identifies this build's source: build-stage.sh passes the SHA-256 of this file, and a test
 * checks that the stage shipped beside the library was built from the source next to it. */
#ifndef DAEMON_NET_STAGE_SOURCE
#define DAEMON_NET_STAGE_SOURCE "unknown"
#endif
__attribute__((used)) static const char source_id[] = "daemon-net-stage source sha256 " DAEMON_NET_STAGE_SOURCE;

int main(int argc, char **argv) {
    long fd = detach_stage_marker();
    if (fd < 0 || argc < 1 || argv[0] == NULL || argv[0][0] != '/') {
        static const char usage[] = "daemon-net-stage: Daemon.NET's detach stage; it runs only when a daemon's `start` starts it\n";
        (void)!write(2, usage, sizeof usage - 1);
        return 2;
    }

    detach_stage(fd, argv[0], NULL, argv);
}

#else

__attribute__((constructor(102))) static void daemon_net_detach_stage(int argc, char **argv) {
    (void)argc;
    long fd = detach_stage_marker();
    if (fd < 0) return;
    /* The program by its own path, not as /proc/self/exe: the kernel names the process (comm,
     * what top, ps -e, pgrep and the journal show) after the last part of the path it executes.
     * If that file was replaced, removed or made unreachable since, the file we came from. */
    char self[4096];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0 || length >= (ssize_t)sizeof self - 1) detach_stage(fd, "/proc/self/exe", NULL, argv);
    self[length] = '\0';
    detach_stage(fd, self, "/proc/self/exe", argv);
}

#endif
