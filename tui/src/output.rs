//! Output for people and for scripts, and the exit codes both rely on:
//! 0 success, 1 finished with warnings or problems found, 2 error.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::cli::OutputFormat;

pub const EXIT_WARNINGS: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

/// How a command ended when it printed its own account of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Warnings,
    /// What it reported failed (a run), and the JSON document printed already says
    /// how: exit 2 without a second document.
    Failed,
}

impl Outcome {
    pub fn from_problems(problems: usize) -> Self {
        if problems == 0 {
            Outcome::Ok
        } else {
            Outcome::Warnings
        }
    }
}

/// Prints one JSON document to stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_stdout(format_args!("{text}\n"))
}

/// The reader of stdout went away (`cairn ls | head -1`, a pager quit): the command
/// ends quietly with exit 0, as ripgrep and restic do.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

/// Whether `error` is (or was caused by) a closed stdout.
pub fn is_stdout_closed(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<StdoutClosed>())
}

fn stdout_failed(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::anyhow!("cannot write to standard output: {e}")
    }
}

/// Writes text to stdout: a failed write is an error (never a panic), a closed pipe
/// is [`StdoutClosed`]. Control characters other than newline and tab are escaped
/// ([`terminal_safe`]): text output is for terminals, where they would be commands.
pub fn write_stdout(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let text = args.to_string();
    let mut out = std::io::stdout().lock();
    out.write_all(terminal_safe(&text).as_bytes())
        .map_err(stdout_failed)
}

/// Raw bytes to stdout (`cairn dump`), remembering why a write failed so the command
/// can tell a closed pipe from a full disk.
#[derive(Debug, Default)]
pub struct StdoutWriter {
    failed: Option<std::io::Error>,
}

impl StdoutWriter {
    /// Err when a write failed: [`StdoutClosed`] for a closed pipe.
    pub fn result(self) -> anyhow::Result<()> {
        self.failed.map_or(Ok(()), |e| Err(stdout_failed(e)))
    }

    fn keep<T>(&mut self, result: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &result {
            self.failed
                .get_or_insert_with(|| std::io::Error::new(e.kind(), e.to_string()));
        }
        result
    }
}

impl std::io::Write for StdoutWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = std::io::stdout().lock().write(buf);
        self.keep(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let flushed = std::io::stdout().lock().flush();
        self.keep(flushed)
    }
}

/// Flushes stdout at the end of a command.
pub fn flush_stdout() -> anyhow::Result<()> {
    std::io::stdout().lock().flush().map_err(stdout_failed)
}

/// Set when a write to stderr failed: the command then exits 2.
static STDERR_FAILED: AtomicBool = AtomicBool::new(false);

/// Writes text to stderr, escaped like [`write_stdout`]. A failure cannot be reported
/// where it happened; it is remembered and makes the exit code 2.
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    let text = args.to_string();
    if std::io::stderr()
        .lock()
        .write_all(terminal_safe(&text).as_bytes())
        .is_err()
    {
        STDERR_FAILED.store(true, Ordering::Relaxed);
    }
}

/// Whether any write to stderr failed.
pub fn stderr_failed() -> bool {
    STDERR_FAILED.load(Ordering::Relaxed)
}

/// Prints a line to stdout; evaluates to `anyhow::Result<()>` (use `?`).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// Prints to stdout without a newline; evaluates to `anyhow::Result<()>`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}

/// Prints a line to stderr; never panics (see [`write_stderr`]).
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `text` with every control character but newline and tab shown as an escape
/// (`\x1b`, `\x9b`), so a file name holding `ESC ]0;...BEL` is shown, not obeyed.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.contains(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            cairn_engine::shown::push_escaped(&mut safe, c);
        } else {
            safe.push(c);
        }
    }
    std::borrow::Cow::Owned(safe)
}

/// A name (file, job, tag, host) as shown on a terminal ([`cairn_engine::shown::name`],
/// like `ls -b`): one name is one unambiguous line. JSON output keeps the exact name.
pub fn name(text: &str) -> std::borrow::Cow<'_, str> {
    if cairn_engine::shown::needs_escaping(text) {
        std::borrow::Cow::Owned(cairn_engine::shown::name(text.as_bytes()))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Names joined by `separator`, each shown by [`name`].
pub fn names(list: &[String], separator: &str) -> String {
    list.iter()
        .map(|n| name(n))
        .collect::<Vec<_>>()
        .join(separator)
}

/// One snapshot as a line of the snapshot table (offline and through the daemon).
#[derive(Debug)]
pub struct SnapshotRow<'a> {
    pub short_id: &'a str,
    pub time: String,
    pub host: &'a str,
    pub tags: &'a [String],
    pub bytes: u64,
    pub paths: &'a [String],
}

/// Prints the snapshot table: a header, then a row per snapshot, names shown safely.
pub fn snapshot_table<'a>(rows: impl IntoIterator<Item = SnapshotRow<'a>>) -> anyhow::Result<()> {
    crate::outln!(
        "{:<10} {:<22} {:<16} {:<12} {:>10}  PATHS",
        "ID",
        "TIME",
        "HOST",
        "TAGS",
        "SIZE"
    )?;
    for row in rows {
        crate::outln!(
            "{:<10} {:<22} {:<16} {:<12} {:>10}  {}",
            row.short_id,
            row.time,
            name(row.host),
            name(&row.tags.join(",")),
            bytes(row.bytes),
            names(row.paths, " ")
        )?;
    }
    Ok(())
}

pub fn print_error(format: OutputFormat, error: &anyhow::Error) {
    let message = format!("{error:#}");
    if format == OutputFormat::Json {
        let doc = serde_json::json!({ "error": message });
        // Best effort: stdout may be what failed; stderr says it either way.
        let _ = write_stdout(format_args!("{doc}\n"));
    }
    write_stderr(format_args!("cairn: {message}\n"));
}

/// Bytes in binary units, for people.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_never_sent_to_the_terminal() {
        let planted = "a\x1b]0;PWNED\x07\x1b[2Jb";
        assert_eq!(terminal_safe(planted), "a\\x1b]0;PWNED\\a\\x1b[2Jb");
        assert_eq!(terminal_safe("two\nlines\tand tab"), "two\nlines\tand tab");
        assert_eq!(terminal_safe("csi \u{9b}2J"), "csi \\x9b2J");
        assert_eq!(name("new\nline\\back"), "new\\nline\\\\back");
        assert_eq!(name("plain/name.txt"), "plain/name.txt");
    }

    #[test]
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
