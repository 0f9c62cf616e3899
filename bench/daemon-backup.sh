#!/usr/bin/env bash
# One backup through cairnd, timed from outside: the run's wall time, the daemon's CPU
# time and its peak RSS, for a first and a second (unchanged) backup of DATA.
#   bench/daemon-backup.sh                     # DATA=/usr, the release cairnd
#   CAIRND=/tmp/other-cairnd DATA=/srv bench/daemon-backup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-/usr}
if [ -z "${CAIRND:-}" ]; then
    cargo build --release --quiet -p cairn-daemon --bin cairnd -p cairn-tui --bin cairn
    CAIRND="$PWD/target/release/cairnd"
fi
cargo build --release --quiet -p cairn-tui --bin cairn
cairn="$PWD/target/release/cairn"

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-daemon-backup.XXXXXX")
export CAIRN_SOCKET="$work/run/cairnd.sock"
export CAIRN_PASSPHRASE="bench passphrase"
daemon=""
cleanup() {
    if [ -n "$daemon" ]; then kill -TERM "$daemon" 2>/dev/null && wait "$daemon" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
CAIRN_LOG_OUTPUT=stderr "$CAIRND" --config "$work/cairnd.toml" --state-dir "$work/state" \
    --cache-dir "$work/cache" --socket "$CAIRN_SOCKET" 2> "$work/cairnd.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$CAIRN_SOCKET" ] && break; sleep 0.1; done
"$cairn" repo add bench --path "$work/repo" --init >/dev/null
"$cairn" job create data --repo bench --path "$DATA" >/dev/null
# Read the data once so both backups find it in the page cache.
tar -cf - "$DATA" 2>/dev/null | cat >/dev/null

hz=$(getconf CLK_TCK)
cpu() { awk -v hz="$hz" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$daemon/stat"; }
for which in first unchanged; do
    before=$(cpu)
    start=$(date +%s%N)
    "$cairn" job run data --wait >/dev/null || echo "the $which backup failed" >&2
    end=$(date +%s%N)
    awk -v w="$which" -v d="$DATA" -v ns=$((end - start)) -v c0="$before" -v c1="$(cpu)" \
        -v rss="$(awk '$1 == "VmHWM:" { printf "%.0f MB", $2 / 1024 }' "/proc/$daemon/status")" \
        'BEGIN { printf "%-9s backup of %s: %.1f s wall, daemon CPU %.1f s, peak RSS %s\n", w, d, ns / 1e9, c1 - c0, rss }'
done
echo "cairnd: $CAIRND"
