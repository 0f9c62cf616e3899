#!/usr/bin/env bash
# Whole-process benchmark of forget + prune, cairn against restic, on the seeded corpus.
#
#   bench/prune.sh               # ~1.5 GB corpus (SCALE=1), work dir /var/tmp/cairn-bench
#   SCALE=0.1 bench/prune.sh     # a quick run
#
# Both repositories get the same history: the corpus backed up 10 times, with 2 % of
# it changed before each backup after the first (2 % of the small files rewritten, and
# a file of random bytes the size of 2 % of the corpus replaced by a new one, so data
# that older snapshots alone hold piles up). Then, measured with /usr/bin/time -v:
#   cairn forget --keep-last 3 --prune    vs    restic forget --keep-last 3 --prune
# each with its own default --max-unused (cairn 10 %, restic 5 %), and then a second
# pair with --max-unused 5 % for both (the same tolerance, so the sizes compare).
# Reports wall time, peak RSS and repository size after each; then check --read-data
# of the pruned cairn repository.
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE=${SCALE:-1}
WORK=${WORK:-/var/tmp/cairn-bench}
SEED=${SEED:-20261122}
ROUNDS=10

. bench/lib.sh
need_restic_and_time

build_release
seeded_corpus
RUN="$WORK/prune-run"
rm -rf "$RUN"; mkdir -p "$RUN"
SOURCE="$RUN/source"
cp -a "$CORPUS" "$SOURCE"; rm -f "$SOURCE/.complete"
corpus_bytes=$(du -sb "$SOURCE" | cut -f1)
churn_bytes=$((corpus_bytes / 50))

export CAIRN_PASSPHRASE=bench RESTIC_PASSWORD=bench
CAIRN_A="$RUN/cairn-repo" RESTIC_A="$RUN/restic-repo"
# Each repository has a cache of its own: the copies below have the same repository
# id, and one cache shared by two copies would see the forgotten snapshots come back
# in the second (and rightly report it as a rollback).
cairn() { local repo=$1; shift; "$CAIRN" -r "$repo" --cache-dir "$repo.cache" "$@"; }
restic_on() { local repo=$1; shift; restic -r "$repo" --cache-dir "$repo.cache" "$@"; }
cairn "$CAIRN_A" init >/dev/null
restic_on "$RESTIC_A" init >/dev/null 2>&1

echo "== corpus $(du -sh "$SOURCE" | cut -f1) in $(find "$SOURCE" -type f | wc -l) files; $ROUNDS backups, 2 % changed before each"
for round in $(seq 1 "$ROUNDS"); do
    if [ "$round" -gt 1 ]; then
        "$GEN" --mutate "$SOURCE" "$((SEED + round))" 2
        rm -f "$SOURCE"/churn-*.bin
        head -c "$churn_bytes" /dev/urandom > "$SOURCE/churn-$round.bin"
    fi
    cairn "$CAIRN_A" backup "$SOURCE" --no-progress >/dev/null
    restic_on "$RESTIC_A" backup "$SOURCE" >/dev/null 2>&1
done
# The second pair prunes copies of the same repositories (with copies of their caches,
# so both pairs start warm).
CAIRN_B="$RUN/cairn-repo-5" RESTIC_B="$RUN/restic-repo-5"
for pair in "$CAIRN_A $CAIRN_B" "$RESTIC_A $RESTIC_B"; do
    set -- $pair
    cp -a "$1" "$2"; cp -a "$1.cache" "$2.cache"
done
echo "== before: cairn $(du -sm "$CAIRN_A" | cut -f1) MB, restic $(du -sm "$RESTIC_A" | cut -f1) MB"

RESULTS="$RUN/results.tsv"
printf "step\ttool\twall_s\tmax_rss_mb\trepo_mb\n" > "$RESULTS"
measure() { # step tool repo command...
    local step=$1 tool=$2 repo=$3; shift 3
    local out="$RUN/time-$step-$tool.txt"
    sync
    /usr/bin/time -v -o "$out" "$@" > "$RUN/log-$step-$tool.txt" 2>&1 || { echo "$tool $step failed:"; tail -5 "$RUN/log-$step-$tool.txt"; exit 1; }
    local wall rss size
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$out")
    rss=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$out")
    size=$(du -sm "$repo" | cut -f1)
    printf "%s\t%s\t%s\t%s\t%s\n" "$step" "$tool" "$wall" "$rss" "$size" >> "$RESULTS"
    printf "%-12s %-7s %8ss %8s MB RSS %8s MB repo\n" "$step" "$tool" "$wall" "$rss" "$size"
}

measure prune cairn "$CAIRN_A" "$CAIRN" -r "$CAIRN_A" --cache-dir "$CAIRN_A.cache" forget --keep-last 3 --prune --no-progress
measure prune restic "$RESTIC_A" restic -r "$RESTIC_A" --cache-dir "$RESTIC_A.cache" forget --keep-last 3 --prune
measure prune-5pct cairn "$CAIRN_B" "$CAIRN" -r "$CAIRN_B" --cache-dir "$CAIRN_B.cache" forget --keep-last 3 --prune --max-unused 5 --no-progress
measure prune-5pct restic "$RESTIC_B" restic -r "$RESTIC_B" --cache-dir "$RESTIC_B.cache" forget --keep-last 3 --prune --max-unused 5%

echo "== cairn time / restic time (goal <= 0.3), cairn size / restic size (goal <= 1)"
awk -F'\t' 'NR > 1 { t[$1 "," $2] = $3; m[$1 "," $2] = $5; steps[$1] = 1 }
    END { for (s in steps) if (t[s ",restic"] > 0) printf "%-12s time %.2fx  size %.2fx\n", s, t[s ",cairn"] / t[s ",restic"], m[s ",cairn"] / m[s ",restic"] }' "$RESULTS" | sort
cairn "$CAIRN_A" check --read-data --no-progress > "$RUN/check.txt" 2>&1 \
    && echo "== the pruned cairn repository passes check --read-data" \
    || { echo "check --read-data failed:"; tail -5 "$RUN/check.txt"; exit 1; }
echo "results: $RESULTS"
