//! Shell completions and man pages come from the CLI definition and work: bash
//! completes real subcommands, every page is valid roff naming its options.

use std::process::Command;

use cairn_e2e::run::binary;

fn cairn(args: &[&str]) -> std::process::Output {
    Command::new(binary("cairn"))
        .args(args)
        .output()
        .expect("running cairn")
}

#[test]
fn bash_completion_completes_subcommands_and_their_options() {
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("cairn.bash");
    let out = cairn(&["completions", "bash"]);
    assert!(out.status.success(), "{out:?}");
    std::fs::write(&script, &out.stdout).expect("write");
    let complete = |words: &str| {
        let probe = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); _cairn cairn \"${{COMP_WORDS[-1]}}\" \"${{COMP_WORDS[-2]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = Command::new("bash")
            .args(["-c", &probe])
            .output()
            .expect("bash");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = complete("cairn sn");
    assert!(top.lines().any(|l| l == "snapshot"), "{top}");
    assert!(top.lines().any(|l| l == "snapshots"), "{top}");
    let job = complete("cairn job c");
    assert!(job.lines().any(|l| l == "create"), "{job}");
    let restore = complete("cairn restore --ver");
    assert!(restore.lines().any(|l| l == "--verify"), "{restore}");

    for shell in ["zsh", "fish"] {
        let out = cairn(&["completions", shell]);
        assert!(out.status.success() && !out.stdout.is_empty(), "{shell}");
    }
    let bad = cairn(&["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("tcsh"));
}

#[test]
fn man_pages_cover_every_subcommand_and_name_their_options() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = cairn(&["man", "--dir", dir.path().to_str().expect("utf-8")]);
    assert!(out.status.success(), "{out:?}");
    for page in [
        "cairn.1",
        "cairn-restore.1",
        "cairn-job-create.1",
        "cairn-snapshot-ls.1",
        "cairn-apply.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page))
            .unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page} is not roff"
        );
    }
    let restore = std::fs::read_to_string(dir.path().join("cairn-restore.1")).expect("page");
    for option in ["target", "verify", "wait"] {
        assert!(restore.contains(option), "cairn-restore.1 lacks --{option}");
    }
    if let Ok(rendered) = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(dir.path().join("cairn-job-create.1"))
        .output()
    {
        assert!(
            rendered.status.success() && rendered.stderr.is_empty(),
            "groff: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
    }
}
