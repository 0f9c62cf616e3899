//! `cairn console` end to end: a real cairnd and the console in tmux, driven by keys
//! the way an admin drives it over SSH, read back with capture-pane. Creates a job in
//! the editor (source picked on the daemon host, retention "last 1", cron checked as
//! typed), runs it, watches it finish, opens its log, runs it again and sees the first
//! snapshot forgotten, browses its snapshot, restores one file and checks the file's
//! bytes; then rides out a daemon restart and quits cleanly. Forgets a snapshot and
//! prunes its repository from the repositories screen.

use std::path::Path;

use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::{binary, prerequisite};
use cairn_e2e::tmux::{self, Tmux};

#[test]
fn create_run_watch_browse_and_restore_through_the_console() {
    if !prerequisite(
        "create_run_watch_browse_and_restore_through_the_console",
        "tmux",
        tmux::available(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    let source = dir.path().join("src");
    std::fs::create_dir_all(source.join("sub")).expect("mkdir");
    let wanted: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(source.join("a.bin"), &wanted).expect("write");
    std::fs::write(source.join("b.txt"), b"not restored\n").expect("write");
    std::fs::write(source.join("sub/c.txt"), b"nested\n").expect("write");
    let source = source.to_str().expect("utf-8 path").to_owned();

    let console = Tmux::console(dir.path(), &daemon.socket);
    console.wait_for("no jobs yet");

    // The editor: name, (repository main by default), sources from the picker.
    console.new_job_from("nightly", &source);
    // Retention: the newest snapshot only (a mistyped rule says why at once).
    console.keys(&["Tab"]);
    console.keys(&["Tab"]);
    console.type_text("lats 1");
    console.wait_for("\"lats\" is not a rule");
    for _ in 0.."lats 1".len() {
        console.keys(&["BSpace"]);
    }
    console.type_text("last 1");
    // The daemon answers what it keeps of these sources' snapshots: none yet.
    console.wait_for("no snapshots of these sources yet");
    // The cron expression is checked by the daemon as it is typed.
    console.keys(&["Tab"]);
    console.type_text("0 3 * * * *  x");
    console.wait_for("has 7 fields");
    for _ in 0..4 {
        console.keys(&["BSpace"]);
    }
    let screen = console.wait_for("03:00:00 UTC");
    assert_eq!(
        screen.matches("03:00:00 UTC").count(),
        5,
        "the next five fire times:\n{screen}"
    );
    console.keys(&["C-s"]);
    console.wait_for("job nightly saved");
    console.keys(&["Escape"]);
    console.wait_for(" job nightly (enabled) ");
    console.wait_for("retention  last 1");

    // Run it now and watch it end.
    console.keys(&["r"]);
    console.wait_for("succeeded");
    console.keys(&["Enter"]);
    console.wait_for(" run 1 of nightly: succeeded ");
    let screen = console.wait_for("run ended");
    assert!(screen.contains("files 3 new"), "{screen}");
    // A second run keeps its own snapshot and forgets the first, and says so.
    console.keys(&["Escape"]);
    console.keys(&["r"]);
    console.wait_for("2      succeeded");
    console.keys(&["Enter"]);
    console.wait_for(" run 2 of nightly: succeeded ");
    console.wait_for("retention kept 1 of the job's snapshots, forgot 1");

    // Its snapshot: down the single-child directories to the source, choose a.bin.
    console.keys(&["Escape"]);
    console.keys(&["s"]);
    console.wait_for("1 snapshots in main made by job nightly");
    console.keys(&["Enter"]);
    // Each directory holds only the next one; Enter once its listing is there.
    for part in Path::new(&source).components().skip(1) {
        let name = part.as_os_str().to_str().expect("utf-8 path");
        console.wait_for(&format!("{name}/"));
        console.keys(&["Enter"]);
    }
    console.wait_for(&format!(": {source} "));
    console.wait_for("a.bin");
    console.keys(&["Space"]);
    console.wait_for("(1 chosen, R restores)");
    console.keys(&["R"]);
    let target = dir.path().join("restored");
    console.type_text(target.to_str().expect("utf-8 path"));
    console.keys(&["Enter"]);
    console.wait_for("confirm: y yes, n no");
    console.keys(&["y"]);
    console.wait_for(" restore run 3: succeeded ");
    let restored = target.join(source.trim_start_matches('/')).join("a.bin");
    assert_eq!(
        std::fs::read(&restored).expect("the restored file"),
        wanted,
        "{} has the bytes of the snapshot",
        restored.display()
    );
    assert!(
        !target
            .join(source.trim_start_matches('/'))
            .join("b.txt")
            .exists(),
        "only the chosen file is restored"
    );

    // The daemon goes away and comes back: the console says so and carries on.
    daemon.stop();
    console.wait_for("disconnected:");
    daemon.restart();
    console.wait_for("connected  cairnd");

    // Esc walks back screen by screen to the dashboard; q there quits.
    for _ in 0..10 {
        if console.screen().contains(" jobs (1) ") {
            break;
        }
        console.keys(&["Escape"]);
    }
    console.wait_for(" jobs (1) ");
    console.keys(&["q"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while console.alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        !console.alive(),
        "q on the dashboard quits:\n{}",
        console.screen()
    );
}

#[test]
fn sigterm_ends_the_console_with_the_terminal_put_back() {
    if !prerequisite(
        "sigterm_ends_the_console_with_the_terminal_put_back",
        "tmux",
        tmux::available(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    let after = dir.path().join("stty-after");
    let console_line = format!(
        "{} console --socket {}",
        binary("cairn").display(),
        daemon.socket.display()
    );
    let console = Tmux::start(
        dir.path(),
        80,
        24,
        &format!(
            "sh -c 'stty -a > {before}; {console_line}; echo exit=$? > {done}; stty -a > {after}; sleep 30'",
            before = dir.path().join("stty-before").display(),
            done = dir.path().join("done").display(),
            after = after.display(),
        ),
    );
    console.wait_for("no jobs yet");
    let pids = std::process::Command::new("pgrep")
        .args(["-f", &console_line])
        .output()
        .expect("pgrep");
    let pid: i32 = String::from_utf8_lossy(&pids.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .find(|pid: &i32| {
            // The console itself, not the shell that started it.
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "cairn")
        })
        .expect("the console's pid");
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(pid).expect("pid"),
        rustix::process::Signal::TERM,
    )
    .expect("SIGTERM");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !after.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let done = std::fs::read_to_string(dir.path().join("done")).expect("the console ended");
    assert_eq!(done.trim(), "exit=0");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = std::fs::read_to_string(dir.path().join("stty-before")).expect("stty before");
    let after = std::fs::read_to_string(&after).expect("stty after");
    assert!(
        after.contains(" icanon") && after.contains(" echo "),
        "{after}"
    );
    assert_eq!(before, after, "the terminal's modes are as before");
    let screen = console.screen();
    assert!(
        !screen.contains("no jobs yet"),
        "the alternate screen is left:\n{screen}"
    );
}

#[test]
fn forget_a_snapshot_and_prune_its_repository_from_the_console() {
    if !prerequisite(
        "forget_a_snapshot_and_prune_its_repository_from_the_console",
        "tmux",
        tmux::available(),
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    let source = dir.path().join("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    daemon.create_backup_job("web", &source, &[]).ok();
    let (_, older) = daemon.backup_after_writing("web", &source.join("a"), &"old ".repeat(50_000));
    let (_, newer) = daemon.backup_after_writing("web", &source.join("a"), &"new ".repeat(50_000));
    let repository_stats = || {
        daemon
            .cli(&["repo", "show", "main", "--output", "json"])
            .ok()
            .json()["stats"]
            .clone()
    };
    let stored_before = repository_stats()["stored_bytes"].as_u64().expect("size");

    let console = Tmux::console(dir.path(), &daemon.socket);
    console.wait_for(" jobs (1) ");
    // Without a prune job, P says how to make one.
    console.keys(&["R"]);
    console.wait_for("LAST PRUNE");
    console.keys(&["P"]);
    console.wait_for("main has no prune job");
    console.keys(&["Escape"]);
    daemon
        .cli(&["job", "create", "tidy", "--repo", "main", "--kind", "prune"])
        .ok();

    // The older snapshot: select it, D, and the question names it.
    console.keys(&["Enter"]);
    console.wait_for(" 2 snapshots in main ");
    console.keys(&["j", "D"]);
    let question = console.wait_for("confirm: y yes, n no");
    assert!(
        question.contains(&format!("Forget snapshot {} of main", &older[..8])),
        "{question}"
    );
    console.keys(&["y"]);
    console.wait_for(&format!("forgot {} in main", &older[..8]));
    console.keys(&["Escape"]);
    let screen = console.wait_for(" 1 snapshots in main ");
    assert!(screen.contains(&newer[..8]), "{screen}");

    // Back on the repositories screen, P runs the prune job after a question and
    // its run opens.
    console.keys(&["Escape"]);
    console.wait_for("LAST PRUNE");
    console.keys(&["P"]);
    console.wait_for("Prune main now (job tidy)?");
    console.keys(&["y"]);
    console.wait_for(" run 3 of tidy: succeeded ");
    let screen = console.wait_for("run ended");
    assert!(
        screen.contains("deleted 2 packs, repacked 0, freed"),
        "the forgotten snapshot's tree and data packs: {screen}"
    );
    console.keys(&["Escape"]);
    console.wait_for("LAST PRUNE");
    let stats = repository_stats();
    assert_eq!(stats["last_prune_state"], "succeeded", "{stats}");
    assert!(
        stats["stored_bytes"].as_u64().expect("size") < stored_before,
        "the forgotten snapshot's data is gone: {stats}"
    );
    let screen = console.screen();
    let row = screen
        .lines()
        .find(|l| l.contains("main "))
        .expect("main's row");
    // Never checked, pruned just now with nothing left over.
    assert_eq!(row.matches("never").count(), 1, "{row}");
    assert!(row.contains(" 0 B "), "{row}");
}
