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
            // Without HOME (a bare `env -i`, some service managers) the user database
            // says where home is; never a shared directory such as /tmp.
            home: var("HOME").or_else(|| cairn_engine::host::user_home(uid.as_raw())),
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
    pub fn resolve(env: &Env) -> anyhow::Result<Paths> {
        if env.is_root {
            return Ok(Paths {
                config_file: PathBuf::from("/etc/cairn/cairnd.toml"),
                state_dir: PathBuf::from("/var/lib/cairn"),
                cache_dir: PathBuf::from("/var/cache/cairn"),
                socket: PathBuf::from(cairn_proto::SYSTEM_SOCKET),
            });
        }
        let Some(home) = env.home.clone() else {
            anyhow::bail!(
                "uid {} has no home directory (HOME is unset and the user database gives none); set HOME to a directory only this user may write",
                env.uid
            );
        };
        let state_home = env
            .xdg_state_home
            .clone()
            .unwrap_or_else(|| home.join(".local/state"));
        Ok(Paths {
            config_file: xdg(&env.xdg_config_home, &home, ".config").join("cairnd.toml"),
            state_dir: state_home.join("cairn"),
            cache_dir: xdg(&env.xdg_cache_home, &home, ".cache"),
            socket: cairn_proto::user_socket_path(
                env.xdg_runtime_dir.as_deref(),
                Some(&state_home),
            )
            .unwrap_or_else(|| state_home.join("cairn/cairnd.sock")),
        })
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
        })
        .unwrap();
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
        let paths = Paths::resolve(&env).unwrap();
        assert_eq!(paths.state_dir, Path::new("/home/ann/.local/state/cairn"));
        assert_eq!(paths.cache_dir, Path::new("/scratch/cache/cairn"));
        assert_eq!(
            paths.config_file,
            Path::new("/home/ann/.config/cairn/cairnd.toml")
        );
        assert_eq!(paths.socket, Path::new("/run/user/1000/cairn/cairnd.sock"));
    }

    #[test]
    fn without_a_runtime_dir_the_socket_is_beside_the_state_never_in_tmp() {
        let env = Env {
            uid: 1000,
            home: Some("/home/ann".into()),
            ..Env::default()
        };
        let paths = Paths::resolve(&env).unwrap();
        assert_eq!(
            paths.socket,
            Path::new("/home/ann/.local/state/cairn/cairnd.sock")
        );
        let homeless = Paths::resolve(&Env {
            uid: 1000,
            ..Env::default()
        })
        .unwrap_err()
        .to_string();
        assert!(homeless.contains("no home directory"), "{homeless}");
    }
}
