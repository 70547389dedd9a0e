#!/usr/bin/python3
"""pydaemon: the python-daemon baseline of the Daemon.NET benchmark (Debian's python3-daemon).

    pydaemon.py start PIDFILE PORT   returns once the daemon holds a locked pid file and listens
    pydaemon.py stop  PIDFILE        SIGTERM to the lock holder, returns once it has exited

python-daemon's DaemonContext does the double fork, setsid, umask, chdir, descriptor closing and
stdio to /dev/null, but its first fork's parent calls os._exit(0) at once: it has no readiness
report. So the caller forks once more itself, keeps the read end of a pipe and waits for the
daemon's "READY pid" line (three forks in all). The pid file is locked with fcntl (POSIX lock,
fcntl.lockf), not with the lockfile package (whose PIDLockFile is an O_EXCL file, not a lock).
stop waits on a pidfd with poll: no sleeps, no polling of /proc.
"""
import fcntl
import os
import select
import signal
import socket
import struct
import sys

import daemon


class LockedPidFile:
    """A pid file context for DaemonContext: created, fcntl-locked and written; removed on exit."""

    def __init__(self, path):
        self.path = path
        self.fd = -1

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # F_SETLK, whole file
        os.ftruncate(self.fd, 0)
        os.write(self.fd, b"%d\n" % os.getpid())
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.unlink(self.path)
            os.close(self.fd)
            self.fd = -1


def start(pidfile, port):
    pidfile = os.path.abspath(pidfile)
    r, w = os.pipe()
    if os.fork() > 0:  # the caller: wait for the daemon's word
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            line = pipe.readline().decode().strip()
        if line.startswith("READY "):
            print(f"started (pid {line[6:]})")
            return 0
        print(f"pydaemon: start failed: {line or 'daemon exited'}", file=sys.stderr)
        return 1
    os.close(r)
    context = daemon.DaemonContext(detach_process=True, working_directory="/", umask=0o022,
                                   files_preserve=[w], pidfile=LockedPidFile(pidfile))
    try:
        context.open()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(512)
    except BaseException as e:  # noqa: BLE001 - every failure goes to the launcher
        os.write(w, f"ERROR {e}\n".encode())
        if context.is_open:
            context.close()  # removes the pid file only if it is ours
        os._exit(1)
    os.write(w, b"READY %d\n" % os.getpid())
    os.close(w)
    with context:  # SIGTERM raises SystemExit (python-daemon's terminate); close() removes the pid file
        while True:
            client, _ = listener.accept()
            client.close()


def stop(pidfile):
    try:
        fd = os.open(pidfile, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        print("not running")
        return 0
    pid = int(os.read(fd, 32).split()[0])
    probe = struct.pack("hhqqixxxx", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
    l_type, _, _, _, holder = struct.unpack("hhqqixxxx", fcntl.fcntl(fd, fcntl.F_GETLK, probe))
    if l_type == fcntl.F_UNLCK:
        print("not running")
        return 0
    if holder != pid:
        print(f"pydaemon: lock held by {holder}, file names {pid}", file=sys.stderr)
        return 1
    pidfd = os.pidfd_open(pid)
    signal.pidfd_send_signal(pidfd, signal.SIGTERM)
    waiter = select.poll()
    waiter.register(pidfd, select.POLLIN)
    if not waiter.poll(10000):
        print(f"pydaemon: pid {pid} did not stop", file=sys.stderr)
        return 1
    print(f"stopped (pid {pid})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "start":
        sys.exit(start(sys.argv[2], int(sys.argv[3])))
    if len(sys.argv) >= 3 and sys.argv[1] == "stop":
        sys.exit(stop(sys.argv[2]))
    print("usage: pydaemon.py start|stop PIDFILE [PORT]", file=sys.stderr)
    sys.exit(2)
