//! What systemd sees of the daemon beyond READY/RELOADING/STOPPING (sent by `main`):
//! a one-line STATUS= that `systemctl status cairnd` shows, and watchdog pings when
//! the unit sets `WatchdogSec=`. Outside systemd (no NOTIFY_SOCKET) this sends nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::scheduler::{jobs_with_schedules, next_scheduled};
use crate::state::DaemonState;
use crate::store::{UnixMs, now_ms};

/// How often STATUS= is refreshed when there is no watchdog to keep up with.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// "2 running, 1 queued, next: web at 2026-11-23 03:00 CET", or "idle, nothing scheduled".
pub fn status_line(
    running: usize,
    queued: usize,
    next: Option<(String, UnixMs)>,
    tz: &jiff::tz::TimeZone,
) -> String {
    let mut parts = Vec::new();
    if running > 0 {
        parts.push(format!("{running} running"));
    }
    if queued > 0 {
        parts.push(format!("{queued} queued"));
    }
    if parts.is_empty() {
        parts.push("idle".to_owned());
    }
    match next.and_then(|(job, at)| Some((job, jiff::Timestamp::from_millisecond(at).ok()?))) {
        Some((job, at)) => parts.push(format!(
            "next: {job} at {}",
            at.to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M %Z")
        )),
        None => parts.push("nothing scheduled".to_owned()),
    }
    parts.join(", ")
}

fn current_status(state: &DaemonState) -> String {
    let jobs = state
        .store
        .read("status for systemd", jobs_with_schedules)
        .unwrap_or_default();
    let (running, queued) = state.runner.counts();
    status_line(
        running,
        queued,
        next_scheduled(&jobs, now_ms()),
        &jiff::tz::TimeZone::system(),
    )
}

/// The watchdog interval systemd asked for, if any.
fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec))
}

/// Keeps STATUS= current and pings the watchdog until `stop` resolves. The ping comes
/// from this task on the async runtime, so a wedged runtime stops the pings and
/// systemd restarts the daemon.
pub async fn supervise(state: Arc<DaemonState>, stop: impl std::future::Future<Output = ()>) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return stop.await;
    }
    let watchdog = watchdog_interval();
    let every = watchdog.map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY));
    let mut ticks = tokio::time::interval(every);
    tokio::pin!(stop);
    let mut last_status = String::new();
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticks.tick() => {}
        }
        let state = state.clone();
        let status = tokio::task::spawn_blocking(move || current_status(&state))
            .await
            .unwrap_or_default();
        let mut message = Vec::new();
        if status != last_status {
            message.push(sd_notify::NotifyState::Status(&status));
        }
        if watchdog.is_some() {
            message.push(sd_notify::NotifyState::Watchdog);
        }
        if !message.is_empty()
            && let Err(e) = sd_notify::notify(false, &message)
        {
            tracing::debug!(error = %e, "cannot notify systemd");
        }
        last_status = status;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_what_runs_and_what_comes_next() {
        let berlin = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        // 2026-11-23 02:00 UTC is 03:00 in Berlin (CET).
        let at = jiff::Timestamp::from_second(1_795_399_200).unwrap();
        assert_eq!(
            status_line(2, 1, Some(("web".into(), at.as_millisecond())), &berlin),
            "2 running, 1 queued, next: web at 2026-11-23 03:00 CET"
        );
        assert_eq!(status_line(0, 0, None, &berlin), "idle, nothing scheduled");
    }
}
