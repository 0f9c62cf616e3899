#!/usr/bin/env bash
# Cairn's main job on embedded defaults: no root, no config, nothing outside a temp dir.
# Builds `cairn`, creates a repository, backs up a sample directory twice (the second
# run reads nothing), lists snapshots, restores and compares byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p cairn-tui --bin cairn
cairn="$PWD/target/release/cairn"

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CAIRN_REPO="$work/repo" CAIRN_CACHE_DIR="$work/cache"
export CAIRN_PASSPHRASE="demo passphrase (use a real one)"

echo "== sample data in $work/sample (this source tree plus 32 MiB of random data)"
mkdir -p "$work/sample"
cp -r engine/src "$work/sample/engine-src"
head -c 33554432 /dev/urandom > "$work/sample/random.bin"

echo "== cairn init";            "$cairn" init
echo "== cairn backup (first)";  "$cairn" backup "$work/sample"
echo "== cairn backup (again)";  "$cairn" backup "$work/sample"
echo "== cairn snapshots";       "$cairn" snapshots
echo "== cairn restore latest";  "$cairn" restore latest --target "$work/restored" --verify
echo "== compare";               diff -r "$work/sample" "$work/restored/${work#/}/sample" && echo "restored tree is identical"
echo "== cairn check --read-data"; "$cairn" check --read-data
