//! The repositories screen and the form that adds one (the passphrase drawn as
//! stars).

use cairn_proto::v1 as pb;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table};

use crate::console::screen::repos::{RepoField, RepoForm, ReposScreen};
use crate::console::state::State;
use crate::console::view::{
    block, bytes, clock, colored, mark_selected, note, selected, state_color,
};

pub fn draw_list(frame: &mut Frame<'_>, state: &State, s: &ReposScreen, area: Rect) {
    let Some(rows) = &s.rows else {
        note(
            frame,
            state,
            " repositories ".into(),
            "opening the repositories...",
            area,
        );
        return;
    };
    let title = format!(" {} repositories ", rows.len());
    if rows.is_empty() {
        note(
            frame,
            state,
            title,
            "no repositories yet: a adds one (a new one, or one that exists)",
            area,
        );
        return;
    }
    let wide = area.width >= 110;
    let mut header = vec![
        "NAME",
        "SIZE",
        "FREEABLE",
        "SNAPS",
        "LAST CHECK",
        "LAST PRUNE",
    ];
    if wide {
        header.extend(["DEDUP", "LOCATION", "JOBS"]);
    }
    let table_rows = rows.iter().enumerate().map(|(i, row)| {
        let mut cells = vec![Cell::from(row.repository.name.clone())];
        match (&row.stats, &row.error) {
            (Some(stats), _) => {
                cells.push(Cell::from(bytes(stats.stored_bytes)));
                // Known from the last prune only: none yet, nothing known.
                cells.push(Cell::from(if stats.last_prune_state.is_empty() {
                    "-".into()
                } else {
                    bytes(stats.reclaimable_bytes)
                }));
                cells.push(Cell::from(stats.snapshots.to_string()));
                cells.push(Cell::from(last_run(
                    state,
                    &stats.last_check_state,
                    stats.last_check.as_ref(),
                )));
                cells.push(Cell::from(last_run(
                    state,
                    &stats.last_prune_state,
                    stats.last_prune.as_ref(),
                )));
                if wide {
                    cells.push(Cell::from(format!("{:.1}x", stats.dedup_ratio)));
                }
            }
            (None, error) if error.as_deref().is_some_and(|e| e.contains("write-only")) => {
                // Not a failure: the daemon's key adds backups and reads none.
                cells.extend([Cell::from("-"), Cell::from("-"), Cell::from("-")]);
                cells.push(Cell::from("write-only key"));
                cells.push(Cell::from("backups only"));
                if wide {
                    cells.push(Cell::from(""));
                }
            }
            (None, error) => {
                cells.extend([Cell::from("-"), Cell::from("-"), Cell::from("-")]);
                cells.push(Cell::from(Span::styled(
                    format!("cannot open: {}", error.as_deref().unwrap_or("?")),
                    colored(state.color, ratatui::style::Color::Red),
                )));
                cells.push(Cell::from(""));
                if wide {
                    cells.push(Cell::from(""));
                }
            }
        }
        if wide {
            cells.push(Cell::from(location_and_health(state, &row.repository)));
            cells.push(Cell::from(row.repository.jobs.join(", ")));
        }
        let table_row = Row::new(cells);
        mark_selected(table_row, i == s.selected, state.color)
    });
    let mut widths = vec![
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(17),
        Constraint::Fill(1),
    ];
    if wide {
        // The last prune's column stops growing; location and jobs take the rest.
        widths[5] = Constraint::Length(17);
        widths.extend([
            Constraint::Length(6),
            Constraint::Fill(2),
            Constraint::Fill(1),
        ]);
    }
    frame.render_widget(
        Table::new(table_rows, widths)
            .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
            .block(block(state, title)),
        area,
    );
}

/// Where a repository is and, for S3 and SFTP, how its storage fared in its last
/// run: requests retried and the last error (in red). Which run that was is in
/// `repo show`; the column has no room for it.
fn location_and_health(state: &State, repository: &pb::Repository) -> Line<'static> {
    let mut spans = vec![Span::raw(repository.location.clone())];
    if repository.backend_retries > 0 {
        spans.push(Span::raw(format!(
            " ({} retried)",
            repository.backend_retries
        )));
    }
    if !repository.backend_last_error.is_empty() {
        spans.push(Span::styled(
            format!(" last error: {}", repository.backend_last_error),
            colored(state.color, ratatui::style::Color::Red),
        ));
    }
    Line::from(spans)
}

/// The state of a repository's last check or prune and when it ended, or "never".
/// A success is only its time, so what did not succeed stands out (and fits).
fn last_run(state: &State, run_state: &str, at: Option<&prost_types::Timestamp>) -> Line<'static> {
    if run_state.is_empty() {
        return Line::from("never");
    }
    if run_state == "succeeded" {
        return Line::from(clock(state, at));
    }
    Line::from(vec![
        Span::styled(
            run_state.to_owned(),
            colored(state.color, state_color(run_state)),
        ),
        Span::raw(format!(" {}", clock(state, at))),
    ])
}

pub fn draw_form(frame: &mut Frame<'_>, state: &State, f: &RepoForm, area: Rect) {
    let lines: Vec<Line<'static>> = RepoField::ALL
        .iter()
        .map(|field| {
            let focused = *field == f.focus;
            let marker = if focused { "> " } else { "  " };
            let cursor = if focused && field.is_text() { "_" } else { "" };
            let (label, value) = match field {
                RepoField::Name => ("name", f.name.clone()),
                RepoField::Location => ("location", f.location.clone()),
                RepoField::Init => (
                    "create",
                    if f.init {
                        "< new repository there (the directory must be empty or absent) >".into()
                    } else {
                        "< attach the repository that is there >".into()
                    },
                ),
                RepoField::Passphrase => ("passphrase", "*".repeat(f.passphrase.0.chars().count())),
                RepoField::Save => {
                    return Line::from(vec![
                        Span::raw(marker),
                        Span::styled(
                            "[ add ]",
                            if focused {
                                selected(state.color)
                            } else {
                                Style::new()
                            },
                        ),
                        Span::raw("  (Ctrl-S adds from any field, Esc cancels)"),
                    ]);
                }
            };
            Line::from(format!("{marker}{label:<11}{value}{cursor}"))
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(block(state, " add a repository ".into())),
        area,
    );
}

#[cfg(test)]
mod tests {
    use cairn_proto::v1 as pb;

    use crate::console::Role;
    use crate::console::action::{Action, Intent, Reply, ReposReply, update};
    use crate::console::screen::repos::RepoRow;
    use crate::console::view::fixtures::*;

    #[test]
    fn repositories_with_their_stats_at_80x24_and_120x40() {
        let mut state = state(Role::Operator, Vec::new());
        update(&mut state, Action::Key(Intent::OpenRepositories));
        let rows = vec![
            RepoRow {
                repository: pb::Repository {
                    name: "main".into(),
                    location: "/backup/main".into(),
                    jobs: vec!["web".into(), "db".into()],
                    ..Default::default()
                },
                stats: Some(pb::RepositoryStats {
                    name: "main".into(),
                    snapshots: 412,
                    stored_bytes: 81 << 30,
                    restored_bytes: 1900 << 30,
                    dedup_ratio: 23.4,
                    last_check: at(7200),
                    last_check_state: "succeeded".into(),
                    last_prune: at(86_400),
                    last_prune_state: "succeeded".into(),
                    reclaimable_bytes: 3 << 30,
                    ..Default::default()
                }),
                error: None,
            },
            RepoRow {
                repository: pb::Repository {
                    name: "offsite".into(),
                    location: "/mnt/usb/cairn".into(),
                    ..Default::default()
                },
                stats: None,
                error: Some("repository offsite at /mnt/usb/cairn: not found".into()),
            },
        ];
        update(
            &mut state,
            Action::Reply(Reply::Repos(ReposReply::RepositoryRows(rows))),
        );
        insta::assert_snapshot!("repositories_80x24", render(&state, 80, 24));
        insta::assert_snapshot!("repositories_120x40", render(&state, 120, 40));
    }

    #[test]
    fn an_offsite_repository_shows_its_storage_health_and_a_write_only_key() {
        let mut state = state(Role::Operator, Vec::new());
        update(&mut state, Action::Key(Intent::OpenRepositories));
        let rows = vec![
            RepoRow {
                repository: pb::Repository {
                    name: "s3".into(),
                    location: "s3:https://s3.example.com/backups/web1".into(),
                    backend: "S3".into(),
                    backend_retries: 7,
                    backend_last_error: "SlowDown".into(),
                    backend_run: 42,
                    ..Default::default()
                },
                stats: Some(pb::RepositoryStats {
                    name: "s3".into(),
                    ..Default::default()
                }),
                error: None,
            },
            RepoRow {
                repository: pb::Repository {
                    name: "vault".into(),
                    location: "sftp://bk@vault/srv/cairn".into(),
                    backend: "SFTP".into(),
                    ..Default::default()
                },
                stats: None,
                error: Some(
                    "prune needs a full key: the key that opened the repository is write-only"
                        .into(),
                ),
            },
        ];
        update(
            &mut state,
            Action::Reply(Reply::Repos(ReposReply::RepositoryRows(rows))),
        );
        let screen = render(&state, 200, 30).to_string();
        assert!(
            screen.contains(
                "s3:https://s3.example.com/backups/web1 (7 retried) last error: SlowDown"
            ),
            "{screen}"
        );
        let vault = screen
            .lines()
            .find(|l| l.contains("vault"))
            .expect("vault row");
        assert!(
            vault.contains("write-only key") && vault.contains("backups only"),
            "{screen}"
        );
        assert!(!screen.contains("cannot open"), "{screen}");
    }

    #[test]
    fn the_add_form_hides_the_passphrase() {
        let mut state = state(Role::Admin, Vec::new());
        update(&mut state, Action::Key(Intent::OpenRepositories));
        update(&mut state, Action::Key(Intent::AddRepository));
        for c in "nas".chars() {
            update(&mut state, Action::Key(Intent::FilterChar(c)));
        }
        for _ in 0..3 {
            update(&mut state, Action::Key(Intent::Down));
        }
        for c in "hunter2".chars() {
            update(&mut state, Action::Key(Intent::FilterChar(c)));
        }
        let screen = render(&state, 80, 24).to_string();
        assert!(!screen.contains("hunter2"), "{screen}");
        insta::assert_snapshot!("add_repository_80x24", screen);
        insta::assert_snapshot!("add_repository_120x40", render(&state, 120, 40));
    }
}
