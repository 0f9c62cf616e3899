//! Where a repository lives, as an operator writes it (restic's habits):
//! a plain path, `s3:https://HOST[:PORT]/BUCKET[/PREFIX]`, `sftp:[USER@]HOST:/PATH` or
//! `sftp://[USER@]HOST[:PORT]/PATH`.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    S3(S3Location),
    Sftp(SftpLocation),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `https://host[:port]` (or `http://` for an endpoint on this machine or network).
    pub endpoint: String,
    pub bucket: String,
    /// The repository's folder in the bucket, without leading or trailing slashes.
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpLocation {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The repository's directory on the server (relative paths are from the login
    /// directory, as with `sftp`).
    pub path: String,
}

fn bad(location: &str, reason: impl Into<String>) -> Error {
    Error::invalid(format!("repository location {location:?}"), reason)
}

impl Location {
    pub fn parse(text: &str) -> Result<Location> {
        if let Some(rest) = text.strip_prefix("s3:") {
            return parse_s3(text, rest).map(Location::S3);
        }
        if let Some(rest) = text.strip_prefix("sftp://") {
            return parse_sftp_url(text, rest).map(Location::Sftp);
        }
        if let Some(rest) = text.strip_prefix("sftp:") {
            return parse_sftp_scp(text, rest).map(Location::Sftp);
        }
        if text.is_empty() {
            return Err(bad(text, "it is empty; give a path, s3:... or sftp:..."));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(bad(
                text,
                format!(
                    "{scheme}:// is not a repository kind cairn knows; use a path, s3:https://HOST/BUCKET[/PREFIX] or sftp://[USER@]HOST[:PORT]/PATH"
                ),
            ));
        }
        Ok(Location::Local(PathBuf::from(text)))
    }

    /// Whether the repository is reached over the network.
    pub fn is_remote(&self) -> bool {
        !matches!(self, Location::Local(_))
    }

    /// The backend's name, for messages ("S3", "SFTP", "local").
    pub fn kind(&self) -> &'static str {
        match self {
            Location::Local(_) => "local",
            Location::S3(_) => "S3",
            Location::Sftp(_) => "SFTP",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(path) => write!(f, "{}", path.display()),
            Location::S3(s3) => write!(f, "{s3}"),
            Location::Sftp(sftp) => write!(f, "{sftp}"),
        }
    }
}

impl fmt::Display for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3:{}/{}", self.endpoint, self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        Ok(())
    }
}

impl fmt::Display for SftpLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sftp://")?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        if !self.path.starts_with('/') {
            // A path relative to the login directory: `sftp://host/~/path` in URL form.
            write!(f, "/~")?;
        }
        write!(f, "/{}", self.path.trim_start_matches('/'))
    }
}

fn parse_s3(text: &str, rest: &str) -> Result<S3Location> {
    let (scheme, rest) = match rest.split_once("://") {
        Some((scheme @ ("http" | "https"), rest)) => (scheme, rest),
        Some((other, _)) => {
            return Err(bad(
                text,
                format!(
                    "{other}:// is not an S3 endpoint scheme; use https:// (or http:// for an endpoint on this network)"
                ),
            ));
        }
        // restic's `s3:host/bucket`: HTTPS.
        None => ("https", rest),
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.is_empty() {
        return Err(bad(text, "the endpoint has no host"));
    }
    let mut parts = path.split('/').filter(|p| !p.is_empty());
    let bucket = parts.next().ok_or_else(|| {
        bad(
            text,
            "no bucket; write s3:https://HOST[:PORT]/BUCKET[/PREFIX]",
        )
    })?;
    let prefix: Vec<&str> = parts.collect();
    if prefix.iter().any(|p| *p == "." || *p == "..") {
        return Err(bad(text, "the prefix holds . or .. components"));
    }
    if scheme == "http" && !is_local_host(host) {
        return Err(bad(
            text,
            format!(
                "http:// to {host} would send requests unencrypted across networks; use https:// (http:// is for an endpoint on this machine or a private network)"
            ),
        ));
    }
    Ok(S3Location {
        endpoint: format!("{scheme}://{host}"),
        bucket: bucket.to_owned(),
        prefix: prefix.join("/"),
    })
}

/// Loopback, private (RFC 1918, unique-local) and link-local addresses, and
/// `localhost`: where plain HTTP does not cross the internet.
fn is_local_host(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private() || ip.is_link_local(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.is_unique_local() || ip.is_unicast_link_local()
        }
        Err(_) => false,
    }
}

/// `sftp://[USER@]HOST[:PORT]/PATH`; `/~/` starts a path relative to the login directory.
fn parse_sftp_url(text: &str, rest: &str) -> Result<SftpLocation> {
    let (authority, path) = rest
        .split_once('/')
        .ok_or_else(|| bad(text, "no path; write sftp://[USER@]HOST[:PORT]/PATH"))?;
    let (user, host_port) = split_user(authority);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
            let port = port
                .parse::<u16>()
                .map_err(|_| bad(text, format!("port {port:?} is not a number up to 65535")))?;
            (host, Some(port))
        }
        _ => (host_port, None),
    };
    let path = match path.strip_prefix("~/") {
        Some(relative) => relative.to_owned(),
        None => format!("/{path}"),
    };
    sftp_location(text, user, host, port, path)
}

/// `sftp:[USER@]HOST:/PATH` (scp's form); a path without a leading slash is relative
/// to the login directory.
fn parse_sftp_scp(text: &str, rest: &str) -> Result<SftpLocation> {
    let (user, rest) = split_user(rest);
    let (host, path) = rest
        .split_once(':')
        .ok_or_else(|| bad(text, "no path; write sftp:[USER@]HOST:/PATH"))?;
    sftp_location(text, user, host, None, path.to_owned())
}

fn split_user(authority: &str) -> (Option<&str>, &str) {
    match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    }
}

fn sftp_location(
    text: &str,
    user: Option<&str>,
    host: &str,
    port: Option<u16>,
    path: String,
) -> Result<SftpLocation> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.starts_with('-') {
        return Err(bad(text, "the host is empty or starts with '-'"));
    }
    if user.is_some_and(|u| u.is_empty() || u.starts_with('-')) {
        return Err(bad(text, "the user is empty or starts with '-'"));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(bad(
            text,
            "the path is empty; name the repository's directory",
        ));
    }
    if trimmed.split('/').any(|p| p == "..") {
        return Err(bad(text, "the path holds .. components"));
    }
    Ok(SftpLocation {
        user: user.map(str::to_owned),
        host: host.to_owned(),
        port,
        path: trimmed.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(endpoint: &str, bucket: &str, prefix: &str) -> Location {
        Location::S3(S3Location {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            prefix: prefix.into(),
        })
    }

    #[test]
    fn s3_locations_parse_like_restic() {
        let cases = [
            (
                "s3:https://s3.example.com/backups",
                s3("https://s3.example.com", "backups", ""),
            ),
            (
                "s3:https://s3.example.com:9000/backups/web1/",
                s3("https://s3.example.com:9000", "backups", "web1"),
            ),
            (
                "s3:s3.amazonaws.com/b/x/y",
                s3("https://s3.amazonaws.com", "b", "x/y"),
            ),
            (
                "s3:http://127.0.0.1:8333/cairn/t1",
                s3("http://127.0.0.1:8333", "cairn", "t1"),
            ),
            (
                "s3:http://10.1.2.3/cairn",
                s3("http://10.1.2.3", "cairn", ""),
            ),
            (
                "s3:http://[::1]:9000/cairn",
                s3("http://[::1]:9000", "cairn", ""),
            ),
        ];
        for (text, want) in cases {
            let parsed = Location::parse(text).expect(text);
            assert_eq!(parsed, want, "{text}");
            // What is shown parses back to the same location.
            assert_eq!(Location::parse(&parsed.to_string()).expect("again"), want);
        }
    }

    #[test]
    fn sftp_locations_take_both_forms() {
        let want = |user: Option<&str>, port, path: &str| {
            Location::Sftp(SftpLocation {
                user: user.map(Into::into),
                host: "backup.example.com".into(),
                port,
                path: path.into(),
            })
        };
        let cases = [
            (
                "sftp:backup.example.com:/srv/cairn",
                want(None, None, "/srv/cairn"),
            ),
            (
                "sftp:bk@backup.example.com:/srv/cairn/",
                want(Some("bk"), None, "/srv/cairn"),
            ),
            (
                "sftp:bk@backup.example.com:repos/web1",
                want(Some("bk"), None, "repos/web1"),
            ),
            (
                "sftp://backup.example.com/srv/cairn",
                want(None, None, "/srv/cairn"),
            ),
            (
                "sftp://bk@backup.example.com:2222/srv/cairn",
                want(Some("bk"), Some(2222), "/srv/cairn"),
            ),
            (
                "sftp://bk@backup.example.com/~/repos/web1",
                want(Some("bk"), None, "repos/web1"),
            ),
        ];
        for (text, want) in cases {
            let parsed = Location::parse(text).expect(text);
            assert_eq!(parsed, want, "{text}");
            assert_eq!(Location::parse(&parsed.to_string()).expect("again"), want);
        }
    }

    #[test]
    fn plain_paths_stay_local() {
        assert_eq!(
            Location::parse("/srv/backup").expect("path"),
            Location::Local("/srv/backup".into())
        );
        assert_eq!(
            Location::parse("relative/repo").expect("path"),
            Location::Local("relative/repo".into())
        );
    }

    #[test]
    fn bad_locations_say_what_to_write() {
        let cases = [
            ("s3:https://host", "no bucket"),
            ("s3:ftp://host/b", "not an S3 endpoint scheme"),
            ("s3:http://s3.example.com/b", "use https://"),
            ("s3:https://h/b/../x", ". or .."),
            ("sftp:host", "no path"),
            ("sftp://host", "no path"),
            ("sftp://host:99999/x", "port"),
            ("sftp:-oProxyCommand=x:/p", "starts with '-'"),
            ("sftp:host:/a/../b", ".. components"),
            ("sftp:host:/", "path is empty"),
            ("gs://bucket", "not a repository kind"),
            ("", "empty"),
        ];
        for (text, needle) in cases {
            let error = Location::parse(text).expect_err(text).to_string();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }
}
