//! `cairn forget`: by id, or by policy per backup set, optionally followed by a prune.

use anyhow::{Context as _, bail};
use cairn_engine::ops::forget::{ForgetPlan, GroupPlan, SnapshotFilter};
use cairn_engine::retention::{KeepPolicy, parse_within};
use serde::Serialize;

use super::Ctx;
use crate::cli::{ForgetArgs, KeepArgs};
use crate::output::{self, Outcome};

/// The `--keep-*` flags as the engine's policy.
pub fn policy(keep: &KeepArgs) -> anyhow::Result<KeepPolicy> {
    Ok(KeepPolicy {
        last: keep.keep_last,
        hourly: keep.keep_hourly,
        daily: keep.keep_daily,
        weekly: keep.keep_weekly,
        monthly: keep.keep_monthly,
        yearly: keep.keep_yearly,
        within: keep
            .keep_within
            .as_deref()
            .map(parse_within)
            .transpose()
            .context("--keep-within")?,
        tags: keep.keep_tags.clone(),
    })
}

#[derive(Serialize)]
struct Report<'a> {
    dry_run: bool,
    groups: &'a [GroupPlan],
    forgotten: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prune: Option<cairn_engine::ops::prune::PruneSummary>,
}

pub fn run(ctx: &Ctx, args: &ForgetArgs) -> anyhow::Result<Outcome> {
    let policy = policy(&args.keep)?;
    if !args.ids.is_empty() && !policy.is_empty() {
        bail!("give snapshot ids or --keep-* rules, not both");
    }
    let repo = ctx.open()?;
    let groups: Vec<GroupPlan> = if args.ids.is_empty() {
        if policy.is_empty() {
            bail!(
                "nothing to forget: name snapshots (ids or `latest`) or give --keep-* rules (a policy without rules would forget everything)"
            );
        }
        let filter = SnapshotFilter {
            hosts: args.hosts.clone(),
            paths: args.paths.clone(),
            tags: args.tags.clone(),
        };
        repo.plan_forget_groups(
            &filter,
            &policy,
            &jiff::tz::TimeZone::system(),
            jiff::Timestamp::now(),
        )?
    } else {
        vec![GroupPlan {
            host: String::new(),
            paths: Vec::new(),
            plan: repo.plan_forget_ids(&args.ids)?,
        }]
    };
    let mut forgotten = Vec::new();
    if !args.dry_run {
        for group in &groups {
            repo.forget(&group.plan)?;
            forgotten.extend(group.plan.dropped().map(|e| e.id.to_hex()));
        }
    }
    if !ctx.json() {
        print_plans(&groups, args.dry_run)?;
    }
    let prune = match args.prune && !args.dry_run {
        true => Some(super::prune::prune(
            ctx,
            ctx.indexed(repo)?,
            &args.limits,
            false,
        )?),
        false => None,
    };
    if ctx.json() {
        output::json(&Report {
            dry_run: args.dry_run,
            groups: &groups,
            forgotten,
            prune,
        })?;
    } else if let Some(summary) = &prune {
        super::prune::print(summary)?;
    }
    Ok(Outcome::Ok)
}

fn print_plans(groups: &[GroupPlan], dry_run: bool) -> anyhow::Result<()> {
    for group in groups {
        if !group.host.is_empty() {
            crate::outln!(
                "host {}, paths {}:",
                output::name(&group.host),
                output::names(&group.paths, ", ")
            )?;
        }
        print_plan(&group.plan, dry_run)?;
    }
    let dropped: usize = groups.iter().map(|g| g.plan.dropped().count()).sum();
    let verb = if dry_run { "would forget" } else { "forgot" };
    crate::outln!("{verb} {dropped} snapshots")?;
    Ok(())
}

fn print_plan(plan: &ForgetPlan, dry_run: bool) -> anyhow::Result<()> {
    for entry in &plan.entries {
        let action = match (entry.keep, dry_run) {
            (true, _) => "keep  ",
            (false, true) => "forget (dry run)",
            (false, false) => "forget",
        };
        crate::outln!(
            "  {} {} {action} {}",
            entry.id.short(),
            entry.time,
            entry.reasons.join(", ")
        )?;
    }
    Ok(())
}
