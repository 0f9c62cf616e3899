//! The wall clock going back (an NTP correction, a VM restored from a snapshot) must not
//! make the daemon show a next run it will never start (issue 13, point 12). The
//! daemon runs under libfaketime, whose offset the test moves while it runs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_e2e::daemon::{Cairnd, Launch};
use cairn_e2e::run::{prerequisite, small_source};

const HOUR: i64 = 3600;

/// libfaketime's preload library (Debian's `faketime` package), if installed.
fn libfaketime() -> Option<PathBuf> {
    let lib = Path::new("/usr/lib");
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|arch| arch.path().join("faketime/libfaketime.so.1"))
        .chain([lib.join("faketime/libfaketime.so.1")])
        .find(|candidate| candidate.exists())
}

/// The daemon's clock: the real one moved by `offset` seconds, changed while it runs.
struct FakeClock {
    file: PathBuf,
}

impl FakeClock {
    fn set(&self, offset: i64) {
        let partial = self.file.with_extension("partial");
        std::fs::write(&partial, format!("{offset:+}\n")).expect("write the clock offset");
        std::fs::rename(&partial, &self.file).expect("move the clock offset in place");
    }

    fn launch(&self, library: &Path) -> Launch {
        let env = [
            ("LD_PRELOAD", library.to_str().expect("utf-8 path")),
            (
                "FAKETIME_TIMESTAMP_FILE",
                self.file.to_str().expect("utf-8"),
            ),
            ("FAKETIME_NO_CACHE", "1"),
            // Timers and timeouts keep the real monotonic clock, as they do on a server.
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ];
        Launch {
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Launch::default()
        }
    }
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn shown_time(value: &serde_json::Value, what: &str) -> i64 {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is shown: {value}"))
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{what} {value}: {e}"))
        .as_second()
}

#[test]
fn after_the_clock_goes_back_an_hour_the_next_run_shown_is_the_one_that_will_start() {
    let Some(library) = libfaketime() else {
        prerequisite(
            "after_the_clock_goes_back_an_hour_the_next_run_shown_is_the_one_that_will_start",
            "libfaketime (apt install faketime)",
            false,
        );
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let source = small_source(dir.path());

    // The daemon's clock stands ten seconds before a full hour: time enough to add the
    // repository and the job before it, also on a loaded machine.
    let real = unix_now();
    let hour = (real / HOUR + 2) * HOUR;
    let offset = hour - 10 - real;
    let clock = FakeClock {
        file: dir.path().join("faketime"),
    };
    clock.set(offset);
    let daemon = Cairnd::start_with(&dir.path().join("daemon"), clock.launch(&library));
    daemon.add_repository("main", &dir.path().join("repo"));
    daemon
        .create_backup_job("hourly", &source, &["--schedule", "0 * * * *"])
        .ok();

    // The slot at `hour` fires; the next one shown is an hour later.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = daemon
            .cli(&["run", "list", "--job", "hourly", "--output", "json"])
            .ok()
            .json();
        let runs = runs.as_array().expect("a list");
        if runs.iter().any(|r| r["state"] == "succeeded") {
            assert_eq!(runs.len(), 1, "one run for the slot: {runs:?}");
            assert_eq!(shown_time(&runs[0]["slot"], "the run's slot"), hour);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slot at the full hour did not fire:\n{}",
            daemon.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let job = daemon
        .cli(&["job", "show", "hourly", "--output", "json"])
        .ok()
        .json();
    assert_eq!(shown_time(&job["next_run"], "next run"), hour + HOUR);

    // Back an hour: the slot at `hour` comes round again on the clock, but it ran and
    // never runs twice, so the next run is still the one after it.
    clock.set(offset - HOUR);
    let job = daemon
        .cli(&["job", "show", "hourly", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        shown_time(&job["next_run"], "next run after the clock went back"),
        hour + HOUR,
        "{job}"
    );
    let status = daemon.cli(&["status", "--output", "json"]).json();
    assert_eq!(
        shown_time(&status["next_run"], "the status's next run"),
        hour + HOUR,
        "{status}"
    );
    let listed = daemon.cli(&["job", "list", "--output", "json"]).ok().json();
    assert_eq!(
        shown_time(&listed[0]["next_run"], "the listed next run"),
        hour + HOUR
    );
}
