//! `cairn init` and `cairn key add|list|remove`.

use anyhow::Context;
use cairn_engine::{ChunkerParams, InitOptions, NewKey, Repository};

use super::Ctx;
use crate::cli::{InitArgs, KeyCommand, NewKeyArgs};
use crate::output::{self, Outcome};
use crate::secrets;

fn new_key(
    args: &NewKeyArgs,
    passphrase_file: Option<&std::path::Path>,
    env: &str,
) -> anyhow::Result<NewKey> {
    if let Some(recipient) = &args.recipient {
        return Ok(NewKey::Recipient(recipient.clone()));
    }
    if let Some(path) = &args.recipient_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading recipient file {}", path.display()))?;
        let line = text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .unwrap_or("")
            .to_owned();
        return Ok(NewKey::Recipient(line));
    }
    Ok(NewKey::Passphrase {
        passphrase: secrets::new_passphrase(passphrase_file, env)?,
        work_factor: args.kdf_work_factor,
    })
}

fn parse_chunker(text: &str) -> anyhow::Result<ChunkerParams> {
    let parts: Vec<u32> = text
        .split(',')
        .map(|p| p.trim().parse::<u32>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--chunker {text:?}: expected MIN,AVG,MAX in bytes"))?;
    let [min_size, avg_size, max_size] = parts[..] else {
        anyhow::bail!("--chunker {text:?}: expected three numbers MIN,AVG,MAX");
    };
    Ok(ChunkerParams {
        min_size,
        avg_size,
        max_size,
    })
}

pub fn init(ctx: &Ctx, args: &InitArgs) -> anyhow::Result<Outcome> {
    // The new repository's passphrase is the one the user gives for it.
    let key = new_key(
        &args.new_key,
        ctx.passphrase_file.as_deref(),
        "CAIRN_PASSPHRASE",
    )?;
    let mut options = InitOptions::default()
        .compression_level(args.compression)
        .pack_size(args.pack_size_mib.saturating_mul(1024 * 1024));
    if let Some(text) = &args.chunker {
        options = options.chunker(parse_chunker(text)?);
    }
    if !args.new_key.label.is_empty() {
        options = options.key_label(args.new_key.label.clone());
    }
    let repo = Repository::init(ctx.backend()?, &key, &options)?;
    if ctx.json() {
        output::json(&serde_json::json!({
            "repository": ctx.location.to_string(),
            "id": repo.config().id,
            "key": repo.key_id().to_hex(),
        }))?;
    } else {
        crate::outln!(
            "created repository {} at {}",
            &repo.config().id[..8],
            ctx.location
        )?;
        crate::outln!(
            "keep the passphrase or key safe: without it the data cannot be read by anyone"
        )?;
    }
    Ok(Outcome::Ok)
}

pub fn run(ctx: &Ctx, command: KeyCommand) -> anyhow::Result<Outcome> {
    let repo = ctx.open()?;
    match command {
        KeyCommand::List => {
            let keys = repo.list_keys()?;
            let damaged = keys.iter().filter(|k| k.problem.is_some()).count();
            if ctx.json() {
                output::json(&keys)?;
            } else {
                crate::outln!(
                    "  {:<10} {:<11} {:<20} {:<16} LABEL",
                    "ID",
                    "TYPE",
                    "CREATED",
                    "HOST"
                )?;
                for key in keys {
                    let created = key
                        .created
                        .get(..19)
                        .unwrap_or(&key.created)
                        .replace('T', " ");
                    let kind = match key.kind {
                        Some(kind) => serde_json::to_value(kind)?
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                        None => "unusable".to_owned(),
                    };
                    let kind = if key.write_only {
                        format!("{kind},wo")
                    } else {
                        kind
                    };
                    crate::outln!(
                        "{:<2}{:<10} {:<11} {:<20} {:<16} {}",
                        if key.current { "*" } else { "" },
                        key.id.short(),
                        kind,
                        created,
                        key.host,
                        key.problem.as_deref().unwrap_or(&key.label)
                    )?;
                }
                if damaged > 0 {
                    crate::outln!(
                        "{damaged} key files cannot be used (damaged or planted); `cairn key remove ID` removes one"
                    )?;
                }
            }
            return Ok(Outcome::from_problems(damaged));
        }
        KeyCommand::Add {
            new_key: args,
            new_passphrase_file,
            write_only,
        } => {
            let key = new_key(
                &args,
                new_passphrase_file.as_deref(),
                "CAIRN_NEW_PASSPHRASE",
            )?;
            let id = repo.add_key(&key, &args.label, write_only)?;
            if ctx.json() {
                output::json(
                    &serde_json::json!({ "added": id.to_hex(), "write_only": write_only }),
                )?;
            } else if write_only {
                crate::outln!(
                    "added write-only key {}: it can back up, and cannot read, list or restore anything",
                    id.short()
                )?;
            } else {
                crate::outln!("added key {}", id.short())?;
            }
        }
        KeyCommand::Remove { id } => {
            let removed = repo.remove_key(&id)?;
            if ctx.json() {
                output::json(&serde_json::json!({ "removed": removed.to_hex() }))?;
            } else {
                crate::outln!("removed key {}", removed.short())?;
            }
        }
    }
    Ok(Outcome::Ok)
}
