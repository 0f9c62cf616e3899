//! Opening the backend a location names, with the settings an operator gives as
//! `--option KEY=VALUE` (restic's habit: `s3.region=eu-west-1`).

use std::sync::Arc;

use super::Backend;
use super::local::LocalBackend;
use super::location::Location;
use super::s3::{S3Backend, S3Credentials, S3Settings};
use super::sftp::{SftpBackend, SftpSettings};
use crate::error::{Error, Result};

/// Everything besides the location that opening a backend may need.
#[derive(Debug, Clone, Default)]
pub struct BackendOptions {
    pub s3: S3Settings,
    pub sftp: SftpSettings,
    /// Given by the caller (the daemon's sealed secret); else from the environment.
    pub s3_credentials: Option<S3Credentials>,
}

/// The settings `--option` takes, with what each means (for the error that lists them).
pub const OPTION_KEYS: &[(&str, &str)] = &[
    (
        "s3.region",
        "the bucket's region (default: AWS_DEFAULT_REGION, else us-east-1)",
    ),
    (
        "s3.virtual-host",
        "true: address the bucket as BUCKET.HOST (AWS); default false, HOST/BUCKET",
    ),
    ("s3.connections", "packs uploaded at once (default 2)"),
    (
        "s3.storage-class",
        "storage class of new objects (STANDARD_IA, ...)",
    ),
    (
        "s3.retries",
        "retries of a failed request before it fails (default 6)",
    ),
    (
        "sftp.command",
        "the ssh command to run instead of `ssh` (its arguments split on spaces)",
    ),
    (
        "sftp.identity",
        "the private key file ssh uses (default: ssh's own choice)",
    ),
];

impl BackendOptions {
    /// Applies one `KEY=VALUE`.
    pub fn set(&mut self, option: &str) -> Result<()> {
        let bad = |reason: String| Error::invalid(format!("option {option:?}"), reason);
        let (key, value) = option
            .split_once('=')
            .ok_or_else(|| bad("write it as KEY=VALUE, e.g. s3.region=eu-west-1".into()))?;
        let flag = |value: &str| match value {
            "true" | "yes" | "1" => Ok(true),
            "false" | "no" | "0" => Ok(false),
            _ => Err(bad(format!("{value:?} is not true or false"))),
        };
        let count = |value: &str| match value.parse::<usize>() {
            Ok(n) if (1..=64).contains(&n) => Ok(n),
            _ => Err(bad(format!("{value:?} is not a number from 1 to 64"))),
        };
        match key {
            "s3.region" => self.s3.region = value.to_owned(),
            "s3.virtual-host" => self.s3.virtual_host = flag(value)?,
            "s3.connections" => self.s3.connections = count(value)?,
            "s3.storage-class" => self.s3.storage_class = Some(value.to_owned()),
            "s3.retries" => {
                self.s3.retries = value
                    .parse()
                    .map_err(|_| bad(format!("{value:?} is not a number")))?;
            }
            "sftp.command" => {
                let words: Vec<String> = value.split_whitespace().map(str::to_owned).collect();
                if words.is_empty() {
                    return Err(bad("the command is empty".into()));
                }
                self.sftp.command = Some(words);
            }
            "sftp.identity" => self.sftp.identity = Some(value.into()),
            _ => {
                let known: Vec<&str> = OPTION_KEYS.iter().map(|(k, _)| *k).collect();
                return Err(bad(format!(
                    "unknown option {key:?}; known: {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub fn from_list<S: AsRef<str>>(options: &[S]) -> Result<Self> {
        let mut parsed = BackendOptions::default();
        for option in options {
            parsed.set(option.as_ref())?;
        }
        Ok(parsed)
    }
}

/// The backend for `location`. Nothing is contacted yet for a local path; a
/// network backend checks its settings here and connects on first use.
pub fn open_backend(location: &Location, options: &BackendOptions) -> Result<Arc<dyn Backend>> {
    Ok(match location {
        Location::Local(path) => Arc::new(LocalBackend::new(path)),
        Location::S3(s3) => {
            let credentials = match &options.s3_credentials {
                Some(credentials) => credentials.clone(),
                None => S3Credentials::from_env()?,
            };
            Arc::new(S3Backend::new(s3.clone(), &credentials, &options.s3)?)
        }
        Location::Sftp(sftp) => Arc::new(SftpBackend::new(sftp.clone(), &options.sftp)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_set_what_they_name_and_refuse_the_rest() {
        let options = BackendOptions::from_list(&[
            "s3.region=eu-west-1",
            "s3.virtual-host=true",
            "s3.connections=4",
            "sftp.command=ssh -F /etc/cairn/ssh_config",
        ])
        .expect("options");
        assert_eq!(options.s3.region, "eu-west-1");
        assert!(options.s3.virtual_host);
        assert_eq!(options.s3.connections, 4);
        assert_eq!(
            options.sftp.command.as_deref(),
            Some(
                &[
                    "ssh".to_owned(),
                    "-F".into(),
                    "/etc/cairn/ssh_config".into()
                ][..]
            )
        );
        for (bad, needle) in [
            ("s3.region", "KEY=VALUE"),
            ("s3.virtual-host=maybe", "not true or false"),
            ("s3.connections=0", "1 to 64"),
            ("s3.bucket=x", "known: s3.region"),
            ("sftp.command=  ", "empty"),
        ] {
            let error = BackendOptions::from_list(&[bad])
                .expect_err(bad)
                .to_string();
            assert!(error.contains(needle), "{bad}: {error}");
        }
    }
}
