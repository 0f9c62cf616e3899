//! A job's spec as the engine takes it: backup options, the retention policy and the
//! zone it counts days in. Used by the runner to run a job and by the API to preview
//! one (what a retention would keep, which snapshots a job's backup set holds).

use std::path::PathBuf;

use cairn_engine::retention::{KeepPolicy, parse_within};
use cairn_engine::{BackupOptions, CommandSource};
use jiff::tz::TimeZone;

use crate::store::{BackupSpec, RetentionSpec};

/// The engine's options for a backup job; a command source gets the clean environment
/// of [`crate::child_env`] plus `env`.
pub fn backup_options(spec: &BackupSpec, env: &[(&str, String)]) -> BackupOptions {
    let mut options = BackupOptions::default()
        .paths(spec.paths.iter().map(PathBuf::from))
        .excludes(spec.excludes.clone())
        .exclude_caches(spec.exclude_caches)
        .one_file_system(spec.one_file_system)
        .tags(spec.tags.clone())
        .host(spec.host.clone());
    if let Some(command) = &spec.command
        && let Some((program, args)) = command.argv.split_first()
    {
        options = options.command(CommandSource {
            program: program.clone(),
            args: args.to_vec(),
            filename: command.filename.clone(),
            env: Some(crate::child_env::clean(env)),
        });
    }
    options
}

/// The engine's policy for a stored one (checked when the job was saved).
pub fn keep_policy(spec: &RetentionSpec) -> cairn_engine::Result<KeepPolicy> {
    Ok(KeepPolicy {
        last: spec.last,
        hourly: spec.hourly,
        daily: spec.daily,
        weekly: spec.weekly,
        monthly: spec.monthly,
        yearly: spec.yearly,
        within: match spec.within.trim() {
            "" => None,
            text => Some(parse_within(text)?),
        },
        tags: spec.tags.clone(),
    })
}

/// The zone whose calendar the policy counts in: the schedule's, UTC without one.
pub fn zone(name: &str) -> cairn_engine::Result<TimeZone> {
    if name.is_empty() {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|e| {
        cairn_engine::Error::invalid(format!("time zone {name:?} of the schedule"), e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_policy_becomes_the_engines() {
        let spec = RetentionSpec {
            last: 2,
            daily: 7,
            within: "1w2d".into(),
            tags: vec!["release".into()],
            ..RetentionSpec::default()
        };
        let policy = keep_policy(&spec).unwrap();
        assert_eq!((policy.last, policy.daily, policy.weekly), (2, 7, 0));
        assert_eq!(
            policy.within,
            Some(jiff::SignedDuration::from_hours(9 * 24))
        );
        assert_eq!(policy.tags, ["release"]);
        assert!(keep_policy(&RetentionSpec::default()).unwrap().is_empty());
    }

    #[test]
    fn the_zone_is_the_schedules_or_utc() {
        assert_eq!(zone("").unwrap(), TimeZone::UTC);
        assert!(zone("Europe/Berlin").is_ok());
        let error = zone("Mars/Olympus").unwrap_err().to_string();
        assert!(error.contains("Mars/Olympus"), "{error}");
    }
}
