//! cairnd. Serving the API, the store and the scheduler come with the daemon issue;
//! today the binary reports where it would keep things and says plainly that it does
//! not serve yet.

use cairn_daemon::paths::{Env, Paths};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let paths = Paths::resolve(&Env::current());
    match args.first().map(String::as_str) {
        Some("--version" | "-V") => {
            println!("cairnd {}", env!("CARGO_PKG_VERSION"));
            std::process::ExitCode::SUCCESS
        }
        Some("paths") => {
            println!("config {}", paths.config_file.display());
            println!("state  {}", paths.state_dir.display());
            println!("cache  {}", paths.cache_dir.display());
            println!("socket {}", paths.socket.display());
            std::process::ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "cairnd: the daemon does not serve yet; use `cairn -r REPO ...` to work on a repository directly"
            );
            std::process::ExitCode::from(2)
        }
    }
}
