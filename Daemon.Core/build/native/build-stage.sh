#!/bin/sh
# Builds daemon-net-stage, the native detach stage that JIT daemons start instead of a second .NET
# process, for one runtime identifier: build-stage.sh RID OUTPUT-FILE.
#
# Static and position-independent (-static-pie): it runs on any Linux of its architecture,
# whatever its C library (glibc of any age, musl), and keeps ASLR. Its source's SHA-256 is built
# in, so a test can tell that a stage was built from the source beside it.
#
# Without a C compiler for RID (or its static C library) it builds nothing and says why on one
# line: the library then starts the managed detach stage instead, which costs one more .NET start.
set -eu
rid=$1
output=$2
here=$(dirname "$0")
source="$here/detach_stage.c"

case "$rid" in
    linux-x64|linux-musl-x64) arch=x86_64; cross=x86_64-linux-gnu-gcc ;;
    linux-arm64|linux-musl-arm64) arch=aarch64; cross=aarch64-linux-gnu-gcc ;;
    *) echo "daemon-net-stage: no build for $rid" >&2; exit 0 ;;
esac

compiler=
if [ "$(uname -m)" = "$arch" ]; then
    for candidate in "${CC:-}" cc gcc clang; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1; then compiler=$candidate; break; fi
    done
fi
if [ -z "$compiler" ] && command -v "$cross" >/dev/null 2>&1; then compiler=$cross; fi
if [ -z "$compiler" ]; then
    rm -f "$output"  # a stage built from older source must not be packed as this one
    echo "daemon-net-stage for $rid not built: no C compiler for $arch (on Debian: apt install gcc-$(echo $arch | tr _ -)-linux-gnu for a cross build); JIT daemons there start the managed detach stage" >&2
    exit 0
fi

hash=$(sha256sum "$source" | cut -c1-64)
mkdir -p "$(dirname "$output")"
# Its messages go to a log, not to MSBuild: MSBuild reads "error:" in a tool's output as a failed
# build, and a machine without the static C library must still build (without the stage).
log="$output.log"
if ! "$compiler" -Os -Wall -Wextra -static-pie -s -DDAEMON_NET_STAGE_EXECUTABLE \
        -DDAEMON_NET_STAGE_SOURCE="\"$hash\"" "$source" -o "$output.tmp" >"$log" 2>&1; then
    rm -f "$output.tmp" "$output"
    echo "daemon-net-stage for $rid not built: $compiler cannot link a static executable (the static C library, libc.a, is missing?); see $log" >&2
    exit 0
fi
mv -f "$output.tmp" "$output"
rm -f "$log"
