//! Which mounted filesystems a backup never descends into on its own: the kernel's
//! pseudo filesystems (`/proc`, `/sys`, cgroups, `/dev`, debugfs, ...). Their files
//! are views of the running system, not data; some never end (`/proc/*/pagemap`)
//! and some block or change as they are read. A source path that names one is still
//! backed up: the operator asked for it.

use std::collections::HashMap;
use std::path::Path;

/// Filesystem types that hold no data of their own.
const PSEUDO_TYPES: &[&str] = &[
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "devtmpfs",
    "devpts",
    "debugfs",
    "tracefs",
    "securityfs",
    "pstore",
    "bpf",
    "configfs",
    "fusectl",
    "efivarfs",
    "mqueue",
    "binfmt_misc",
    "autofs",
    "rpc_pipefs",
    "nsfs",
    "hugetlbfs",
];

/// `statfs` magic numbers of the same, for when `/proc/self/mountinfo` cannot be read
/// (devtmpfs reports tmpfs's number, so only the mount table tells it apart).
const PSEUDO_MAGICS: &[i64] = &[
    0x9fa0,      // proc
    0x6265_6572, // sysfs
    0x0027_e0eb, // cgroup
    0x6367_7270, // cgroup2
    0x1cd1,      // devpts
    0x6462_6720, // debugfs
    0x7472_6163, // tracefs
    0x7363_6673, // securityfs
    0x6165_676c, // pstore
    0xcafe_4a11, // bpf
    0x6265_6570, // configfs
    0x6573_5546, // fusectl
    0xde5e_81e4, // efivarfs
    0x1980_0202, // mqueue
    0x4249_4e4d, // binfmt_misc
    0x0187,      // autofs
    0x6e73_6673, // nsfs
    0x9584_58f6, // hugetlbfs
];

/// The pseudo filesystems mounted on this host, by device number.
#[derive(Debug, Clone, Default)]
pub struct PseudoFilesystems {
    /// Device → filesystem type, from the mount table; `None` when it was unreadable.
    by_device: Option<HashMap<u64, String>>,
}

impl PseudoFilesystems {
    /// Reads this process's mount table.
    pub fn load() -> Self {
        let by_device = std::fs::read_to_string("/proc/self/mountinfo")
            .ok()
            .map(|text| parse_mountinfo(&text));
        PseudoFilesystems { by_device }
    }

    /// The pseudo filesystem type of the directory `path` on device `dev`, if it is one.
    pub fn type_of(&self, dev: u64, path: &Path) -> Option<&'static str> {
        match &self.by_device {
            Some(types) => {
                let fs_type = types.get(&dev)?;
                PSEUDO_TYPES.iter().copied().find(|t| t == fs_type)
            }
            None => {
                let stat = rustix::fs::statfs(path).ok()?;
                #[allow(clippy::unnecessary_cast)]
                let magic = stat.f_type as i64;
                PSEUDO_MAGICS
                    .contains(&magic)
                    .then_some("pseudo filesystem")
            }
        }
    }
}

/// Device number → filesystem type of every line of `/proc/self/mountinfo`:
/// `id parent major:minor root mount-point options [optional...] - type source ...`.
fn parse_mountinfo(text: &str) -> HashMap<u64, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(' ');
        let Some(device) = fields.nth(2) else {
            continue;
        };
        let Some((major, minor)) = device.split_once(':') else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else {
            continue;
        };
        let Some(fs_type) = fields.skip_while(|f| *f != "-").nth(1) else {
            continue;
        };
        out.insert(libc::makedev(major, minor), fs_type.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_table_lines_give_each_device_its_type() {
        let text = "22 28 0:21 / /proc rw,nosuid shared:13 - proc proc rw\n\
                    28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n\
                    23 28 0:5 / /dev rw,nosuid - devtmpfs udev rw,size=10k\n\
                    garbage line\n";
        let types = parse_mountinfo(text);
        assert_eq!(types[&libc::makedev(0, 21)], "proc");
        assert_eq!(types[&libc::makedev(259, 2)], "ext4");
        assert_eq!(types[&libc::makedev(0, 5)], "devtmpfs");
        assert_eq!(types.len(), 3);
    }

    #[test]
    fn proc_on_this_host_is_a_pseudo_filesystem_and_the_root_is_not() {
        let pseudo = PseudoFilesystems::load();
        let dev = |p: &str| crate::fsmeta::lstat(Path::new(p)).map(|s| s.dev);
        if let Ok(proc_dev) = dev("/proc") {
            assert_eq!(pseudo.type_of(proc_dev, Path::new("/proc")), Some("proc"));
        }
        let root = dev("/").unwrap();
        assert_eq!(pseudo.type_of(root, Path::new("/")), None);
    }
}
