//! A chatty hook: numbered lines at a steady rate, flushed each millisecond.

use std::io::Write;
use std::time::{Duration, Instant};

pub fn run(rate: u32, seconds: u32) -> anyhow::Result<()> {
    let total = u64::from(rate) * u64::from(seconds);
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut sent = 0u64;
    while sent < total {
        // Lines due by now; then sleep to the next millisecond.
        let due = ((started.elapsed().as_secs_f64() * f64::from(rate)) as u64).min(total);
        while sent < due {
            writeln!(out, "emit {sent}")?;
            sent += 1;
        }
        out.flush()?;
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
