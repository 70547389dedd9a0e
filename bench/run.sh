#!/usr/bin/env bash
# The benchmark of issue 5: Daemon.NET's example daemon (Native AOT and JIT) against a C double-fork
# daemon and a python-daemon one. Run from anywhere: bash bench/run.sh
# Everything runs on 127.0.0.1; every daemon it starts has its pid file in a private temp folder
# and is stopped (or killed, by pid) on exit. Results: bench/out/results.md, raw data: bench/out/data.
# BENCH_RUNS=N changes the hyperfine run count (default 30); BENCH_QUIET_WAIT=S how long each section
# waits for the CPUs to be idle first (default 30 s; 0 to not wait).
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
OUT="$BENCH/out"
DATA="$OUT/data"
PY=/usr/bin/python3 # Debian's python, where python3-daemon lives (not a pyenv one on PATH)
MEASURE=("$PY" "$BENCH/tools/measure.py")
RUNS="${BENCH_RUNS:-30}"
QUIET_WAIT="${BENCH_QUIET_WAIT:-30}" # seconds each section may wait for other work to finish
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 PYTHONDONTWRITEBYTECODE=1

section() { printf '\n=== %s\n' "$*"; }
# logged LOG WHAT COMMAND...: runs COMMAND with its output in LOG; on failure shows LOG and stops.
logged() {
    local log="$1" what="$2"
    shift 2
    "$@" >"$log" 2>&1 || {
        cat "$log"
        echo "$what failed" >&2
        exit 1
    }
}
note() { printf '    %s\n' "$*"; }

# ---- a private folder, and cleanup of everything started from it ----------------------------
WORK="$(mktemp -d /tmp/daemon-bench.XXXXXX)"

# A daemon is ours when its command line names a file in $WORK (all of them get their pid file there).
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$WORK/"; }

cleanup() {
    local rc=$? f pid pids=()
    trap - EXIT INT TERM
    for f in "$WORK"/*.pid; do
        [ -e "$f" ] || continue
        pid="$(head -n1 "$f" 2>/dev/null | tr -dc 0-9)" || true
        if [ -n "$pid" ] && ours "$pid"; then
            pids+=("$pid")
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    if ((${#pids[@]})); then
        echo "cleanup: stopping leftover daemon(s) ${pids[*]}" >&2
        sleep 1
        for pid in "${pids[@]}"; do
            if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        done
    fi
    # The systemd of section 9, and everything it started.
    if [ -n "${SB:-}" ]; then "$SANDBOX" stop "$SB" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1000 client connections in one process, and as many in the daemon: more than a default 1024.
ulimit -n 4096 2>/dev/null || true

# ---- what the benchmark needs ---------------------------------------------------------------
section "tools"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
"$PY" -c 'import daemon' 2>/dev/null || need+=(python3-daemon)
if ((${#need[@]})); then
    note "installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
note "$(hyperfine --version), $("$PY" --version), python-daemon $("$PY" -c 'import daemon; print(daemon.__version__)' 2>/dev/null || dpkg-query -W -f='${Version}' python3-daemon)"
note "dotnet $(dotnet --version), $(nproc) cores, kernel $(uname -r)"

# ---- builds ---------------------------------------------------------------------------------
section "build"
mkdir -p "$OUT" "$DATA"
rm -f "$DATA"/*.json
CBIN="$OUT/cdaemon"
gcc -O2 -Wall -Wextra -Werror -o "$CBIN" "$BENCH/c/cdaemon.c"
PROBE="$OUT/stagetimes.so"
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$PROBE" "$BENCH/c/stagetimes.c" -ldl
note "C baseline: $CBIN; start-up probe: $PROBE"

# --artifacts-path keeps these Release builds out of the projects' own bin/ and obj/ folders.
AOT_LOG="$OUT/publish-aot.log"
logged "$AOT_LOG" "AOT publish" dotnet publish "$ROOT/Daemon.Example/Daemon.Example.csproj" -c Release -r linux-x64 \
    -p:PublishAot=true -o "$OUT/aot" --artifacts-path "$OUT/artifacts"
AOT="$OUT/aot/Daemon.Example"
AOT_WARNINGS="$(grep -E ': (warning|error) [A-Z]+[0-9]+' "$AOT_LOG" | sort -u || true)"
if [ -n "$AOT_WARNINGS" ]; then
    note "AOT publish WARNINGS:"
    printf '%s\n' "$AOT_WARNINGS" | sed 's/^/      /'
else
    note "AOT publish: no warnings ($AOT, $(du -k "$AOT" | cut -f1) KiB)"
fi

# The same example linked as a fixed-address (non-PIE) executable: not what we ship, but it shows
# what ASLR of the executable image costs at every start (the data relocations and their pages).
NOPIE_LOG="$OUT/publish-aot-nopie.log"
logged "$NOPIE_LOG" "non-PIE AOT publish" dotnet publish "$ROOT/Daemon.Example/Daemon.Example.csproj" -c Release -r linux-x64 \
    -p:PublishAot=true -p:PositionIndependentExecutable=false -o "$OUT/aot-nopie" --artifacts-path "$OUT/artifacts-nopie"
NOPIE="$OUT/aot-nopie/Daemon.Example"
note "AOT without PIE, for comparison: $NOPIE"

JIT_LOG="$OUT/build-jit.log"
logged "$JIT_LOG" "JIT build" dotnet build "$ROOT/Daemon.Example/Daemon.Example.csproj" -c Release --artifacts-path "$OUT/artifacts"
JIT="$OUT/artifacts/bin/Daemon.Example/release/Daemon.Example" # the apphost
note "JIT build: $JIT ($(grep -E '^\s+[0-9]+ Warning' "$JIT_LOG" | xargs))"

# ---- the four daemons, each with its own files and free port --------------------------------
read -r P_C P_PY P_AOT P_JIT P_DRAIN P_ST P_NOPIE < <("${MEASURE[@]}" freeports 7)
q() { printf '%q ' "$@"; } # a command line, quoted for hyperfine's shell
C_START="$(q "$CBIN" start "$WORK/c.pid" "$P_C")"
C_STOP="$(q "$CBIN" stop "$WORK/c.pid")"
PY_START="$(q "$PY" "$BENCH/python/pydaemon.py" start "$WORK/py.pid" "$P_PY")"
PY_STOP="$(q "$PY" "$BENCH/python/pydaemon.py" stop "$WORK/py.pid")"
AOT_OPTS="$(q --pid-file "$WORK/aot.pid" --log-file "$WORK/aot.log" --port "$P_AOT")"
AOT_START="$(q "$AOT") start $AOT_OPTS"
AOT_STOP="$(q "$AOT") stop $AOT_OPTS"
AOT_RESTART="$(q "$AOT") restart $AOT_OPTS"
NOPIE_OPTS="$(q --pid-file "$WORK/nopie.pid" --log-file "$WORK/nopie.log" --port "$P_NOPIE")"
NOPIE_START="$(q "$NOPIE") start $NOPIE_OPTS"
NOPIE_STOP="$(q "$NOPIE") stop $NOPIE_OPTS"
JIT_OPTS="$(q --pid-file "$WORK/jit.pid" --log-file "$WORK/jit.log" --port "$P_JIT")"
JIT_START="$(q "$JIT") start $JIT_OPTS"
JIT_STOP="$(q "$JIT") stop $JIT_OPTS"
JIT_RESTART="$(q "$JIT") restart $JIT_OPTS"

# Smoke test: each one starts, answers on its port, and stops.
for impl in C PY AOT NOPIE JIT; do
    start="${impl}_START" stop="${impl}_STOP" port="P_${impl}"
    eval "${!start}" >/dev/null
    "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2).close()" "${!port}"
    eval "${!stop}" >/dev/null
done
note "smoke test: all five start, accept a connection on 127.0.0.1 and stop"

LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
note "load average now: $LOAD0 (other work on these 2 cores skews every number)"
HF=(hyperfine --style basic --warmup 3 --runs "$RUNS")

# ---- 1. start+stop cycle --------------------------------------------------------------------
section "1. start+stop cycle (hyperfine, $RUNS runs, medians)"
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
"${HF[@]}" --export-json "$DATA/cycle.json" \
    -n c "$C_START && $C_STOP" \
    -n python "$PY_START && $PY_STOP" \
    -n aot "$AOT_START && $AOT_STOP" \
    -n aot-nopie "$NOPIE_START && $NOPIE_STOP" \
    -n jit "$JIT_START && $JIT_STOP"

# The same cycles again, the variants interleaved run by run (posix_spawn from Python, ~0.1 ms of
# harness per command): slower and faster moments of this VM then hit C and AOT alike.
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
"${MEASURE[@]}" cycles --runs 100 --out "$DATA/cycle-interleaved.json" \
    "c=$C_START::$C_STOP" "aot=$AOT_START::$AOT_STOP" "aot-nopie=$NOPIE_START::$NOPIE_STOP"

# ---- 2. start alone -------------------------------------------------------------------------
section "2. 'start' alone (hyperfine -N, no shell; --prepare stops the previous run's daemon, untimed)"
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
for impl in c python aot jit; do
    case $impl in
        c) s="$C_START" t="$C_STOP" ;;
        python) s="$PY_START" t="$PY_STOP" ;;
        aot) s="$AOT_START" t="$AOT_STOP" ;;
        jit) s="$JIT_START" t="$JIT_STOP" ;;
    esac
    "${HF[@]}" -N --export-json "$DATA/start-$impl.json" --prepare "$t" -n "$impl" "$s"
    eval "$t" >/dev/null
done

# ---- 3. stop latency ------------------------------------------------------------------------
section "3. stop latency: daemon exit -> 'stop' returns"
note "Method: the harness starts the daemon, opens a pidfd on it, launches 'stop' and records"
note "t0 (stop launched), t_exit (the pidfd turns readable: the daemon's last thread is gone, the"
note "same event 'stop' waits for) and t_ret (waitpid on 'stop' returns). exit->return = t_ret - t_exit"
note "is the latency of the target; the C baseline shows the floor of the method (scheduling on 2 cores)."
note "20 runs each after 2 warm-ups, medians."
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
"${MEASURE[@]}" stoplat --name c --start "$C_START" --stop "$C_STOP" --pidfile "$WORK/c.pid" --out "$DATA/stoplat-c.json"
"${MEASURE[@]}" stoplat --name python --start "$PY_START" --stop "$PY_STOP" --pidfile "$WORK/py.pid" --out "$DATA/stoplat-python.json"
"${MEASURE[@]}" stoplat --name aot --start "$AOT_START" --stop "$AOT_STOP" --pidfile "$WORK/aot.pid" --out "$DATA/stoplat-aot.json"
"${MEASURE[@]}" stoplat --name jit --start "$JIT_START" --stop "$JIT_STOP" --pidfile "$WORK/jit.pid" --out "$DATA/stoplat-jit.json"

# ---- 4. start-up stages ---------------------------------------------------------------------
section "4. where 'start' spends its time (LD_PRELOAD probe bench/c/stagetimes.c: timestamps at exec, at"
note "the exec of the next stage, at bind(), at the READY write and at exit(); no tracer)"
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
"${MEASURE[@]}" stages --name aot --bin "$AOT" --dir "$WORK" --port "$P_ST" --probe "$PROBE" --out "$DATA/stages-aot.json"
"${MEASURE[@]}" stages --name jit --bin "$JIT" --dir "$WORK" --port "$P_ST" --probe "$PROBE" --out "$DATA/stages-jit.json"

# ---- 5. idle --------------------------------------------------------------------------------
section "5. idle daemons: voluntary context switches over 10 s (all threads), VmRSS"
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
eval "$C_START" >/dev/null
eval "$PY_START" >/dev/null
eval "$AOT_START" >/dev/null
eval "$JIT_START" >/dev/null
"${MEASURE[@]}" idle --out "$DATA/idle.json" --seconds 10 --settle 3 \
    c="$WORK/c.pid" python="$WORK/py.pid" aot="$WORK/aot.pid" jit="$WORK/jit.pid"
for t in "$C_STOP" "$PY_STOP" "$AOT_STOP" "$JIT_STOP"; do eval "$t" >/dev/null; done

# ---- 6. drain -------------------------------------------------------------------------------
section "6. drain: AOT 'stop' with N idle client connections open (--stop-timeout 10: grace 5 s)"
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
"${MEASURE[@]}" drain --out "$DATA/drain.json" --bin "$AOT" --dir "$WORK" --port "$P_DRAIN" --counts 10,100,1000 --runs 3

# ---- 7. restart under load ------------------------------------------------------------------
section "7. restart under load (a connect, for Daemon.NET a connect and an echo, every 2 ms; at most 10 s / 5000 attempts)"
note "Daemon.NET hands its listener over to the next generation; the C baseline restarts as"
note "stop && start. The refusal window runs from the last accepted connection before the first"
note "refused one to the first accepted one after it. The failed restart's startup hook throws:"
note "the running daemon must keep serving."
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
"${MEASURE[@]}" gap --name c --start "$C_START" --restart "sh -c $(q "$C_STOP >/dev/null && $C_START >/dev/null")" \
    --stop "$C_STOP" --port "$P_C" --out "$DATA/gap-c.json"
"${MEASURE[@]}" gap --echo --name aot --start "$AOT_START" --restart "$AOT_RESTART" --stop "$AOT_STOP" --port "$P_AOT" --out "$DATA/gap-aot.json"
"${MEASURE[@]}" gap --echo --name jit --start "$JIT_START" --restart "$JIT_RESTART" --stop "$JIT_STOP" --port "$P_JIT" --out "$DATA/gap-jit.json"
"${MEASURE[@]}" gap --echo --expect-failure --name aot-failed --start "$AOT_START" --restart "$AOT_RESTART --simulate-fault startup-throws" \
    --stop "$AOT_STOP" --port "$P_AOT" --out "$DATA/gap-aot-failed.json"
"${MEASURE[@]}" gap --echo --expect-failure --name jit-failed --start "$JIT_START" --restart "$JIT_RESTART --simulate-fault startup-throws" \
    --stop "$JIT_STOP" --port "$P_JIT" --out "$DATA/gap-jit-failed.json"

# ---- 8. web restarts ------------------------------------------------------------------------
section "8. web example (WebDaemon, Kestrel) restarts under HTTP load: bench/web.sh"
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
bash "$BENCH/web.sh"

# ---- 9. systemctl restart under a real systemd ----------------------------------------------
section "9. 'systemctl restart' of each unit type under a real systemd (systemd-sandbox), the load of section 7"
note "The units are Daemon.Example/deploy's, with the bench's program and port. Type=notify keeps its"
note "listener in systemd's fd store (FileDescriptorStoreMax=); the control is the same unit without it."
note "The socket-activated service serves systemd's socket. The forking unit's daemon restarts itself"
note "(PROG restart, a handover), and systemd follows the new main pid (PIDFile=). 'Longest pause in"
note "service': the longest time between two served connections (a queued connection waits, not refused)."
SANDBOX="${SYSTEMD_SANDBOX:-/work/shared/tools/systemd-sandbox}"
if [ "$(id -u)" -ne 0 ] || [ ! -x "$SANDBOX" ] || [ ! -x /lib/systemd/systemd ]; then
    note "skipped: it needs root, systemd and $SANDBOX"
else
    "${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
    mkdir -p "$WORK/units"
    # unit FILE VARIANT PROGRAM PORT: the shipped unit with PROGRAM and PORT, "daemon-example" in its name
    # and its contents (other units, pid and log files) become "daemon-example-VARIANT".
    unit() {
        sed -e "s#/usr/local/bin/Daemon.Example#$3#" -e "s#8007#$4#" -e "s#daemon-example#daemon-example-$2#g" \
            "$ROOT/Daemon.Example/deploy/$1" >"$WORK/units/${1/daemon-example/daemon-example-$2}"
    }
    read -r P_SN_AOT P_SN_JIT P_SX_AOT P_SS_AOT P_SS_JIT P_SF_AOT P_SF_JIT P_SU_AOT P_SU_JIT < <("${MEASURE[@]}" freeports 9)
    for v in aot:"$AOT":"$P_SN_AOT":"$P_SS_AOT":"$P_SF_AOT":"$P_SU_AOT" jit:"$JIT":"$P_SN_JIT":"$P_SS_JIT":"$P_SF_JIT":"$P_SU_JIT"; do
        IFS=: read -r name prog pn ps pf pu <<<"$v"
        unit daemon-example.service "$name" "$prog" "$pn"
        unit daemon-example-activated.service "$name" "$prog" "$ps"
        unit daemon-example.socket "$name" "$prog" "$ps"
        unit daemon-example-forking.service "$name" "$prog" "$pf"
        unit daemon-example-upgrade.service "$name" "$prog" "$pu"
    done
    unit daemon-example.service nostore "$AOT" "$P_SX_AOT"
    sed -i '/^FileDescriptorStoreMax=/d' "$WORK/units/daemon-example-nostore.service"
    SB="daemon-bench-$$"
    logged "$OUT/sandbox.log" "systemd-sandbox start" "$SANDBOX" start "$SB" "$WORK"
    logged "$OUT/sandbox.log" "installing the units" "$SANDBOX" exec "$SB" sh -c "cp $WORK/units/* /etc/systemd/system/ && systemctl daemon-reload"
    note "systemd $("$SANDBOX" exec "$SB" systemctl --version | head -1 | cut -d' ' -f2) in sandbox $SB"
    SX="$(q "$SANDBOX") exec $SB"
    # Each run starts the unit anew: reset-failed lifts systemd's start rate limit (5 starts in 10 s).
    started() { printf '%s sh -c %q' "$SX" "systemctl reset-failed $* 2>/dev/null; systemctl start $*"; }
    systemd_gap() { # NAME PORT RESTART UNIT...
        local name="$1" port="$2" restart="$3"
        shift 3
        "${MEASURE[@]}" gap --echo --name "systemd-$name" --start "$(started "$@")" --restart "$restart" \
            --stop "$SX systemctl stop $*" --port "$port" --out "$DATA/gap-systemd-$name.json"
    }
    for v in aot:"$P_SN_AOT":"$P_SS_AOT":"$P_SF_AOT":"$P_SU_AOT" jit:"$P_SN_JIT":"$P_SS_JIT":"$P_SF_JIT":"$P_SU_JIT"; do
        IFS=: read -r name pn ps pf pu <<<"$v"
        systemd_gap "notify-$name" "$pn" "$SX systemctl restart daemon-example-$name.service" "daemon-example-$name.service"
        systemd_gap "socket-$name" "$ps" "$SX systemctl restart daemon-example-$name-activated.service" \
            "daemon-example-$name.socket" "daemon-example-$name-activated.service"
        # The daemon's own restart, with ExecStart's options.
        forking_restart="$(sed -n 's/^ExecStart=\(\S*\) start /\1 restart /p' "$WORK/units/daemon-example-$name-forking.service")"
        systemd_gap "forking-$name" "$pf" "$SX $forking_restart" "daemon-example-$name-forking.service"
        # The overlapping upgrade: ExecReload= runs the program's restart inside the service.
        systemd_gap "upgrade-$name" "$pu" "$SX systemctl reload daemon-example-$name-upgrade.service" "daemon-example-$name-upgrade.service"
        if [ "$name" = aot ]; then
            systemd_gap "nostore-aot" "$P_SX_AOT" "$SX systemctl restart daemon-example-nostore.service" "daemon-example-nostore.service"
        fi
    done
    "$SANDBOX" stop "$SB"
    SB=""
fi

# ---- 10. worker restarts --------------------------------------------------------------------
section "10. worker (HostedDaemon) restarts and a broken configuration: bench/worker.sh"
"${MEASURE[@]}" quiet --max-wait "$QUIET_WAIT"
bash "$BENCH/worker.sh"

# ---- results --------------------------------------------------------------------------------
section "results"
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(GIT_OPTIONAL_LOCKS=0 git -C "$ROOT" status --porcelain -- Daemon.Core Daemon.Example 2>/dev/null | wc -l)"
HEADER="$(date -u +%Y-%m-%dT%H:%MZ), load average at start $LOAD0 and end $(cut -d' ' -f1-3 /proc/loadavg), commit $COMMIT ($DIRTY uncommitted change(s) in Daemon.Core/Daemon.Example), \
machine: $(nproc) cores of $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, kernel $(uname -r), dotnet $(dotnet --version), hyperfine runs $RUNS. \
AOT publish warnings: $( [ -n "$AOT_WARNINGS" ] && printf '%s' "$(printf '%s\n' "$AOT_WARNINGS" | wc -l)" || echo none). Produced by bench/run.sh."
"${MEASURE[@]}" report --data "$DATA" --out "$OUT/results.md" --header "$HEADER"
note "written to $OUT/results.md (and the web section's table to $OUT/web.md)"
