//! The terminal while the console runs: raw mode on the alternate screen, and put
//! back however the console ends (return, error, panic; SIGTERM and SIGHUP end the
//! loop, which returns).

use std::io::{Stdout, stdout};

use crossterm::cursor::Show;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

pub type Term = Terminal<CrosstermBackend<Stdout>>;

/// Restores the terminal when dropped.
#[derive(Debug)]
pub struct Guard {
    _private: (),
}

impl Guard {
    /// Raw mode on the alternate screen; with `mouse`, wheel events too.
    pub fn enter(mouse: bool) -> std::io::Result<(Guard, Term)> {
        install_panic_hook();
        enable_raw_mode()?;
        // From here on the guard restores, also if the rest fails.
        let guard = Guard { _private: () };
        execute!(stdout(), EnterAlternateScreen)?;
        if mouse {
            execute!(stdout(), EnableMouseCapture)?;
        }
        let terminal = Terminal::new(CrosstermBackend::new(stdout()))?;
        Ok((guard, terminal))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(stdout(), DisableMouseCapture, LeaveAlternateScreen, Show);
}

/// A panic restores the terminal first, so its message is readable.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}
