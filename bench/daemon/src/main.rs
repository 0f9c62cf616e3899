//! `cairn-daemon-bench`: measures a running cairnd over its socket, the way clients
//! load it. Driven by `bench/daemon.sh`, which starts the daemon and prints the
//! figures; timings are reported, never asserted.

mod emit;
mod followers;
mod percentiles;
mod rss;
mod status;
mod watch;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cairn-daemon-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// GetStatus at a fixed rate (open loop: latency counts from the scheduled send).
    Status {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// N log followers while a job's hook logs at a fixed rate: lines lost per
    /// follower, and the daemon's RSS over time.
    Followers {
        #[arg(long)]
        socket: PathBuf,
        /// The job whose before hook runs `cairn-daemon-bench emit`.
        #[arg(long)]
        job: String,
        #[arg(long)]
        daemon_pid: u32,
        #[arg(long, default_value_t = 10)]
        followers: usize,
        /// Lines the hook emits in total (tells followers when they have all).
        #[arg(long)]
        lines: u64,
    },
    /// Runs a job and watches it: delay from each progress publish to the watcher.
    Watch {
        #[arg(long)]
        socket: PathBuf,
        #[arg(long)]
        job: String,
    },
    /// Prints numbered lines at a fixed rate (a hook that logs a lot).
    Emit {
        #[arg(long, default_value_t = 10_000)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Emit { rate, seconds } = cli.command {
        return emit::run(rate, seconds);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Status {
                socket,
                rate,
                seconds,
            } => status::run(&socket, rate, seconds).await,
            Command::Followers {
                socket,
                job,
                daemon_pid,
                followers,
                lines,
            } => followers::run(&socket, &job, daemon_pid, followers, lines).await,
            Command::Watch { socket, job } => watch::run(&socket, &job).await,
            Command::Emit { .. } => unreachable!("handled above"),
        }
    })
}
