#!/usr/bin/env bash
# Cairn's main job on embedded defaults: no root, no config, nothing outside a temp dir.
# Builds `cairn` and `cairnd`, starts the daemon as this user (XDG paths under the temp
# dir), adds a repository and a demo job (kept: one snapshot a day for a week), runs
# it twice (the second run reads nothing, and its retention forgets the first
# snapshot of the day), shows `cairn status`, what the retention keeps and why, the
# snapshots and the run's log, restores through the
# daemon and compares byte for byte, then checks the repository offline, the way a
# fresh machine with no daemon would.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p cairn-tui --bin cairn -p cairn-daemon --bin cairnd
bin="$PWD/target/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo.XXXXXX")
# Everything under the temp dir, also when run as root (whose defaults are /etc/cairn,
# /var/lib/cairn, /var/cache/cairn and /run/cairn).
export CAIRN_SOCKET="$work/run/cairnd.sock"
daemon_args=(--config "$work/cairnd.toml" --state-dir "$work/state" --cache-dir "$work/cache" --socket "$CAIRN_SOCKET")
export CAIRN_PASSPHRASE="demo passphrase (use a real one)"
daemon=""
stop() {
    if [ -n "$daemon" ]; then kill -TERM "$daemon" 2>/dev/null && wait "$daemon" || true; fi
    rm -rf "$work"
}
trap stop EXIT

echo "== sample data in $work/sample (this source tree plus 32 MiB of random data)"
mkdir -p "$work/sample"
cp -r engine/src "$work/sample/engine-src"
head -c 33554432 /dev/urandom > "$work/sample/random.bin"

echo "== cairnd (as $(id -un), no config file: state, cache and socket under $work)"
CAIRN_LOG_OUTPUT=stderr "$bin/cairnd" "${daemon_args[@]}" 2> "$work/cairnd.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$CAIRN_SOCKET" ] && break; sleep 0.1; done
cairn() { "$bin/cairn" "$@"; }

echo "== cairn repo add demo --init"; cairn repo add demo --path "$work/repo" --init
echo "== cairn job create sample";    cairn job create sample --repo demo --path "$work/sample" --schedule '0 3 * * *' --keep-daily 7
echo "== cairn job run sample --wait (first)"; cairn job run sample --wait
echo "== cairn job run sample --wait (again)"; cairn job run sample --wait
echo "== cairn status";               cairn status
echo "== cairn job retention sample"; cairn job retention sample
echo "== cairn snapshot list";        cairn snapshot list --repo demo
echo "== cairn logs --job sample";    cairn logs --job sample | tail -n 4
echo "== cairn restore latest --repo demo --wait"
cairn restore latest --repo demo --target "$work/restored" --verify --wait
echo "== compare"; diff -r "$work/sample" "$work/restored/${work#/}/sample" && echo "restored tree is identical"
echo "== offline: cairn -r $work/repo check --read-data"
"$bin/cairn" -r "$work/repo" check --read-data
