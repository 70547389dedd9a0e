/* stagetimes.so: an LD_PRELOAD probe that timestamps the stages of a daemon's start-up without a
 * tracer. Every process that loads it (the environment carries LD_PRELOAD to each re-executed
 * stage) appends "PID EVENT CLOCK_MONOTONIC_NS" lines to $STAGETIMES_LOG:
 *   loaded   the program was exec'd and its libraries loaded (a constructor; before main)
 *   execve   it is about to exec the next stage (called in the vfork child: signal-safe code only)
 *   spawn    it is about to posix_spawn (seen only when called through the PLT; Daemon.NET's
 *            call goes through .NET's own dlsym and is not seen, nor is glibc's internal execve)
 *   bind     an AF_INET bind() returned
 *   ready    it is about to write a line starting "READY " (Daemon.NET's readiness message)
 *   exit     exit() ran (a destructor)
 * (Calls that .NET binds with dlsym on a libc handle, like Mono.Posix's setsid, bypass LD_PRELOAD
 * and cannot be seen here.)
 * Build: gcc -O2 -shared -fPIC -o stagetimes.so stagetimes.c -ldl                              */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int logfd = -1;
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_bind)(int, const struct sockaddr *, socklen_t);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                               const posix_spawnattr_t *, char *const[], char *const[]);

static void mark(const char *event) { /* async-signal-safe: no stdio, no malloc */
    if (logfd < 0) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char line[96], num[24], *p = line;
    long long values[2] = { getpid(), (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec };
    for (int i = 0; i < 2; i++) {
        int n = 0;
        long long v = values[i];
        do num[n++] = (char)('0' + v % 10); while ((v /= 10) > 0);
        while (n > 0) *p++ = num[--n];
        *p++ = ' ';
        if (i == 0) { size_t len = strlen(event); memcpy(p, event, len); p += len; *p++ = ' '; }
    }
    p[-1] = '\n';
    real_write(logfd, line, (size_t)(p - line));
}

__attribute__((constructor)) static void loaded(void) {
    real_write = dlsym(RTLD_NEXT, "write");
    real_execve = dlsym(RTLD_NEXT, "execve");
    real_bind = dlsym(RTLD_NEXT, "bind");
    real_posix_spawn = dlsym(RTLD_NEXT, "posix_spawn");
    const char *path = getenv("STAGETIMES_LOG");
    if (path) logfd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    mark("loaded");
}

__attribute__((destructor)) static void unloaded(void) { mark("exit"); }

int execve(const char *file, char *const argv[], char *const envp[]) {
    mark("execve");
    return real_execve(file, argv, envp);
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
    mark("spawn");
    return real_posix_spawn(pid, path, actions, attr, argv, envp);
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    int r = real_bind(fd, addr, len);
    if (addr && addr->sa_family == AF_INET) mark("bind");
    return r;
}

ssize_t write(int fd, const void *buf, size_t n) {
    if (fd != logfd && n >= 6 && memcmp(buf, "READY ", 6) == 0) {
        mark("ready");
    }
    return real_write(fd, buf, n);
}
