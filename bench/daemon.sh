#!/usr/bin/env bash
# cairnd under load, measured from outside: idle RSS, GetStatus latency at a fixed
# rate, 10 log followers while the daemon logs 10k lines/s, and the delay from a
# run's progress to a watcher. Release builds; state in a temp dir; no root needed.
#   bench/daemon.sh                       # defaults below
#   RATE=2000 FOLLOWERS=20 bench/daemon.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-1000}            # GetStatus calls per second
SECONDS_EACH=${SECONDS_EACH:-10}
FOLLOWERS=${FOLLOWERS:-10}
LOG_RATE=${LOG_RATE:-10000}   # lines per second the hook makes the daemon log
DATA_MIB=${DATA_MIB:-1024}    # backed up while a watcher measures progress delivery

cargo build --release --quiet -p cairn-daemon --bin cairnd -p cairn-tui --bin cairn \
    -p cairn-daemon-bench --bin cairn-daemon-bench
bin="$PWD/target/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-daemon-bench.XXXXXX")
# Everything under the temp dir, also when run as root (whose defaults are /etc/cairn,
# /var/lib/cairn, /var/cache/cairn and /run/cairn).
export CAIRN_SOCKET="$work/run/cairnd.sock"
daemon_args=(--config "$work/cairnd.toml" --state-dir "$work/state" --cache-dir "$work/cache" --socket "$CAIRN_SOCKET")
export CAIRN_PASSPHRASE="bench passphrase"
socket="$CAIRN_SOCKET"
daemon=""
cleanup() {
    if [ -n "$daemon" ]; then kill -TERM "$daemon" 2>/dev/null && wait "$daemon" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

CAIRN_LOG_OUTPUT=stderr "$bin/cairnd" "${daemon_args[@]}" 2> "$work/cairnd.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done
cairn() { "$bin/cairn" "$@" >/dev/null; }
rss() { awk -v f="$1" '$1 == f":" { printf "%.1f MB", $2 / 1024 }' "/proc/$daemon/status"; }

for _ in 1 2 3; do cairn status; done
echo "idle: RSS $(rss VmRSS), peak $(rss VmHWM) (after start and 3 status calls)"

"$bin/cairn-daemon-bench" status --socket "$socket" --rate "$RATE" --seconds "$SECONDS_EACH"

mkdir -p "$work/tiny" "$work/data"
echo tiny > "$work/tiny/file"
cairn repo add bench --path "$work/repo" --init
cairn job create chatty --repo bench --kind check \
    --before "$bin/cairn-daemon-bench emit --rate $LOG_RATE --seconds $SECONDS_EACH" \
    --hook-timeout $((SECONDS_EACH * 6))
"$bin/cairn-daemon-bench" followers --socket "$socket" --job chatty --daemon-pid "$daemon" \
    --followers "$FOLLOWERS" --lines $((LOG_RATE * SECONDS_EACH))

for i in 1 2 3 4; do
    head -c $((DATA_MIB / 4 * 1048576)) /dev/urandom > "$work/data/part$i"
done
cairn job create big --repo bench --path "$work/data"
"$bin/cairn-daemon-bench" watch --socket "$socket" --job big
echo "after all: RSS $(rss VmRSS), peak $(rss VmHWM)"
