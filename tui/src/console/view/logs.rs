//! The daemon's log, live: the level and filters in the title, paused or following.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;

use crate::console::screen::LogsScreen;
use crate::console::state::State;
use crate::console::view::block;
use crate::console::view::run::log_line;

pub fn draw(frame: &mut Frame<'_>, state: &State, s: &LogsScreen, area: Rect) {
    let visible = s.visible();
    let height = area.height.saturating_sub(2) as usize;
    let top = s.scroll.top(visible.len(), height);
    let mut title = format!(
        " daemon log: {} and up, {}",
        crate::api::names::level(s.level as i32),
        s.job
            .as_deref()
            .map_or("all jobs".to_owned(), |j| format!("job {j}"))
    );
    if !s.filter.text.is_empty() {
        title.push_str(&format!(", /{}", s.filter.text));
    }
    if s.missed > 0 {
        title.push_str(&format!(", {} missed", s.missed));
    }
    match (s.paused_at, s.scroll.follow) {
        (Some(at), _) => title.push_str(&format!(", paused ({} new) ", s.lines.len() - at)),
        (None, true) => title.push_str(", following "),
        (None, false) => title.push(' '),
    }
    let lines: Vec<Line<'static>> = visible
        .iter()
        .skip(top)
        .take(height)
        .map(|line| log_line(state, line, true, None))
        .collect();
    let text = if lines.is_empty() {
        vec![Line::from("waiting for the daemon to log something")]
    } else {
        lines
    };
    frame.render_widget(Paragraph::new(text).block(block(state, title)), area);
}

#[cfg(test)]
mod tests {
    use cairn_proto::v1 as pb;

    use crate::console::Role;
    use crate::console::action::{Action, Intent, LiveReply, Reply, update};
    use crate::console::message::Feed;
    use crate::console::view::fixtures::*;

    #[test]
    fn the_daemon_log_live_and_paused_at_80x24_and_120x40() {
        let mut state = state(Role::Viewer, Vec::new());
        update(&mut state, Action::Key(Intent::OpenLogs));
        let empty = render(&state, 80, 24).to_string();
        assert!(
            empty.contains("waiting for the daemon to log something"),
            "{empty}"
        );
        let lines = (0..30)
            .map(|i| {
                let (level, job, message) = match i % 5 {
                    0 => (pb::Level::Info, "web", "run started"),
                    1 => (
                        pb::Level::Warn,
                        "web",
                        "skipped /srv/www/cache: permission denied",
                    ),
                    2 => (pb::Level::Info, "", "configuration reloaded"),
                    3 => (pb::Level::Error, "db", "hook failed: exit status 2"),
                    _ => (pb::Level::Info, "db", "run ended"),
                };
                log_line(i + 1, 300 - i as i64 * 10, level, job, message)
            })
            .collect();
        update(
            &mut state,
            Action::Reply(Reply::Live(LiveReply::LogLines {
                feed: Feed::DaemonLog(pb::Level::Info as i32),
                lines,
            })),
        );
        insta::assert_snapshot!("logs_80x24", render(&state, 80, 24));
        update(&mut state, Action::Key(Intent::TogglePause));
        update(
            &mut state,
            Action::Reply(Reply::Live(LiveReply::LogLines {
                feed: Feed::DaemonLog(pb::Level::Info as i32),
                lines: vec![log_line(31, 0, pb::Level::Info, "", "new while paused")],
            })),
        );
        insta::assert_snapshot!("logs_paused_120x40", render(&state, 120, 40));
        insta::assert_snapshot!("logs_paused_80x24", render(&state, 80, 24));
    }
}
