//! Facts about the running host and users, as recorded in snapshots and key files.

use std::collections::HashMap;
use std::ffi::CStr;

/// This machine's host name.
pub fn hostname() -> String {
    let uname = rustix::system::uname();
    uname.nodename().to_string_lossy().into_owned()
}

/// The name of the user running this process.
pub fn username() -> String {
    let uid = rustix::process::getuid().as_raw();
    user_name(uid)
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| uid.to_string())
}

/// Whether this process runs as root (can chown, mknod devices).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Calls a `get*_r` NSS function with a buffer that grows while it says ERANGE (a
/// group from LDAP or sssd with thousands of members needs more than a page).
fn with_nss_buffer<T>(mut call: impl FnMut(&mut [u8]) -> (libc::c_int, Option<T>)) -> Option<T> {
    let mut buf = vec![0u8; 4096];
    loop {
        let (rc, found) = call(&mut buf);
        if rc == libc::ERANGE && buf.len() < 16 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return if rc == 0 { found } else { None };
    }
}

/// The passwd entry of `uid`: (name, home directory), through NSS (files, LDAP, sssd,
/// systemd-userdb alike).
fn passwd_entry(uid: u32) -> Option<(String, std::path::PathBuf)> {
    use std::os::unix::ffi::OsStrExt as _;
    with_nss_buffer(|buf| {
        // SAFETY: a zeroed passwd is a valid out-parameter; getpwuid_r only writes into
        // it and into `buf`, both valid for the lengths given.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: as above.
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc != 0 || result.is_null() {
            return (rc, None);
        }
        // SAFETY: on success the strings are NUL-terminated and inside `buf`.
        let (name, home) = unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
        let home = std::ffi::OsStr::from_bytes(home.to_bytes());
        (0, Some((name.to_string_lossy().into_owned(), home.into())))
    })
}

/// Looks up a user name by uid.
pub fn user_name(uid: u32) -> Option<String> {
    passwd_entry(uid).map(|(name, _)| name)
}

/// "uid 1001 (alice)", or "uid 1001" for a uid without a name: who owns something, in
/// a message.
pub fn describe_uid(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

/// The home directory the user database gives `uid` (for a process started without
/// `HOME`).
pub fn user_home(uid: u32) -> Option<std::path::PathBuf> {
    passwd_entry(uid)
        .map(|(_, home)| home)
        .filter(|home| home.is_absolute())
}

/// The group entry a `getgr*_r` call finds: (name, gid), through NSS. `lookup` gets
/// the out-parameters and the buffer.
fn group_entry(
    lookup: impl Fn(*mut libc::group, *mut libc::c_char, usize, *mut *mut libc::group) -> libc::c_int,
) -> Option<(String, u32)> {
    with_nss_buffer(|buf| {
        // SAFETY: a zeroed group is a valid out-parameter (as in `passwd_entry`).
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = lookup(&mut grp, buf.as_mut_ptr().cast(), buf.len(), &mut result);
        if rc != 0 || result.is_null() {
            return (rc, None);
        }
        // SAFETY: on success gr_name is NUL-terminated and inside `buf`.
        let name = unsafe { CStr::from_ptr(grp.gr_name) };
        (0, Some((name.to_string_lossy().into_owned(), grp.gr_gid)))
    })
}

/// Looks up a group name by gid.
pub fn group_name(gid: u32) -> Option<String> {
    // SAFETY: the out-parameters and buffer come from `group_entry`, valid for the
    // lengths given.
    group_entry(|grp, buf, len, result| unsafe { libc::getgrgid_r(gid, grp, buf, len, result) })
        .map(|(name, _)| name)
}

/// Looks up a group's gid by name, through NSS: groups from LDAP, sssd or
/// systemd-userdb resolve like those in `/etc/group`.
pub fn group_id(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: `name` is NUL-terminated; the rest as in `group_name`.
    group_entry(|grp, buf, len, result| unsafe {
        libc::getgrnam_r(name.as_ptr(), grp, buf, len, result)
    })
    .map(|(_, gid)| gid)
}

/// Caches uid/gid → name lookups for the length of one backup.
#[derive(Debug, Default)]
pub struct NameCache {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl NameCache {
    pub fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| user_name(uid))
            .clone()
    }
    pub fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| group_name(gid))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_and_homes_come_from_the_user_database() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(0).as_deref(), Some("root"));
        assert_eq!(user_home(0).as_deref(), Some(std::path::Path::new("/root")));
        assert_eq!(group_id("cairn-no-such-group"), None);
        assert_eq!(group_id("bad\0name"), None);
    }
}
