//! Before/after hook commands: run without a shell, with a timeout, output logged
//! line by line as it comes (in the run's span, so `cairn logs -f` shows it live).

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cairn_engine::CancelToken;

use crate::store::{DEFAULT_HOOK_TIMEOUT_SECONDS, HookSpec};

/// The longest line logged as one; longer output is logged in pieces of this size,
/// so a hook that never prints a newline cannot make the daemon buffer without end.
const LINE_MAX: usize = 4096;

/// Runs `hook` to completion, its timeout or cancellation. `which` is "before" or
/// "after"; `env` (run id, job, state) is all the hook gets besides PATH, LANG and
/// HOME ([`crate::child_env`]).
pub fn run_hook(
    which: &str,
    hook: &HookSpec,
    env: &[(&str, String)],
    cancel: &CancelToken,
) -> Result<(), String> {
    let Some((program, args)) = hook.argv.split_first() else {
        return Ok(());
    };
    let timeout = Duration::from_secs(u64::from(if hook.timeout_seconds == 0 {
        DEFAULT_HOOK_TIMEOUT_SECONDS
    } else {
        hook.timeout_seconds
    }));
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(crate::child_env::clean(env))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{which} hook {program:?} could not start: {e}"))?;
    // Readers drain the pipes so a chatty hook never blocks on a full pipe.
    let stdout = child.stdout.take().map(|pipe| drain(pipe, which, "stdout"));
    let stderr = child.stderr.take().map(|pipe| drain(pipe, which, "stderr"));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if cancel.is_cancelled() => break Err("cancelled"),
            Ok(None) if started.elapsed() >= timeout => break Err("timed out"),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("{which} hook {program:?}: waiting failed: {e}")),
        }
    };
    let status = match status {
        Ok(status) => status,
        Err(why) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "{which} hook {program:?} {why} after {:.1} s and was killed",
                started.elapsed().as_secs_f64()
            ));
        }
    };
    let out = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    let err = stderr.and_then(|h| h.join().ok()).unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        let last = if err.is_empty() { &out } else { &err };
        Err(format!(
            "{which} hook {program:?} failed ({status}){}",
            if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            }
        ))
    }
}

/// Logs each line of a hook's output as it arrives; returns the last non-blank line
/// (for the error text of a failed hook).
fn drain(
    pipe: impl Read + Send + 'static,
    which: &str,
    stream: &'static str,
) -> std::thread::JoinHandle<String> {
    let span = tracing::Span::current();
    let which = which.to_owned();
    std::thread::spawn(move || {
        let _entered = span.enter();
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::with_capacity(256);
        let mut last = String::new();
        loop {
            line.clear();
            match (&mut reader)
                .take(LINE_MAX as u64)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    if text.trim().is_empty() {
                        continue;
                    }
                    tracing::info!(hook = %which, stream, "{text}");
                    text.trim().clone_into(&mut last);
                }
            }
        }
        last
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(argv: &[&str], timeout_seconds: u32) -> HookSpec {
        HookSpec {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            timeout_seconds,
        }
    }

    #[test]
    fn a_hook_sees_its_environment_and_its_failure_is_explained() {
        let ok = run_hook(
            "before",
            &hook(&["sh", "-c", "test \"$CAIRN_JOB\" = web"], 5),
            &[("CAIRN_JOB", "web".into())],
            &CancelToken::new(),
        );
        assert_eq!(ok, Ok(()));
        let error = run_hook(
            "before",
            &hook(&["sh", "-c", "echo database is down >&2; exit 3"], 5),
            &[],
            &CancelToken::new(),
        )
        .unwrap_err();
        assert!(error.contains("before hook \"sh\" failed"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(error.contains("database is down"), "{error}");
    }

    #[test]
    fn endless_output_without_newlines_is_bounded_and_the_error_names_the_last_line() {
        let error = run_hook(
            "before",
            &hook(
                &[
                    "sh",
                    "-c",
                    "head -c 300000 /dev/zero | tr '\\0' x; echo; echo disk full >&2; exit 1",
                ],
                10,
            ),
            &[],
            &CancelToken::new(),
        )
        .unwrap_err();
        assert!(error.ends_with(": disk full"), "{error}");
    }

    #[test]
    fn a_hung_hook_is_killed_at_its_timeout() {
        let started = Instant::now();
        let error = run_hook(
            "after",
            &hook(&["sleep", "30"], 1),
            &[],
            &CancelToken::new(),
        )
        .unwrap_err();
        assert!(error.contains("timed out"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_missing_program_is_named() {
        let error = run_hook(
            "before",
            &hook(&["/nonexistent/dump-db"], 5),
            &[],
            &CancelToken::new(),
        )
        .unwrap_err();
        assert!(error.contains("/nonexistent/dump-db"), "{error}");
        assert!(error.contains("could not start"), "{error}");
    }
}
