//! The job editor's form (the field in focus marked, the schedule's words and next
//! fire times under the cron field, or the daemon's reason it is not valid) and the
//! source picker.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use crate::console::screen::editor::{EditorScreen, Field, PickerScreen, Preview, RetentionPlan};
use crate::console::state::State;
use crate::console::view::{
    block, bytes, clock, colored, mark_selected, note, selected, shown_entry,
};

pub fn draw(frame: &mut Frame<'_>, state: &State, e: &EditorScreen, area: Rect) {
    let title = match &e.original {
        Some(name) => format!(" edit job {name} "),
        None => " new job ".to_owned(),
    };
    let [form, schedule] =
        Layout::vertical([Constraint::Min(11), Constraint::Length(8)]).areas(area);
    let mut lines = Vec::new();
    for field in e.fields() {
        let focused = field == e.focus;
        let value = match field {
            Field::Name => e.name.clone(),
            Field::Repository => {
                if e.repositories.is_empty() {
                    format!("{} (no repositories yet)", e.repository)
                } else {
                    format!("< {} >  of {}", e.repository, e.repositories.join(", "))
                }
            }
            Field::Kind => format!("< {} >", e.kind.name()),
            Field::Sources => {
                if e.sources.is_empty() {
                    "none yet: Enter picks from the daemon host".to_owned()
                } else {
                    e.sources.join(", ")
                }
            }
            Field::Excludes => e.excludes.clone(),
            Field::Retention => {
                if e.retention.is_empty() && !focused {
                    "(empty: every snapshot is kept)".to_owned()
                } else {
                    e.retention.clone()
                }
            }
            Field::Cron => {
                if e.cron.is_empty() && !focused {
                    "(empty: manual runs only)".to_owned()
                } else {
                    e.cron.clone()
                }
            }
            Field::Timezone => {
                if e.timezone.is_empty() && !focused {
                    "UTC".to_owned()
                } else {
                    e.timezone.clone()
                }
            }
            Field::Enabled => format!("[{}]", if e.enabled { "x" } else { " " }),
            Field::Save => String::new(),
        };
        let marker = if focused { "> " } else { "  " };
        let label_style = if focused {
            Style::new().add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        let mut spans = vec![
            Span::raw(marker),
            Span::styled(format!("{:<11}", field.label()), label_style),
        ];
        if field == Field::Save {
            spans = vec![
                Span::raw(marker),
                Span::styled(
                    "[ save ]",
                    if focused {
                        selected(state.color)
                    } else {
                        label_style
                    },
                ),
                Span::raw("  (Ctrl-S saves from any field, Esc cancels)"),
            ];
        } else {
            spans.push(Span::raw(value));
            if focused && field.is_text() {
                spans.push(Span::raw("_"));
            }
        }
        lines.push(Line::from(spans));
        if field == Field::Retention {
            let width = usize::from(form.width.saturating_sub(2));
            lines.extend(retention_hint(state, e, focused, width));
        }
    }
    frame.render_widget(Paragraph::new(lines).block(block(state, title)), form);
    frame.render_widget(
        Paragraph::new(schedule_lines(state, e))
            .wrap(Wrap { trim: true })
            .block(block(state, " schedule ".into())),
        schedule,
    );
}

/// Under the retention field: why it does not read, or what the daemon says it does
/// to these sources' snapshots now (before the job is saved with it), or while typing
/// there with nothing to show yet, an example of the way to write it.
fn retention_hint(
    state: &State,
    e: &EditorScreen,
    focused: bool,
    width: usize,
) -> Vec<Line<'static>> {
    let red = colored(state.color, Color::Red);
    let dim = Style::new().add_modifier(Modifier::DIM);
    let (text, style) = match (e.keep(), e.current_plan()) {
        (Err(why), _) => (why, red),
        (Ok(_), Some(RetentionPlan::Invalid(why))) => (why.clone(), red),
        (Ok(_), Some(RetentionPlan::Counted { kept, total })) => {
            let forgets = total - kept;
            match (total, forgets) {
                (0, _) => ("no snapshots of these sources yet".to_owned(), dim),
                (1, 0) => (
                    "keeps the one snapshot of these sources now".to_owned(),
                    Style::new(),
                ),
                (_, 0) => (
                    format!("keeps each of the {total} snapshots of these sources now"),
                    Style::new(),
                ),
                _ => (
                    format!(
                        "keeps {kept} of the {total} snapshots of these sources now: once saved, the next backup forgets {forgets}"
                    ),
                    colored(state.color, Color::Yellow),
                ),
            }
        }
        (Ok(Some(_)), None) if e.plan_asked.is_some() => {
            ("asking the daemon what it keeps...".to_owned(), dim)
        }
        _ if focused => (
            "like: last 3, daily 7, weekly 4, monthly 12, within 14d, tag release".to_owned(),
            dim,
        ),
        _ => return Vec::new(),
    };
    let indent = 13;
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.len() + 1 + word.len() <= width.saturating_sub(indent) => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
        .into_iter()
        .map(|line| {
            Line::from(vec![
                Span::raw(" ".repeat(indent)),
                Span::styled(line, style),
            ])
        })
        .collect()
}

fn schedule_lines(state: &State, e: &EditorScreen) -> Vec<Line<'static>> {
    if e.schedule().is_none() {
        return vec![Line::from(
            "no cron expression: the job runs only when asked (r)",
        )];
    }
    let current = e.previewed == (e.cron.trim().to_owned(), e.timezone.trim().to_owned());
    match (&e.preview, current) {
        (Some(Preview::Valid(words, times)), true) => {
            let mut lines = vec![Line::from(Span::styled(
                words.clone(),
                colored(state.color, Color::Green),
            ))];
            for t in times {
                let at = prost_types::Timestamp {
                    seconds: *t,
                    nanos: 0,
                };
                lines.push(Line::from(format!("  {}", full_time(state, &at, e))));
            }
            lines
        }
        (Some(Preview::Invalid(why)), true) => vec![Line::from(Span::styled(
            why.clone(),
            colored(state.color, Color::Red),
        ))],
        _ => vec![Line::from("checking...")],
    }
}

/// A fire time in the schedule's zone (where it fires), with the console's beside it.
fn full_time(state: &State, at: &prost_types::Timestamp, e: &EditorScreen) -> String {
    let zone = e.timezone.trim();
    let zone = if zone.is_empty() { "UTC" } else { zone };
    let there = jiff::Timestamp::new(at.seconds, 0)
        .ok()
        .zip(jiff::tz::TimeZone::get(zone).ok())
        .map(|(t, tz)| {
            t.to_zoned(tz)
                .strftime("%a %Y-%m-%d %H:%M:%S %Z")
                .to_string()
        })
        .unwrap_or_default();
    format!("{there}   (here {})", clock(state, Some(at)))
}

pub fn draw_picker(frame: &mut Frame<'_>, state: &State, p: &PickerScreen, area: Rect) {
    let mut title = format!(" pick a source on the daemon host: {} ", p.path);
    if let Some(entries) = &p.entries
        && p.total > entries.len() as u64
    {
        title.push_str(&format!(
            "(the first {} of {} entries) ",
            entries.len(),
            p.total
        ));
    }
    let Some(entries) = &p.entries else {
        note(frame, state, title, "loading...", area);
        return;
    };
    if entries.is_empty() {
        note(frame, state, title, "an empty directory (. adds it)", area);
        return;
    }
    let rows = entries.iter().enumerate().map(|(i, entry)| {
        let name = shown_entry(state, &entry.name, &entry.kind, &entry.link_target);
        let row = Row::new(vec![
            Cell::from(Line::from(name)),
            Cell::from(if entry.kind == "file" {
                bytes(entry.size)
            } else {
                entry.kind.clone()
            }),
            Cell::from(clock(state, entry.mtime.as_ref())),
        ]);
        mark_selected(row, i == p.selected, state.color)
    });
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Fill(1),
                Constraint::Length(10),
                Constraint::Length(16),
            ],
        )
        .block(block(state, title)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use cairn_proto::v1 as pb;

    use crate::console::Role;
    use crate::console::action::{Action, EditorReply, Intent, Reply, update};
    use crate::console::screen::Screen;
    use crate::console::screen::editor::{Field, PickerScreen, Preview, RetentionPlan};
    use crate::console::view::fixtures::*;

    fn editing() -> crate::console::state::State {
        let mut state = state(Role::Admin, Vec::new());
        update(&mut state, Action::Key(Intent::NewJob));
        update(
            &mut state,
            Action::Reply(Reply::Editor(EditorReply::RepositoriesLoaded(vec![
                "main".into(),
                "offsite".into(),
            ]))),
        );
        for c in "web".chars() {
            update(&mut state, Action::Key(Intent::FilterChar(c)));
        }
        if let Some(Screen::Editor(e)) = state.screens.last_mut() {
            e.sources = vec!["/srv/www".into(), "/etc".into()];
            e.excludes = "*.tmp, cache/".into();
            e.retention = "daily 7, weekly 4, within 2d".into();
            e.cron = "0 3 * * *".into();
            e.timezone = "Europe/Berlin".into();
            e.focus = Field::Cron;
        }
        state
    }

    #[test]
    fn the_editor_with_the_next_fire_times_at_80x24_and_120x40() {
        let mut state = editing();
        // 03:00 in Berlin (CET) is 02:00 UTC; NOW is 08:00 UTC.
        let times = (1..=5).map(|d| NOW + d * 86_400 - 6 * 3600).collect();
        update(
            &mut state,
            Action::Reply(Reply::Editor(EditorReply::SchedulePreview {
                cron: "0 3 * * *".into(),
                timezone: "Europe/Berlin".into(),
                preview: Preview::Valid("At 03:00 (Europe/Berlin)".into(), times),
            })),
        );
        insta::assert_snapshot!("editor_80x24", render(&state, 80, 24));
        insta::assert_snapshot!("editor_120x40", render(&state, 120, 40));
    }

    #[test]
    fn the_editor_shows_why_a_cron_expression_is_refused() {
        let mut state = editing();
        update(
            &mut state,
            Action::Reply(Reply::Editor(EditorReply::SchedulePreview {
                cron: "0 3 * * *".into(),
                timezone: "Europe/Berlin".into(),
                preview: Preview::Invalid(
                    "schedule: cron \"0 3 * * * * x\" has 7 fields; give 5 (minute hour day month weekday) or 6 (seconds first)".into(),
                ),
            })),
        );
        insta::assert_snapshot!("editor_invalid_cron_80x24", render(&state, 80, 24));
    }

    #[test]
    fn the_editor_says_why_a_retention_does_not_read() {
        let mut state = editing();
        if let Some(Screen::Editor(e)) = state.screens.last_mut() {
            e.retention = "daily 7, monthy 12".into();
            e.focus = Field::Retention;
        }
        insta::assert_snapshot!("editor_bad_retention_80x24", render(&state, 80, 24));
    }

    #[test]
    fn the_editor_says_what_a_retention_keeps_now() {
        let mut state = editing();
        let asked = match state.screens.last_mut() {
            Some(Screen::Editor(e)) => {
                e.focus = Field::Retention;
                e.plan_request().unwrap()
            }
            _ => unreachable!("the editor is open"),
        };
        if let Some(Screen::Editor(e)) = state.screens.last_mut() {
            e.plan_asked = Some(asked.clone());
        }
        update(
            &mut state,
            Action::Reply(Reply::Editor(EditorReply::RetentionPlanned {
                request: asked,
                plan: RetentionPlan::Counted {
                    kept: 11,
                    total: 30,
                },
            })),
        );
        insta::assert_snapshot!("editor_retention_plan_80x24", render(&state, 80, 24));
    }

    #[test]
    fn the_source_picker() {
        let mut state = state(Role::Admin, Vec::new());
        state
            .screens
            .push(Screen::Picker(PickerScreen::new("/srv".into())));
        let entry = |name: &str, kind: &str, size: u64| pb::DirectoryEntry {
            name: name.into(),
            kind: kind.into(),
            size,
            mtime: at(3600),
            link_target: if kind == "symlink" {
                "/mnt/data".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        update(
            &mut state,
            Action::Reply(Reply::Editor(EditorReply::DirectoryLoaded {
                path: "/srv".into(),
                entries: vec![
                    entry("data", "symlink", 0),
                    entry("notes.txt", "file", 1234),
                    entry("www", "dir", 4096),
                ],
                total: 3,
            })),
        );
        update(&mut state, Action::Key(Intent::Bottom));
        insta::assert_snapshot!("picker_80x24", render(&state, 80, 24));
        insta::assert_snapshot!("picker_120x40", render(&state, 120, 40));
    }
}
