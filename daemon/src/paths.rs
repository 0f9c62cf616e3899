//! Where cairnd keeps its config, state, cache and socket.
//!
//! As root (a system service): `/etc/cairn`, `/var/lib/cairn`, `/var/cache/cairn`,
//! `/run/cairn`. As any other user: the XDG base directories, so the daemon starts
//! with no config and no privileges.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_file: PathBuf,
    pub state_dir: PathBuf,
    pub cache_dir: PathBuf,
    pub socket: PathBuf,
}

/// The environment the paths are derived from (injected, so tests need no real HOME).
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub is_root: bool,
    pub uid: u32,
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub xdg_state_home: Option<PathBuf>,
    pub xdg_cache_home: Option<PathBuf>,
    pub xdg_runtime_dir: Option<PathBuf>,
}

impl Env {
    pub fn current() -> Env {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let uid = rustix::process::geteuid();
        Env {
            is_root: uid.is_root(),
            uid: uid.as_raw(),
            home: var("HOME"),
            xdg_config_home: var("XDG_CONFIG_HOME"),
            xdg_state_home: var("XDG_STATE_HOME"),
            xdg_cache_home: var("XDG_CACHE_HOME"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR"),
        }
    }
}

fn xdg(explicit: &Option<PathBuf>, home: &Path, fallback: &str) -> PathBuf {
    explicit
        .clone()
        .unwrap_or_else(|| home.join(fallback))
        .join("cairn")
}

impl Paths {
    pub fn resolve(env: &Env) -> Paths {
        if env.is_root {
            return Paths {
                config_file: PathBuf::from("/etc/cairn/cairnd.toml"),
                state_dir: PathBuf::from("/var/lib/cairn"),
                cache_dir: PathBuf::from("/var/cache/cairn"),
                socket: cairn_proto::default_socket_path(true, env.uid, None),
            };
        }
        let home = env.home.clone().unwrap_or_else(|| PathBuf::from("/tmp"));
        Paths {
            config_file: xdg(&env.xdg_config_home, &home, ".config").join("cairnd.toml"),
            state_dir: xdg(&env.xdg_state_home, &home, ".local/state"),
            cache_dir: xdg(&env.xdg_cache_home, &home, ".cache"),
            socket: cairn_proto::default_socket_path(
                false,
                env.uid,
                env.xdg_runtime_dir.as_deref(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_uses_the_system_paths() {
        let paths = Paths::resolve(&Env {
            is_root: true,
            ..Env::default()
        });
        assert_eq!(paths.socket, Path::new("/run/cairn/cairnd.sock"));
        assert_eq!(paths.state_dir, Path::new("/var/lib/cairn"));
    }

    #[test]
    fn a_user_gets_xdg_paths_with_fallbacks() {
        let env = Env {
            uid: 1000,
            home: Some("/home/ann".into()),
            xdg_runtime_dir: Some("/run/user/1000".into()),
            xdg_cache_home: Some("/scratch/cache".into()),
            ..Env::default()
        };
        let paths = Paths::resolve(&env);
        assert_eq!(paths.state_dir, Path::new("/home/ann/.local/state/cairn"));
        assert_eq!(paths.cache_dir, Path::new("/scratch/cache/cairn"));
        assert_eq!(
            paths.config_file,
            Path::new("/home/ann/.config/cairn/cairnd.toml")
        );
        assert_eq!(paths.socket, Path::new("/run/user/1000/cairn/cairnd.sock"));
    }
}
