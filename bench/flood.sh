#!/usr/bin/env bash
# cairnd under the floods of issue 13, point 8, measured from outside: log followers
# that never read, from several uids, while a job logs 10k lines/s; then idle
# connections past the fd limit. Prints the daemon's RSS and CPU over time, what the
# floods were granted, and how long an admin's `cairn status` takes meanwhile.
# A baseline run of the same job with nobody following comes first, for comparison.
# Root (other uids, temporary groups); release builds; state in a temp dir.
#   bench/flood.sh
#   UIDS=32 FOLLOWERS=40 LOG_RATE=20000 bench/flood.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench/flood.sh needs root (other uids, groups)" >&2; exit 2; }
UIDS=${UIDS:-16}              # distinct uids flooding
FOLLOWERS=${FOLLOWERS:-20}    # log followers each uid asks for (none of them reads)
LOG_RATE=${LOG_RATE:-10000}   # lines per second a job's hook makes the daemon log
SECONDS_EACH=${SECONDS_EACH:-20}
CONNECTIONS=${CONNECTIONS:-300}  # idle connections each of 4 uids opens
NOFILE=${NOFILE:-1024}        # the daemon's fd limit (systemd's default; the unit raises it)

cargo build --release --quiet -p cairn-daemon --bin cairnd -p cairn-tui --bin cairn \
    -p cairn-daemon-bench --bin cairn-daemon-bench -p cairn-e2e --bin cairn-flood
bin="$PWD/target/release"

work=$(mktemp -d /tmp/cairn-flood-bench.XXXXXX)
chmod 755 "$work"
export CAIRN_SOCKET="$work/run/cairnd.sock"
export CAIRN_PASSPHRASE="bench passphrase"
groupadd -f cairn-bench-sock
groupadd -f cairn-bench-view
sock_gid=$(getent group cairn-bench-sock | cut -d: -f3)
view_gid=$(getent group cairn-bench-view | cut -d: -f3)
daemon=""
cleanup() {
    if [ -n "$daemon" ]; then kill -TERM "$daemon" 2>/dev/null && wait "$daemon" || true; fi
    groupdel cairn-bench-sock 2>/dev/null || true
    groupdel cairn-bench-view 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/cairnd.toml" <<EOF
[access]
socket_group = "cairn-bench-sock"
viewer_groups = ["cairn-bench-view"]
EOF
(
    ulimit -n "$NOFILE"
    exec env CAIRN_LOG_OUTPUT=stderr "$bin/cairnd" --config "$work/cairnd.toml" \
        --state-dir "$work/state" --cache-dir "$work/cache" --socket "$CAIRN_SOCKET" \
        2> "$work/cairnd.log"
) &
daemon=$!
for _ in $(seq 100); do [ -S "$CAIRN_SOCKET" ] && break; sleep 0.1; done

field() { awk -v f="$1" '$1 == f":" { printf "%.1f MB", $2 / 1024 }' "/proc/$daemon/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$daemon/stat"; }
hz=$(getconf CLK_TCK)
status_ms() {
    local start end
    start=$(date +%s%N)
    "$bin/cairn" status >/dev/null 2>&1 || echo -n "(status failed) "
    end=$(date +%s%N)
    echo "$(( (end - start) / 1000000 )) ms"
}
# One line per second for $1 seconds: RSS, CPU over that second, log bytes written,
# an admin's `cairn status` time.
sample() {
    local t ticks before log_before
    for t in $(seq "$1"); do
        before=$(cpu_ticks)
        log_before=$(stat -c %s "$work/cairnd.log")
        sleep 1
        ticks=$(( $(cpu_ticks) - before ))
        printf '  t=%2ss  RSS %-9s CPU %3s%%  log +%s B/s  status %s\n' "$t" "$(field VmRSS)" \
            "$(( ticks * 100 / hz ))" "$(( $(stat -c %s "$work/cairnd.log") - log_before ))" \
            "$(status_ms)"
    done
}
as_uid() { # uid command...
    local uid=$1
    shift
    setpriv --reuid "$uid" --regid "$uid" --groups "$sock_gid,$view_gid" "$@"
}

mkdir -p "$work/src"
echo tiny > "$work/src/file"
"$bin/cairn" repo add bench --path "$work/repo" --init >/dev/null
"$bin/cairn" job create chatty --repo bench --kind check \
    --before "$bin/cairn-daemon-bench emit --rate $LOG_RATE --seconds $SECONDS_EACH" \
    --hook-timeout $((SECONDS_EACH * 6)) >/dev/null
echo "idle: RSS $(field VmRSS), peak $(field VmHWM); status $(status_ms)"

echo "== baseline: the job logs $LOG_RATE lines/s, nobody follows"
"$bin/cairn" job run chatty >/dev/null
sample $((SECONDS_EACH + 2)) | awk 'NR % 4 == 1'
echo "after the baseline: RSS $(field VmRSS), peak $(field VmHWM)"

echo "== $UIDS uids x $FOLLOWERS log followers that never read, while a job logs $LOG_RATE lines/s"
pids=()
for i in $(seq "$UIDS"); do
    as_uid $((62000 + i)) "$bin/cairn-flood" "$CAIRN_SOCKET" follow "$FOLLOWERS" $((SECONDS_EACH + 5)) \
        > "$work/follow-$i.json" &
    pids+=($!)
done
sleep 2
"$bin/cairn" job run chatty >/dev/null
sample $((SECONDS_EACH + 2))
wait "${pids[@]}"
echo "  granted per uid: $(sort "$work"/follow-*.json | uniq -c | tr -s ' ' | paste -sd ';')"
sleep 3
echo "after the followers left: RSS $(field VmRSS), peak $(field VmHWM)"

echo "== 4 uids x $CONNECTIONS idle connections (fd limit $NOFILE)"
pids=()
for i in 1 2 3 4; do
    as_uid $((62100 + i)) "$bin/cairn-flood" "$CAIRN_SOCKET" hold "$CONNECTIONS" 15 \
        > "$work/hold-$i.json" &
    pids+=($!)
done
sleep 1
sample 12
wait "${pids[@]}"
echo "  held (opened, closed by the daemon) per uid: $(cat "$work"/hold-*.json | paste -sd ' ')"
sleep 2
echo "after: RSS $(field VmRSS), peak $(field VmHWM); status $(status_ms)"
echo "daemon log: $(wc -l < "$work/cairnd.log") lines, $(stat -c %s "$work/cairnd.log") bytes in all"
