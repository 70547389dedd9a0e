#!/usr/bin/env bash
# Restarts of the web example (Daemon.Example.Web: WebDaemon, Kestrel) under HTTP load, Native AOT
# and JIT: failed requests per restart, and request latency p50/p99 during the restarts against
# steady state in the same run. Run from anywhere: bash bench/web.sh (bench/run.sh runs it too).
# Each run: 8 clients that open a new connection per request (half send it 10 ms after connecting),
# 2 keep-alive clients, 10 restarts WEB_SETTLE s apart (default 1.5). WEB_RUNS=N runs per build
# (default 3); WEB_REUSE=1 measures again what the last run built. Results: bench/out/web.md,
# raw data: bench/out/data/web-*.json. Every daemon has its pid file in a private temp folder and
# is stopped (or killed, by pid) on exit.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
OUT="$BENCH/out"
DATA="$OUT/data"
PY=python3
RUNS="${WEB_RUNS:-3}"
SETTLE="${WEB_SETTLE:-1.5}"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1 PYTHONDONTWRITEBYTECODE=1

section() { printf '\n=== %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }

WORK="$(mktemp -d /tmp/daemon-bench-web.XXXXXX)"
ours() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF "$WORK/"; }
cleanup() {
    local rc=$? f pid
    trap - EXIT INT TERM
    for f in "$WORK"/*.pid; do
        [ -e "$f" ] || continue
        pid="$(head -n1 "$f" 2>/dev/null | tr -dc 0-9)" || true
        if [ -n "$pid" ] && ours "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            sleep 1
            if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        fi
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section "web: build"
mkdir -p "$OUT" "$DATA"
AOT="$OUT/web-aot/Daemon.Example.Web"
JIT="$OUT/artifacts-web/bin/Daemon.Example.Web/release/Daemon.Example.Web"
if [ "${WEB_REUSE:-0}" != 1 ] || [ ! -x "$AOT" ] || [ ! -x "$JIT" ]; then
    dotnet publish "$ROOT/Daemon.Example.Web/Daemon.Example.Web.csproj" -c Release -r linux-x64 -o "$OUT/web-aot" \
        --artifacts-path "$OUT/artifacts-web-aot" >"$OUT/publish-web-aot.log" 2>&1 || { cat "$OUT/publish-web-aot.log"; exit 1; }
    dotnet build "$ROOT/Daemon.Example.Web/Daemon.Example.Web.csproj" -c Release --artifacts-path "$OUT/artifacts-web" \
        >"$OUT/build-web-jit.log" 2>&1 || { cat "$OUT/build-web-jit.log"; exit 1; }
fi
WARNINGS="$(grep -cE ': warning [A-Z]+[0-9]+' "$OUT/publish-web-aot.log" || true)"
note "AOT: $AOT ($(du -k "$AOT" | cut -f1) KiB, $WARNINGS publish warning(s)); JIT: $JIT"

freeport() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

for build in aot jit; do
    bin="$AOT"
    [ "$build" = jit ] && bin="$JIT"
    section "web: $build, $RUNS run(s) of 10 restarts under load"
    for run in $(seq 1 "$RUNS"); do
        port="$(freeport)"
        opts=(--pid-file "$WORK/web-$build.pid" --log-file "$WORK/web-$build.log" --port "$port")
        "$bin" start "${opts[@]}" >/dev/null
        "$PY" "$BENCH/tools/httpload.py" "$port" --clients 8 --keepalive 2 --restarts 10 --settle "$SETTLE" \
            -- "$bin" restart "${opts[@]}" >"$DATA/web-$build-$run.json" || true
        "$bin" stop "${opts[@]}" >/dev/null
        note "run $run: $(cut -c1-220 "$DATA/web-$build-$run.json")"
    done
done

section "web: results"
"$PY" - "$DATA" "$RUNS" "$OUT/web.md" "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)" <<'PYEOF'
import json, statistics, sys, time, os
data, runs, out, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = [f"Web example restarts under HTTP load, {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}, commit {commit}, "
         f"load average {open('/proc/loadavg').read().split()[0]}, {os.cpu_count()} cores. Medians of {runs} runs "
         "(each: 10 restarts, 8 new-connection clients, half sending 10 ms after connecting, and 2 keep-alive clients). "
         "'During restarts': requests that started while `restart` ran or up to 0.5 s after. Produced by bench/web.sh.", "",
         "| build | served per run | failed per restart | keep-alive resends per restart | p50 steady / restarts (ms) | p99 steady / restarts (ms) | p99 restarts / steady | target |",
         "|---|---|---|---|---|---|---|---|"]
for build in ("aot", "jit"):
    rs = [json.load(open(f"{data}/web-{build}-{i}.json")) for i in range(1, runs + 1)]
    med = lambda f: statistics.median(f(r) for r in rs)
    ratio = med(lambda r: r["during_restarts"]["p99_ms"] / r["steady"]["p99_ms"])
    failed = med(lambda r: r["failed"] / r["restarts"])
    lines.append(f"| {build.upper()} | {med(lambda r: r['served']):.0f} | {failed:g} (total {sum(r['failed'] for r in rs)} in {runs * 10}) | "
                 f"{med(lambda r: r['keepalive_retries'] / r['restarts']):g} | "
                 f"{med(lambda r: r['steady']['p50_ms']):.2f} / {med(lambda r: r['during_restarts']['p50_ms']):.2f} | "
                 f"{med(lambda r: r['steady']['p99_ms']):.2f} / {med(lambda r: r['during_restarts']['p99_ms']):.2f} | "
                 f"{ratio:.2f}x | 0 failed, ≤ 2x: {'met' if failed == 0 and ratio <= 2 else '**not met**'} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PYEOF
