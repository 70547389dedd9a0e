/* cdaemon: the C baseline of the Daemon.NET benchmark, a classic double-fork daemon.
 *   cdaemon start PIDFILE PORT   returns once the daemon holds a locked pid file and listens
 *   cdaemon stop  PIDFILE        SIGTERM to the lock holder, returns once it has exited      */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t stopping;
static void on_term(int sig) { (void)sig; stopping = 1; }
static void fail(int ready, const char *what) { if (ready >= 0) dprintf(ready, "ERROR %s\n", what); _exit(1); }

static int start(const char *pidfile, int port) {
    int p[2]; char buf[64];
    if (pipe2(p, O_CLOEXEC) < 0) return perror("pipe"), 1;
    pid_t child = fork();
    if (child < 0) return perror("fork"), 1;
    if (child > 0) {                                  /* the caller: wait for the grandchild's word */
        close(p[1]);
        ssize_t n = read(p[0], buf, sizeof buf - 1);
        if (n > 0 && strncmp(buf, "READY", 5) == 0) return printf("started (pid %d)\n", atoi(buf + 6)), 0;
        buf[n > 0 ? n : 0] = 0;
        return fprintf(stderr, "cdaemon: start failed: %s\n", n > 0 ? buf : "daemon exited"), 1;
    }
    close(p[0]);
    if (setsid() < 0) fail(p[1], "setsid");
    if (fork() != 0) _exit(0);                        /* the middle process exits at once */
    umask(022);
    if (chdir("/") < 0) fail(p[1], "chdir");
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0); dup2(null, 1); dup2(null, 2); if (null > 2) close(null);
    int fd = open(pidfile, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fd < 0 || fcntl(fd, F_SETLK, &lk) < 0) fail(p[1], "pid file busy or unwritable");
    if (ftruncate(fd, 0) < 0 || dprintf(fd, "%d\n", getpid()) < 0) fail(p[1], "write pid file");
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 512) < 0) { unlink(pidfile); fail(p[1], "bind"); }
    struct sigaction sa = { .sa_handler = on_term };  /* no SA_RESTART: accept() returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    dprintf(p[1], "READY %d\n", getpid()); close(p[1]);
    while (!stopping) { int c = accept(s, NULL, NULL); if (c >= 0) close(c); }
    unlink(pidfile);
    _exit(0);
}

static int stop(const char *pidfile) {
    char buf[32] = {0};
    int fd = open(pidfile, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return puts("not running"), 0;
    if (read(fd, buf, sizeof buf - 1) <= 0) return fprintf(stderr, "cdaemon: empty pid file\n"), 1;
    pid_t pid = atoi(buf);
    struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
    if (fcntl(fd, F_GETLK, &lk) < 0) return perror("F_GETLK"), 1;
    if (lk.l_type == F_UNLCK) return puts("not running"), 0;
    if (lk.l_pid != pid) return fprintf(stderr, "cdaemon: lock held by %d, file names %d\n", lk.l_pid, pid), 1;
    int pidfd = (int)syscall(434 /* pidfd_open */, pid, 0);
    if (pidfd < 0 || kill(pid, SIGTERM) < 0) return perror("signal"), 1;
    struct pollfd w = { .fd = pidfd, .events = POLLIN };
    if (poll(&w, 1, 10000) != 1) return fprintf(stderr, "cdaemon: pid %d did not stop\n", pid), 1;
    return printf("stopped (pid %d)\n", pid), 0;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "start") == 0) return start(argv[2], atoi(argv[3]));
    if (argc >= 3 && strcmp(argv[1], "stop") == 0) return stop(argv[2]);
    fprintf(stderr, "usage: cdaemon start|stop PIDFILE [PORT]\n");
    return 2;
}
