//! Where passphrases come from: an environment variable, a file, or a prompt on a
//! terminal. They are handed on as `SecretString` and never printed.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, bail};
use cairn_engine::secrecy::SecretString;

fn from_file(path: &Path) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading passphrase file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!("passphrase file {} is empty", path.display());
    }
    Ok(SecretString::from(line.to_owned()))
}

/// A secret from a file's first line, or from standard input for `-` (so it never
/// stands on a command line, where other users see it).
pub fn secret_from(path: &Path, what: &str) -> anyhow::Result<SecretString> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .with_context(|| format!("reading the {what} from standard input"))?;
        text
    } else {
        std::fs::read_to_string(path)
            .with_context(|| format!("reading the {what} from {}", path.display()))?
    };
    let line = text.lines().next().unwrap_or("").trim().to_owned();
    if line.is_empty() {
        bail!("the {what} given in {} is empty", path.display());
    }
    Ok(SecretString::from(line))
}

/// The passphrase to open a repository with.
pub fn passphrase(file: Option<&Path>) -> anyhow::Result<SecretString> {
    if let Some(path) = file {
        return from_file(path);
    }
    if let Ok(value) = std::env::var("CAIRN_PASSPHRASE") {
        return Ok(SecretString::from(value));
    }
    if std::io::stdin().is_terminal() {
        let value = rpassword::prompt_password("repository passphrase: ")
            .context("reading the passphrase")?;
        return Ok(SecretString::from(value));
    }
    bail!(
        "no passphrase given: set CAIRN_PASSPHRASE, use --passphrase-file, --identity-file, or run on a terminal"
    )
}

/// A new passphrase (init, key add): asked twice on a terminal.
pub fn new_passphrase(file: Option<&Path>, env: &str) -> anyhow::Result<SecretString> {
    if let Some(path) = file {
        return from_file(path);
    }
    if let Ok(value) = std::env::var(env) {
        if value.is_empty() {
            bail!("{env} is empty; choose a passphrase");
        }
        return Ok(SecretString::from(value));
    }
    if std::io::stdin().is_terminal() {
        let first =
            rpassword::prompt_password("new passphrase: ").context("reading the passphrase")?;
        let second = rpassword::prompt_password("repeat it: ").context("reading the passphrase")?;
        if first != second {
            bail!("the passphrases differ; nothing was changed");
        }
        if first.is_empty() {
            bail!("an empty passphrase protects nothing; choose one");
        }
        return Ok(SecretString::from(first));
    }
    bail!("no new passphrase given: set {env}, use a passphrase file, or run on a terminal")
}
