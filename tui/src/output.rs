//! Output for people and for scripts, and the exit codes both rely on:
//! 0 success, 1 finished with warnings or problems found, 2 error.

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
    println!("{text}");
    Ok(())
}

pub fn print_error(format: OutputFormat, error: &anyhow::Error) {
    let message = format!("{error:#}");
    match format {
        OutputFormat::Json => {
            let doc = serde_json::json!({ "error": message });
            println!("{doc}");
            eprintln!("cairn: {message}");
        }
        OutputFormat::Text => eprintln!("cairn: {message}"),
    }
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
    fn bytes_are_shown_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
