//! The dashboard: the daemon's status line, the jobs table (schedule and countdown,
//! last result with its age, a gauge for a running run), the footer with the keys
//! that apply, and the help overlay or a message on top.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, Wrap};

use crate::console::keymap::HELP;
use crate::console::state::{Connection, JobRow, State};
use crate::console::view::{borders, bytes, colored, selected, span};

pub fn draw(frame: &mut Frame<'_>, state: &State) {
    let [status, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(status_line(state), status);
    draw_jobs(frame, state, body);
    frame.render_widget(footer_line(state), footer);
    if state.help {
        draw_help(frame, state);
    }
    if let Some(message) = &state.message {
        let area = centered(frame.area(), 70, 7);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(message.text.as_str())
                .wrap(Wrap { trim: true })
                .block(
                    Block::bordered()
                        .border_set(borders(state.ascii))
                        .title(format!(" {} (Esc) ", message.title)),
                ),
            area,
        );
    }
}

fn status_line(state: &State) -> Line<'static> {
    let connection = match &state.connection {
        Connection::Connecting => Span::styled(
            format!("connecting to {}", state.socket),
            colored(state.color, Color::Yellow),
        ),
        Connection::Disconnected(why) => Span::styled(
            format!("disconnected: {why}; retrying"),
            colored(state.color, Color::Red),
        ),
        Connection::Connected => Span::styled("connected", colored(state.color, Color::Green)),
    };
    let mut spans = vec![Span::raw("cairn console  "), connection];
    if let Some(d) = &state.daemon {
        spans.push(Span::raw(format!(
            "  cairnd {}, up {}, {} running, {} queued, you: {}",
            d.version,
            span(state.now - d.started),
            d.running,
            d.queued,
            crate::console::role_name(d.role)
        )));
    }
    Line::from(spans)
}

fn last_cell(state: &State, job: &JobRow) -> Cell<'static> {
    let Some(last) = &job.last else {
        return Cell::from("never run");
    };
    let color = match last.state.as_str() {
        "succeeded" => Color::Green,
        "succeeded-with-warnings" => Color::Yellow,
        _ => Color::Red,
    };
    let age = last
        .finished
        .map(|t| format!(" {} ago", span(state.now - t)))
        .unwrap_or_default();
    Cell::from(Line::from(vec![
        Span::styled(last.state.clone(), colored(state.color, color)),
        Span::raw(age),
    ]))
}

fn next_cell(state: &State, job: &JobRow) -> String {
    if let Some(active) = &job.active {
        let percent = (active.bytes_done * 100)
            .checked_div(active.bytes_total)
            .unwrap_or(0)
            .min(100);
        let filled = (percent / 10) as usize;
        let bar = if state.ascii {
            format!("[{}{}]", "#".repeat(filled), ".".repeat(10 - filled))
        } else {
            format!("{}{}", "█".repeat(filled), "░".repeat(10 - filled))
        };
        let eta = active
            .eta_seconds
            .map(|s| format!(" eta {}", span(s as i64)))
            .unwrap_or_default();
        return format!("{bar} {percent}% {}/s{eta}", bytes(active.bytes_per_second));
    }
    match (job.enabled, job.next_run) {
        (false, _) => "disabled".into(),
        (true, Some(at)) => format!("in {}", span(at - state.now)),
        (true, None) => "manual".into(),
    }
}

fn draw_jobs(frame: &mut Frame<'_>, state: &State, area: Rect) {
    let jobs = state.visible_jobs();
    let title = if state.filter.is_empty() && !state.filtering {
        format!(" jobs ({}) ", jobs.len())
    } else {
        format!(
            " jobs ({} of {}) /{} ",
            jobs.len(),
            state.jobs.len(),
            state.filter
        )
    };
    let block = Block::bordered()
        .border_set(borders(state.ascii))
        .title(title);
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
    let header = Row::new([
        "JOB",
        "KIND",
        "REPOSITORY",
        "SCHEDULE",
        "NEXT / NOW",
        "LAST",
    ])
    .style(Style::new().add_modifier(ratatui::style::Modifier::BOLD));
    let rows = jobs.iter().enumerate().map(|(i, job)| {
        let row = Row::new(vec![
            Cell::from(job.name.clone()),
            Cell::from(job.kind.clone()),
            Cell::from(job.repository.clone()),
            Cell::from(if job.schedule.is_empty() {
                "-".to_owned()
            } else {
                job.schedule.clone()
            }),
            Cell::from(next_cell(state, job)),
            last_cell(state, job),
        ]);
        if i == state.selected {
            row.style(selected(state.color))
        } else {
            row
        }
    });
    let widths = [
        Constraint::Fill(2),
        Constraint::Length(6),
        Constraint::Fill(2),
        Constraint::Fill(2),
        Constraint::Fill(3),
        Constraint::Fill(3),
    ];
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

fn footer_line(state: &State) -> Line<'static> {
    if state.filtering {
        return Line::from(format!("filter: {}_   Enter keep  Esc clear", state.filter));
    }
    Line::from("j/k move  r run  c cancel  / filter  ? help  q quit")
}

fn draw_help(frame: &mut Frame<'_>, state: &State) {
    let area = centered(frame.area(), 60, HELP.len() as u16 + 2);
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(keys, what)| Line::from(format!("{keys:<14} {what}")))
        .collect();
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_set(borders(state.ascii))
                .title(" keys (? or Esc closes) "),
        ),
        area,
    );
}

/// A box of at most `width` x `height` in the middle of `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::console::Role;
    use crate::console::action::{Action, update};
    use crate::console::state::{ActiveRun, DaemonView, LastRun};

    const NOW: i64 = 1_800_000_000;

    fn state(role: Role, jobs: Vec<JobRow>) -> State {
        let mut state = State::new("/run/cairn/cairnd.sock".into(), false, false);
        update(&mut state, Action::Tick(NOW));
        update(
            &mut state,
            Action::Refreshed {
                daemon: DaemonView {
                    version: "0.1.0".into(),
                    started: NOW - 3 * 3600 - 300,
                    running: 1,
                    queued: 0,
                    role,
                },
                jobs,
            },
        );
        state
    }

    fn jobs() -> Vec<JobRow> {
        vec![
            JobRow {
                name: "web".into(),
                kind: "backup".into(),
                repository: "main".into(),
                enabled: true,
                schedule: "0 3 * * * Europe/Berlin".into(),
                next_run: Some(NOW + 5 * 3600 + 120),
                last: Some(LastRun {
                    id: 41,
                    state: "succeeded".into(),
                    finished: Some(NOW - 20 * 3600),
                }),
                active: None,
            },
            JobRow {
                name: "db".into(),
                kind: "backup".into(),
                repository: "main".into(),
                enabled: true,
                schedule: "*/15 * * * *".into(),
                next_run: Some(NOW + 400),
                last: Some(LastRun {
                    id: 42,
                    state: "failed".into(),
                    finished: Some(NOW - 900),
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

    fn render(state: &State, width: u16, height: u16) -> TestBackend {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|frame| draw(frame, state)).unwrap();
        terminal.backend().clone()
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
        update(&mut state, Action::RunNow);
        insta::assert_snapshot!("dashboard_viewer_run_80x24", render(&state, 80, 24));
    }

    #[test]
    fn ascii_mode_draws_no_box_characters_and_help_lists_the_keys() {
        let mut state = state(Role::Operator, jobs());
        state.ascii = true;
        update(&mut state, Action::ToggleHelp);
        let screen = render(&state, 80, 24).to_string();
        assert!(screen.is_ascii(), "{screen}");
        assert!(screen.contains("cancel its running run"), "{screen}");
        insta::assert_snapshot!("dashboard_ascii_help_80x24", screen);
    }

    #[test]
    fn disconnected_shows_in_the_status_line() {
        let mut state = state(Role::Admin, jobs());
        update(
            &mut state,
            Action::Disconnected("connection refused".into()),
        );
        let screen = render(&state, 120, 40).to_string();
        assert!(
            screen.contains("disconnected: connection refused; retrying"),
            "{screen}"
        );
    }
}
