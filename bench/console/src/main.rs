//! Draws the console's busiest screens into an in-memory terminal the way the real
//! loop does (ratatui's diff, crossterm's escape codes) and reports the time per frame
//! and the bytes each frame would send to the terminal:
//! - "tick": the dashboard one second later (countdowns and a gauge move): the
//!   frame the console draws every second;
//! - "full": the whole screen again (after a resize or on first draw);
//! - "log": a run's screen while 20 new log lines arrive between frames.
//!
//!   cargo run --release -p cairn-console-bench -- [WIDTH HEIGHT FRAMES]

use std::cell::Cell;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use cairn_proto::v1 as pb;
use cairn_tui::console::Role;
use cairn_tui::console::action::{Action, DashboardReply, LiveReply, Reply, update};
use cairn_tui::console::message::Feed;
use cairn_tui::console::screen::{RunScreen, Screen};
use cairn_tui::console::state::{ActiveRun, DaemonView, JobRow, LastRun, State};
use ratatui::backend::CrosstermBackend;
use ratatui::{Terminal, TerminalOptions, Viewport};

/// Counts what the backend writes (the bytes that would cross the SSH link).
#[derive(Debug, Default, Clone)]
struct Counted {
    bytes: Rc<Cell<usize>>,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.set(self.bytes.get() + buf.len());
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const NOW: i64 = 1_800_000_000;

fn jobs(n: usize, now: i64) -> Vec<JobRow> {
    (0..n)
        .map(|i| JobRow {
            name: format!("job-{i:02}"),
            kind: "backup".into(),
            repository: if i % 3 == 0 { "offsite" } else { "main" }.into(),
            enabled: i % 7 != 6,
            schedule: "At 03:00 (Europe/Berlin)".into(),
            next_run: Some(NOW + 3600 + i as i64 * 60),
            last: Some(LastRun {
                id: i as u64 * 10,
                state: if i % 5 == 4 { "failed" } else { "succeeded" }.into(),
                finished: Some(NOW - 7200),
                duration_ms: Some(65_000),
                bytes_added: Some(12 << 20),
            }),
            active: (i % 10 == 0).then(|| ActiveRun {
                id: 1000 + i as u64,
                phase: "backing up".into(),
                bytes_done: ((now - NOW) as u64 * 37) << 20,
                bytes_total: 10 << 30,
                bytes_per_second: 37 << 20,
                eta_seconds: Some(200),
            }),
        })
        .collect()
}

fn refreshed(state: &mut State, now: i64) {
    update(state, Action::Tick(now));
    update(
        state,
        Action::Reply(Reply::Dashboard(DashboardReply::Refreshed {
            daemon: DaemonView {
                version: "0.1.0".into(),
                started: NOW - 86_400,
                running: 3,
                queued: 1,
                role: Role::Admin,
            },
            jobs: jobs(30, now),
        })),
    );
}

fn line(seq: u64) -> pb::LogLine {
    pb::LogLine {
        seq,
        time: Some(prost_types::Timestamp {
            seconds: NOW + seq as i64 / 20,
            nanos: 0,
        }),
        level: if seq.is_multiple_of(50) {
            pb::Level::Warn
        } else {
            pb::Level::Info
        } as i32,
        message: format!("uploaded pack {seq:08x}"),
        fields: [("bytes".to_owned(), "16777216".to_owned())].into(),
        job: "job-00".into(),
        run_id: 1000,
        ..Default::default()
    }
}

struct Timing {
    durations: Vec<Duration>,
    bytes: usize,
}

impl Timing {
    fn report(mut self, what: &str) {
        self.durations.sort();
        let pick = |p: f64| {
            let i = ((self.durations.len() as f64 * p) as usize).min(self.durations.len() - 1);
            self.durations[i].as_secs_f64() * 1e6
        };
        println!(
            "{what:<5} frames {:>5}: p50 {:>7.1} µs, p99 {:>7.1} µs, max {:>7.1} µs; {:>6} bytes/frame to the terminal",
            self.durations.len(),
            pick(0.5),
            pick(0.99),
            pick(1.0),
            self.bytes / self.durations.len()
        );
    }
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let width = args.first().copied().unwrap_or(120) as u16;
    let height = args.get(1).copied().unwrap_or(40) as u16;
    let frames = args.get(2).copied().unwrap_or(2000) as usize;
    println!("console frames at {width}x{height}");

    let mut state = State::new("/run/cairn/cairnd.sock".into(), false, true);
    update(&mut state, Action::Resize(width, height));
    refreshed(&mut state, NOW);
    let counted = Counted::default();
    let written = counted.bytes.clone();
    let backend = CrosstermBackend::new(counted);
    // A fixed viewport: no terminal to ask for its size (a real one answers by ioctl).
    let fresh = |backend| {
        Terminal::with_options(
            backend,
            TerminalOptions {
                viewport: Viewport::Fixed(ratatui::layout::Rect::new(0, 0, width, height)),
            },
        )
        .expect("terminal")
    };
    let mut terminal = fresh(backend);
    let draw = |terminal: &mut Terminal<CrosstermBackend<Counted>>, state: &State| {
        let before = written.get();
        let start = Instant::now();
        terminal
            .draw(|frame| cairn_tui::console::view::draw(frame, state))
            .expect("draw");
        (start.elapsed(), written.get() - before)
    };

    for (what, full) in [("tick", false), ("full", true)] {
        let mut timing = Timing {
            durations: Vec::new(),
            bytes: 0,
        };
        for i in 0..frames {
            refreshed(&mut state, NOW + 1 + i as i64);
            if full {
                // Nothing drawn yet: every cell goes out.
                terminal = fresh(CrosstermBackend::new(Counted {
                    bytes: written.clone(),
                }));
            }
            let (took, bytes) = draw(&mut terminal, &state);
            timing.durations.push(took);
            timing.bytes += bytes;
        }
        timing.report(what);
    }

    state.screens.push(Screen::Run(RunScreen::new(1000)));
    update(
        &mut state,
        Action::Reply(Reply::Live(LiveReply::RunUpdate(Box::new(pb::Run {
            id: 1000,
            job: "job-00".into(),
            state: pb::RunState::Running as i32,
            ..Default::default()
        })))),
    );
    let mut timing = Timing {
        durations: Vec::new(),
        bytes: 0,
    };
    for i in 0..frames as u64 {
        update(
            &mut state,
            Action::Reply(Reply::Live(LiveReply::LogLines {
                feed: Feed::RunLog(1000),
                lines: (1..=20).map(|j| line(i * 20 + j)).collect(),
            })),
        );
        let (took, bytes) = draw(&mut terminal, &state);
        timing.durations.push(took);
        timing.bytes += bytes;
    }
    timing.report("log");
}
