#!/usr/bin/env bash
# Restarts of a worker without listeners (Daemon.Example.Hosted: a heartbeat BackgroundService under
# HostedDaemon), JIT build: how long `restart` takes and how long the work pauses (the gap between
# the last heartbeat of the old generation and the first of the new one, from the log's
# timestamps), against the same worker's `stop` + `start` in the same run; then a restart with a
# broken appsettings.json, which must exit 1 and leave the running worker beating. Run from
# anywhere: bash bench/worker.sh. WORKER_RUNS=N rounds (default 7). Results: bench/out/worker.md.
# Every daemon has its pid file in a private temp folder and is stopped (or killed, by pid) on exit.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
OUT="$BENCH/out"
RUNS="${WORKER_RUNS:-7}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 PYTHONDONTWRITEBYTECODE=1

WORK="$(mktemp -d /tmp/daemon-bench-worker.XXXXXX)"
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$WORK/"; }
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    pid="$(head -n1 "$WORK/w.pid" 2>/dev/null | tr -dc 0-9)" || true
    if [ -n "$pid" ] && ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

printf '=== worker: build\n'
mkdir -p "$OUT"
dotnet build "$ROOT/Daemon.Example.Hosted/Daemon.Example.Hosted.csproj" -c Release --artifacts-path "$OUT/artifacts-worker" \
    >"$OUT/build-worker.log" 2>&1 || { cat "$OUT/build-worker.log"; exit 1; }
BIN="$OUT/artifacts-worker/bin/Daemon.Example.Hosted/release/Daemon.Example.Hosted"
settings() { printf '{ "Heartbeat": { "Message": "%s", "IntervalMilliseconds": 50 } }\n' "$1" >"$WORK/appsettings.json"; }
w() { "$BIN" "$@" --pid-file "$WORK/w.pid" --log-file "$WORK/w.log" --content-root "$WORK"; }
now() { date +%s.%N; }
beats() { grep -c 'heartbeat [0-9]*: ' "$WORK/w.log" || true; }
wait_beats() { local want=$(( $(beats) + $1 )); for _ in $(seq 1 600); do [ "$(beats)" -ge "$want" ] && return 0; sleep 0.05; done; echo "no heartbeat" >&2; exit 1; }

# The longest gap between two heartbeats after line FROM of the log, in ms.
gap() {
    python3 - "$WORK/w.log" "$1" <<'PY'
import sys, re, datetime
lines = open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):]
stamps = [datetime.datetime.fromisoformat(l.split(' ')[0]) for l in lines if re.search(r'heartbeat \d+: ', l)]
print(round(max((b - a).total_seconds() * 1000 for a, b in zip(stamps, stamps[1:])), 1))
PY
}

settings first
w start >/dev/null
wait_beats 3
declare -a restart_s restart_gap cycle_s cycle_gap
for i in $(seq 1 "$RUNS"); do
    from=$(wc -l <"$WORK/w.log"); t0=$(now); w restart >/dev/null; t1=$(now); wait_beats 3
    restart_s+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"); restart_gap+=("$(gap "$from")")
    from=$(wc -l <"$WORK/w.log"); t0=$(now); w stop >/dev/null; w start >/dev/null; t1=$(now); wait_beats 3
    cycle_s+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')"); cycle_gap+=("$(gap "$from")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

old="$(head -n1 "$WORK/w.pid" | tr -dc 0-9)"
printf '{ "Heartbeat": { "Message": ' >"$WORK/appsettings.json"
before=$(beats)
set +e; broken_out="$(w restart 2>&1)"; broken_rc=$?; set -e
wait_beats 3
status_out="$(w status | head -n1)"
after="$(head -n1 "$WORK/w.pid" | tr -dc 0-9)"
w stop >/dev/null

rm_s="$(median "${restart_s[@]}")"; rm_gap="$(median "${restart_gap[@]}")"
cy_s="$(median "${cycle_s[@]}")"; cy_gap="$(median "${cycle_gap[@]}")"
{
    printf '# Worker restarts (Daemon.Example.Hosted, JIT, heartbeat every 50 ms), %s rounds, medians\n\n' "$RUNS"
    printf '| | command time | longest pause in heartbeats |\n|---|---|---|\n'
    printf '| `restart` (next generation builds its host while the old one beats) | %.3f s | %s ms |\n' "$rm_s" "$rm_gap"
    printf '| baseline: `stop` + `start` | %.3f s | %s ms |\n' "$cy_s" "$cy_gap"
    printf '| ratio restart / baseline | %.2fx | %.2fx |\n\n' "$(awk -v a="$rm_s" -v b="$cy_s" 'BEGIN { print a / b }')" "$(awk -v a="$rm_gap" -v b="$cy_gap" 'BEGIN { print a / b }')"
    printf 'Restart with a broken appsettings.json: exit %s, `%s`; afterwards `status`: `%s`; pid before %s, after %s; heartbeats went on: %s more.\n' \
        "$broken_rc" "$broken_out" "$status_out" "$old" "$after" "$(( $(beats) - before ))"
} | tee "$OUT/worker.md"
[ "$broken_rc" = 1 ] && [ "$old" = "$after" ] || { echo "FAILED: the broken restart did not leave the worker running" >&2; exit 1; }
