//! A repository the daemon may not read (its directory closed to it) is answered
//! PERMISSION_DENIED, naming the file, through the API and the CLI, and the console
//! shows it under the field that asked, once, instead of taking it for a daemon that
//! went away. The daemon runs as root without the capabilities that pass file
//! permissions (dac_override, dac_read_search), as a hardened unit may.

use std::os::unix::fs::PermissionsExt;

use cairn_e2e::daemon::{Cairnd, Launch};
use cairn_e2e::run::{have, is_root, prerequisite};
use cairn_e2e::tmux::{self, Tmux};

/// A daemon that file permissions bind, with repository `main` it can no longer read.
fn closed_repository(dir: &std::path::Path, test: &str) -> Option<Cairnd> {
    if !prerequisite(test, "root (to drop capabilities)", is_root())
        || !prerequisite(test, "setpriv", have("setpriv"))
    {
        return None;
    }
    let daemon = Cairnd::start_with(
        &dir.join("daemon"),
        Launch {
            wrapper: vec![
                "setpriv".into(),
                "--bounding-set=-dac_override,-dac_read_search".into(),
                "--".into(),
            ],
            ..Launch::default()
        },
    );
    let repo = dir.join("repo");
    daemon.add_repository("main", &repo);
    std::fs::set_permissions(&repo, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    Some(daemon)
}

#[test]
fn a_repository_the_daemon_cannot_read_is_permission_denied_through_the_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let test = "a_repository_the_daemon_cannot_read_is_permission_denied_through_the_api";
    let Some(daemon) = closed_repository(dir.path(), test) else {
        return;
    };
    let ran = daemon.cli(&["snapshot", "list", "--repo", "main"]);
    assert_ne!(ran.code, 0, "{ran:?}");
    let said = &ran.stderr;
    assert!(said.contains("permission denied"), "the code: {said}");
    assert!(
        said.contains("repo") && said.contains("Permission denied"),
        "names the file and the system's word: {said}"
    );
    assert!(
        !said.contains("stopped answering"),
        "not taken for a lost daemon: {said}"
    );
    // The daemon is fine and says so; only that repository is closed.
    daemon.cli(&["status"]).ok();
}

#[test]
fn the_console_shows_a_repository_it_cannot_read_under_the_field_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let test = "the_console_shows_a_repository_it_cannot_read_under_the_field_once";
    if !prerequisite(test, "tmux", tmux::available()) {
        return;
    }
    let Some(daemon) = closed_repository(dir.path(), test) else {
        return;
    };
    let source = dir.path().join("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    let console = Tmux::console(dir.path(), &daemon.socket);
    console.wait_for("no jobs yet");
    console.new_job_from("nightly", source.to_str().expect("utf-8 path"));
    console.keys(&["Tab"]);
    console.keys(&["Tab"]);
    console.type_text("last 1");
    let screen = console.wait_for("Permission denied");
    assert_eq!(
        screen.matches("Permission denied").count(),
        1,
        "shown once, under the field:\n{screen}"
    );
    assert!(
        !screen.contains("not reachable") && !screen.contains("not connected"),
        "not taken for a lost daemon:\n{screen}"
    );
    // Under the field, not in a message box over the form (titled by what failed).
    assert!(
        !screen.contains("planning the retention"),
        "not a message box:\n{screen}"
    );
    let line = screen
        .lines()
        .position(|l| l.contains("Permission denied"))
        .expect("the line");
    let above = screen.lines().take(line).collect::<Vec<_>>().join("\n");
    assert!(
        above.lines().rev().take(3).any(|l| l.contains("last 1")),
        "right under the retention field:\n{screen}"
    );
    assert!(console.alive());
}
