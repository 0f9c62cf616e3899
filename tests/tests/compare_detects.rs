//! The tree comparison the restore tests rely on must notice every kind of damage;
//! otherwise a broken restore would pass them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cairn_e2e::compare::differences;

/// Sets mtime (and atime) without following a final symlink.
fn set_mtime(path: &Path, nanos: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: 1_600_000_000,
        tv_nsec: nanos as _,
    };
    let times = rustix::fs::Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

type Damage = Box<dyn Fn(&Path)>;

fn copy_pair() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for root in [&a, &b] {
        fs::create_dir_all(root.join("sub")).expect("mkdir");
        fs::write(root.join("sub/file"), b"same").expect("write");
        fs::write(root.join("other"), b"x").expect("write");
        std::os::unix::fs::symlink("target", root.join("link")).expect("symlink");
        fs::hard_link(root.join("other"), root.join("sub/other-link")).expect("link");
    }
    // Equalise mtimes, directories last.
    for root in [&a, &b] {
        for path in ["sub/file", "other", "link", "sub", ""] {
            set_mtime(&root.join(path), 5);
        }
    }
    (dir, a, b)
}

#[test]
fn identical_trees_have_no_differences() {
    let (_dir, a, b) = copy_pair();
    assert_eq!(differences(&a, &b), Vec::<String>::new());
}

#[test]
fn each_kind_of_damage_is_reported() {
    let damages: Vec<(&str, Damage)> = vec![
        (
            "content",
            Box::new(|b| fs::write(b.join("sub/file"), b"diff").expect("write")),
        ),
        (
            "mode",
            Box::new(|b| {
                fs::set_permissions(b.join("other"), fs::Permissions::from_mode(0o4644))
                    .expect("chmod")
            }),
        ),
        ("mtime", Box::new(|b| set_mtime(&b.join("link"), 6))),
        (
            "xattrs",
            Box::new(|b| xattr::set(b.join("other"), "user.extra", b"1").expect("xattr")),
        ),
        (
            "link target",
            Box::new(|b| {
                fs::remove_file(b.join("link")).expect("rm");
                std::os::unix::fs::symlink("elsewhere", b.join("link")).expect("symlink");
            }),
        ),
        (
            "missing",
            Box::new(|b| fs::remove_file(b.join("sub/file")).expect("rm")),
        ),
        (
            "appeared",
            Box::new(|b| fs::write(b.join("new"), b"").expect("write")),
        ),
        (
            "hardlink",
            Box::new(|b| {
                fs::remove_file(b.join("sub/other-link")).expect("rm");
                fs::write(b.join("sub/other-link"), b"x").expect("write");
            }),
        ),
    ];
    for (what, damage) in damages {
        let (_dir, a, b) = copy_pair();
        damage(&b);
        let found = differences(&a, &b);
        assert!(
            found.iter().any(|d| d.contains(what)),
            "{what} damage not reported: {found:?}"
        );
    }
}
