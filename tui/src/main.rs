//! `cairn`: Cairn's command line. Today it works straight on a repository
//! (`cairn -r REPO ...`), which is also the disaster-recovery path on a machine
//! with no daemon.

use std::process::ExitCode;

use cairn_tui::output::{self, EXIT_ERROR, Outcome};
use cairn_tui::{cli, console, docs, offline, remote};
use clap::Parser;

fn main() -> ExitCode {
    // Started by ssh to give an SFTP key's passphrase: answer that and nothing else.
    if let Some(code) = cairn_engine::backend::sftp::askpass_helper() {
        return ExitCode::from(code);
    }
    cairn_engine::alloc::bound_large_buffer_retention();
    let cli = cli::Cli::parse();
    // The console owns the terminal: log lines on stderr would draw over its screen.
    if !matches!(cli.command, cli::Command::Console(_)) {
        init_logging();
    }
    let format = cli.output;
    let result = if let cli::Command::Completions { shell } = &cli.command {
        docs::completions(*shell)
    } else if let cli::Command::Man { dir } = &cli.command {
        docs::man_pages(dir)
    } else if let cli::Command::Console(args) = &cli.command {
        console::app::run(
            cli.socket
                .clone()
                .unwrap_or_else(cairn_tui::api::socket::default_socket),
            args.ascii,
            args.mouse,
        )
    } else if cli.command.uses_daemon() {
        remote::run(cli)
    } else {
        offline::run(cli)
    };
    // Text for a reader that is gone is not an error: `cairn ls latest | head -1`.
    let result = result.and_then(|outcome| output::flush_stdout().map(|()| outcome));
    let code = match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Warnings) => ExitCode::from(output::EXIT_WARNINGS),
        Ok(Outcome::Failed) => ExitCode::from(EXIT_ERROR),
        Err(error) if output::is_stdout_closed(&error) => ExitCode::SUCCESS,
        Err(error) => {
            output::print_error(format, &error);
            ExitCode::from(EXIT_ERROR)
        }
    };
    if output::stderr_failed() {
        return ExitCode::from(EXIT_ERROR);
    }
    code
}

/// Logs go to stderr: by default only the storage backends' warnings (each retry of
/// a request to S3 or an SFTP server), `CAIRN_LOG=debug` for more.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("cairn_engine::backend=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
