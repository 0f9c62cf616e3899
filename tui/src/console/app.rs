//! The console's loop: one stream of events (keys, resizes, ticks, what the daemon
//! sends, SIGTERM/SIGHUP), `update` for each, effects handed to the client, the
//! feeds the state wants started or stopped, and a redraw when something changed.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use cairn_proto::v1 as pb;
use crossterm::event::{Event, EventStream, KeyEventKind, MouseEventKind};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt as _;
use tonic::transport::Channel;

use crate::console::action::{Action, DashboardReply, Effect, Intent, Reply, update};
use crate::console::client::{self, Incoming, Refresher};
use crate::console::message::Feed;
use crate::console::screen::Screen;
use crate::console::state::State;
use crate::console::terminal::Guard;
use crate::console::{keymap, view};
use crate::output::Outcome;

/// What the loop may take in one go before it draws (keeps keys responsive while a
/// fast log streams in).
const BATCH: usize = 512;

pub fn run(socket: PathBuf, ascii: bool, mouse: bool) -> anyhow::Result<Outcome> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "cairn console needs a terminal; scripts use `cairn status`, `cairn job list` and the other commands with --output json"
        );
    }
    // The Linux console's font has no box-drawing characters worth the name.
    let ascii = ascii || std::env::var("TERM").is_ok_and(|t| t == "linux");
    let color = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(event_loop(socket, ascii, color, mouse))?;
    Ok(Outcome::Ok)
}

/// The connection and the streams open on it.
struct Links {
    tx: client::Sender,
    channel: Option<Channel>,
    publish: watch::Sender<Option<Channel>>,
    refresher: Refresher,
    feeds: HashMap<Feed, JoinHandle<()>>,
}

impl Links {
    fn drop_feeds(&mut self) {
        for (_, handle) in self.feeds.drain() {
            handle.abort();
        }
    }

    /// Starts the streams the state wants and stops the others. A stream that ended by
    /// itself (a finished run's log) is not started again until the state lets it go.
    fn sync_feeds(&mut self, state: &State) {
        let wanted = state.feeds();
        self.feeds.retain(|feed, handle| {
            let keep = wanted.contains(feed);
            if !keep {
                handle.abort();
            }
            keep
        });
        let Some(channel) = &self.channel else {
            return;
        };
        for feed in wanted {
            if !self.feeds.contains_key(&feed) {
                let after = resume_after(state, &feed);
                let handle = client::follow(feed.clone(), after, channel.clone(), self.tx.clone());
                self.feeds.insert(feed, handle);
            }
        }
    }
}

/// The last log line already shown for a feed, so a restarted stream sends only new ones.
fn resume_after(state: &State, feed: &Feed) -> u64 {
    state
        .screens
        .iter()
        .find_map(|screen| match (screen, feed) {
            (Screen::Run(s), Feed::RunLog(id)) if s.id == *id => Some(s.last_seq()),
            (Screen::Logs(s), Feed::DaemonLog(level)) if s.level as i32 == *level => {
                s.lines.last().map(|l| l.seq)
            }
            _ => None,
        })
        .unwrap_or(0)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

async fn event_loop(socket: PathBuf, ascii: bool, color: bool, mouse: bool) -> anyhow::Result<()> {
    let mut state = State::new(socket.display().to_string(), ascii, color);
    state.tz = jiff::tz::TimeZone::system();
    state.now = now();
    let mut sigterm = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("installing a SIGHUP handler")?;
    let (_guard, mut terminal) = Guard::enter(mouse).context("setting up the terminal")?;
    let size = terminal.size()?;
    update(&mut state, Action::Resize(size.width, size.height));

    let (tx, mut rx) = mpsc::unbounded_channel();
    let (publish, published) = watch::channel(None);
    let refresher = Refresher::default();
    let supervisor = tokio::spawn(client::supervise(socket, tx.clone()));
    let refreshing = tokio::spawn(refresher.clone().serve(published, tx.clone()));
    let mut links = Links {
        tx,
        channel: None,
        publish,
        refresher,
        feeds: HashMap::new(),
    };
    let mut terminal_events = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    let mut dirty = true;
    'run: loop {
        if dirty {
            terminal.draw(|frame| view::draw(frame, &state))?;
            dirty = false;
        }
        let first = tokio::select! {
            event = terminal_events.next() => match event {
                Some(Ok(event)) => match terminal_action(event, &state) {
                    Some(action) => Incoming::Action(action),
                    None => continue,
                },
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                None => break 'run,
            },
            Some(incoming) = rx.recv() => incoming,
            _ = tick.tick() => Incoming::Action(Action::Tick(now())),
            _ = sigterm.recv() => break 'run,
            _ = sighup.recv() => break 'run,
        };
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(incoming) = next.take() {
            if !handle(&mut state, &mut links, incoming) {
                break 'run;
            }
            taken += 1;
            if taken < BATCH {
                next = rx.try_recv().ok();
            }
        }
        links.sync_feeds(&state);
        dirty = true;
    }
    links.drop_feeds();
    supervisor.abort();
    refreshing.abort();
    Ok(())
}

fn terminal_action(event: Event, state: &State) -> Option<Action> {
    match event {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            keymap::intent_for(key, state).map(Action::Key)
        }
        Event::Resize(width, height) => Some(Action::Resize(width, height)),
        Event::Mouse(mouse) => match mouse.kind {
            MouseEventKind::ScrollUp => Some(Action::Key(Intent::Up)),
            MouseEventKind::ScrollDown => Some(Action::Key(Intent::Down)),
            _ => None,
        },
        _ => None,
    }
}

/// Applies one event; false when the console should end.
fn handle(state: &mut State, links: &mut Links, incoming: Incoming) -> bool {
    let effects = match incoming {
        Incoming::Action(action) => update(state, action),
        Incoming::Connected(channel) => {
            links.drop_feeds();
            links.channel = Some(channel.clone());
            links.publish.send_replace(Some(channel));
            // Everything shown may be stale after an absence.
            update(
                state,
                Action::Reply(Reply::Dashboard(DashboardReply::Changed(Box::new(
                    pb::change::What::Resync(true),
                )))),
            )
        }
        Incoming::Lost(why) => {
            links.drop_feeds();
            links.channel = None;
            links.publish.send_replace(None);
            update(
                state,
                Action::Reply(Reply::Dashboard(DashboardReply::Disconnected(why))),
            )
        }
    };
    for effect in effects {
        match effect {
            Effect::Quit => return false,
            Effect::Refresh => links.refresher.request(),
            effect => match &links.channel {
                Some(channel) => client::perform(effect, channel.clone(), links.tx.clone()),
                None => {
                    update(
                        state,
                        Action::Reply(Reply::Failed {
                            what: "not connected".into(),
                            text: "cairnd is not reachable right now; the console reconnects by itself, try again then".into(),
                        }),
                    );
                }
            },
        }
    }
    true
}
