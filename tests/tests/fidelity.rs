//! The second fidelity tree, on a real ext4 filesystem: POSIX ACLs (default ACLs too),
//! file capabilities, inode flags (immutable, append-only, nodump, noatime), 255-byte
//! names, NFC and NFD names side by side, a 3 KiB path, times before 1970, an empty
//! file with xattrs, a hardlink group split across directories, a 0555 directory, and
//! a 2 GiB sparse file with 4 KiB of data that is backed up without reading its holes
//! and restored with exactly its blocks.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use cairn_e2e::compare::differences;
use cairn_e2e::run::{Cairn, Ext4, have, is_root, prerequisite, restored_path};

fn run(program: &str, args: &[&OsStr]) {
    let status = Command::new(program)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?}");
}

fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    let t = rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: nanos as _,
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &rustix::fs::Timestamps {
            last_access: t,
            last_modification: t,
        },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

/// `security.capability` granting CAP_NET_RAW, effective (VFS_CAP_REVISION_2).
fn capability_net_raw() -> Vec<u8> {
    let mut value = Vec::new();
    for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        value.extend_from_slice(&word.to_le_bytes());
    }
    value
}

const SPARSE_SIZE: u64 = 2 * 1024 * 1024 * 1024;

/// Builds the tree under `root`.
fn second_tree(root: &Path) {
    fs::create_dir_all(root).expect("root");
    // ACLs: an access ACL on a file, access and default ACLs on a directory.
    let acl = root.join("acl");
    fs::create_dir(&acl).expect("mkdir");
    fs::write(acl.join("shared.txt"), b"acl").expect("write");
    run(
        "setfacl",
        &[
            "-m".as_ref(),
            "u:1234:rw,g:5678:r".as_ref(),
            acl.join("shared.txt").as_os_str(),
        ],
    );
    run(
        "setfacl",
        &["-m".as_ref(), "u:1234:rwx".as_ref(), acl.as_os_str()],
    );
    run(
        "setfacl",
        &[
            "-d".as_ref(),
            "-m".as_ref(),
            "u:1234:rwx,g::rx".as_ref(),
            acl.as_os_str(),
        ],
    );
    // A file capability.
    fs::write(root.join("ping-like"), b"#!/bin/true\n").expect("write");
    fs::set_permissions(root.join("ping-like"), fs::Permissions::from_mode(0o755)).expect("chmod");
    xattr::set(
        root.join("ping-like"),
        "security.capability",
        &capability_net_raw(),
    )
    .expect("capability");
    // Names: 255 bytes, and NFC and NFD forms of the same word side by side.
    let names = root.join("names");
    fs::create_dir(&names).expect("mkdir");
    fs::write(names.join("x".repeat(255)), b"long").expect("write");
    fs::write(names.join("caf\u{e9}"), b"nfc").expect("write");
    fs::write(names.join("cafe\u{301}"), b"nfd").expect("write");
    // A path of more than 3 KiB.
    let mut long = root.join("long");
    for level in 0..16 {
        long.push(format!("{level:02}-{}", "p".repeat(190)));
    }
    fs::create_dir_all(&long).expect("deep path");
    fs::write(long.join("end"), b"3 KiB down").expect("write");
    assert!(long.as_os_str().len() > 3072);
    // Times before 1970.
    fs::write(root.join("1960"), b"old").expect("write");
    set_mtime(&root.join("1960"), -315_619_200, 123_456_789);
    // An empty file with extended attributes.
    fs::write(root.join("empty-with-xattrs"), b"").expect("write");
    xattr::set(
        root.join("empty-with-xattrs"),
        "user.note",
        b"empty but annotated",
    )
    .expect("xattr");
    // A hardlink group split across directories.
    for dir in ["links/a", "links/b/deeper", "links/c"] {
        fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    fs::write(root.join("links/a/one"), b"linked three times").expect("write");
    fs::hard_link(root.join("links/a/one"), root.join("links/b/deeper/two")).expect("link");
    fs::hard_link(root.join("links/a/one"), root.join("links/c/three")).expect("link");
    // A 2 GiB sparse file with 4 KiB of data in the middle.
    let sparse = fs::File::create(root.join("thin.img")).expect("sparse");
    sparse.set_len(SPARSE_SIZE).expect("set_len");
    sparse
        .write_all_at(&[0x5a; 4096], SPARSE_SIZE / 2)
        .expect("write");
    drop(sparse);
    // Inode flags.
    let flags = root.join("flags");
    fs::create_dir_all(flags.join("locked-dir")).expect("mkdir");
    fs::create_dir_all(flags.join("nodump-dir")).expect("mkdir");
    fs::write(
        flags.join("locked-dir/inside"),
        b"in an immutable directory",
    )
    .expect("write");
    for (name, letters) in [
        ("immutable", "+i"),
        ("append-only", "+a"),
        ("nodump", "+d"),
        ("noatime", "+A"),
    ] {
        fs::write(flags.join(name), name).expect("write");
        run("chattr", &[letters.as_ref(), flags.join(name).as_os_str()]);
    }
    // A read-only directory.
    let read_only = root.join("read-only");
    fs::create_dir(&read_only).expect("mkdir");
    fs::write(read_only.join("inside"), b"in 0555").expect("write");
    fs::set_permissions(&read_only, fs::Permissions::from_mode(0o555)).expect("chmod");
    // Times last (children before their directories), then the directory flags.
    set_mtime(&flags.join("locked-dir"), 1_600_000_000, 5);
    run(
        "chattr",
        &["+d".as_ref(), flags.join("nodump-dir").as_os_str()],
    );
    run(
        "chattr",
        &["+i".as_ref(), flags.join("locked-dir").as_os_str()],
    );
}

#[test]
fn the_second_fidelity_tree_restores_identically_on_ext4() {
    if !prerequisite(
        "the_second_fidelity_tree_...",
        "root (a loop-mounted ext4)",
        is_root(),
    ) || !prerequisite(
        "the_second_fidelity_tree_...",
        "setfacl (package acl)",
        have("setfacl"),
    ) {
        return;
    }
    let cairn = Cairn::init();
    let ext4 = Ext4::new(cairn.dir.path(), 512);
    let source = ext4.mount.join("source");
    second_tree(&source);

    let backup = cairn.backup(&source);
    let read = backup["summary"]["bytes_read"]
        .as_u64()
        .expect("bytes_read");
    assert!(
        read < 1024 * 1024,
        "the sparse file's holes were read: {read} bytes read"
    );
    let snapshot = backup["snapshot_id"].as_str().expect("id").to_owned();

    let target = ext4.mount.join("target");
    for attempt in ["into an empty target", "again, over the first restore"] {
        let restore = cairn.restore(&snapshot, &target);
        assert_eq!(
            restore.code, 0,
            "{attempt}: {}{}",
            restore.stdout, restore.stderr
        );
        let found = differences(&source, &restored_path(&target, &source));
        assert!(found.is_empty(), "{attempt}: {found:#?}");
    }
    // The restored sparse file has the source's blocks, no more.
    let blocks =
        |path: &Path| std::os::unix::fs::MetadataExt::blocks(&fs::metadata(path).expect("stat"));
    assert_eq!(
        blocks(&restored_path(&target, &source).join("thin.img")),
        blocks(&source.join("thin.img"))
    );
    // Unlock what the test made immutable, so the image can go.
    for root in [&source, &restored_path(&target, &source)] {
        for path in ["flags/immutable", "flags/append-only", "flags/locked-dir"] {
            let _ = Command::new("chattr")
                .args(["-i", "-a"])
                .arg(root.join(path))
                .status();
        }
    }
}
