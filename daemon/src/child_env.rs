//! The environment of every program a run starts (hooks, the command of a command
//! source): built from nothing, never inherited, so what the daemon was started with
//! (credentials directories, tokens in a drop-in's Environment=, a passphrase
//! variable) never reaches a hook or its log. Documented in the README under hooks.

use std::ffi::OsString;

/// PATH when the daemon has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// LANG when the daemon has none: UTF-8, so tools print names as they are.
const DEFAULT_LANG: &str = "C.UTF-8";

/// `PATH`, `LANG` and `HOME` (the daemon's, or defaults), plus `run` — the `CAIRN_*`
/// variables the run sets (job, run id, repository, and the run's state for an after
/// hook). Nothing else.
pub fn clean(run: &[(&str, String)]) -> Vec<(OsString, OsString)> {
    let inherited = |name: &str, default: OsString| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .unwrap_or(default)
    };
    let home = cairn_engine::host::user_home(rustix::process::geteuid().as_raw())
        .map_or_else(|| OsString::from("/"), OsString::from);
    let mut env = vec![
        ("PATH".into(), inherited("PATH", DEFAULT_PATH.into())),
        ("LANG".into(), inherited("LANG", DEFAULT_LANG.into())),
        ("HOME".into(), inherited("HOME", home)),
    ];
    env.extend(run.iter().map(|(k, v)| ((*k).into(), v.into())));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_variables_are_set() {
        let env = clean(&[("CAIRN_JOB", "web".into())]);
        let names: Vec<_> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["PATH", "LANG", "HOME", "CAIRN_JOB"]);
        assert!(env.iter().all(|(_, v)| !v.is_empty()));
    }
}
