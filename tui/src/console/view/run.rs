//! A run's screen: the error first when it failed, the summary or live progress, and
//! its log (level colours, search hits marked, following while it runs).

use cairn_proto::v1 as pb;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::api::names::is_live;
use crate::console::screen::RunScreen;
use crate::console::screen::run::{CHROME, line_text};
use crate::console::state::{State, run_state};
use crate::console::view::dashboard::{gauge, rate};
use crate::console::view::{
    block, bytes, clock, colored, duration_ms, level_color, note, state_color,
};

/// Rows of the summary box, borders included.
const SUMMARY: u16 = CHROME - 4;

pub fn draw(frame: &mut Frame<'_>, state: &State, s: &RunScreen, area: Rect) {
    let [summary, log] =
        Layout::vertical([Constraint::Length(SUMMARY), Constraint::Min(3)]).areas(area);
    let Some(run) = &s.run else {
        note(
            frame,
            state,
            format!(" run {} ", s.id),
            "loading...",
            summary,
        );
        return;
    };
    let name = run_state(run);
    let title = if run.job.is_empty() {
        format!(
            " {} run {}: {name} ",
            crate::api::names::kind(run.kind),
            run.id
        )
    } else {
        format!(" run {} of {}: {name} ", run.id, run.job)
    };
    frame.render_widget(
        Paragraph::new(summary_lines(state, run))
            .wrap(Wrap { trim: false })
            .block(block(state, title).border_style(colored(state.color, state_color(name)))),
        summary,
    );
    if s.warnings_shown {
        draw_warnings(frame, state, s, run, log);
    } else {
        draw_log(frame, state, s, log);
    }
}

/// Every warning the run recorded (skipped files, check findings), one a line.
fn draw_warnings(frame: &mut Frame<'_>, state: &State, s: &RunScreen, run: &pb::Run, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let top = s.warning.saturating_sub(height.saturating_sub(1));
    let lines: Vec<Line<'static>> = run
        .warnings
        .iter()
        .enumerate()
        .skip(top)
        .take(height)
        .map(|(i, w)| {
            let line = Line::from(w.clone());
            if i == s.warning {
                line.style(crate::console::view::selected(state.color))
            } else {
                line
            }
        })
        .collect();
    let title = format!(
        " {} warnings{} (Tab: the log) ",
        run.warnings.len(),
        if run.warnings.len() >= 100 {
            ", the first 100"
        } else {
            ""
        }
    );
    frame.render_widget(Paragraph::new(lines).block(block(state, title)), area);
}

fn summary_lines(state: &State, run: &pb::Run) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if !run.error.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("error: {}", run.error),
            colored(state.color, Color::Red).add_modifier(Modifier::BOLD),
        )));
    }
    lines.push(Line::from(format!(
        "{} on {}, {}; queued {}, started {}, finished {}",
        crate::api::names::kind(run.kind),
        run.repository,
        crate::api::names::trigger(run.trigger),
        clock(state, run.queued.as_ref()),
        clock(state, run.started.as_ref()),
        clock(state, run.finished.as_ref()),
    )));
    if let Some(of) = &run.restore {
        lines.push(Line::from(format!(
            "restores {}",
            crate::api::names::restore_of(of)
        )));
    }
    if let Some(p) = &run.progress
        && is_live(run)
    {
        lines.push(Line::from(format!(
            "{}: {} files {}/{}, {} of {}, {}",
            p.phase,
            gauge(state.ascii, p.bytes_done, p.bytes_total),
            p.files_done,
            p.files_total,
            bytes(p.bytes_done),
            bytes(p.bytes_total),
            rate(p.bytes_per_second, p.eta_seconds)
        )));
        lines.push(Line::from(format!(
            "added {} to the repository; at {}",
            bytes(p.bytes_added),
            p.current_path
        )));
    }
    if let Some(sum) = &run.summary {
        if run.kind() == pb::RunKind::Prune {
            lines.push(Line::from(crate::api::names::prune_summary(sum)));
        } else if run.restore.is_some() {
            lines.push(Line::from(format!(
                "restored {} files ({}), {} dirs in {}",
                sum.files_restored,
                bytes(sum.bytes_restored),
                sum.dirs,
                duration_ms(sum.duration_ms)
            )));
        } else {
            lines.push(Line::from(format!(
                "files {} new, {} changed, {} unchanged; read {}, added {} in {}",
                sum.files_new,
                sum.files_changed,
                sum.files_unchanged,
                bytes(sum.bytes_read),
                bytes(sum.bytes_added),
                duration_ms(sum.duration_ms)
            )));
        }
        if !sum.snapshot_id.is_empty() {
            lines.push(Line::from(format!("snapshot {}", sum.snapshot_id)));
        }
        // The new snapshot is always kept: a policy that ran kept at least one.
        if sum.snapshots_kept > 0 {
            lines.push(Line::from(format!(
                "retention kept {} of the job's snapshots, forgot {}",
                sum.snapshots_kept, sum.snapshots_forgotten
            )));
        }
    }
    if let Some(first) = run.warnings.first() {
        lines.push(Line::from(Span::styled(
            format!(
                "{} warnings (Tab lists them), first: {first}",
                run.warnings.len()
            ),
            colored(state.color, Color::Yellow),
        )));
    }
    lines
}

fn draw_log(frame: &mut Frame<'_>, state: &State, s: &RunScreen, area: Rect) {
    let height = area.height.saturating_sub(2) as usize;
    let top = s.scroll.top(s.lines.len(), height);
    let hits = s.matches();
    let mut title = format!(" log, {} lines", s.lines.len());
    if s.missed > 0 {
        title.push_str(&format!(", {} missed", s.missed));
    }
    if !s.search.text.is_empty() {
        title.push_str(&format!(", /{}: {} matches", s.search.text, hits.len()));
    }
    title.push_str(if s.scroll.follow { ", following " } else { " " });
    let lines: Vec<Line<'static>> = s
        .lines
        .iter()
        .enumerate()
        .skip(top)
        .take(height)
        .map(|(i, line)| {
            let mark = if Some(i) == s.hit {
                Some(Style::new().add_modifier(Modifier::REVERSED))
            } else if hits.binary_search(&i).is_ok() {
                Some(colored(state.color, Color::Yellow).add_modifier(Modifier::UNDERLINED))
            } else {
                None
            };
            log_line(state, line, false, mark)
        })
        .collect();
    let text = if lines.is_empty() {
        vec![Line::from("no log lines (yet)")]
    } else {
        lines
    };
    frame.render_widget(Paragraph::new(text).block(block(state, title)), area);
}

/// "12:00:01 INFO  message k=v", the level coloured; with the job when asked.
pub fn log_line(
    state: &State,
    line: &pb::LogLine,
    with_job: bool,
    mark: Option<Style>,
) -> Line<'static> {
    let mut spans = vec![
        Span::raw(format!("{} ", clock(state, line.time.as_ref()))),
        Span::styled(
            format!("{:<5} ", crate::api::names::level(line.level)),
            colored(state.color, level_color(line.level)),
        ),
    ];
    if with_job && !line.job.is_empty() {
        spans.push(Span::raw(format!("[{}] ", line.job)));
    }
    let text = line_text(line);
    spans.push(match mark {
        Some(style) => Span::styled(text, style),
        None => Span::raw(text),
    });
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use cairn_proto::v1 as pb;

    use crate::console::Role;
    use crate::console::action::{Action, Intent, LiveReply, Reply, update};
    use crate::console::message::Feed;
    use crate::console::screen::{RunScreen, Screen};
    use crate::console::state::State;
    use crate::console::view::fixtures::*;

    fn run_screen(run: pb::Run) -> State {
        let mut state = state(Role::Viewer, Vec::new());
        state.screens.push(Screen::Run(RunScreen::new(run.id)));
        let id = run.id;
        update(
            &mut state,
            Action::Reply(Reply::Live(LiveReply::RunUpdate(Box::new(run)))),
        );
        let lines = vec![
            log_line(100, 900, pb::Level::Info, "web", "run started"),
            log_line(
                101,
                899,
                pb::Level::Warn,
                "web",
                "skipped /srv/www/cache: permission denied",
            ),
            log_line(102, 898, pb::Level::Info, "web", "uploading pack"),
            log_line(
                103,
                897,
                pb::Level::Error,
                "web",
                "cannot write pack 3f2a91c0",
            ),
        ];
        update(
            &mut state,
            Action::Reply(Reply::Live(LiveReply::LogLines {
                feed: Feed::RunLog(id),
                lines,
            })),
        );
        state
    }

    #[test]
    fn a_failed_run_shows_its_error_first_at_80x24_and_120x40() {
        let state = run_screen(failed_run(12));
        let screen = render(&state, 80, 24).to_string();
        assert!(
            screen
                .lines()
                .nth(2)
                .is_some_and(|l| l.contains("error: repository main")),
            "{screen}"
        );
        insta::assert_snapshot!("run_failed_80x24", screen);
        insta::assert_snapshot!("run_failed_120x40", render(&state, 120, 40));
    }

    #[test]
    fn a_running_run_shows_progress_and_follows_its_log() {
        let state = run_screen(running_run(13));
        insta::assert_snapshot!("run_running_120x40", render(&state, 120, 40));
        insta::assert_snapshot!("run_running_80x24", render(&state, 80, 24));
    }

    #[test]
    fn a_runs_warnings_listed_with_tab() {
        let mut run = finished_run(11, 3600, 65_000, 12 << 20);
        run.state = pb::RunState::SucceededWithWarnings as i32;
        run.warnings = (1..=30)
            .map(|i| format!("/srv/www/cache/{i:02}: permission denied (os error 13)"))
            .collect();
        let mut state = run_screen(run);
        update(&mut state, Action::Key(Intent::NextPane));
        update(&mut state, Action::Key(Intent::Bottom));
        insta::assert_snapshot!("run_warnings_80x24", render(&state, 80, 24));
    }

    #[test]
    fn a_finished_run_with_a_search() {
        let mut run = finished_run(11, 3600, 65_000, 12 << 20);
        if let Some(summary) = &mut run.summary {
            summary.snapshots_kept = 14;
            summary.snapshots_forgotten = 1;
        }
        let mut state = run_screen(run);
        update(&mut state, Action::Key(Intent::StartFilter));
        for c in "pack".chars() {
            update(&mut state, Action::Key(Intent::FilterChar(c)));
        }
        update(&mut state, Action::Key(Intent::FilterDone));
        insta::assert_snapshot!("run_search_80x24", render(&state, 80, 24));
    }
}
