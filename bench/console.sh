#!/usr/bin/env bash
# `cairn console` from outside, as an admin over SSH would feel it: CPU while idle,
# and the bytes it sends to the terminal per second, idle and while a job runs with
# live progress. The console runs in a 120x40 tmux pane; `pipe-pane` counts what it
# writes. Release builds; state in a temp dir; needs tmux; no root needed.
#   bench/console.sh                         # defaults below
#   IDLE_SECONDS=120 DATA_MIB=4096 bench/console.sh
set -euo pipefail
cd "$(dirname "$0")/.."
IDLE_SECONDS=${IDLE_SECONDS:-60}
DATA_MIB=${DATA_MIB:-3072}   # backed up while the console watches
JOBS=${JOBS:-12}             # scheduled jobs on the dashboard

command -v tmux >/dev/null || { echo "bench/console.sh needs tmux (apt-get install tmux)" >&2; exit 1; }
cargo build --release --quiet -p cairn-daemon --bin cairnd -p cairn-tui --bin cairn \
    -p cairn-console-bench --bin cairn-console-bench
bin="$PWD/target/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-console-bench.XXXXXX")
export CAIRN_SOCKET="$work/run/cairnd.sock"
export CAIRN_PASSPHRASE="bench passphrase"
tmux_() { tmux -S "$work/tmux.sock" "$@"; }
daemon=""
cleanup() {
    tmux_ kill-server 2>/dev/null || true
    if [ -n "$daemon" ]; then kill -TERM "$daemon" 2>/dev/null && wait "$daemon" || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== frames drawn in memory (cairn-console-bench)"
for size in "80 24" "120 40" "250 70"; do "$bin/cairn-console-bench" $size 2000; done

CAIRN_LOG_OUTPUT=stderr "$bin/cairnd" --config "$work/cairnd.toml" --state-dir "$work/state" \
    --cache-dir "$work/cache" --socket "$CAIRN_SOCKET" 2> "$work/cairnd.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$CAIRN_SOCKET" ] && break; sleep 0.1; done
cairn() { "$bin/cairn" "$@" >/dev/null 2>&1; }
mkdir -p "$work/small" "$work/big"
echo "a small file" > "$work/small/file"
head -c $((DATA_MIB << 20)) /dev/urandom > "$work/big/data"
cairn repo add main --path "$work/repo" --init
for i in $(seq "$JOBS"); do
    cairn job create "job-$i" --repo main --path "$work/small" --schedule "$((i % 60)) $((i % 24)) * * *"
    cairn job run "job-$i" --wait
done
cairn job create big --repo main --path "$work/big"

console_cmd="$bin/cairn console --socket $CAIRN_SOCKET"
tmux_ new-session -d -s console -x 120 -y 40 "env TERM=xterm-256color $console_cmd"
sleep 3
pid=$(pgrep -f -x "$console_cmd" | head -n 1)
tmux_ pipe-pane -o -t console "cat >> $work/tty.out"
sleep 1
ticks() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
bytes() { stat -c %s "$work/tty.out" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)

b0=$(bytes); c0=$(ticks); t0=$(date +%s.%N)
sleep "$IDLE_SECONDS"
b1=$(bytes); c1=$(ticks); t1=$(date +%s.%N)
awk -v b=$((b1 - b0)) -v c=$((c1 - c0)) -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN {
    s = t1 - t0
    printf "idle %.0f s: %.1f bytes/s to the terminal, CPU %.2f %% (%d ticks of 1/%d s)\n", s, b / s, 100 * c / hz / s, c, hz }'

b0=$(bytes); c0=$(ticks); t0=$(date +%s.%N)
cairn job run big --wait
b1=$(bytes); c1=$(ticks); t1=$(date +%s.%N)
awk -v b=$((b1 - b0)) -v c=$((c1 - c0)) -v hz="$hz" -v t0="$t0" -v t1="$t1" -v mib="$DATA_MIB" 'BEGIN {
    s = t1 - t0
    printf "while a %d MiB backup ran (%.1f s): %.0f bytes/s to the terminal, CPU %.2f %%\n", mib, s, b / s, 100 * c / hz / s }'
awk '$1 == "VmHWM:" { printf "console peak RSS %.1f MB\n", $2 / 1024 }' "/proc/$pid/status"
