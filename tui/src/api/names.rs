//! The names of the API's values as people read them (and as the JSON output spells
//! them): roles, run states, triggers, kinds, log levels, times, file modes.

use cairn_proto::v1 as pb;

pub fn time(t: Option<&prost_types::Timestamp>) -> Option<String> {
    let t = t?;
    jiff::Timestamp::new(t.seconds, t.nanos)
        .ok()
        .map(|t| t.round(jiff::Unit::Second).unwrap_or(t).to_string())
}

/// A snapshot id as people read it: its first 8 hex digits.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// What happens to the space of `count` snapshots just forgotten.
pub fn space_after_forget(count: usize) -> &'static str {
    if count == 1 {
        "a prune frees the space only it used"
    } else {
        "a prune frees the space only they used"
    }
}

/// "snapshot 3f2a91c0:/srv/www to /var/tmp/restore": what a restore run restores where.
pub fn restore_of(of: &pb::RestoreOf) -> String {
    format!(
        "snapshot {}{} to {}",
        short_id(&of.snapshot_id),
        if of.path.is_empty() {
            String::new()
        } else {
            format!(":{}", of.path)
        },
        of.target
    )
}

pub fn role(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Admin) => "admin",
        Ok(pb::Role::Operator) => "operator",
        Ok(pb::Role::Viewer) => "viewer",
        _ => "none",
    }
}

pub fn state(state: i32) -> &'static str {
    match pb::RunState::try_from(state) {
        Ok(pb::RunState::Queued) => "queued",
        Ok(pb::RunState::Running) => "running",
        Ok(pb::RunState::Succeeded) => "succeeded",
        Ok(pb::RunState::SucceededWithWarnings) => "succeeded-with-warnings",
        Ok(pb::RunState::Failed) => "failed",
        Ok(pb::RunState::Cancelled) => "cancelled",
        Ok(pb::RunState::Interrupted) => "interrupted",
        _ => "unknown",
    }
}

pub fn trigger(trigger: i32) -> &'static str {
    match pb::Trigger::try_from(trigger) {
        Ok(pb::Trigger::Schedule) => "schedule",
        Ok(pb::Trigger::Manual) => "manual",
        Ok(pb::Trigger::CatchUp) => "catch-up",
        _ => "unknown",
    }
}

pub fn kind(kind: i32) -> &'static str {
    match pb::RunKind::try_from(kind) {
        Ok(pb::RunKind::Backup) => "backup",
        Ok(pb::RunKind::Check) => "check",
        Ok(pb::RunKind::Restore) => "restore",
        Ok(pb::RunKind::Prune) => "prune",
        _ => "unknown",
    }
}

/// What a prune run did, in one line (the CLI and the console say it alike).
pub fn prune_summary(s: &pb::RunSummary) -> String {
    let waiting = match s.bytes_unused {
        0 => String::new(),
        n => format!("; {} unused left", crate::output::bytes(n)),
    };
    format!(
        "deleted {} packs, repacked {}, freed {} in {:.1} s{waiting}",
        s.packs_deleted,
        s.packs_repacked,
        crate::output::bytes(s.bytes_freed),
        s.duration_ms as f64 / 1000.0
    )
}

/// Whether a run has not ended yet (queued or running).
pub fn is_live(run: &pb::Run) -> bool {
    matches!(run.state(), pb::RunState::Queued | pb::RunState::Running)
}

/// A log level as journald and the CLI print it.
pub fn level(level: i32) -> &'static str {
    match pb::Level::try_from(level) {
        Ok(pb::Level::Trace) => "TRACE",
        Ok(pb::Level::Debug) => "DEBUG",
        Ok(pb::Level::Info) => "INFO",
        Ok(pb::Level::Warn) => "WARN",
        Ok(pb::Level::Error) => "ERROR",
        _ => "?",
    }
}

/// `drwxr-xr-x`: a tree entry's kind and mode as `ls -l` shows them.
pub fn mode_string(kind: &str, mode: u32) -> String {
    let t = match kind {
        "dir" => 'd',
        "symlink" => 'l',
        "fifo" => 'p',
        "chardev" => 'c',
        "blockdev" => 'b',
        "socket" => 's',
        _ => '-',
    };
    let mut out = String::from(t);
    for (shift, special, special_char) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        out.push(match (mode & special != 0, exec) {
            (true, true) => special_char,
            (true, false) => special_char.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::mode_string;

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string("file", 0o644), "-rw-r--r--");
        assert_eq!(mode_string("file", 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string("dir", 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string("file", 0o2640), "-rw-r-S---");
    }
}
