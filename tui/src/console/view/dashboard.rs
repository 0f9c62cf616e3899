//! The dashboard: the jobs table (schedule in words and the countdown to the next run,
//! last result with its age, duration and bytes added, a gauge for a running run).
//! Narrow terminals get fewer columns: name, next and last always, then schedule,
//! repository and kind as room allows.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use crate::console::state::{Connection, JobRow, State};
use crate::console::view::{block, bytes, colored, duration_ms, mark_selected, span, state_color};

pub fn draw(frame: &mut Frame<'_>, state: &State, area: Rect) {
    let jobs = state.visible_jobs();
    let filter = &state.dashboard().filter;
    let title = if !filter.is_active() {
        format!(" jobs ({}) ", jobs.len())
    } else {
        format!(
            " jobs ({} of {}) /{} ",
            jobs.len(),
            state.jobs.len(),
            filter.text
        )
    };
    let block = block(state, title);
    if state.daemon.is_none() {
        // Never reached the daemon yet: say that, not "no jobs".
        let text = match &state.connection {
            Connection::Disconnected(why) => {
                format!(
                    "cannot reach cairnd: {why}\n\nthe console keeps trying and shows the jobs once it answers"
                )
            }
            _ => format!("connecting to cairnd at {}...", state.socket),
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    if jobs.is_empty() {
        let text = if state.jobs.is_empty() {
            "no jobs yet: create one with `cairn job create NAME --repo REPO --path DIR` or `cairn apply -f jobs.toml`"
        } else {
            "no job matches the filter (Esc clears it)"
        };
        frame.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
            area,
        );
        return;
    }
    // Name, next and last always; schedule, repository and kind as room allows.
    let nexts: Vec<String> = jobs.iter().map(|j| next_cell(state, j)).collect();
    let lasts: Vec<Line<'static>> = jobs.iter().map(|j| last_cell(state, j)).collect();
    let name_w = widest(jobs.iter().map(|j| j.name.chars().count()), 3, 24);
    let next_w = widest(nexts.iter().map(|n| n.chars().count()), 10, 40);
    let last_w = widest(lasts.iter().map(Line::width), 4, 48);
    let mut room = area.width.saturating_sub(2 + name_w + next_w + last_w + 2);
    let repo_w = widest(jobs.iter().map(|j| j.repository.chars().count()), 10, 20);
    let schedule = room >= 18;
    room = room.saturating_sub(if schedule { 18 } else { 0 });
    let repository = schedule && room > repo_w;
    room = room.saturating_sub(if repository { repo_w + 1 } else { 0 });
    let kind = repository && room > 7;
    let mut header = vec!["JOB"];
    let mut widths = vec![Constraint::Length(name_w)];
    if kind {
        header.push("KIND");
        widths.push(Constraint::Length(6));
    }
    if repository {
        header.push("REPOSITORY");
        widths.push(Constraint::Length(repo_w));
    }
    if schedule {
        header.push("SCHEDULE");
        widths.push(Constraint::Fill(1));
    }
    header.extend(["NEXT / NOW", "LAST"]);
    widths.extend([Constraint::Length(next_w), Constraint::Length(last_w)]);
    let header = Row::new(header).style(Style::new().add_modifier(Modifier::BOLD));
    let rows = jobs
        .iter()
        .zip(nexts)
        .zip(lasts)
        .enumerate()
        .map(|(i, ((job, next), last))| {
            let mut cells = vec![Cell::from(job.name.clone())];
            if kind {
                cells.push(Cell::from(job.kind.clone()));
            }
            if repository {
                cells.push(Cell::from(job.repository.clone()));
            }
            if schedule {
                cells.push(Cell::from(if job.schedule.is_empty() {
                    "-".to_owned()
                } else {
                    job.schedule.clone()
                }));
            }
            cells.push(Cell::from(next));
            cells.push(Cell::from(last));
            let row = Row::new(cells);
            mark_selected(row, i == state.dashboard().selected, state.color)
        });
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

/// The widest of some texts, kept between `min` and `max` columns.
fn widest(widths: impl Iterator<Item = usize>, min: u16, max: u16) -> u16 {
    (widths.max().unwrap_or(0).min(max as usize) as u16).max(min)
}

fn last_cell(state: &State, job: &JobRow) -> Line<'static> {
    let Some(last) = &job.last else {
        return Line::from("never run");
    };
    let mut detail = last
        .finished
        .map(|t| format!(" {} ago", age(state.now - t)))
        .unwrap_or_default();
    if let Some(ms) = last.duration_ms {
        detail.push_str(&format!(", {}", duration_ms(ms)));
    }
    if let Some(added) = last.bytes_added {
        detail.push_str(&format!(", +{}", bytes(added)));
    }
    Line::from(vec![
        Span::styled(
            last.state.clone(),
            colored(state.color, state_color(&last.state)),
        ),
        Span::raw(detail),
    ])
}

/// An age to the coarsest unit that says enough ("20h", "3d", "15m").
fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn next_cell(state: &State, job: &JobRow) -> String {
    if let Some(active) = &job.active {
        if active.phase.is_empty() {
            return "starting".into();
        }
        return format!(
            "{} {}",
            gauge(state.ascii, active.bytes_done, active.bytes_total),
            rate(active.bytes_per_second, active.eta_seconds)
        );
    }
    match (job.enabled, job.next_run) {
        (false, _) => "disabled".into(),
        (true, Some(at)) => format!("in {}", span(at - state.now)),
        (true, None) => "manual".into(),
    }
}

/// An eight-cell bar and the percentage.
pub fn gauge(ascii: bool, done: u64, total: u64) -> String {
    let percent = (done * 100).checked_div(total).unwrap_or(0).min(100);
    let filled = (percent * 8 / 100) as usize;
    if ascii {
        format!(
            "[{}{}] {percent}%",
            "#".repeat(filled),
            ".".repeat(8 - filled)
        )
    } else {
        format!(
            "{}{} {percent}%",
            "█".repeat(filled),
            "░".repeat(8 - filled)
        )
    }
}

/// "50.0 MiB/s eta 14s".
pub fn rate(bytes_per_second: u64, eta: Option<u64>) -> String {
    let eta = eta
        .map(|s| format!(" eta {}", span(s as i64)))
        .unwrap_or_default();
    format!("{}/s{eta}", bytes(bytes_per_second))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::Role;
    use crate::console::action::{Action, DashboardReply, Intent, Reply, update};
    use crate::console::state::{ActiveRun, LastRun};
    use crate::console::view::fixtures::{NOW, render, state};

    fn jobs() -> Vec<JobRow> {
        vec![
            JobRow {
                name: "web".into(),
                kind: "backup".into(),
                repository: "main".into(),
                enabled: true,
                schedule: "at 03:00 every day, Europe/Berlin".into(),
                next_run: Some(NOW + 5 * 3600 + 120),
                last: Some(LastRun {
                    id: 41,
                    state: "succeeded".into(),
                    finished: Some(NOW - 20 * 3600),
                    duration_ms: Some(65_000),
                    bytes_added: Some(12 << 20),
                }),
                active: None,
            },
            JobRow {
                name: "db".into(),
                kind: "backup".into(),
                repository: "main".into(),
                enabled: true,
                schedule: "every 15 minutes".into(),
                next_run: Some(NOW + 400),
                last: Some(LastRun {
                    id: 42,
                    state: "failed".into(),
                    finished: Some(NOW - 900),
                    duration_ms: Some(3_400),
                    bytes_added: None,
                }),
                active: Some(ActiveRun {
                    id: 43,
                    phase: "backing up".into(),
                    bytes_done: 300 << 20,
                    bytes_total: 1000 << 20,
                    bytes_per_second: 50 << 20,
                    eta_seconds: Some(14),
                }),
            },
            JobRow {
                name: "verify".into(),
                kind: "check".into(),
                repository: "offsite".into(),
                enabled: false,
                ..JobRow::default()
            },
        ]
    }

    #[test]
    fn dashboard_at_80x24_and_120x40() {
        let state = state(Role::Admin, jobs());
        insta::assert_snapshot!("dashboard_80x24", render(&state, 80, 24));
        insta::assert_snapshot!("dashboard_120x40", render(&state, 120, 40));
    }

    #[test]
    fn empty_dashboard_says_how_to_make_a_job() {
        let state = state(Role::Admin, Vec::new());
        insta::assert_snapshot!("dashboard_empty_80x24", render(&state, 80, 24));
    }

    #[test]
    fn a_viewer_pressing_run_sees_why_not() {
        let mut state = state(Role::Viewer, jobs());
        update(&mut state, Action::Key(Intent::RunNow));
        insta::assert_snapshot!("dashboard_viewer_run_80x24", render(&state, 80, 24));
    }

    #[test]
    fn ascii_mode_draws_no_box_characters_and_help_lists_the_keys() {
        let mut state = state(Role::Operator, jobs());
        state.ascii = true;
        update(&mut state, Action::Key(Intent::ToggleHelp));
        let screen = render(&state, 80, 24).to_string();
        assert!(screen.is_ascii(), "{screen}");
        assert!(screen.contains("cancel its run (operator)"), "{screen}");
        insta::assert_snapshot!("dashboard_ascii_help_80x24", screen);
    }

    #[test]
    fn disconnected_shows_in_the_status_line() {
        let mut state = state(Role::Admin, jobs());
        update(
            &mut state,
            Action::Reply(Reply::Dashboard(DashboardReply::Disconnected(
                "connection refused".into(),
            ))),
        );
        let screen = render(&state, 120, 40).to_string();
        assert!(
            screen.contains("disconnected: connection refused; retrying"),
            "{screen}"
        );
    }

    #[test]
    fn before_the_daemon_answers_the_dashboard_says_so_not_no_jobs() {
        let mut state = State::new("/run/cairn/cairnd.sock".into(), false, false);
        let screen = render(&state, 80, 24).to_string();
        assert!(
            screen.contains("connecting to cairnd at /run/cairn/cairnd.sock"),
            "{screen}"
        );
        update(
            &mut state,
            Action::Reply(Reply::Dashboard(DashboardReply::Disconnected(
                "cairnd is not running at /run/cairn/cairnd.sock".into(),
            ))),
        );
        let screen = render(&state, 80, 24).to_string();
        assert!(screen.contains("cannot reach cairnd"), "{screen}");
        assert!(!screen.contains("no jobs yet"), "{screen}");
    }

    #[test]
    fn the_command_palette_over_the_dashboard() {
        let mut state = state(Role::Admin, jobs());
        update(&mut state, Action::Key(Intent::OpenPalette));
        for c in "run".chars() {
            update(&mut state, Action::Key(Intent::FilterChar(c)));
        }
        insta::assert_snapshot!("palette_80x24", render(&state, 80, 24));
    }
}
