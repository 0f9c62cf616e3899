#!/usr/bin/env bash
# Runs a command with a private systemd-journald: meant to be started with
# `unshare -m --propagation private`, so the tmpfs mounts below (the journal's socket
# dir and its runtime storage) are seen by nobody else. After the command, prints the
# journal's entries from SYSLOG_IDENTIFIER=$JOURNAL_IDENTIFIER as JSON, one per line.
#
#   unshare -m --propagation private private-journal.sh IDENTIFIER COMMAND...
set -euo pipefail
identifier=$1; shift
journald=/lib/systemd/systemd-journald
mkdir -p /run/systemd/journal /run/log/journal
mount -t tmpfs tmpfs /run/systemd/journal
mount -t tmpfs tmpfs /run/log/journal
"$journald" >/dev/null 2>&1 &
journald_pid=$!
trap 'kill "$journald_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    [ -S /run/systemd/journal/socket ] && break
    sleep 0.05
done
[ -S /run/systemd/journal/socket ] || { echo "systemd-journald did not start" >&2; exit 3; }
"$@" >&2
# journald writes asynchronously: ask it to flush what it has.
journalctl --sync 2>/dev/null || sleep 1
journalctl -D /run/log/journal -o json --no-pager "SYSLOG_IDENTIFIER=$identifier"
