#!/usr/bin/env bash
# What hostile objects cost a reader: each scenario of the repository-damage issue
# (planted costly keys, many-stanza age headers, giant objects, a pack claiming two
# million blobs, a sparse file) runs a release `cairn` under /usr/bin/time -v and
# prints wall time, peak RSS, the exit code and the first line it printed on stderr.
#
#   bench/hostile.sh             # all scenarios, in a temp dir
#   KEEP=1 bench/hostile.sh      # keep the temp dir
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p cairn-tui --bin cairn -p cairn-e2e --example plant >/dev/null
CAIRN="$PWD/target/release/cairn"
PLANT="$PWD/target/release/examples/plant"
WORK="$(mktemp -d /tmp/cairn-hostile.XXXXXX)"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
export CAIRN_PASSPHRASE="bench passphrase"
cd "$WORK"

python3 - <<'EOF'
import os, random
random.seed(7)
os.makedirs("source/d", exist_ok=True)
for i in range(200):
    with open(f"source/d/f{i}", "wb") as f:
        f.write(random.randbytes(random.randint(1000, 200000)))
EOF
echo "not the passphrase" >wrong.txt
"$CAIRN" -r repo --cache-dir cache init --kdf-work-factor 15 >/dev/null
"$CAIRN" -r repo --cache-dir cache backup source >/dev/null

# Runs `cairn ARGS...` on a fresh hard-linked copy of the repository prepared by the
# shell function named first.
measure() {
    local name="$1" prepare="$2"
    shift 2
    rm -rf trial trial-cache
    cp -al repo trial
    "$prepare" trial
    /usr/bin/time -v -o time.txt "$CAIRN" -r trial --cache-dir trial-cache "$@" >out.txt 2>err.txt && code=0 || code=$?
    local wall rss
    wall="$(grep 'Elapsed (wall clock)' time.txt | awk '{print $NF}')"
    rss="$(grep 'Maximum resident' time.txt | awk '{print $NF}')"
    printf '%-34s %10s %8s KiB  exit %s  %s\n' "$name" "$wall" "$rss" "$code" \
        "$(grep -v '^$' err.txt | head -1 | cut -c1-110)"
}

nothing() { :; }
key_envelope() { # log_n r p
    python3 - "$@" <<'EOF'
import json, sys
log_n, r, p = map(int, sys.argv[1:])
print(json.dumps({"format": "cairn-key", "version": 1, "kind": "passphrase", "label": "planted",
    "recipient": None, "created": "2026-01-01T00:00:00Z", "host": "h", "username": "u",
    "kdf": {"algorithm": "scrypt", "log_n": log_n, "r": r, "p": p, "salt": "00" * 16},
    "payload": "ab" * 80}))
EOF
}
key_costly() { key_envelope 18 32 16 >"$1/keys/$(printf '0%.0s' {1..63})1"; }
key_huge() { key_envelope 22 8 4 >"$1/keys/$(printf '0%.0s' {1..63})1"; }
stanzas() { # count
    python3 - "$1" <<'EOF'
import sys
n = int(sys.argv[1])
out = b"age-encryption.org/v1\n" + b"".join(
    b"-> X25519 %043d\n%043d\n" % (i, i) for i in range(n)) + b"--- " + b"A" * 43 + b"\n" + bytes(256)
sys.stdout.buffer.write(out)
EOF
}
# Planted under the hash of their bytes, as Cairn names objects: the name checks out.
snapshot_stanzas() { stanzas 10000 | "$PLANT" "$1" snapshots >/dev/null; }
pack_stanzas() { stanzas 30000 | "$PLANT" "$1" data >/dev/null; }
giant_key() { truncate -s 500M "$1/keys/$(printf 'f%.0s' {1..64})"; }
giant_config() { rm "$1/config"; truncate -s 500M "$1/config"; }
giant_snapshot() { truncate -s 500M "$1/snapshots/$(printf 'b%.0s' {1..64})"; }
pack_claims() { # a pack (encrypted to the public recipient) whose trailer claims 2M blobs
    printf 'CAIRNPK1\x80\x84\x1e\x00CPKE' | "$PLANT" "$1" data --encrypt >/dev/null
}

echo "scenario                           wall        peak RSS  result"
measure "baseline: snapshots" nothing snapshots
measure "key log_n 18 r 32 p 16, wrong pass" key_costly snapshots --passphrase-file wrong.txt
measure "key log_n 22, wrong passphrase" key_huge snapshots --passphrase-file wrong.txt
measure "key log_n 18 r 32 p 16: snapshots" key_costly snapshots
measure "snapshot with 10,000 stanzas" snapshot_stanzas snapshots
measure "pack with 30,000 stanzas: backup" pack_stanzas backup source
measure "500 MB key file: snapshots" giant_key snapshots
measure "500 MB config: snapshots" giant_config snapshots
measure "500 MB snapshot: snapshots" giant_snapshot snapshots
measure "pack claiming 2M blobs: backup" pack_claims backup source
measure "pack claiming 2M blobs: check" pack_claims check --read-data

# A sparse file: 2 GiB with 4 KiB of data, and 1 TiB with 4 KiB.
sparse_backup() { # size
    rm -rf sparse
    mkdir sparse
    truncate -s "$1" sparse/thin.img
    printf 'data' | dd of=sparse/thin.img bs=4096 seek=1000 conv=notrunc status=none
    /usr/bin/time -v -o time.txt "$CAIRN" -r repo --cache-dir cache backup sparse >out.txt 2>err.txt
    printf '%-34s %10s %8s KiB  %s\n' "sparse $1 (4 KiB data): backup" \
        "$(grep 'Elapsed (wall clock)' time.txt | awk '{print $NF}')" \
        "$(grep 'Maximum resident' time.txt | awk '{print $NF}')" "$(grep '^read' out.txt)"
}
sparse_backup 2G
sparse_backup 1T
