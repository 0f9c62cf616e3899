#!/usr/bin/env bash
# Prepares a Python with grpcio and grpcio-reflection for the generic-client test
# (a virtualenv under target/, made once and reused) and prints its interpreter path.
# Exit 3 when Python or the packages cannot be had here: the test then says it skipped.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="${CARGO_TARGET_DIR:-$root/target}/python-grpc"
python="$venv/bin/python"
# Pinned: the versions this was checked with (grpcio 1.85 sends the socket path as
# :authority, which is what the README's workaround is about).
packages=(grpcio==1.85.3 grpcio-reflection==1.85.1 protobuf==7.36.2)
if [ -x "$python" ] && "$python" -c 'import grpc, grpc_reflection' 2>/dev/null; then
    echo "$python"
    exit 0
fi
command -v python3 >/dev/null || { echo "python3 is not installed" >&2; exit 3; }
rm -rf "$venv"
python3 -m venv "$venv" >&2 || { echo "python3 -m venv failed (python3-venv missing?)" >&2; exit 3; }
"$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}" >&2 \
    || { echo "pip could not install ${packages[*]}" >&2; exit 3; }
echo "$python"
