//! A job's screen: its configuration, a chart of its recent runs (durations and
//! bytes added), and the runs themselves.

use cairn_proto::v1 as pb;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Sparkline, Table};

use crate::console::screen::JobScreen;
use crate::console::state::{State, run_state, seconds};
use crate::console::view::{
    block, bytes, clock, colored, duration_ms, mark_selected, note, span, state_color,
};

pub fn draw(frame: &mut Frame<'_>, state: &State, s: &JobScreen, area: Rect) {
    let Some(job) = &s.job else {
        note(
            frame,
            state,
            format!(" job {} ", s.name),
            "loading...",
            area,
        );
        return;
    };
    let spec = job.spec.clone().unwrap_or_default();
    let [top, runs] = Layout::vertical([Constraint::Length(10), Constraint::Min(3)]).areas(area);
    let [config, chart] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
    let title = format!(
        " job {} ({}) ",
        spec.name,
        if spec.enabled { "enabled" } else { "disabled" }
    );
    frame.render_widget(
        Paragraph::new(config_lines(state, job, &spec)).block(block(state, title)),
        config,
    );
    draw_chart(frame, state, s, chart);
    draw_runs(frame, state, s, runs);
}

fn config_lines(state: &State, job: &pb::Job, spec: &pb::JobSpec) -> Vec<Line<'static>> {
    let field = |name: &str, value: String| {
        Line::from(vec![
            Span::styled(
                format!("{name:<11}"),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(value),
        ])
    };
    let mut lines = Vec::new();
    let kind = match &spec.kind {
        Some(pb::job_spec::Kind::Backup(_)) => "backup",
        Some(pb::job_spec::Kind::Check(_)) => "check",
        Some(pb::job_spec::Kind::Prune(_)) => "prune",
        None => "?",
    };
    lines.push(field("kind", format!("{kind} to {}", spec.repository)));
    let words = state
        .job(&spec.name)
        .map(|j| j.schedule.clone())
        .unwrap_or_default();
    let schedule = match &spec.schedule {
        None => "manual runs only".to_owned(),
        Some(s) => {
            let zone = if s.timezone.is_empty() {
                "UTC"
            } else {
                &s.timezone
            };
            if words.is_empty() {
                format!("{} {zone}", s.cron)
            } else {
                format!("{words}  [{} {zone}]", s.cron)
            }
        }
    };
    lines.push(field("schedule", schedule));
    let next = match (job.active_run_id, seconds(job.next_run.as_ref())) {
        (0, Some(at)) => format!(
            "in {} ({})",
            span(at - state.now),
            clock(state, job.next_run.as_ref())
        ),
        (0, None) => "-".into(),
        (id, _) => format!("run {id} is going"),
    };
    lines.push(field("next", next));
    match &spec.kind {
        Some(pb::job_spec::Kind::Backup(b)) => {
            let paths = if let Some(command) = &b.command {
                format!(
                    "output of `{}` as {}",
                    command.argv.join(" "),
                    command.filename
                )
            } else {
                b.paths.join(", ")
            };
            lines.push(field("sources", paths));
            if !b.excludes.is_empty() {
                lines.push(field("excludes", b.excludes.join(", ")));
            }
            let keeps = match &b.retention {
                Some(r) => crate::api::retention::describe(r),
                None => "every snapshot kept".to_owned(),
            };
            lines.push(field("retention", keeps));
        }
        Some(pb::job_spec::Kind::Check(c)) => {
            let read = match (c.read_data, c.read_data_subset_percent) {
                (_, p) if p > 0 => format!("structure and {p}% of the data"),
                (true, _) => "structure and all data".into(),
                (false, _) => "structure only".into(),
            };
            lines.push(field("checks", read));
        }
        Some(pb::job_spec::Kind::Prune(p)) => {
            let bound = match p.max_repack_bytes {
                0 => String::new(),
                n => format!(", at most {} rewritten per run", crate::output::bytes(n)),
            };
            lines.push(field(
                "prunes",
                format!(
                    "repacks beyond {}% unused{bound}",
                    p.max_unused_percent.unwrap_or(10)
                ),
            ));
        }
        None => {}
    }
    for (name, hook) in [("before", &spec.before), ("after", &spec.after)] {
        if let Some(hook) = hook {
            lines.push(field(name, hook.argv.join(" ")));
        }
    }
    lines
}

/// Oldest to newest, as bars: how long runs took and what they added.
fn draw_chart(frame: &mut Frame<'_>, state: &State, s: &JobScreen, area: Rect) {
    let finished: Vec<&pb::Run> = s
        .runs
        .iter()
        .rev()
        .filter(|r| r.summary.is_some())
        .collect();
    let outer = block(state, format!(" last {} runs ", finished.len()));
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    if finished.is_empty() {
        frame.render_widget(Paragraph::new("no finished runs yet"), inner);
        return;
    }
    let durations: Vec<u64> = finished
        .iter()
        .map(|r| r.summary.as_ref().map_or(0, |s| s.duration_ms))
        .collect();
    let added: Vec<u64> = finished
        .iter()
        .map(|r| r.summary.as_ref().map_or(0, |s| s.bytes_added))
        .collect();
    let [d_label, d_bars, a_label, a_bars] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(2),
    ])
    .areas(inner);
    let max_d = durations.iter().copied().max().unwrap_or(0);
    let max_a = added.iter().copied().max().unwrap_or(0);
    frame.render_widget(
        Paragraph::new(format!("duration (longest {})", duration_ms(max_d))),
        d_label,
    );
    frame.render_widget(bars(state, &durations), d_bars);
    frame.render_widget(
        Paragraph::new(format!("added (most {})", bytes(max_a))),
        a_label,
    );
    frame.render_widget(bars(state, &added), a_bars);
}

fn bars<'a>(state: &State, data: &'a [u64]) -> Sparkline<'a> {
    let sparkline = Sparkline::default()
        .data(data)
        .style(colored(state.color, Color::Cyan));
    if state.ascii {
        sparkline.bar_set(ratatui::symbols::bar::Set {
            full: "#",
            seven_eighths: "#",
            three_quarters: "=",
            five_eighths: "=",
            half: "-",
            three_eighths: "-",
            one_quarter: ".",
            one_eighth: ".",
            empty: " ",
        })
    } else {
        sparkline
    }
}

fn draw_runs(frame: &mut Frame<'_>, state: &State, s: &JobScreen, area: Rect) {
    let block = block(state, format!(" runs of {} (newest first) ", s.name));
    if s.runs.is_empty() {
        frame.render_widget(
            Paragraph::new("never run: r runs it now").block(block),
            area,
        );
        return;
    }
    let header = Row::new([
        "RUN", "STATE", "TRIGGER", "STARTED", "TOOK", "ADDED", "ERROR",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = s.runs.iter().enumerate().map(|(i, run)| {
        let name = run_state(run);
        let (took, added) = match &run.summary {
            Some(sum) => (duration_ms(sum.duration_ms), bytes(sum.bytes_added)),
            None => ("-".into(), "-".into()),
        };
        let row = Row::new(vec![
            Cell::from(run.id.to_string()),
            Cell::from(Span::styled(name, colored(state.color, state_color(name)))),
            Cell::from(crate::api::names::trigger(run.trigger)),
            Cell::from(clock(state, run.started.as_ref().or(run.queued.as_ref()))),
            Cell::from(took),
            Cell::from(added),
            Cell::from(run.error.clone()),
        ]);
        mark_selected(row, i == s.selected, state.color)
    });
    let widths = [
        Constraint::Length(6),
        Constraint::Length(23),
        Constraint::Length(9),
        Constraint::Length(16),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    frame.render_widget(Table::new(rows, widths).header(header).block(block), area);
}

#[cfg(test)]
mod tests {
    use crate::console::Role;
    use crate::console::action::{Action, Intent, JobReply, Reply, update};
    use crate::console::view::fixtures::*;

    fn job_screen(role: Role) -> crate::console::state::State {
        let mut state = state(role, Vec::new());
        state.screens.push(crate::console::screen::Screen::Job(
            crate::console::screen::JobScreen::new("web".into()),
        ));
        let runs = vec![
            failed_run(12),
            finished_run(11, 86_400, 65_000, 12 << 20),
            finished_run(10, 2 * 86_400, 48_000, 3 << 20),
            finished_run(9, 3 * 86_400, 190_000, 800 << 20),
        ];
        update(
            &mut state,
            Action::Reply(Reply::Job(JobReply::JobLoaded {
                job: Box::new(backup_job("web")),
                runs,
            })),
        );
        state
    }

    #[test]
    fn a_job_with_its_runs_and_chart_at_80x24_and_120x40() {
        let state = job_screen(Role::Admin);
        insta::assert_snapshot!("job_80x24", render(&state, 80, 24));
        insta::assert_snapshot!("job_120x40", render(&state, 120, 40));
    }

    #[test]
    fn deleting_asks_first() {
        let mut state = job_screen(Role::Admin);
        update(&mut state, Action::Key(Intent::DeleteJob));
        insta::assert_snapshot!("job_delete_confirm_80x24", render(&state, 80, 24));
    }

    #[test]
    fn a_job_never_run_says_how_to_run_it() {
        let mut state = state(Role::Viewer, Vec::new());
        state.screens.push(crate::console::screen::Screen::Job(
            crate::console::screen::JobScreen::new("web".into()),
        ));
        let mut job = backup_job("web");
        job.last_run_id = 0;
        update(
            &mut state,
            Action::Reply(Reply::Job(JobReply::JobLoaded {
                job: Box::new(job),
                runs: Vec::new(),
            })),
        );
        insta::assert_snapshot!("job_never_run_80x24", render(&state, 80, 24));
    }
}
