#!/usr/bin/env python3
"""HTTP load across restarts: N clients that open a new connection per request (Connection: close;
half of them send it 10 ms after connecting) and K keep-alive clients, against 127.0.0.1:PORT, while a command (a restart) runs R times.

A request counts as served only with a complete 200 response. A keep-alive client retries a request
once, on a new connection, when the server closed the idle connection before any byte of a response
(as HTTP clients do); every other error is a failure. Prints one JSON object: counts, failures
(with their reasons), and latency percentiles in steady state and during the restarts.

usage: httpload.py PORT --clients 8 --keepalive 2 --restarts 10 --settle 1.0 -- COMMAND...
"""
import argparse
import json
import socket
import subprocess
import sys
import threading
import time

REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
REQUEST_KEEP = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Closed(Exception):
    """The server closed the connection; `before_response` when no byte of a response came."""

    def __init__(self, before_response, why):
        super().__init__(why)
        self.before_response = before_response


def read_response(sock, buf):
    """Reads one response (Content-Length or chunked or until close); returns (status, body, rest, close)."""
    got_any = bool(buf)
    while b"\r\n\r\n" not in buf:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            raise Closed(not got_any, "connection reset")
        if not chunk:
            raise Closed(not got_any, "closed without response" if not got_any else "closed in the headers")
        got_any = True
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip().lower()
    close = headers.get("connection") == "close"
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise Closed(False, "closed in the body")
            buf += chunk
        return status, buf[:n], buf[n:], close
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise Closed(False, "closed in a chunk")
                buf += chunk
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                chunk = sock.recv(65536)
                if not chunk:
                    raise Closed(False, "closed in a chunk")
                buf += chunk
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                return status, body, buf, close
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return status, buf, b"", True
        buf += chunk


class Load:
    def __init__(self, port, clients, keepalive):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.samples = []  # (start time, latency s)
        self.failures = []  # (time, reason)
        self.retries = 0
        # Half of the new-connection clients send their request 10 ms after connecting (a slow or
        # TLS client): a connection accepted whose request has not arrived yet.
        self.threads = [threading.Thread(target=self.new_connections, args=(i % 2 == 1,), daemon=True) for i in range(clients)]
        self.threads += [threading.Thread(target=self.keep_alive, daemon=True) for _ in range(keepalive)]

    def ok(self, started, status, body):
        now = time.monotonic()
        if status != 200 or not body.startswith(b"hello"):
            self.fail(f"status {status}: {body[:60]!r}")
            return
        with self.lock:
            self.samples.append((started, now - started))

    def fail(self, why):
        with self.lock:
            self.failures.append((time.monotonic(), why))

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def new_connections(self, slow):
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                with self.connect() as s:
                    if slow:
                        time.sleep(0.01)
                    s.sendall(REQUEST_CLOSE)
                    status, body, _, _ = read_response(s, b"")
                self.ok(started, status, body)
            except (Closed, OSError) as e:
                self.fail(f"new connection: {e}")

    def keep_alive(self):
        sock = None
        buf = b""
        while not self.stop.is_set():
            started = time.monotonic()
            retried = False
            while True:
                try:
                    if sock is None:
                        sock, buf, fresh = self.connect(), b"", True
                    else:
                        fresh = False
                    sock.sendall(REQUEST_KEEP)
                    status, body, buf, close = read_response(sock, buf)
                    self.ok(started, status, body)
                    if close:
                        sock.close()
                        sock = None
                    break
                except (Closed, OSError) as e:
                    if sock is not None:
                        sock.close()
                    sock = None
                    before = isinstance(e, Closed) and e.before_response or isinstance(e, (BrokenPipeError, ConnectionResetError))
                    # An idle connection the server closed: one retry on a new connection, as HTTP clients do.
                    if not fresh and before and not retried:
                        retried = True
                        with self.lock:
                            self.retries += 1
                        continue
                    self.fail(f"keep-alive: {e}")
                    break
        if sock is not None:
            sock.close()


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--keepalive", type=int, default=2)
    ap.add_argument("--restarts", type=int, default=10)
    ap.add_argument("--settle", type=float, default=1.0, help="steady seconds before, between and after restarts")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:split])
    command = argv[split + 1:]

    load = Load(a.port, a.clients, a.keepalive)
    for t in load.threads:
        t.start()
    windows = []  # (start, end) of each restart command
    exits = []
    time.sleep(a.settle)
    for _ in range(a.restarts):
        t0 = time.monotonic()
        r = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # The old generation drains after restart returns: its connections end within a moment more.
        windows.append((t0, time.monotonic()))
        exits.append(r.returncode)
        time.sleep(a.settle)
    load.stop.set()
    for t in load.threads:
        t.join(60)

    def during(t):
        # A request that started during a restart, or up to 0.5 s after it (the old one drains).
        return any(s <= t <= e + 0.5 for s, e in windows)

    with load.lock:
        steady = [l for s, l in load.samples if not during(s)]
        restart = [l for s, l in load.samples if during(s)]
        failures = list(load.failures)
    ms = lambda v: None if v is None else round(v * 1000, 3)
    out = {
        "restarts": a.restarts,
        "restart_exit_codes": exits,
        "served": len(load.samples),
        "failed": len(failures),
        "failed_during_restarts": sum(1 for t, _ in failures if during(t)),
        "keepalive_retries": load.retries,
        "failures": [w for _, w in failures[:20]],
        "steady": {"n": len(steady), "p50_ms": ms(percentile(steady, 50)), "p99_ms": ms(percentile(steady, 99))},
        "during_restarts": {"n": len(restart), "p50_ms": ms(percentile(restart, 50)), "p99_ms": ms(percentile(restart, 99))},
    }
    json.dump(out, sys.stdout)
    print()
    return 0 if not failures and all(c == 0 for c in exits) else 1


if __name__ == "__main__":
    sys.exit(main())
