//! `cairn apply -f jobs.toml`: declarative jobs, as config management uses them. The
//! second apply of the same file changes nothing; a bad file changes nothing either.

use cairn_e2e::daemon::Cairnd;

fn setup() -> (tempfile::TempDir, Cairnd) {
    let dir = tempfile::tempdir().expect("temp dir");
    let daemon = Cairnd::start(&dir.path().join("daemon"));
    daemon.add_repository("main", &dir.path().join("repo"));
    (dir, daemon)
}

const JOBS: &str = r#"
[jobs.web]
repository = "main"
paths = ["/srv/www", "/etc/nginx"]
excludes = ["*.tmp"]
schedule = "0 3 * * *"
timezone = "Europe/Berlin"
before = ["/usr/local/bin/flush-cache", "--quick"]

[jobs.web.keep]
daily = 7
monthly = 12
tags = ["release"]

[jobs.verify]
repository = "main"
kind = "check"
read_data_subset_percent = 10
schedule = "0 5 * * 0"

[jobs.db]
repository = "main"
command = { argv = ["pg_dumpall"], filename = "all.sql" }
enabled = false
"#;

fn apply(daemon: &Cairnd, file: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "apply",
        "-f",
        file.to_str().expect("utf-8"),
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    daemon.cli(&args).ok().json()
}

fn actions(plan: &serde_json::Value) -> Vec<(String, String)> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_owned(),
                c["action"].as_str().expect("action").to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn jobs(daemon: &Cairnd) -> serde_json::Value {
    daemon.cli(&["job", "list", "--output", "json"]).ok().json()
}

#[test]
fn apply_twice_changes_nothing_the_second_time_and_follows_edits_and_removals() {
    let (dir, daemon) = setup();
    // A job made by hand, not in the file: apply removes it.
    daemon
        .cli(&[
            "job", "create", "manual", "--repo", "main", "--path", "/srv",
        ])
        .ok();
    let file = dir.path().join("jobs.toml");
    std::fs::write(&file, JOBS).expect("write jobs file");

    let dry = apply(&daemon, &file, &["--dry-run"]);
    assert_eq!(dry["applied"], false);
    assert_eq!(
        actions(&dry),
        pairs(&[
            ("db", "create"),
            ("manual", "delete"),
            ("verify", "create"),
            ("web", "create")
        ])
    );
    assert_eq!(
        jobs(&daemon).as_array().map(Vec::len),
        Some(1),
        "a dry run changed jobs"
    );

    let first = apply(&daemon, &file, &[]);
    assert_eq!(first["applied"], true);
    assert_eq!(actions(&first), actions(&dry));
    let listed = jobs(&daemon);
    let names: Vec<&str> = listed
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| j["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["db", "verify", "web"]);
    let web = daemon
        .cli(&["job", "show", "web", "--output", "json"])
        .ok()
        .json();
    assert_eq!(web["schedule"]["timezone"], "Europe/Berlin");
    assert_eq!(web["spec"]["excludes"][0], "*.tmp");
    assert_eq!(
        web["spec"]["keep"],
        serde_json::json!({"daily": 7, "monthly": 12, "tags": ["release"]})
    );
    assert!(web["next_run"].is_string(), "{web}");

    let second = apply(&daemon, &file, &[]);
    assert_eq!(second["applied"], false, "{second}");
    assert_eq!(
        actions(&second),
        pairs(&[
            ("db", "unchanged"),
            ("verify", "unchanged"),
            ("web", "unchanged")
        ])
    );
    let text = daemon
        .cli(&["apply", "-f", file.to_str().expect("utf-8")])
        .ok();
    assert!(
        text.stdout
            .contains("0 to create, 0 to update, 0 to delete, 3 unchanged"),
        "{}",
        text.stdout
    );

    // Edit one job, drop another.
    let edited = JOBS
        .replace("0 3 * * *", "30 2 * * *")
        .replace("daily = 7", "daily = 14")
        .replace(
            "[jobs.verify]\nrepository = \"main\"\nkind = \"check\"\nread_data_subset_percent = 10\nschedule = \"0 5 * * 0\"\n",
            "",
        );
    std::fs::write(&file, edited).expect("write jobs file");
    let third = apply(&daemon, &file, &[]);
    assert_eq!(
        actions(&third),
        pairs(&[("db", "unchanged"), ("verify", "delete"), ("web", "update")])
    );
    let web_change = third["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["name"] == "web")
        .expect("web");
    assert_eq!(
        web_change["fields"],
        serde_json::json!(["schedule", "keep"])
    );
    assert_eq!(
        actions(&apply(&daemon, &file, &[])),
        pairs(&[("db", "unchanged"), ("web", "unchanged")])
    );
}

#[test]
fn a_bad_job_file_is_refused_whole_with_the_line_and_changes_nothing() {
    let (dir, daemon) = setup();
    let file = dir.path().join("jobs.toml");
    std::fs::write(&file, JOBS).expect("write");
    apply(&daemon, &file, &[]);
    let before = jobs(&daemon);

    let cases: &[(&str, &str)] = &[
        (
            "[jobs.web]\nrepository = \"main\"\npaths = [\"/srv\"]\nschedul = \"0 3 * * *\"\n",
            "line 4",
        ),
        (
            "[jobs.web]\nrepository = \"main\"\npaths = [\"/srv\"]\nschedule = \"61 * * * *\"\n",
            "schedule",
        ),
        (
            "[jobs.web]\nrepository = \"nope\"\npaths = [\"/srv\"]\n",
            "no repository named \"nope\"",
        ),
        (
            "[jobs.web]\nrepository = \"main\"\npaths = [\"srv\"]\n",
            "not absolute",
        ),
        (
            "[jobs.web]\nrepository = \"main\"\nkind = \"check\"\npaths = [\"/srv\"]\n",
            "only backup jobs",
        ),
        (
            "[jobs.web]\nrepository = \"main\"\npaths = [\"/srv\"]\n[jobs.web.keep]\nwithin = \"1m\"\n",
            "backup.retention.keep_within",
        ),
        (
            "[jobs.web]\nrepository = \"main\"\npaths = [\"/srv\"]\n[jobs.web.keep]\ndayly = 3\n",
            "line 5",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&file, text).expect("write");
        let refused = daemon.cli(&["apply", "-f", file.to_str().expect("utf-8")]);
        assert_eq!(refused.code, 2, "{text}: {}", refused.stdout);
        assert!(
            refused.stderr.contains(expected),
            "{text}: expected {expected:?} in {}",
            refused.stderr
        );
        assert_eq!(jobs(&daemon), before, "{text} changed the jobs");
    }
}
