#!/usr/bin/python3
"""Measurement helpers for bench/run.sh. Every client talks to 127.0.0.1 only, every loop is
bounded in count and time, and every daemon a helper starts is stopped by the helper itself.

Subcommands (each writes one JSON file, merged by `report`):
  freeports N                       print N free loopback TCP ports
  quiet                             wait (bounded) until no other work keeps the CPUs busy
  stoplat  NAME START STOP PIDFILE  exit of the daemon -> return of `stop` (pidfd watcher)
  idle     OUT NAME=PIDFILE...      context switches over an idle window, and RSS
  drain    OUT BIN DIR PORT         `stop` with 10/100/1000 idle client connections open
  gap      NAME START RESTART STOP PIDFILE PORT   refused connections (and, --echo, cut echoes) across a restart,
                                    and the longest pause between two served connections
  stages   NAME BIN DIR PORT        launcher / detach / daemon split of `start` (LD_PRELOAD probe)
  cycles   OUT NAME=START::STOP...  start+stop cycles, the variants interleaved run by run
  report   DATA_DIR OUT_MD          the final table
"""
import argparse
import json
import os
import random
import select
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

NS = 1_000_000_000


def ms(ns):
    return ns / 1e6


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2)


def run(argv, what):
    """Runs a command to completion; its stdout is discarded, a failure shows its stderr."""
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"measure: {what} failed ({done.returncode}): {' '.join(argv)}\n{done.stderr.decode()}")


def read_pid(pidfile):
    with open(pidfile) as f:
        return int(f.read().split()[0])


def wait_pidfd(pidfd, timeout_s):
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(int(timeout_s * 1000)))


def freeports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ---- a quiet machine -------------------------------------------------------------------------

def cpu_busy(seconds):
    """The share of all CPUs that was busy (not idle, not iowait) over `seconds`."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(threshold=0.15, max_wait=5.0, sample=0.3):
    """Waits, at most max_wait s, for a sample window with the CPUs less than threshold busy."""
    end = time.monotonic() + max_wait
    while cpu_busy(sample) > threshold and time.monotonic() < end:
        pass


def quiet(args):
    """Waits (up to --max-wait s) until the CPUs were less than --threshold busy for one second:
    other work on a 2-core machine delays every short process by whole time slices."""
    start = time.monotonic()
    busy = cpu_busy(1)
    while busy > args.threshold and time.monotonic() - start < args.max_wait:
        busy = cpu_busy(1)
    waited = time.monotonic() - start
    state = "quiet" if busy <= args.threshold else "STILL BUSY (numbers below are skewed by other work)"
    print(f"    machine {state}: {busy:.0%} busy over the last second (waited {waited:.0f} s)")


# ---- stop latency ----------------------------------------------------------------------------

def stoplat(args):
    """Starts the daemon, holds a pidfd on it, runs `stop` and records three instants: stop
    launched (t0), daemon exited (the pidfd turns readable, as it does for `stop` itself), and
    `stop` returned (waitpid). exit->return is the latency the target is about."""
    start, stop = shlex.split(args.start), shlex.split(args.stop)
    samples = []
    for i in range(args.warmup + args.runs):
        run(start, f"{args.name} start")
        pid = read_pid(args.pidfile)
        pidfd = os.pidfd_open(pid)
        try:
            time.sleep(0.05)  # let a freshly started runtime settle
            t0 = time.monotonic_ns()
            proc = subprocess.Popen(stop, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if not wait_pidfd(pidfd, 15):
                proc.kill()
                raise SystemExit(f"measure: {args.name}: daemon {pid} did not exit")
            t_exit = time.monotonic_ns()
            rc = proc.wait(timeout=15)
            t_ret = time.monotonic_ns()
        finally:
            os.close(pidfd)
        if rc != 0:
            raise SystemExit(f"measure: {args.name} stop exited {rc}")
        if i >= args.warmup:
            samples.append((t_exit - t0, t_ret - t_exit, t_ret - t0))
    # The daemon's own shutdown: SIGTERM straight from the harness (no `stop` process) -> exit.
    shutdown = []
    for i in range(args.runs // 2):
        run(start, f"{args.name} start")
        pidfd = os.pidfd_open(read_pid(args.pidfile))
        try:
            time.sleep(0.05)
            t0 = time.monotonic_ns()
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
            if not wait_pidfd(pidfd, 15):
                raise SystemExit(f"measure: {args.name}: daemon did not exit on SIGTERM")
            shutdown.append(time.monotonic_ns() - t0)
        finally:
            os.close(pidfd)
        run(stop, f"{args.name} stop (removes a pid file left behind)")
    result = {
        "name": args.name,
        "runs": args.runs,
        "sigterm_to_exit_ms": statistics.median(ms(t) for t in shutdown),
        "signal_to_exit_ms": statistics.median(ms(s[0]) for s in samples),
        "exit_to_return_ms": statistics.median(ms(s[1]) for s in samples),
        "exit_to_return_max_ms": max(ms(s[1]) for s in samples),
        "stop_total_ms": statistics.median(ms(s[2]) for s in samples),
    }
    write_json(args.out, result)
    print(f"  {args.name:8} stop total {result['stop_total_ms']:7.2f} ms = launch+signal->exit "
          f"{result['signal_to_exit_ms']:6.2f} ms + exit->return {result['exit_to_return_ms']:5.2f} ms "
          f"(max {result['exit_to_return_max_ms']:.2f}); the daemon alone, SIGTERM -> exit: "
          f"{result['sigterm_to_exit_ms']:.2f} ms")


# ---- idle --------------------------------------------------------------------------------------

def task_switches(pid):
    """Voluntary and involuntary switches of each live thread, by thread id."""
    counts = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        vol = invol = 0
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol = int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        invol = int(line.split()[1])
        except FileNotFoundError:
            continue  # a thread that ended between listdir and open
        counts[tid] = (vol, invol)
    return counts


def delta(before, after):
    """Switches made in the window by the threads alive at its end (a thread born in it counts
    all of its switches); a thread that ended in the window is lost, and reported."""
    vol = sum(v - before.get(t, (0, 0))[0] for t, (v, _) in after.items())
    invol = sum(i - before.get(t, (0, 0))[1] for t, (_, i) in after.items())
    return vol, invol, len(set(before) - set(after)), len(set(after) - set(before))


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def idle(args):
    pids = {}
    for item in args.daemons:
        name, pidfile = item.split("=", 1)
        pids[name] = read_pid(pidfile)
    time.sleep(args.settle)
    before = {n: task_switches(p) for n, p in pids.items()}
    time.sleep(args.seconds)
    result = {}
    for name, pid in pids.items():
        after = task_switches(pid)
        vol, invol, ended, born = delta(before[name], after)
        result[name] = {
            "pid": pid,
            "seconds": args.seconds,
            "voluntary": vol,
            "nonvoluntary": invol,
            "threads": len(after),
            "threads_ended": ended,
            "threads_born": born,
            "rss_kb": status_field(pid, "VmRSS"),
            "rss_anon_kb": status_field(pid, "RssAnon"),
        }
        r = result[name]
        churn = f" ({ended} thread(s) ended, {born} born in the window)" if ended or born else ""
        print(f"  {name:8} {vol:4} voluntary / {invol:3} involuntary switches in {args.seconds:g} s, "
              f"{len(after)} threads{churn}, VmRSS {r['rss_kb'] / 1024:.1f} MiB (anon {r['rss_anon_kb'] / 1024:.1f})")
    write_json(args.out, result)


# ---- drain -------------------------------------------------------------------------------------

def socket_count(pid):
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except FileNotFoundError:
            pass
    return count


def drain(args):
    base = [args.bin]
    opts = ["--pid-file", os.path.join(args.dir, "drain.pid"), "--log-file", os.path.join(args.dir, "drain.log"),
            "--port", str(args.port), "--stop-timeout", str(args.stop_timeout)]
    result = {"stop_timeout_s": args.stop_timeout, "counts": {}}
    for count in [int(c) for c in args.counts.split(",")]:
        times = []
        for _ in range(args.runs):
            run(base + ["start"] + opts, "drain start")
            pid = read_pid(opts[1])
            clients = []
            try:
                time.sleep(0.1)
                idle_sockets = socket_count(pid)  # the listener
                for _ in range(count):
                    clients.append(socket.create_connection(("127.0.0.1", args.port), timeout=5))
                deadline = time.monotonic() + 20
                while socket_count(pid) < idle_sockets + count:  # every connection accepted by the daemon
                    if time.monotonic() > deadline:
                        raise SystemExit(f"measure: drain: daemon accepted only {socket_count(pid) - idle_sockets} of {count}")
                    time.sleep(0.01)
                time.sleep(0.2)
                t0 = time.monotonic_ns()
                run(base + ["stop"] + opts, "drain stop")
                times.append(ms(time.monotonic_ns() - t0))
                closed = 0
                for c in clients:  # the daemon closed every connection: each reads EOF
                    c.settimeout(0.5)
                    try:
                        closed += c.recv(1) == b""
                    except OSError:
                        closed += 1
            finally:
                for c in clients:
                    c.close()
                if os.path.exists(opts[1]):
                    run(base + ["stop", "--force"] + opts, "drain cleanup stop")
        result["counts"][str(count)] = {"stop_ms": statistics.median(times), "all_ms": times, "closed_by_daemon": closed}
        print(f"  {count:5} idle connections: stop {statistics.median(times):7.1f} ms (median of {args.runs}: "
              f"{', '.join(f'{t:.0f}' for t in times)}), {closed}/{count} closed by the daemon")
    write_json(args.out, result)


# ---- restart downtime --------------------------------------------------------------------------

def gap(args):
    start, restart, stop = shlex.split(args.start), shlex.split(args.restart), shlex.split(args.stop)
    runs = []
    for _ in range(args.runs):
        run(start, f"{args.name} start")
        attempts = []  # (monotonic ns at the start, and at the end, connected?, echoed?)
        done = threading.Event()

        def attempt():
            """Connects and, with --echo, sends a line and reads it back: (connected, echoed)."""
            try:
                conn = socket.create_connection(("127.0.0.1", args.port), timeout=1)
            except OSError:
                return False, False
            with conn:
                if not args.echo:
                    return True, True
                try:
                    conn.settimeout(5)
                    conn.sendall(b"ping\n")
                    got = b""
                    while not got.endswith(b"\n"):
                        chunk = conn.recv(64)
                        if not chunk:
                            break
                        got += chunk
                    return True, got == b"ping\n"
                except OSError:
                    return True, False

        def load():
            end = time.monotonic() + args.max_seconds
            next_at = time.monotonic()
            while not done.is_set() and len(attempts) < args.max_attempts and time.monotonic() < end:
                t = time.monotonic_ns()
                connected, echoed = attempt()
                attempts.append((t, time.monotonic_ns(), connected, echoed))
                next_at += args.interval_ms / 1000
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                else:
                    next_at = time.monotonic()

        loader = threading.Thread(target=load)
        loader.start()
        try:
            time.sleep(0.3)
            t0 = time.monotonic_ns()
            if args.expect_failure:
                done_restart = subprocess.run(restart, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
                if done_restart.returncode == 0:
                    raise SystemExit(f"measure: {args.name}: the restart was meant to fail and did not")
            else:
                run(restart, f"{args.name} restart")
            restart_ms = ms(time.monotonic_ns() - t0)
            time.sleep(0.3)
        finally:
            done.set()
            loader.join()
            run(stop, f"{args.name} stop")
        longest, refused, cut, last_ok = 0, 0, 0, None
        # The pause in service: the longest time between the ends of two served attempts. A connection
        # the kernel queues while no process accepts is not refused, but waits: that wait shows here.
        served = [end for _, end, ok, echoed in attempts if ok and echoed]
        longest_pause = max((b - a for a, b in zip(served, served[1:])), default=0)
        in_gap = False
        for t, _, ok, echoed in attempts:
            if ok:
                if in_gap and last_ok is not None:
                    longest = max(longest, t - last_ok)
                in_gap, last_ok = False, t
                cut += 0 if echoed else 1
            else:
                refused += 1
                in_gap = True
        if in_gap:
            raise SystemExit(f"measure: {args.name}: still refused at the end of the load")
        runs.append({"gap_ms": ms(longest), "pause_ms": ms(longest_pause), "refused": refused, "cut": cut, "attempts": len(attempts),
                     "restart_ms": restart_ms})
    result = {
        "name": args.name,
        "echo": args.echo,
        "gap_ms": statistics.median(r["gap_ms"] for r in runs),
        "gap_max_ms": max(r["gap_ms"] for r in runs),
        "pause_ms": statistics.median(r["pause_ms"] for r in runs),
        "pause_max_ms": max(r["pause_ms"] for r in runs),
        "refused_median": statistics.median(r["refused"] for r in runs),
        "refused": sum(r["refused"] for r in runs),
        "cut": sum(r["cut"] for r in runs),
        "attempts": sum(r["attempts"] for r in runs),
        "restart_ms": statistics.median(r["restart_ms"] for r in runs),
        "runs": runs,
    }
    write_json(args.out, result)
    echoes = f"; echoes cut {'/'.join(str(r['cut']) for r in runs)}" if args.echo else ""
    print(f"  {args.name:10} longest refusal window {result['gap_ms']:7.1f} ms (median of {args.runs}, max "
          f"{result['gap_max_ms']:.1f}); longest pause in service {result['pause_ms']:.1f} ms; restart command {result['restart_ms']:.0f} ms; refused "
          f"{'/'.join(str(r['refused']) for r in runs)} of {'/'.join(str(r['attempts']) for r in runs)} attempts{echoes}")


# ---- start-up stages, timestamped by the LD_PRELOAD probe bench/c/stagetimes.c --------------

STAGES = [
    ("launcher: spawn, exec, libraries loaded", "h0", "L.loaded"),
    ("launcher: runtime init + command, up to exec of detach stage", "L.loaded", "D.execve"),
    ("hop: exec + libraries of the detach stage", "D.execve", "D.loaded"),
    ("detach stage: runtime init + setsid + exec of daemon", "D.loaded", "M.execve"),
    ("hop: exec + libraries of the daemon", "M.execve", "M.loaded"),
    ("daemon stage: runtime init .. READY", "M.loaded", "M.ready"),
    ("  of which loaded -> bind (runtime, signals, log, pid file)", "M.loaded", "M.bind"),
    ("  of which bind -> READY", "M.bind", "M.ready"),
    ("launcher tail: READY -> exit()", "M.ready", "L.exit"),
    ("launcher exit() -> reaped by the caller", "L.exit", "h1"),
    ("total `start`", "h0", "h1"),
    ("(detach stage lifetime, loaded -> exit)", "D.loaded", "D.exit"),
]


def parse_stages(path, h0, h1):
    order, marks = [], {"h0": h0, "h1": h1}
    with open(path) as f:
        rows = [line.split() for line in f if line.strip()]
    for pid, event, _ in rows:
        if event == "loaded" and pid not in order:
            order.append(pid)
    if len(order) < 2:
        raise SystemExit(f"measure: stages: expected 2 or 3 processes in {path}, saw {len(order)}")
    # Two: the detach stage was daemon-net-stage, a static program that LD_PRELOAD cannot enter.
    # Its time and both hops then count in the launcher's row, and the stage's rows show 0.
    names = dict(zip(order[:3], "LDM" if len(order) >= 3 else "LM"))
    for pid, event, t in rows:
        if pid in names:
            marks.setdefault(f"{names[pid]}.{event}", int(t))
    if len(order) == 2 and "M.loaded" in marks:
        for mark in ("D.execve", "D.loaded", "M.execve"):
            marks[mark] = marks["M.loaded"]
    # A stage started with posix_spawn execs inside glibc, and .NET binds posix_spawn with dlsym
    # on its own libc handle: the probe sees neither. Then the hop (exec + libraries) is folded
    # into the row before it and shows as 0.
    for child in ("D", "M"):
        if f"{child}.execve" not in marks and f"{child}.loaded" in marks:
            marks[f"{child}.execve"] = marks[f"{child}.loaded"]
    # A mark can be missing: the native detach stage (Native AOT) ends with _exit(), so no "exit".
    return {label: (marks[b] - marks[a]) / 1e6 if a in marks and b in marks else None for label, a, b in STAGES}


def stages(args):
    opts = ["--pid-file", os.path.join(args.dir, f"st-{args.name}.pid"), "--log-file",
            os.path.join(args.dir, f"st-{args.name}.log"), "--port", str(args.port)]
    log = os.path.join(args.dir, f"stagetimes-{args.name}.txt")
    env = dict(os.environ, LD_PRELOAD=args.probe, STAGETIMES_LOG=log)
    runs = []
    for i in range(args.warmup + args.runs):
        if os.path.exists(log):
            os.unlink(log)
        wait_quiet()  # one start is short: a burst of other work would land in a single stage
        h0 = time.monotonic_ns()
        done = subprocess.run([args.bin, "start"] + opts, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
        h1 = time.monotonic_ns()
        run([args.bin, "stop"] + opts, f"{args.name} stop after probe")
        if done.returncode != 0:
            raise SystemExit(f"measure: stages: {args.name} start failed: {done.stderr.decode()}")
        if i >= args.warmup:
            runs.append(parse_stages(log, h0, h1))
    result = {k: statistics.median(v) if (v := [r[k] for r in runs if r[k] is not None]) else None for k in runs[0]}
    write_json(args.out, {"name": args.name, "runs": args.runs, "ms": result})
    print(f"  {args.name} (median of {args.runs} probed starts, ms):")
    for k, v in result.items():
        print(f"    {k:62} {'—' if v is None else f'{v:7.2f}'}")


# ---- interleaved cycles (bench/floor.sh) ------------------------------------------------------

def cycles(args):
    """start && stop of each variant in turn, run after run, so that a slow moment of the machine
    hits every variant alike; medians, and ratios against the first variant."""
    variants = []
    for spec in args.variants:
        name, commands = spec.split("=", 1)
        start, stop = commands.split("::", 1)
        variants.append((name, shlex.split(start), shlex.split(stop)))
    times = {name: [] for name, _, _ in variants}
    ref = args.delta_from or variants[0][0]
    if ref not in times:
        raise SystemExit(f"measure: --delta-from {ref}: no such variant")
    null = os.open(os.devnull, os.O_RDWR)
    order = random.Random(1)  # a fixed seed: the same shuffles every time the script runs

    def spawn(argv, what):
        # posix_spawn (vfork + exec) and waitpid: ~0.1 ms of harness per command, where
        # subprocess.run costs ~1 ms and would hide the differences being measured.
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, null, 1), (os.POSIX_SPAWN_DUP2, null, 2)])
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if status != 0:
            raise SystemExit(f"measure: {what} failed ({status}): {' '.join(argv)}")

    for i in range(args.warmup + args.runs):
        # A new order each round, so that no variant always runs right after the same other one.
        for name, start, stop in order.sample(variants, len(variants)):
            t0 = time.monotonic_ns()
            spawn(start, f"{name} start")
            spawn(stop, f"{name} stop")
            if i >= args.warmup:
                times[name].append(ms(time.monotonic_ns() - t0))
    base = statistics.median(times[variants[0][0]])
    result = {name: statistics.median(v) for name, v in times.items()}
    write_json(args.out, {"runs": args.runs, "median_ms": result})
    print(f"  {'variant':24} {'median':>9} {'x ' + variants[0][0]:>8} {'vs ' + ref:>12}")
    for name, value in result.items():
        print(f"  {name:24} {value:6.2f} ms {value / base:7.2f}x {value - result[ref]:+9.2f} ms")


# ---- report ------------------------------------------------------------------------------------

# The units of section 9: the name of each measurement, and what it restarts.
SYSTEMD_UNITS = [
    ("notify-aot", "`systemctl restart`, Type=notify unit with the fd store, AOT"),
    ("notify-jit", "`systemctl restart`, Type=notify unit with the fd store, JIT"),
    ("nostore-aot", "`systemctl restart`, the same unit without FileDescriptorStoreMax=, AOT"),
    ("socket-aot", "`systemctl restart` of a socket-activated service, AOT"),
    ("socket-jit", "`systemctl restart` of a socket-activated service, JIT"),
    ("forking-aot", "the forking unit's daemon, `PROG restart` (handover), AOT"),
    ("forking-jit", "the forking unit's daemon, `PROG restart` (handover), JIT"),
    ("upgrade-aot", "`systemctl reload` of the upgrade unit (ExecReload= runs `PROG restart`, overlapping), AOT"),
    ("upgrade-jit", "`systemctl reload` of the upgrade unit (ExecReload= runs `PROG restart`, overlapping), JIT"),
]


def load(data, name):
    with open(os.path.join(data, name)) as f:
        return json.load(f)


def report(args):
    d = args.data
    cycle = {r["command"]: r for r in load(d, "cycle.json")["results"]}
    starts = {}
    for impl in ("c", "python", "aot", "jit"):
        for r in load(d, f"start-{impl}.json")["results"]:
            starts[impl] = r
    lat = {n: load(d, f"stoplat-{n}.json") for n in ("c", "python", "aot", "jit")}
    idle_r = load(d, "idle.json")
    drain_r = load(d, "drain.json")
    gaps = {n: load(d, f"gap-{n}.json") for n in ("c", "aot", "jit")}

    rows = []

    def row(metric, value, baseline, ratio, target, met):
        rows.append((metric, value, baseline, ratio, target, "—" if met is None else ("MET" if met else "NOT MET")))

    med = {k: v["median"] * 1000 for k, v in cycle.items()}
    r_c = med["aot"] / med["c"]
    r_py = med["aot"] / med["python"]
    row("start+stop cycle, AOT", f"{med['aot']:.1f} ms", f"C {med['c']:.1f} ms", f"{r_c:.2f}x", "<= 4x C", r_c <= 4)
    row("start+stop cycle, AOT", f"{med['aot']:.1f} ms", f"python-daemon {med['python']:.1f} ms", f"{r_py:.2f}x",
        "<= 0.25x python", r_py <= 0.25)
    inter = os.path.join(d, "cycle-interleaved.json")
    if os.path.exists(inter):
        im = load(d, "cycle-interleaved.json")["median_ms"]
        row("start+stop cycle, AOT, interleaved with C run by run", f"{im['aot']:.1f} ms", f"C {im['c']:.1f} ms",
            f"{im['aot'] / im['c']:.2f}x", "info (steadier on a noisy machine)", None)
        row("start+stop cycle, AOT without PIE, interleaved (not shipped)", f"{im['aot-nopie']:.1f} ms", f"C {im['c']:.1f} ms",
            f"{im['aot-nopie'] / im['c']:.2f}x", "info", None)
    if "aot-nopie" in med:
        r_n = med["aot-nopie"] / med["c"]
        row("start+stop cycle, AOT linked without PIE (not shipped)", f"{med['aot-nopie']:.1f} ms", f"C {med['c']:.1f} ms",
            f"{r_n:.2f}x", "info (the cost of ASLR for the executable)", None)
    row("start+stop cycle, JIT", f"{med['jit']:.1f} ms", f"C {med['c']:.1f} ms", f"{med['jit'] / med['c']:.2f}x", "<= 150 ms", med["jit"] <= 150)
    row("start+stop cycle, JIT", f"{med['jit']:.1f} ms", f"python-daemon {med['python']:.1f} ms",
        f"{med['jit'] / med['python']:.2f}x", "info", None)
    s = {k: v["median"] * 1000 for k, v in starts.items()}
    row("`start` alone, JIT", f"{s['jit']:.1f} ms", f"C {s['c']:.1f} ms", f"{s['jit'] / s['c']:.1f}x", "<= 110 ms", s["jit"] <= 110)
    row("`start` alone, AOT", f"{s['aot']:.1f} ms", f"C {s['c']:.1f} ms", f"{s['aot'] / s['c']:.1f}x", "info", None)
    row("`start` alone, python-daemon", f"{s['python']:.1f} ms", f"C {s['c']:.1f} ms", f"{s['python'] / s['c']:.1f}x", "info", None)
    for impl in ("aot", "jit"):
        v, b = lat[impl]["exit_to_return_ms"], lat["c"]["exit_to_return_ms"]
        row(f"stop latency (daemon exit -> `stop` returns), {impl.upper()}", f"{v:.2f} ms",
            f"C {b:.2f} ms, python {lat['python']['exit_to_return_ms']:.2f} ms",
            f"{v / b:.1f}x", "<= 10 ms", v <= 10)
    for impl in ("aot", "jit"):
        v, b = lat[impl]["sigterm_to_exit_ms"], lat["c"]["sigterm_to_exit_ms"]
        row(f"daemon shutdown (SIGTERM -> exit, no clients), {impl.upper()}", f"{v:.2f} ms",
            f"C {b:.2f} ms, python {lat['python']['sigterm_to_exit_ms']:.2f} ms", f"{v / b:.1f}x", "info", None)
    for impl in ("aot", "jit"):
        v, b = lat[impl]["stop_total_ms"], lat["c"]["stop_total_ms"]
        row(f"`stop` wall time, {impl.upper()}", f"{v:.1f} ms", f"C {b:.1f} ms, python {lat['python']['stop_total_ms']:.1f} ms", f"{v / b:.1f}x", "info", None)
    a, c, p = idle_r["aot"], idle_r["c"], idle_r["python"]
    secs = a["seconds"]
    row(f"idle voluntary ctx switches / {secs} s, AOT", f"{a['voluntary']}", f"C {c['voluntary']}, python {p['voluntary']}",
        "—", "info (0 = truly asleep)", None)
    if "jit" in idle_r:
        j = idle_r["jit"]
        row(f"idle voluntary ctx switches / {secs} s, JIT", f"{j['voluntary']}", f"C {c['voluntary']}", "—", "info", None)
    rr = a["rss_kb"] / p["rss_kb"]
    row("idle RSS (VmRSS), AOT", f"{a['rss_kb'] / 1024:.1f} MiB", f"python-daemon {p['rss_kb'] / 1024:.1f} MiB",
        f"{rr:.2f}x", "<= 1.5x python", rr <= 1.5)
    if "jit" in idle_r:
        j = idle_r["jit"]
        row("idle RSS (VmRSS), JIT", f"{j['rss_kb'] / 1024:.1f} MiB", f"python-daemon {p['rss_kb'] / 1024:.1f} MiB",
            f"{j['rss_kb'] / p['rss_kb']:.2f}x", "info", None)
    grace_ms = drain_r["stop_timeout_s"] * 1000 / 2
    for count, v in drain_r["counts"].items():
        row(f"drain: AOT `stop` with {count} idle connections", f"{v['stop_ms']:.0f} ms",
            f"AOT `stop`, none: {lat['aot']['stop_total_ms']:.0f} ms", "—",
            f"< 1 s (quiet close ~200 ms; grace {grace_ms / 1000:.0f} s)", v["stop_ms"] < 1000)
    def window(g):
        return f"{g:.1f} ms" if g > 0 else "0 (no connection refused)"

    for impl in ("aot", "jit"):
        g, b = gaps[impl], gaps["c"]
        row(f"`restart` under a connect-echo load, {impl.upper()}: refused / echoes cut",
            f"{g['refused']} / {g['cut']} of {g['attempts']}", f"C stop+start: {b['refused']} refused of {b['attempts']}, "
            f"window {window(b['gap_ms'])}", "—", "0 refused, 0 cut", g["refused"] == 0 and g["cut"] == 0)
    for impl in ("aot", "jit"):
        name = f"{impl}-failed"
        if os.path.exists(os.path.join(d, f"gap-{name}.json")):
            g = load(d, f"gap-{name}.json")
            row(f"failed `restart` (startup hook throws) under the same load, {impl.upper()}: refused / cut",
                f"{g['refused']} / {g['cut']} of {g['attempts']}", "—", "—", "0 refused, 0 cut", g["refused"] == 0 and g["cut"] == 0)

    # Section 9: `systemctl restart` of each unit type under a real systemd, next to C stop + start.
    c = gaps["c"]
    for name, what in SYSTEMD_UNITS:
        path = os.path.join(d, f"gap-systemd-{name}.json")
        if os.path.exists(path):
            g = load(d, f"gap-systemd-{name}.json")
            control = name.startswith("nostore")
            row(f"{what} under a connect-echo load: refused (median per restart) / longest pause in service",
                f"{g['refused_median']:g} / {g['pause_ms']:.0f} ms", f"C stop+start: {c['refused_median']:g} / {c['pause_ms']:.0f} ms",
                "—", "info (the control)" if control else "0 refused", None if control else g["refused"] == 0)

    head = ("metric", "value", "baseline", "ratio", "target", "result")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    st = {n: load(d, f"stages-{n}.json") for n in ("aot", "jit")}
    lines += ["", "Start-up stages of `start` (LD_PRELOAD timestamp probe bench/c/stagetimes.c, median of "
              f"{st['aot']['runs']} runs, ms; medians per row, so rows need not add up exactly). The JIT "
              "detach stage is daemon-net-stage, a static program the probe cannot enter: its time and both "
              "hops are in the JIT launcher's row, and its own rows show 0:", "",
              "| stage | AOT | JIT |", "|---|---|---|"]
    def cell(v):
        return "—" if v is None else f"{v:.1f}"
    for k in st["aot"]["ms"]:
        lines.append(f"| {k} | {cell(st['aot']['ms'][k])} | {cell(st['jit']['ms'][k])} |")
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(f"# Daemon.NET benchmark results\n\n{args.header}\n\n" + text)
    print(text)
    missed = [r for r in rows if r[5] == "NOT MET"]
    print(f"{sum(r[5] == 'MET' for r in rows)} targets met, {len(missed)} not met")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("freeports")
    p.add_argument("n", type=int)
    p = sub.add_parser("quiet")
    p.add_argument("--threshold", type=float, default=0.15)
    p.add_argument("--max-wait", type=float, default=30)
    p = sub.add_parser("stoplat")
    p.add_argument("--name", required=True)
    p.add_argument("--start", required=True)
    p.add_argument("--stop", required=True)
    p.add_argument("--pidfile", required=True)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--out", required=True)
    p = sub.add_parser("idle")
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--settle", type=float, default=2)
    p.add_argument("daemons", nargs="+")
    p = sub.add_parser("drain")
    p.add_argument("--out", required=True)
    p.add_argument("--bin", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--counts", default="10,100,1000")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--stop-timeout", type=int, default=10)
    p = sub.add_parser("gap")
    p.add_argument("--name", required=True)
    p.add_argument("--start", required=True)
    p.add_argument("--restart", required=True)
    p.add_argument("--stop", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--interval-ms", type=float, default=2)
    p.add_argument("--max-seconds", type=float, default=10)
    p.add_argument("--max-attempts", type=int, default=5000)
    p.add_argument("--echo", action="store_true", help="send a line on each connection and expect it back")
    p.add_argument("--expect-failure", action="store_true", help="the restart is meant to fail (rollback)")
    p.add_argument("--out", required=True)
    p = sub.add_parser("stages")
    p.add_argument("--name", required=True)
    p.add_argument("--bin", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--probe", required=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--out", required=True)
    p = sub.add_parser("cycles")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", required=True)
    p.add_argument("--delta-from", help="also print each median's difference from this variant's")
    p.add_argument("variants", nargs="+")
    p = sub.add_parser("report")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--header", default="")
    args = ap.parse_args()
    if args.cmd == "freeports":
        print(" ".join(map(str, freeports(args.n))))
    else:
        {"quiet": quiet, "stoplat": stoplat, "idle": idle, "drain": drain, "gap": gap, "stages": stages, "cycles": cycles, "report": report}[args.cmd](args)


if __name__ == "__main__":
    main()
