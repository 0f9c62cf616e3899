//! The job editor: a form for a new job or an existing one, the cron expression
//! checked by the daemon as it is typed (with the next fire times), and a picker that
//! browses the daemon host's filesystem for sources.

use cairn_proto::v1 as pb;

use crate::api::retention::{describe, parse};

/// The fields, in the order Tab walks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Field {
    #[default]
    Name,
    Repository,
    Kind,
    Sources,
    Excludes,
    Retention,
    Cron,
    Timezone,
    Enabled,
    Save,
}

impl Field {
    pub const ALL: [Field; 10] = [
        Field::Name,
        Field::Repository,
        Field::Kind,
        Field::Sources,
        Field::Excludes,
        Field::Retention,
        Field::Cron,
        Field::Timezone,
        Field::Enabled,
        Field::Save,
    ];

    /// Whether keys type into it.
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Field::Name | Field::Excludes | Field::Retention | Field::Cron | Field::Timezone
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Repository => "repository",
            Field::Kind => "kind",
            Field::Sources => "sources",
            Field::Excludes => "excludes",
            Field::Retention => "retention",
            Field::Cron => "cron",
            Field::Timezone => "timezone",
            Field::Enabled => "enabled",
            Field::Save => "save",
        }
    }
}

/// What the daemon said about the schedule typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Preview {
    /// The schedule in words and the next fire times (Unix seconds).
    Valid(String, Vec<i64>),
    /// The daemon's reason, word for word.
    Invalid(String),
}

/// What the daemon says the retention typed does to these sources' snapshots now.
#[derive(Debug, Clone, PartialEq)]
pub enum RetentionPlan {
    /// Of `total` snapshots of the set, it keeps `kept` (the next backup forgets the rest).
    Counted { kept: usize, total: usize },
    /// The daemon's reason, word for word.
    Invalid(String),
}

/// What the job being edited does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EditorKind {
    #[default]
    Backup,
    Check,
    Prune,
}

impl EditorKind {
    pub fn name(self) -> &'static str {
        match self {
            EditorKind::Backup => "backup",
            EditorKind::Check => "check",
            EditorKind::Prune => "prune",
        }
    }

    /// The next kind (Enter, Right) or the previous (Left).
    pub fn cycle(self, forward: bool) -> EditorKind {
        const ALL: [EditorKind; 3] = [EditorKind::Backup, EditorKind::Check, EditorKind::Prune];
        let at = ALL.iter().position(|k| *k == self).unwrap_or(0);
        ALL[if forward { (at + 1) % 3 } else { (at + 2) % 3 }]
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct EditorScreen {
    /// The job being edited; None for a new one.
    pub original: Option<String>,
    /// The spec as loaded: what the form does not show (hooks, tags, ...) is kept.
    pub base: pb::JobSpec,
    pub name: String,
    pub repository: String,
    pub kind: EditorKind,
    pub sources: Vec<String>,
    /// Comma-separated globs.
    pub excludes: String,
    /// The retention policy in words ("last 3, daily 7, within 14d"); empty keeps all.
    pub retention: String,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    pub focus: Field,
    /// The repositories to choose from.
    pub repositories: Vec<String>,
    /// For the (cron, timezone) in `previewed`.
    pub preview: Option<Preview>,
    pub previewed: (String, String),
    /// The retention plan last asked for, and the answer with the request it answers.
    pub plan_asked: Option<Box<pb::PlanRetentionRequest>>,
    pub plan: Option<Box<(pb::PlanRetentionRequest, RetentionPlan)>>,
}

impl EditorScreen {
    pub fn new_job() -> EditorScreen {
        EditorScreen {
            enabled: true,
            ..EditorScreen::default()
        }
    }

    pub fn edit(job: &pb::Job) -> EditorScreen {
        let spec = job.spec.clone().unwrap_or_default();
        let (sources, excludes, retention) = match &spec.kind {
            Some(pb::job_spec::Kind::Backup(b)) => (
                b.paths.clone(),
                b.excludes.join(", "),
                b.retention.as_ref().map(describe).unwrap_or_default(),
            ),
            _ => (Vec::new(), String::new(), String::new()),
        };
        let (cron, timezone) = spec
            .schedule
            .as_ref()
            .map(|s| (s.cron.clone(), s.timezone.clone()))
            .unwrap_or_default();
        EditorScreen {
            original: Some(spec.name.clone()),
            name: spec.name.clone(),
            repository: spec.repository.clone(),
            kind: match spec.kind {
                Some(pb::job_spec::Kind::Check(_)) => EditorKind::Check,
                Some(pb::job_spec::Kind::Prune(_)) => EditorKind::Prune,
                _ => EditorKind::Backup,
            },
            sources,
            excludes,
            retention,
            cron,
            timezone,
            enabled: spec.enabled,
            base: spec,
            ..EditorScreen::default()
        }
    }

    /// The text field in focus.
    pub fn text_mut(&mut self) -> Option<&mut String> {
        match self.focus {
            Field::Name => Some(&mut self.name),
            Field::Excludes => Some(&mut self.excludes),
            Field::Retention => Some(&mut self.retention),
            Field::Cron => Some(&mut self.cron),
            Field::Timezone => Some(&mut self.timezone),
            _ => None,
        }
    }

    /// The fields a check or prune job has no use for are skipped.
    pub fn fields(&self) -> Vec<Field> {
        Field::ALL
            .into_iter()
            .filter(|f| {
                self.kind == EditorKind::Backup
                    || !matches!(f, Field::Sources | Field::Excludes | Field::Retention)
            })
            .collect()
    }

    /// The schedule as the form says it (None: manual runs only).
    pub fn schedule(&self) -> Option<pb::Schedule> {
        let cron = self.cron.trim();
        if cron.is_empty() {
            return None;
        }
        let mut schedule = self.base.schedule.clone().unwrap_or_default();
        schedule.cron = cron.to_owned();
        schedule.timezone = self.timezone.trim().to_owned();
        Some(schedule)
    }

    /// The retention typed, read; Err says what is wrong with it.
    pub fn keep(&self) -> Result<Option<pb::Retention>, String> {
        parse(&self.retention)
    }

    /// What to ask the daemon about the retention typed: only for a backup with
    /// sources, a repository and a retention that reads. It carries only what names
    /// the backup set (sources, host, command) and the policy, so typing excludes
    /// neither asks again nor gets an answer about them.
    pub fn plan_request(&self) -> Option<Box<pb::PlanRetentionRequest>> {
        if self.kind != EditorKind::Backup || self.sources.is_empty() || self.repository.is_empty()
        {
            return None;
        }
        let retention = self.keep().ok().flatten()?;
        let (host, command) = match &self.base.kind {
            Some(pb::job_spec::Kind::Backup(b)) => (b.host.clone(), b.command.clone()),
            _ => (String::new(), None),
        };
        Some(Box::new(pb::PlanRetentionRequest {
            repository: self.repository.clone(),
            backup: Some(pb::BackupSpec {
                paths: self.sources.clone(),
                host,
                command,
                retention: Some(retention),
                ..Default::default()
            }),
            timezone: self.timezone.trim().to_owned(),
            // A job not saved yet has made no snapshot: only a saved one's are planned.
            job: self.original.clone().unwrap_or_default(),
        }))
    }

    /// The daemon's answer for the form as it is now (None while asking, or when
    /// there is nothing to ask).
    pub fn current_plan(&self) -> Option<&RetentionPlan> {
        match (self.plan.as_deref(), self.plan_asked.as_deref()) {
            (Some((answered, plan)), Some(asked)) if answered == asked => Some(plan),
            _ => None,
        }
    }

    /// The spec to send: the loaded one with the form's fields put in (a retention
    /// that does not read is left out; saving refuses it first).
    pub fn spec(&self) -> pb::JobSpec {
        let mut spec = self.base.clone();
        spec.name = self.name.trim().to_owned();
        spec.repository = self.repository.clone();
        spec.enabled = self.enabled;
        spec.schedule = self.schedule();
        // A kind's own settings the form does not show are kept from the loaded spec.
        spec.kind = Some(match self.kind {
            EditorKind::Check => match &self.base.kind {
                Some(pb::job_spec::Kind::Check(c)) => pb::job_spec::Kind::Check(*c),
                _ => pb::job_spec::Kind::Check(pb::CheckSpec::default()),
            },
            EditorKind::Prune => match &self.base.kind {
                Some(pb::job_spec::Kind::Prune(p)) => pb::job_spec::Kind::Prune(*p),
                _ => pb::job_spec::Kind::Prune(pb::PruneSpec::default()),
            },
            EditorKind::Backup => self.backup_spec(),
        });
        spec
    }

    fn backup_spec(&self) -> pb::job_spec::Kind {
        {
            let mut backup = match &self.base.kind {
                Some(pb::job_spec::Kind::Backup(b)) => b.clone(),
                _ => pb::BackupSpec::default(),
            };
            backup.paths = self.sources.clone();
            backup.excludes = self
                .excludes
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect();
            backup.retention = self.keep().unwrap_or(None);
            pb::job_spec::Kind::Backup(backup)
        }
    }
}

/// The daemon host's filesystem, one directory at a time, to pick sources from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PickerScreen {
    pub path: String,
    /// None while loading.
    pub entries: Option<Vec<pb::DirectoryEntry>>,
    pub selected: usize,
    pub reselect: Option<String>,
    /// A path being typed to go to.
    pub goto: Option<String>,
    /// Entries in the whole directory (the picker shows the first 20 000).
    pub total: u64,
}

impl PickerScreen {
    pub fn new(path: String) -> PickerScreen {
        PickerScreen {
            path,
            ..PickerScreen::default()
        }
    }

    pub fn selected_entry(&self) -> Option<&pb::DirectoryEntry> {
        self.entries.as_ref()?.get(self.selected)
    }

    /// The path of `entry` in this directory: its exact name when that is UTF-8 (job
    /// paths are text), else the name as shown.
    pub fn entry_path(&self, entry: &pb::DirectoryEntry) -> String {
        let name = std::str::from_utf8(&entry.raw_name)
            .ok()
            .filter(|raw| !raw.is_empty())
            .unwrap_or(&entry.name);
        self.child(name)
    }

    pub fn child(&self, name: &str) -> String {
        crate::console::screen::child_path(&self.path, name)
    }

    pub fn parent(&self) -> Option<(String, String)> {
        crate::console::screen::parent_path(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editing_keeps_what_the_form_does_not_show() {
        let job = pb::Job {
            spec: Some(pb::JobSpec {
                name: "web".into(),
                repository: "main".into(),
                enabled: true,
                schedule: Some(pb::Schedule {
                    cron: "0 3 * * *".into(),
                    timezone: "Europe/Berlin".into(),
                    random_delay_seconds: 600,
                    catch_up: pb::CatchUp::Skip as i32,
                }),
                before: Some(pb::Hook {
                    argv: vec!["/bin/true".into()],
                    timeout_seconds: 5,
                }),
                kind: Some(pb::job_spec::Kind::Backup(pb::BackupSpec {
                    paths: vec!["/srv".into()],
                    excludes: vec!["*.tmp".into(), "cache/".into()],
                    tags: vec!["nightly".into()],
                    one_file_system: true,
                    retention: Some(pb::Retention {
                        keep_daily: 7,
                        keep_within: "2d".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut editor = EditorScreen::edit(&job);
        assert_eq!(editor.excludes, "*.tmp, cache/");
        assert_eq!(editor.retention, "daily 7, within 2d");
        editor.cron = "30 2 * * *".into();
        editor.sources.push("/etc".into());
        let spec = editor.spec();
        let schedule = spec.schedule.clone().unwrap();
        assert_eq!(
            (schedule.cron.as_str(), schedule.random_delay_seconds),
            ("30 2 * * *", 600)
        );
        assert_eq!(spec.before, job.spec.as_ref().unwrap().before);
        let Some(pb::job_spec::Kind::Backup(b)) = spec.kind else {
            panic!("still a backup");
        };
        assert_eq!(b.paths, ["/srv", "/etc"]);
        assert_eq!(b.excludes, ["*.tmp", "cache/"]);
        assert_eq!(
            (b.tags, b.one_file_system),
            (vec!["nightly".to_owned()], true)
        );
        assert_eq!(
            b.retention.map(|r| (r.keep_daily, r.keep_within)),
            Some((7, "2d".to_owned()))
        );

        editor.retention = "weekly 4".into();
        let Some(pb::job_spec::Kind::Backup(b)) = editor.spec().kind else {
            panic!("still a backup");
        };
        assert_eq!(
            b.retention.map(|r| (r.keep_daily, r.keep_weekly)),
            Some((0, 4))
        );
        editor.retention.clear();
        let Some(pb::job_spec::Kind::Backup(b)) = editor.spec().kind else {
            panic!("still a backup");
        };
        assert_eq!(b.retention, None, "an emptied field keeps every snapshot");

        editor.cron = "  ".into();
        assert_eq!(editor.spec().schedule, None, "no cron: manual runs only");
    }

    #[test]
    fn a_prune_job_stays_a_prune_job_with_its_settings() {
        let prune = pb::PruneSpec {
            max_unused_percent: Some(20),
            max_repack_bytes: 1 << 30,
        };
        let job = pb::Job {
            spec: Some(pb::JobSpec {
                name: "tidy".into(),
                repository: "main".into(),
                enabled: true,
                kind: Some(pb::job_spec::Kind::Prune(prune)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut editor = EditorScreen::edit(&job);
        assert_eq!(editor.kind, EditorKind::Prune);
        assert!(!editor.fields().contains(&Field::Sources));
        assert_eq!(
            editor.spec().kind,
            Some(pb::job_spec::Kind::Prune(prune)),
            "saved as loaded"
        );
        // Around the kinds and back: its settings are still there.
        editor.kind = editor.kind.cycle(true);
        assert_eq!(editor.kind, EditorKind::Backup);
        assert!(editor.fields().contains(&Field::Sources));
        editor.kind = editor.kind.cycle(false);
        assert_eq!(editor.kind, EditorKind::Prune);
        assert_eq!(editor.spec().kind, Some(pb::job_spec::Kind::Prune(prune)));
        // A new prune job gets the daemon's defaults.
        let mut new = EditorScreen::new_job();
        new.kind = EditorKind::Check.cycle(true);
        assert_eq!(
            new.spec().kind,
            Some(pb::job_spec::Kind::Prune(pb::PruneSpec::default()))
        );
    }
}
