//! Drawing: one file per screen, each a function of the state alone.

pub mod dashboard;

use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;

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

/// Bytes as people read them (binary units).
pub fn bytes(n: u64) -> String {
    crate::output::bytes(n)
}
