//! Roles, as the kernel reports them: the CLI run as other uids with real groups
//! (setpriv) against a real cairnd, checked against the RPC × role table. Needs root
//! (to create groups and switch uids); without it the test says so and skips.

use cairn_e2e::daemon::Cairnd;
use cairn_e2e::run::{is_root, prerequisite};
use cairn_e2e::users::{Groups, Who, open_up};

const SOCKET_GROUP: &str = "cairn-t-sock";
const VIEWER_GROUP: &str = "cairn-t-view";
const OPERATOR_GROUP: &str = "cairn-t-oper";
const ADMIN_GROUP: &str = "cairn-t-admin";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    None,
    Viewer,
    Operator,
    Admin,
}

#[test]
fn each_role_may_call_exactly_the_rpcs_the_table_gives_it() {
    let test = "each_role_may_call_exactly_the_rpcs_the_table_gives_it";
    if !prerequisite(test, "root (to create groups and switch uids)", is_root()) {
        return;
    }
    let groups = Groups::create(&[SOCKET_GROUP, VIEWER_GROUP, OPERATOR_GROUP, ADMIN_GROUP]);
    if !prerequisite(test, "groupadd", groups.is_some()) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    open_up(root);
    let daemon_dir = root.join("daemon");
    std::fs::create_dir_all(root.join("restores")).expect("mkdir");
    std::fs::create_dir_all(&daemon_dir).expect("mkdir");
    open_up(&daemon_dir);
    std::fs::write(
        daemon_dir.join("cairnd.toml"),
        format!(
            "[access]\nsocket_group = \"{SOCKET_GROUP}\"\nadmin_uids = [0]\nadmin_groups = [\"{ADMIN_GROUP}\"]\noperator_groups = [\"{OPERATOR_GROUP}\"]\nviewer_groups = [\"{VIEWER_GROUP}\"]\noperator_restore_targets = [\"{}\"]\n",
            root.join("restores").display()
        ),
    )
    .expect("config");
    let daemon = Cairnd::start(&daemon_dir);
    let source = root.join("src");
    std::fs::create_dir_all(&source).expect("mkdir");
    std::fs::write(source.join("a.txt"), b"hello\n").expect("write");
    let root_cli = |args: &[&str]| daemon.cli(args).ok();
    daemon.add_repository("main", &root.join("repo"));
    root_cli(&[
        "job",
        "create",
        "web",
        "--repo",
        "main",
        "--path",
        source.to_str().expect("utf-8"),
    ]);
    root_cli(&["job", "run", "web", "--wait"]);
    let jobs_file = root.join("jobs.toml");
    std::fs::write(
        &jobs_file,
        format!(
            "[jobs.web]\nrepository = \"main\"\npaths = [\"{}\"]\n",
            source.display()
        ),
    )
    .expect("jobs file");

    let sock = Groups::gid(SOCKET_GROUP);
    let people = [
        (
            Role::None,
            Who {
                name: "none",
                uid: 61001,
                groups: vec![sock],
            },
        ),
        (
            Role::Viewer,
            Who {
                name: "viewer",
                uid: 61002,
                groups: vec![sock, Groups::gid(VIEWER_GROUP)],
            },
        ),
        (
            Role::Operator,
            Who {
                name: "operator",
                uid: 61003,
                groups: vec![sock, Groups::gid(OPERATOR_GROUP)],
            },
        ),
        (
            Role::Admin,
            Who {
                name: "admin",
                uid: 61004,
                groups: vec![sock, Groups::gid(ADMIN_GROUP)],
            },
        ),
    ];
    for (_, who) in &people {
        root_cli(&[
            "job",
            "create",
            &format!("victim-{}", who.name),
            "--repo",
            "main",
            "--path",
            "/srv",
        ]);
    }

    // (command, the RPC it needs, the role that RPC needs, exit codes when allowed)
    let table: &[(&str, &str, Role, &[i32])] = &[
        ("status", "Daemon/GetStatus", Role::Viewer, &[0]),
        (
            "repo list",
            "Repositories/ListRepositories",
            Role::Viewer,
            &[0],
        ),
        (
            "repo show main",
            "Repositories/GetRepository",
            Role::Viewer,
            &[0],
        ),
        ("job list", "Jobs/ListJobs", Role::Viewer, &[0]),
        ("job show web", "Jobs/GetJob", Role::Viewer, &[0]),
        ("run list", "Runs/ListRuns", Role::Viewer, &[0]),
        ("run show 1", "Runs/GetRun", Role::Viewer, &[0]),
        ("logs --job web", "Logs/StreamLogs", Role::Viewer, &[0]),
        (
            "snapshot list --repo main",
            "Snapshots/ListSnapshots",
            Role::Viewer,
            &[0],
        ),
        (
            "snapshot ls latest --repo main",
            "Snapshots/ListTree",
            Role::Viewer,
            &[0],
        ),
        ("job run web --wait", "Jobs/RunJob", Role::Operator, &[0]),
        // No snapshot has this id: an allowed caller hears that, not a denial.
        (
            "snapshot forget 00000000 --repo main",
            "Snapshots/ForgetSnapshots",
            Role::Operator,
            &[2],
        ),
        (
            "job disable web",
            "Jobs/SetJobEnabled",
            Role::Operator,
            &[0],
        ),
        ("job enable web", "Jobs/SetJobEnabled", Role::Operator, &[0]),
        // Run 1 has ended: an allowed caller hears that, not a denial.
        ("run cancel 1", "Runs/CancelRun", Role::Operator, &[2]),
        (
            "restore latest --repo main --target {root}/restores/{who} --wait",
            "Restores/CreateRestore",
            Role::Operator,
            &[0],
        ),
        // Outside operator_restore_targets: admins only.
        (
            "restore latest --repo main --target {root}/elsewhere/{who} --wait",
            "Restores/CreateRestore",
            Role::Admin,
            &[0],
        ),
        (
            "job create new-{who} --repo main --path /srv",
            "Jobs/CreateJob",
            Role::Admin,
            &[0],
        ),
        (
            "job delete victim-{who}",
            "Jobs/DeleteJob",
            Role::Admin,
            &[0],
        ),
        (
            "repo add r-{who} --path {root}/repos/{who} --init",
            "Repositories/CreateRepository",
            Role::Admin,
            &[0],
        ),
        ("audit", "Audit/ListAudit", Role::Admin, &[0]),
        (
            "apply -f {root}/jobs.toml --dry-run",
            "Jobs/ApplyJobs",
            Role::Admin,
            &[0],
        ),
    ];

    let mut wrong = Vec::new();
    for (role, who) in &people {
        for (command, rpc, needed, ok_codes) in table {
            let args: Vec<String> = command
                .replace("{root}", root.to_str().expect("utf-8"))
                .replace("{who}", who.name)
                .split(' ')
                .map(str::to_owned)
                .collect();
            let ran = who.cli(&daemon.socket, &args);
            let denied = ran.stderr.contains("permission denied");
            let allowed = role >= needed;
            if allowed && (denied || !ok_codes.contains(&ran.code)) {
                wrong.push(format!(
                    "{} `{command}` ({rpc}) should work: exit {}: {}",
                    who.name,
                    ran.code,
                    ran.stderr.trim()
                ));
            }
            let refused_cleanly = denied && ran.code == 2;
            if !allowed && !refused_cleanly {
                wrong.push(format!(
                    "{} `{command}` ({rpc}) should be denied: exit {}: {}",
                    who.name,
                    ran.code,
                    ran.stderr.trim()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Someone outside the socket's group cannot connect, and is told why.
    let outsider = Who {
        name: "outsider",
        uid: 61005,
        groups: vec![],
    };
    let refused = outsider.cli(&daemon.socket, &["status".to_owned()]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("permission denied") && refused.stderr.contains(SOCKET_GROUP),
        "{}",
        refused.stderr
    );

    // Every denial is in the audit trail with the caller's uid and role.
    let audit = root_cli(&["audit", "--denied", "--limit", "1000", "--output", "json"]).json();
    let denials = audit.as_array().expect("audit records");
    for (role, who) in &people {
        // Repeats of one refused RPC within the window are counted into one entry
        // when the window closes: at once, the first of each is there.
        let mut expected: Vec<&str> = table
            .iter()
            .filter(|(_, _, needed, _)| role < needed)
            .map(|(_, rpc, _, _)| *rpc)
            .collect();
        expected.sort_unstable();
        expected.dedup();
        let found = denials.iter().filter(|r| r["uid"] == who.uid).count();
        assert_eq!(
            found,
            expected.len(),
            "{} denials audited: {denials:?}",
            who.name
        );
    }
    assert!(
        denials.iter().all(|r| r["result"]
            .as_str()
            .unwrap_or("")
            .contains("PermissionDenied")),
        "{denials:?}"
    );
}
