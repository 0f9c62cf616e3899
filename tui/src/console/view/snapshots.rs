//! The snapshot screens: a repository's (or a job's) snapshots, one snapshot's tree
//! with the entries chosen for a restore, and a diff of two snapshots.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use crate::api::names::{mode_string, short_id as short};
use crate::console::screen::{DiffScreen, SnapshotsScreen, TreeScreen};
use crate::console::state::State;
use crate::console::view::{block, bytes, clock, colored, entry_name, mark_selected, note};

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

pub fn draw_list(frame: &mut Frame<'_>, state: &State, s: &SnapshotsScreen, area: Rect) {
    let whose = s
        .job
        .as_deref()
        .map_or(String::new(), |job| format!(" made by job {job}"));
    let Some(snapshots) = &s.snapshots else {
        note(
            frame,
            state,
            format!(" snapshots in {}{whose} ", s.repository),
            "loading...",
            area,
        );
        return;
    };
    let mut title = format!(" {} snapshots in {}{whose} ", snapshots.len(), s.repository);
    if let Some(marked) = &s.marked {
        title.push_str(&format!("(marked {}) ", short(marked)));
    }
    if snapshots.is_empty() {
        note(
            frame,
            state,
            title,
            "no snapshots yet: run the job (r on the dashboard)",
            area,
        );
        return;
    }
    let wide = area.width >= 100;
    let mut header = vec!["", "TIME", "ID", "FILES +/~", "ADDED", "SIZE"];
    if wide {
        header.extend(["HOST", "PATHS"]);
    }
    let rows = snapshots.iter().enumerate().map(|(i, snap)| {
        let mark = if s.marked.as_deref() == Some(snap.id.as_str()) {
            "*"
        } else {
            " "
        };
        let mut cells = vec![
            Cell::from(mark),
            Cell::from(clock(state, snap.time.as_ref())),
            Cell::from(short(&snap.id).to_owned()),
            Cell::from(format!("{}/{}", snap.files_new, snap.files_changed)),
            Cell::from(bytes(snap.bytes_added)),
            Cell::from(bytes(snap.total_bytes)),
        ];
        if wide {
            cells.push(Cell::from(crate::output::name(&snap.host).into_owned()));
            cells.push(Cell::from(crate::output::names(&snap.paths, ", ")));
        }
        let row = Row::new(cells);
        mark_selected(row, i == s.selected, state.color)
    });
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(11),
        Constraint::Length(11),
    ];
    if wide {
        widths.extend([Constraint::Length(16), Constraint::Fill(1)]);
    }
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(bold()))
            .block(block(state, title)),
        area,
    );
}

pub fn draw_tree(frame: &mut Frame<'_>, state: &State, s: &TreeScreen, area: Rect) {
    let mut title = format!(
        " snapshot {} in {}: {} ",
        short(&s.snapshot),
        s.repository,
        crate::output::name(&s.path)
    );
    if !s.chosen.is_empty() {
        title.push_str(&format!("({} chosen, R restores) ", s.chosen.len()));
    }
    let Some(entries) = &s.entries else {
        note(frame, state, title, "loading...", area);
        return;
    };
    if entries.is_empty() {
        note(frame, state, title, "an empty directory", area);
        return;
    }
    let rows = entries.iter().enumerate().map(|(i, entry)| {
        let chosen = s.chosen.contains(&s.child(&entry.name));
        let name = entry_name(state, &entry.name, &entry.kind, &entry.link_target);
        let row = Row::new(vec![
            Cell::from(if chosen { "[x]" } else { "[ ]" }),
            Cell::from(mode_string(&entry.kind, entry.mode)),
            Cell::from(if entry.kind == "file" {
                bytes(entry.size)
            } else {
                String::new()
            }),
            Cell::from(clock(state, entry.mtime.as_ref())),
            Cell::from(Line::from(name)),
        ]);
        mark_selected(row, i == s.selected, state.color)
    });
    let widths = [
        Constraint::Length(3),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(16),
        Constraint::Fill(1),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(["", "MODE", "SIZE", "MODIFIED", "NAME"]).style(bold()))
            .block(block(state, title)),
        area,
    );
}

pub fn draw_diff(frame: &mut Frame<'_>, state: &State, s: &DiffScreen, area: Rect) {
    let title = format!(
        " {} -> {} in {} ",
        short(&s.from),
        short(&s.to),
        s.repository
    );
    let Some(diff) = &s.diff else {
        note(frame, state, title, "comparing...", area);
        return;
    };
    let title = format!(
        "{}: {} added, {} removed, {} modified, {} metadata, {} changed type{} ",
        title.trim_end(),
        diff.added,
        diff.removed,
        diff.modified,
        diff.metadata,
        diff.type_changed,
        if diff.truncated { " (list cut)" } else { "" }
    );
    if diff.changes.is_empty() {
        note(frame, state, title, "no differences", area);
        return;
    }
    let height = area.height.saturating_sub(2) as usize;
    let top = s.selected.saturating_sub(height.saturating_sub(1));
    let lines: Vec<Line<'static>> = diff
        .changes
        .iter()
        .enumerate()
        .skip(top)
        .take(height)
        .map(|(i, change)| {
            let (symbol, color) = match change.change.as_str() {
                "added" => ("+", Color::Green),
                "removed" => ("-", Color::Red),
                "modified" => ("M", Color::Yellow),
                "metadata" => ("U", Color::Cyan),
                _ => ("T", Color::Magenta),
            };
            let line = Line::from(vec![
                Span::styled(format!("{symbol} "), colored(state.color, color)),
                Span::raw(format!(
                    "{} ({})",
                    crate::output::name(&change.path),
                    change.kind
                )),
            ]);
            mark_selected(line, i == s.selected, state.color)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block(state, title)), area);
}

#[cfg(test)]
mod tests {
    use cairn_proto::v1 as pb;

    use crate::console::Role;
    use crate::console::action::{Action, Intent, Reply, SnapshotsReply, update};
    use crate::console::screen::{DiffScreen, Screen, SnapshotsScreen, TreeScreen};
    use crate::console::view::fixtures::*;

    fn snapshot(id: &str, seconds_ago: i64, added: u64) -> pb::Snapshot {
        pb::Snapshot {
            id: id.repeat(32),
            repository: "main".into(),
            time: at(seconds_ago),
            host: "web-01".into(),
            paths: vec!["/srv/www".into(), "/etc".into()],
            files_new: 3,
            files_changed: 1,
            bytes_added: added,
            total_bytes: 4 << 30,
            ..Default::default()
        }
    }

    #[test]
    fn a_jobs_snapshots_with_one_marked_at_80x24_and_120x40() {
        let mut state = state(Role::Viewer, Vec::new());
        state.screens.push(Screen::Snapshots(SnapshotsScreen {
            repository: "main".into(),
            job: Some("web".into()),
            ..Default::default()
        }));
        update(
            &mut state,
            Action::Reply(Reply::Snapshots(SnapshotsReply::SnapshotsLoaded {
                repository: "main".into(),
                job: Some("web".into()),
                snapshots: vec![
                    snapshot("c3", 600, 12 << 20),
                    snapshot("b2", 86_400, 3 << 20),
                    snapshot("a1", 2 * 86_400, 4 << 30),
                ],
            })),
        );
        update(&mut state, Action::Key(Intent::Down));
        update(&mut state, Action::Key(Intent::Mark));
        insta::assert_snapshot!("snapshots_80x24", render(&state, 80, 24));
        insta::assert_snapshot!("snapshots_120x40", render(&state, 120, 40));
    }

    #[test]
    fn a_snapshots_tree_with_chosen_entries_and_the_restore_prompt() {
        let mut state = state(Role::Operator, Vec::new());
        let mut tree = TreeScreen::new("main".into(), "c3".repeat(32));
        tree.path = "/srv/www".into();
        state.screens.push(Screen::Tree(tree));
        let entry = |name: &str, kind: &str, size: u64, mode: u32| pb::TreeEntry {
            name: name.into(),
            kind: kind.into(),
            size,
            mode,
            mtime: at(7200),
            link_target: if kind == "symlink" {
                "index.html".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        update(
            &mut state,
            Action::Reply(Reply::Snapshots(SnapshotsReply::TreeLoaded {
                snapshot: "c3".repeat(32),
                path: "/srv/www".into(),
                entries: vec![
                    entry("assets", "dir", 0, 0o755),
                    entry("home.html", "symlink", 0, 0o777),
                    entry("index.html", "file", 5120, 0o644),
                    entry("secret.key", "file", 64, 0o600),
                ],
            })),
        );
        update(&mut state, Action::Key(Intent::Down));
        update(&mut state, Action::Key(Intent::Down));
        update(&mut state, Action::Key(Intent::Choose));
        update(&mut state, Action::Key(Intent::Choose));
        insta::assert_snapshot!("tree_chosen_80x24", render(&state, 80, 24));
        update(&mut state, Action::Key(Intent::Restore));
        for c in "/var/tmp/restore".chars() {
            update(&mut state, Action::Key(Intent::FilterChar(c)));
        }
        insta::assert_snapshot!("tree_restore_prompt_120x40", render(&state, 120, 40));
    }

    #[test]
    fn a_file_name_with_escape_sequences_is_shown_escaped() {
        let mut state = state(Role::Viewer, Vec::new());
        state.screens.push(Screen::Tree(TreeScreen::new(
            "main".into(),
            "c3".repeat(32),
        )));
        update(
            &mut state,
            Action::Reply(Reply::Snapshots(SnapshotsReply::TreeLoaded {
                snapshot: "c3".repeat(32),
                path: "/".into(),
                entries: vec![pb::TreeEntry {
                    name: "\u{1b}]0;PWNED\u{7}\u{1b}[2J".into(),
                    kind: "file".into(),
                    ..Default::default()
                }],
            })),
        );
        let backend = render(&state, 100, 20);
        let cells: String = backend
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(
            !cells.contains(char::is_control),
            "a control character reached the screen"
        );
        assert!(cells.contains("\\x1b]0;PWNED\\a\\x1b[2J"), "{backend}");
    }

    #[test]
    fn a_diff_of_two_snapshots() {
        let mut state = state(Role::Viewer, Vec::new());
        state.screens.push(Screen::Diff(DiffScreen {
            repository: "main".into(),
            from: "b2".repeat(32),
            to: "c3".repeat(32),
            ..Default::default()
        }));
        let change = |path: &str, change: &str, kind: &str| pb::SnapshotChange {
            path: path.into(),
            change: change.into(),
            kind: kind.into(),
        };
        update(
            &mut state,
            Action::Reply(Reply::Snapshots(SnapshotsReply::DiffLoaded(Box::new(
                pb::DiffSnapshotsResponse {
                    from_id: "b2".repeat(32),
                    to_id: "c3".repeat(32),
                    added: 1,
                    removed: 1,
                    modified: 1,
                    metadata: 1,
                    type_changed: 0,
                    changes: vec![
                        change("/etc/nginx/site.conf", "modified", "file"),
                        change("/srv/www/new.html", "added", "file"),
                        change("/srv/www/old.html", "removed", "file"),
                        change("/srv/www/uploads", "metadata", "dir"),
                    ],
                    truncated: false,
                },
            )))),
        );
        insta::assert_snapshot!("diff_80x24", render(&state, 80, 24));
        insta::assert_snapshot!("diff_120x40", render(&state, 120, 40));
    }
}
