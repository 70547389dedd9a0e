#!/usr/bin/env bash
# Where the start+stop cycle's time goes: the C baseline, the floor of a Native AOT daemon built
# the way Daemon.NET builds one (bench/floor: launcher, native detach stage, daemon, stop, raw
# libc calls, nothing else), the floor plus one ingredient of the example at a time, and the
# example itself (with and without PIE). All interleaved run by run; medians and ratios to C.
# On demand, about 6 minutes (seven Native AOT publishes): bash bench/floor.sh
# BENCH_RUNS=N cycles per variant (100); FLOOR_REUSE=1 measures again what the last run published.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
OUT="$BENCH/out/floor"
PY=/usr/bin/python3
MEASURE=("$PY" "$BENCH/tools/measure.py")
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PYTHONDONTWRITEBYTECODE=1

WORK="$(mktemp -d /tmp/daemon-floor.XXXXXX)"
# Every daemon started here has its pid file in $WORK; stop what is left by pid, then clean up.
cleanup() {
    local rc=$? f pid
    trap - EXIT INT TERM
    for f in "$WORK"/*.pid; do
        [ -e "$f" ] || continue
        pid="$(head -n1 "$f" 2>/dev/null | tr -dc 0-9)" || true
        if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$WORK/"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v gcc >/dev/null || { echo "floor.sh: needs gcc (apt-get install gcc libc6-dev)" >&2; exit 1; }
mkdir -p "$OUT"
gcc -O2 -Wall -Wextra -Werror -o "$OUT/cdaemon" "$BENCH/c/cdaemon.c"

publish() { # NAME PROJECT [msbuild properties...]
    local name="$1" project="$2"
    shift 2
    if [ "${FLOOR_REUSE:-0}" = 1 ] && [ -d "$OUT/$name" ]; then
        printf '    reusing %s\n' "$OUT/$name"
        return
    fi
    printf '    publishing %s\n' "$name"
    dotnet publish "$project" -c Release -r linux-x64 -o "$OUT/$name" --artifacts-path "$OUT/artifacts-$name" "$@" \
        >"$OUT/publish-$name.log" 2>&1 || { cat "$OUT/publish-$name.log"; echo "floor.sh: publish of $name failed" >&2; exit 1; }
}
FLOOR="$BENCH/floor/Floor.csproj"
publish floor "$FLOOR"
publish floor-monoposix "$FLOOR" -p:FloorMonoPosix=true
publish floor-sockets "$FLOOR" -p:FloorSockets=true
publish floor-log "$FLOOR" -p:FloorLog=true
publish floor-all "$FLOOR" -p:FloorMonoPosix=true -p:FloorSockets=true -p:FloorLog=true
publish example "$ROOT/Daemon.Example/Daemon.Example.csproj"
publish example-nopie "$ROOT/Daemon.Example/Daemon.Example.csproj" -p:PositionIndependentExecutable=false

read -r -a PORTS < <("${MEASURE[@]}" freeports 8)
q() { printf '%q ' "$@"; }
variant() { # NAME BINARY PORT: floor-style command lines
    printf '%s=%s::%s' "$1" "$(q "$2" start "$WORK/$1.pid" "$3")" "$(q "$2" stop "$WORK/$1.pid")"
}
example() { # NAME BINARY PORT
    local opts
    opts="$(q --pid-file "$WORK/$1.pid" --log-file "$WORK/$1.log" --port "$3")"
    printf '%s=%s::%s' "$1" "$(q "$2") start $opts" "$(q "$2") stop $opts"
}

printf '\n=== start+stop cycles, interleaved, %s runs each after 3 warm-ups\n' "${BENCH_RUNS:-100}"
"${MEASURE[@]}" quiet --max-wait 30
"${MEASURE[@]}" cycles --runs "${BENCH_RUNS:-100}" --out "$OUT/cycles.json" --delta-from floor \
    "c=$(q "$OUT/cdaemon" start "$WORK/c.pid" "${PORTS[0]}")::$(q "$OUT/cdaemon" stop "$WORK/c.pid")" \
    "$(variant floor "$OUT/floor/floor" "${PORTS[1]}")" \
    "$(variant floor+monoposix "$OUT/floor-monoposix/floor" "${PORTS[2]}")" \
    "$(variant floor+sockets "$OUT/floor-sockets/floor" "${PORTS[3]}")" \
    "$(variant floor+log "$OUT/floor-log/floor" "${PORTS[4]}")" \
    "$(variant floor+all-three "$OUT/floor-all/floor" "${PORTS[5]}")" \
    "$(example example "$OUT/example/Daemon.Example" "${PORTS[6]}")" \
    "$(example example-without-pie "$OUT/example-nopie/Daemon.Example" "${PORTS[7]}")"
printf '    raw data: %s\n' "$OUT/cycles.json"
printf '    (each command is started with posix_spawn from Python: ~0.1 ms of harness per command, in every row)\n'
