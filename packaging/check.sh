#!/usr/bin/env bash
# Verifies the systemd units: `systemd-analyze verify` on copies whose ExecStart exists
# (any output on stderr fails), then prints the `systemd-analyze security` exposure of
# cairnd.service (above 2.0 fails).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIPPED unit checks: systemd-analyze is not installed (apt-get install systemd)" >&2
    exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
daemon=${CAIRND:-$(command -v true)}
for unit in cairnd.service cairnd.socket cairnd-identity.service; do
    sed "s|/usr/bin/cairnd|$daemon|" "$unit" > "$work/$unit"
done
if ! systemd-analyze verify --man=no "$work/cairnd.service" "$work/cairnd.socket" \
    "$work/cairnd-identity.service" 2> "$work/verify.err"; then
    cat "$work/verify.err" >&2
    exit 1
fi
if [ -s "$work/verify.err" ]; then
    echo "systemd-analyze verify complained:" >&2
    cat "$work/verify.err" >&2
    exit 1
fi
echo "units verified"
# Prints the exposure of cairnd.service as the unit path ($1) has it, and fails when
# it is above $2 (the goal) or cannot be read.
check_exposure() { # unit-path goal what
    local security exposure
    security=$(SYSTEMD_UNIT_PATH="$1" systemd-analyze security --offline=true --no-pager cairnd.service 2>&1)
    exposure=$(printf '%s\n' "$security" | grep 'Overall exposure level' | grep -oE '[0-9]+\.[0-9]+' | tail -1)
    echo "exposure of $3: ${exposure:-unknown} (goal <= $2)"
    if [ -z "$exposure" ] || awk -v e="$exposure" -v g="$2" 'BEGIN { exit !(e > g) }'; then
        printf '%s\n' "$security" >&2
        echo "exposure of $3 too high or unreadable" >&2
        exit 1
    fi
}
check_exposure "$work" 2.0 cairnd.service
# With the off-site drop-in (network for S3 and SFTP, nothing else): the units still
# verify, and the exposure stays low.
mkdir -p "$work/offsite/cairnd.service.d"
cp "$work/cairnd.service" "$work/cairnd.socket" "$work/cairnd-identity.service" "$work/offsite/"
cp cairnd-offsite.conf "$work/offsite/cairnd.service.d/offsite.conf"
if ! SYSTEMD_UNIT_PATH="$work/offsite:" systemd-analyze verify --man=no "$work/offsite/cairnd.service" 2> "$work/verify-offsite.err" \
    || [ -s "$work/verify-offsite.err" ]; then
    echo "cairnd.service with cairnd-offsite.conf does not verify:" >&2
    cat "$work/verify-offsite.err" >&2
    exit 1
fi
# The network itself costs 0.9.
check_exposure "$work/offsite" 2.6 "cairnd.service with cairnd-offsite.conf"
