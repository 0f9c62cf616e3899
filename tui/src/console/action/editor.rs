//! The job editor's keys (a form: Tab or arrows between fields, typing into text
//! fields, Enter or Space on the others) and the source picker's.

use cairn_proto::v1 as pb;

use super::{EditorReply, Effect, Intent, back, move_in, needs};
use crate::console::Role;
use crate::console::screen::editor::{EditorKind, EditorScreen, Field, PickerScreen, Preview};
use crate::console::screen::{JobScreen, Screen};
use crate::console::state::{Message, State};

/// Opens the editor for a new job (`None`) or an existing one; admins only.
pub fn open(state: &mut State, job: Option<&pb::Job>) -> Vec<Effect> {
    if state.role() < Role::Admin {
        state.message = Some(needs(
            if job.is_some() { "edit" } else { "new job" },
            Role::Admin,
            state.role(),
        ));
        return Vec::new();
    }
    let editor = job.map_or_else(EditorScreen::new_job, EditorScreen::edit);
    let mut effects = vec![Effect::LoadRepositories];
    if let Some(schedule) = editor.schedule() {
        effects.push(Effect::PreviewSchedule(Box::new(schedule)));
    }
    state.screens.push(Screen::Editor(editor));
    effects.extend(replan(state));
    effects
}

/// Asks the daemon what the retention typed does to the sources' snapshots, when
/// anything it depends on (retention, sources, repository, zone) changed.
fn replan(state: &mut State) -> Vec<Effect> {
    let Some(e) = editor(state) else {
        return Vec::new();
    };
    let wanted = e.plan_request();
    if wanted == e.plan_asked {
        return Vec::new();
    }
    e.plan_asked = wanted.clone();
    wanted
        .map(|request| vec![Effect::PlanRetention(request)])
        .unwrap_or_default()
}

fn editor(state: &mut State) -> Option<&mut EditorScreen> {
    state.screens.iter_mut().rev().find_map(|s| match s {
        Screen::Editor(e) => Some(e),
        _ => None,
    })
}

pub fn loaded(state: &mut State, reply: EditorReply) -> Vec<Effect> {
    match reply {
        EditorReply::RepositoriesLoaded(names) => {
            if let Some(e) = editor(state) {
                if e.repository.is_empty() {
                    e.repository = names.first().cloned().unwrap_or_default();
                }
                e.repositories = names;
            }
            return replan(state);
        }
        EditorReply::RetentionPlanned { request, plan } => {
            if let Some(e) = editor(state) {
                e.plan = Some(Box::new((*request, plan)));
            }
        }
        EditorReply::SchedulePreview {
            cron,
            timezone,
            preview,
        } => {
            if let Some(e) = editor(state)
                && e.cron.trim() == cron
                && e.timezone.trim() == timezone
            {
                e.preview = Some(preview);
                e.previewed = (cron, timezone);
            }
        }
        EditorReply::JobSaved(name) => {
            state.screens.retain(|s| !matches!(s, Screen::Editor(_)));
            // Show the job: its screen if open (renamed or not), else open it.
            let open = state
                .screens
                .iter_mut()
                .rev()
                .find_map(|s| match s {
                    Screen::Job(j) => Some(j),
                    _ => None,
                })
                .map(|j| j.name = name.clone())
                .is_some();
            if !open {
                state
                    .screens
                    .push(Screen::Job(JobScreen::new(name.clone())));
            }
            state.message = Some(Message {
                title: "saved".into(),
                text: format!("job {name} saved"),
            });
            return vec![Effect::Refresh, Effect::LoadJob(name)];
        }
        EditorReply::DirectoryLoaded {
            path,
            entries,
            total,
        } => {
            if let Some(Screen::Picker(p)) = state.screens.last_mut()
                && p.path == path
            {
                p.selected = p
                    .reselect
                    .take()
                    .and_then(|name| entries.iter().position(|e| e.name == name))
                    .unwrap_or(0);
                p.total = total;
                p.entries = Some(entries);
            }
        }
    }
    Vec::new()
}

fn preview(e: &EditorScreen) -> Vec<Effect> {
    match e.schedule() {
        Some(schedule) => vec![Effect::PreviewSchedule(Box::new(schedule))],
        None => Vec::new(),
    }
}

pub fn key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let mut effects = form_key(state, intent);
    effects.extend(replan(state));
    effects
}

fn form_key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let Some(Screen::Editor(e)) = state.screens.last_mut() else {
        return Vec::new();
    };
    let fields = e.fields();
    let at = fields.iter().position(|f| *f == e.focus).unwrap_or(0);
    let schedule_field = matches!(e.focus, Field::Cron | Field::Timezone);
    match intent {
        Intent::Up => e.focus = fields[at.saturating_sub(1)],
        Intent::Down => e.focus = fields[(at + 1).min(fields.len() - 1)],
        Intent::FilterChar(c) => {
            if let Some(text) = e.text_mut() {
                text.push(c);
                if schedule_field {
                    return preview(e);
                }
            }
        }
        Intent::FilterBackspace => {
            if let Some(text) = e.text_mut() {
                text.pop();
                if schedule_field {
                    return preview(e);
                }
            } else if e.focus == Field::Sources {
                e.sources.pop();
            }
        }
        Intent::Left | Intent::Right => cycle(e, intent == Intent::Right),
        Intent::Open => match e.focus {
            Field::Repository | Field::Kind | Field::Enabled => cycle(e, true),
            Field::Sources => {
                let start = e
                    .sources
                    .last()
                    .and_then(|s| s.rsplit_once('/'))
                    .map(|(parent, _)| if parent.is_empty() { "/" } else { parent })
                    .unwrap_or("/")
                    .to_owned();
                state
                    .screens
                    .push(Screen::Picker(PickerScreen::new(start.clone())));
                return vec![Effect::ListDirectory(start)];
            }
            Field::Save => return save(state),
            _ => e.focus = fields[(at + 1).min(fields.len() - 1)],
        },
        Intent::Save => return save(state),
        Intent::Back => return back(state),
        _ => {}
    }
    Vec::new()
}

/// Moves a choice field to its next (or previous) value.
fn cycle(e: &mut EditorScreen, forward: bool) {
    match e.focus {
        Field::Repository if !e.repositories.is_empty() => {
            let n = e.repositories.len();
            let at = e.repositories.iter().position(|r| *r == e.repository);
            let next = match (at, forward) {
                (None, _) => 0,
                (Some(i), true) => (i + 1) % n,
                (Some(i), false) => (i + n - 1) % n,
            };
            e.repository = e.repositories[next].clone();
        }
        Field::Kind => e.kind = e.kind.cycle(forward),
        Field::Enabled => e.enabled = !e.enabled,
        _ => {}
    }
}

/// Checks what the daemon would refuse anyway, naming the field, then saves.
fn save(state: &mut State) -> Vec<Effect> {
    let Some(Screen::Editor(e)) = state.screens.last() else {
        return Vec::new();
    };
    let problem = if e.name.trim().is_empty() {
        Some("name: give the job a name".to_owned())
    } else if e.repository.is_empty() {
        Some("repository: the daemon has none yet; add one with `cairn repo add` first".to_owned())
    } else if e.kind == EditorKind::Backup && e.sources.is_empty() {
        Some("sources: choose at least one (Enter on sources opens the picker)".to_owned())
    } else if let (EditorKind::Backup, Err(why)) = (e.kind, e.keep()) {
        Some(format!("retention: {why}"))
    } else if matches!(e.preview, Some(Preview::Invalid(_))) && e.schedule().is_some() {
        Some("cron: the schedule is not valid (see the reason under it)".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        state.message = Some(Message {
            title: "save".into(),
            text: problem,
        });
        return Vec::new();
    }
    vec![Effect::SaveJob {
        original: e.original.clone(),
        spec: Box::new(e.spec()),
    }]
}

fn picker_load(p: &PickerScreen) -> Effect {
    Effect::ListDirectory(p.path.clone())
}

pub fn picker_key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let mut effects = picker_form_key(state, intent);
    effects.extend(replan(state));
    effects
}

fn picker_form_key(state: &mut State, intent: Intent) -> Vec<Effect> {
    let Some(Screen::Picker(p)) = state.screens.last_mut() else {
        return Vec::new();
    };
    if let Some(goto) = &mut p.goto {
        match intent {
            Intent::FilterChar(c) => goto.push(c),
            Intent::FilterBackspace => {
                goto.pop();
            }
            Intent::FilterDone => {
                let path = goto.trim().trim_end_matches('/').to_owned();
                p.goto = None;
                p.path = if path.is_empty() { "/".into() } else { path };
                p.entries = None;
                p.selected = 0;
                return vec![picker_load(p)];
            }
            Intent::Back => p.goto = None,
            _ => {}
        }
        return Vec::new();
    }
    let len = p.entries.as_ref().map_or(0, Vec::len);
    let picked = match intent {
        Intent::StartFilter => {
            p.goto = Some(String::new());
            return Vec::new();
        }
        a if a.moves() => {
            move_in(&mut p.selected, len, &a);
            return Vec::new();
        }
        Intent::Open | Intent::Right => {
            if let Some(entry) = p.selected_entry()
                && entry.kind == "dir"
            {
                p.path = p.entry_path(entry);
                p.entries = None;
                p.selected = 0;
                return vec![picker_load(p)];
            }
            return Vec::new();
        }
        Intent::Parent | Intent::Left => {
            if let Some((parent, name)) = p.parent() {
                p.path = parent;
                p.reselect = Some(name);
                p.entries = None;
                return vec![picker_load(p)];
            }
            return Vec::new();
        }
        Intent::Choose => match p.selected_entry() {
            Some(entry) => p.entry_path(entry),
            None => return Vec::new(),
        },
        Intent::PickHere => p.path.clone(),
        Intent::Back => return back(state),
        _ => return Vec::new(),
    };
    state.screens.pop();
    if let Some(Screen::Editor(e)) = state.screens.last_mut()
        && !e.sources.contains(&picked)
    {
        e.sources.push(picked);
    }
    Vec::new()
}
