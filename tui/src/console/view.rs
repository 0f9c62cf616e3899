//! Drawing: one file per screen, each a function of the state alone. This file draws
//! what every screen shares: the status line, the footer with the keys that apply,
//! and what opens on top (help, a message, a question).

pub mod audit;
pub mod dashboard;
pub mod editor;
#[cfg(test)]
pub mod fixtures;
pub mod job;
pub mod logs;
pub mod repos;
pub mod run;
pub mod snapshots;

use cairn_proto::v1 as pb;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Styled};
use ratatui::symbols::border;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::console::keymap;
use crate::console::screen::Screen;
use crate::console::state::{Connection, State};

pub fn draw(frame: &mut Frame<'_>, state: &State) {
    let [status, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(status_line(state), status);
    match state.screen() {
        Screen::Dashboard(_) => dashboard::draw(frame, state, body),
        Screen::Job(s) => job::draw(frame, state, s, body),
        Screen::Run(s) => run::draw(frame, state, s, body),
        Screen::Logs(s) => logs::draw(frame, state, s, body),
        Screen::Snapshots(s) => snapshots::draw_list(frame, state, s, body),
        Screen::Tree(s) => snapshots::draw_tree(frame, state, s, body),
        Screen::Diff(s) => snapshots::draw_diff(frame, state, s, body),
        Screen::Editor(s) => editor::draw(frame, state, s, body),
        Screen::Picker(s) => editor::draw_picker(frame, state, s, body),
        Screen::Repositories(s) => repos::draw_list(frame, state, s, body),
        Screen::AddRepository(s) => repos::draw_form(frame, state, s, body),
        Screen::Audit(s) => audit::draw(frame, state, s, body),
    }
    frame.render_widget(footer_line(state), footer);
    if state.help {
        draw_help(frame, state);
    }
    if let Some(palette) = &state.palette {
        draw_palette(frame, state, palette);
    }
    if let Some(message) = &state.message {
        draw_box(
            frame,
            state,
            &format!(" {} (Esc) ", message.title),
            &message.text,
        );
    }
    if let Some(confirm) = &state.confirm {
        draw_box(frame, state, " confirm: y yes, n no ", &confirm.question);
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
    let mut spans = vec![Span::raw("cairn  "), connection];
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

/// The keys that apply here, as many as fit.
fn footer_line(state: &State) -> Line<'static> {
    let mut spans = Vec::new();
    let mut room = state.width as usize;
    if let Some(text) = typing_prompt(state) {
        room = room.saturating_sub(text.chars().count());
        spans.push(Span::raw(text));
    }
    let hints: Vec<(&str, &str)> = keymap::bindings(state)
        .iter()
        .filter(|b| !b.short.is_empty())
        .map(|b| {
            // "k/Up" shows as "k"; "/" stays "/".
            let key = b
                .label
                .split('/')
                .next()
                .filter(|k| !k.is_empty())
                .unwrap_or(b.label);
            (key, b.short)
        })
        .collect();
    // Whole hints while they fit; "?" (every key) and the way back always show.
    let kept: Vec<bool> = {
        let always = |key: &str| matches!(key, "?" | "q" | "Esc");
        let mut left = room.saturating_sub(
            hints
                .iter()
                .filter(|(k, _)| always(k))
                .map(|(k, s)| k.len() + s.len() + 3)
                .sum(),
        );
        hints
            .iter()
            .map(|(key, short)| {
                let width = key.chars().count() + short.chars().count() + 3;
                if always(key) {
                    true
                } else if width <= left {
                    left -= width;
                    true
                } else {
                    false
                }
            })
            .collect()
    };
    for ((key, short), keep) in hints.into_iter().zip(kept) {
        if keep {
            spans.push(Span::styled(
                key.to_owned(),
                Style::new().add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::raw(format!(" {short}  ")));
        }
    }
    Line::from(spans)
}

/// What is being typed, shown in the footer.
fn typing_prompt(state: &State) -> Option<String> {
    match state.screen() {
        Screen::Dashboard(d) if d.filter.editing => Some(format!("filter: {}_  ", d.filter.text)),
        Screen::Run(s) if s.search.editing => Some(format!("search: {}_  ", s.search.text)),
        Screen::Logs(s) if s.filter.editing => Some(format!("filter: {}_  ", s.filter.text)),
        Screen::Picker(p) => p.goto.as_ref().map(|t| format!("go to: {t}_  ")),
        Screen::Audit(s) if s.filter.editing => Some(format!("filter: {}_  ", s.filter.text)),
        Screen::Tree(s) => s.target.as_ref().map(|t| {
            format!(
                "restore to (a directory on the daemon's host): {}_  ",
                t.text
            )
        }),
        _ => None,
    }
}

fn draw_help(frame: &mut Frame<'_>, state: &State) {
    let bindings: Vec<&keymap::Binding> = keymap::bindings(state)
        .iter()
        .chain(keymap::GLOBAL.iter().filter(|g| !g.keys.is_empty()))
        .collect();
    let area = centered(frame.area(), 60, bindings.len() as u16 + 3);
    let mut lines: Vec<Line<'_>> = bindings
        .iter()
        .map(|b| Line::from(format!("{:<14} {}", b.label, b.help)))
        .collect();
    lines.push(Line::from(format!("{:<14} {}", "Ctrl-C", "quit")));
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

fn draw_palette(frame: &mut Frame<'_>, state: &State, palette: &crate::console::state::Palette) {
    let commands = crate::console::palette::matching(state, &palette.input);
    let area = centered(frame.area(), 64, commands.len().min(14) as u16 + 4);
    let mut lines = vec![Line::from(format!(": {}_", palette.input)), Line::from("")];
    let skip = palette.selected.saturating_sub(13);
    for (i, (keys, help, _)) in commands.iter().enumerate().skip(skip).take(14) {
        let line = Line::from(format!("{help:<48} {keys}"));
        lines.push(if i == palette.selected {
            line.style(selected(state.color))
        } else {
            line
        });
    }
    if commands.is_empty() {
        lines.push(Line::from("no command matches"));
    }
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_set(borders(state.ascii))
                .title(" commands (Enter does it, Esc closes) "),
        ),
        area,
    );
}

fn draw_box(frame: &mut Frame<'_>, state: &State, title: &str, text: &str) {
    let area = centered(frame.area(), 70, 7);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text.to_owned())
            .wrap(Wrap { trim: true })
            .block(
                Block::bordered()
                    .border_set(borders(state.ascii))
                    .title(title.to_owned()),
            ),
        area,
    );
}

/// A box of at most `width` x `height` in the middle of `area`.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// A box holding only a message (loading, empty, or why there is nothing), wrapped.
pub fn note(frame: &mut Frame<'_>, state: &State, title: String, text: &str, area: Rect) {
    frame.render_widget(
        Paragraph::new(text.to_owned())
            .wrap(Wrap { trim: true })
            .block(block(state, title)),
        area,
    );
}

/// A bordered block with a title, in the state's border style.
pub fn block(state: &State, title: String) -> Block<'static> {
    Block::bordered()
        .border_set(borders(state.ascii))
        .title(title)
}

/// Box-drawing or plain ASCII borders (`--ascii`, TERM=linux).
pub fn borders(ascii: bool) -> border::Set<'static> {
    if ascii {
        border::Set {
            top_left: "+",
            top_right: "+",
            bottom_left: "+",
            bottom_right: "+",
            vertical_left: "|",
            vertical_right: "|",
            horizontal_top: "-",
            horizontal_bottom: "-",
        }
    } else {
        border::PLAIN
    }
}

/// A style with a colour, or without when NO_COLOR asks for none.
pub fn colored(color: bool, fg: Color) -> Style {
    if color {
        Style::new().fg(fg)
    } else {
        Style::new()
    }
}

pub fn selected(color: bool) -> Style {
    if color {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
}

/// A row or line of a list, highlighted when it is the selected one.
pub fn mark_selected<T: Styled<Item = T>>(item: T, is_selected: bool, color: bool) -> T {
    if is_selected {
        item.set_style(selected(color))
    } else {
        item
    }
}

/// The colour of a run's state (green ok, yellow warnings or going, red otherwise).
pub fn state_color(state: &str) -> Color {
    match state {
        "succeeded" => Color::Green,
        "succeeded-with-warnings" | "running" | "queued" => Color::Yellow,
        _ => Color::Red,
    }
}

pub fn level_color(level: i32) -> Color {
    match pb::Level::try_from(level) {
        Ok(pb::Level::Error) => Color::Red,
        Ok(pb::Level::Warn) => Color::Yellow,
        Ok(pb::Level::Info) => Color::Green,
        _ => Color::DarkGray,
    }
}

/// A directory entry's name as listings show it: directories with a slash and in
/// blue, symlinks with their target.
/// A file's name in a listing, escaped like `ls -b` ([`crate::output::name`]): ratatui
/// would silently drop an ESC and show the rest of a planted sequence as if it were
/// part of the name.
pub fn entry_name(state: &State, name: &str, kind: &str, link_target: &str) -> Span<'static> {
    shown_entry(
        state,
        &crate::output::name(name),
        kind,
        &crate::output::name(link_target),
    )
}

/// A listing's name already made safe to show (the daemon's host browser sends it so).
pub fn shown_entry(state: &State, name: &str, kind: &str, link_target: &str) -> Span<'static> {
    match kind {
        "dir" => Span::styled(format!("{name}/"), colored(state.color, Color::Blue)),
        "symlink" => Span::raw(format!("{name} -> {link_target}")),
        _ => Span::raw(name.to_owned()),
    }
}

/// "3h 05m", "12m 40s", "9s": a short span for countdowns and ages.
pub fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A duration in milliseconds, short ("1m 05s", "0.4s").
pub fn duration_ms(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        span((ms / 1000) as i64)
    }
}

/// Bytes as people read them (binary units).
pub fn bytes(n: u64) -> String {
    crate::output::bytes(n)
}

/// A time of day (or date and time when not today) in the console's time zone.
pub fn clock(state: &State, t: Option<&prost_types::Timestamp>) -> String {
    let Some(t) = t else {
        return "-".into();
    };
    let Ok(at) = jiff::Timestamp::new(t.seconds, 0) else {
        return "-".into();
    };
    let zoned = at.to_zoned(state.tz.clone());
    let today = jiff::Timestamp::new(state.now, 0)
        .map(|now| now.to_zoned(state.tz.clone()).date())
        .ok();
    if Some(zoned.date()) == today {
        zoned.strftime("%H:%M:%S").to_string()
    } else {
        zoned.strftime("%Y-%m-%d %H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{every_screen, render};
    use crate::console::action::{Action, Intent, update};

    #[test]
    fn every_screen_draws_from_tiny_to_250x70_and_with_help_open() {
        for mut state in every_screen() {
            for (width, height) in [(250, 70), (120, 40), (80, 24), (40, 12), (10, 4), (1, 1)] {
                render(&state, width, height);
            }
            update(&mut state, Action::Key(Intent::ToggleHelp));
            let screen = render(&state, 80, 24).to_string();
            assert!(screen.contains("keys (? or Esc closes)"), "{screen}");
        }
    }

    #[test]
    fn ascii_mode_draws_every_screen_without_box_characters() {
        for mut state in every_screen() {
            state.ascii = true;
            let screen = render(&state, 120, 40).to_string();
            assert!(screen.is_ascii(), "{screen}");
        }
    }

    #[test]
    fn no_color_means_no_colour_on_any_screen() {
        for mut state in every_screen() {
            state.color = false;
            let backend = render(&state, 120, 40);
            for cell in backend.buffer().content() {
                assert_eq!(
                    (cell.fg, cell.bg),
                    (ratatui::style::Color::Reset, ratatui::style::Color::Reset),
                    "{:?}",
                    state.screen()
                );
            }
        }
    }
}
