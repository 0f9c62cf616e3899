# What the whole-process benchmarks share; sourced by run.sh, prune.sh and s3.sh from
# the repository's root, with SCALE, WORK and SEED set.

# restic and GNU time, installed as root when missing.
need_restic_and_time() {
    if command -v restic >/dev/null && [ -x /usr/bin/time ]; then
        return
    fi
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq restic time >/dev/null
    else
        echo "restic and time are needed; run as root once or apt-get install restic time" >&2
        exit 2
    fi
}

# Builds the release cairn and the corpus generator: sets CAIRN and GEN.
build_release() {
    cargo build --release --quiet -p cairn-tui --bin cairn
    cargo build --release --quiet -p cairn-e2e --example gen_corpus
    CAIRN="$PWD/target/release/cairn"
    GEN="$PWD/target/release/examples/gen_corpus"
}

# The seeded corpus of SEED and SCALE under WORK, made once and reused: sets CORPUS.
seeded_corpus() {
    mkdir -p "$WORK"
    CORPUS="$WORK/corpus-$SEED-$SCALE"
    if [ ! -f "$CORPUS/.complete" ]; then
        rm -rf "$CORPUS"
        "$GEN" "$CORPUS" "$SEED" "$SCALE"
        touch "$CORPUS/.complete"
    fi
}
