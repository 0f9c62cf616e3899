//! `cairn job create|list|show|edit|delete|enable|disable|run`.

use cairn_proto::v1 as pb;

use crate::api::pages::all_pages;
use cairn_proto::v1::jobs_client::JobsClient;
use serde_json::json;

use super::{Remote, api_error, json, runs};
use crate::cli::{JobCommand, JobKindArg, JobSpecArgs};
use crate::output::{self, Outcome};

fn hook(command: Option<&String>, timeout_seconds: u32) -> Option<pb::Hook> {
    command.map(|c| pb::Hook {
        argv: c.split_whitespace().map(str::to_owned).collect(),
        timeout_seconds,
    })
}

fn spec(name: String, repository: String, args: JobSpecArgs) -> anyhow::Result<pb::JobSpec> {
    let retention = super::keep::retention(args.keep);
    if !matches!(args.kind, JobKindArg::Backup) && !args.paths.is_empty() {
        anyhow::bail!(
            "--path applies to backup jobs: a check or prune job works on the whole repository"
        );
    }
    let kind = match args.kind {
        JobKindArg::Backup => {
            let paths = args
                .paths
                .iter()
                .map(|p| std::path::absolute(p).map(|p| p.display().to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            pb::job_spec::Kind::Backup(pb::BackupSpec {
                paths,
                excludes: args.excludes,
                exclude_caches: args.exclude_caches,
                one_file_system: args.one_file_system,
                tags: args.tags,
                host: String::new(),
                command: None,
                retention,
            })
        }
        JobKindArg::Check if retention.is_some() => {
            anyhow::bail!(
                "--keep-* apply to backup jobs: a check job makes no snapshots to keep or forget"
            )
        }
        JobKindArg::Prune if retention.is_some() => {
            anyhow::bail!(
                "--keep-* apply to backup jobs: a prune deletes only what no snapshot uses (forget snapshots with a backup job's retention or `cairn snapshot forget`)"
            )
        }
        JobKindArg::Prune => pb::job_spec::Kind::Prune(pb::PruneSpec {
            max_unused_percent: args.max_unused,
            max_repack_bytes: args.max_repack.unwrap_or(0),
        }),
        JobKindArg::Check => pb::job_spec::Kind::Check(pb::CheckSpec {
            read_data: args.read_data,
            read_data_subset_percent: args.read_data_subset.unwrap_or(0),
        }),
    };
    Ok(pb::JobSpec {
        name,
        repository,
        schedule: args.schedule.map(|cron| pb::Schedule {
            cron,
            timezone: args.timezone.unwrap_or_default(),
            random_delay_seconds: args.random_delay,
            catch_up: pb::CatchUp::Once as i32,
        }),
        before: hook(args.before.as_ref(), args.hook_timeout),
        after: hook(args.after.as_ref(), args.hook_timeout),
        enabled: !args.disabled,
        kind: Some(kind),
    })
}

fn print_job(remote: &Remote, job: &pb::Job) -> anyhow::Result<()> {
    if remote.json() {
        return output::json(&json::job(job));
    }
    let doc = json::job(job);
    crate::outln!(
        "job {} ({})",
        doc["name"].as_str().unwrap_or(""),
        doc["spec"]["kind"].as_str().unwrap_or("")
    )?;
    crate::outln!("repository {}", doc["repository"].as_str().unwrap_or(""))?;
    crate::outln!("enabled    {}", doc["enabled"])?;
    if let Some(schedule) = doc["schedule"].as_object() {
        crate::outln!(
            "schedule   {} ({})",
            schedule["cron"].as_str().unwrap_or(""),
            schedule["timezone"].as_str().unwrap_or("")
        )?;
    }
    if doc["spec"]["kind"] == "backup" {
        let keeps = match crate::api::retention::of_job(job) {
            Some(r) => crate::api::retention::describe(&r),
            None => "every snapshot (no retention rule)".to_owned(),
        };
        crate::outln!("keeps      {keeps}")?;
    }
    if let Some(next) = doc["next_run"].as_str() {
        crate::outln!("next run   {next}")?;
    }
    if let Some(last) = doc["last_run"].as_object() {
        crate::outln!(
            "last run   {} {} {}",
            last["id"],
            last["state"].as_str().unwrap_or(""),
            last["finished"].as_str().unwrap_or("")
        )?;
    }
    crate::outln!("spec       {}", doc["spec"])?;
    Ok(())
}

pub async fn run(remote: &Remote, command: JobCommand) -> anyhow::Result<Outcome> {
    let mut client = JobsClient::new(remote.channel.clone());
    match command {
        JobCommand::Create {
            name,
            repo_name,
            spec: args,
        } => {
            let job = client
                .create_job(pb::CreateJobRequest {
                    spec: Some(spec(name, repo_name, args)?),
                })
                .await
                .map_err(api_error)?
                .into_inner();
            print_job(remote, &job)?;
        }
        JobCommand::Edit {
            name,
            repo_name,
            spec: args,
        } => {
            let job = client
                .update_job(pb::UpdateJobRequest {
                    name: name.clone(),
                    spec: Some(spec(name, repo_name, args)?),
                })
                .await
                .map_err(api_error)?
                .into_inner();
            print_job(remote, &job)?;
        }
        JobCommand::List => {
            let (all, pages) = all_pages(usize::MAX, |page_token| {
                let mut client = client.clone();
                let request = pb::ListJobsRequest {
                    page_size: 0,
                    page_token,
                };
                async move { Ok(client.list_jobs(request).await?.into_inner()) }
            })
            .await
            .map_err(api_error)?;
            let damaged: Vec<_> = pages.into_iter().flat_map(|p| p.damaged).collect();
            let docs: Vec<_> = all.iter().map(json::job).collect();
            if remote.json() {
                output::json(&docs)?;
            } else if docs.is_empty() {
                crate::outln!(
                    "no jobs; define one with `cairn job create NAME --repo REPO --path DIR`"
                )?;
            } else {
                crate::outln!(
                    "{:<20} {:<7} {:<15} {:<8} {:<25} LAST",
                    "NAME",
                    "KIND",
                    "REPOSITORY",
                    "ENABLED",
                    "NEXT"
                )?;
                for d in &docs {
                    crate::outln!(
                        "{:<20} {:<7} {:<15} {:<8} {:<25} {}",
                        d["name"].as_str().unwrap_or(""),
                        d["spec"]["kind"].as_str().unwrap_or(""),
                        d["repository"].as_str().unwrap_or(""),
                        d["enabled"],
                        d["next_run"].as_str().unwrap_or("-"),
                        d["last_run"]["state"].as_str().unwrap_or("-"),
                    )?;
                }
            }
            // The JSON list keeps its shape; damaged jobs are said on stderr, exit 1.
            for d in &damaged {
                crate::errln!(
                    "warning: the stored record of job {} is damaged ({}); it does not run; `cairn job delete {}` and create it again",
                    output::name(&d.name),
                    d.reason,
                    output::name(&d.name)
                );
            }
            if !damaged.is_empty() {
                return Ok(Outcome::Warnings);
            }
        }
        JobCommand::Show { name } => {
            let job = client
                .get_job(pb::GetJobRequest { name })
                .await
                .map_err(api_error)?
                .into_inner();
            print_job(remote, &job)?;
        }
        JobCommand::Delete { name } => {
            client
                .delete_job(pb::DeleteJobRequest { name: name.clone() })
                .await
                .map_err(api_error)?;
            if remote.json() {
                output::json(&json!({ "deleted": name }))?;
            } else {
                crate::outln!("job {name} deleted (its runs stay in the history)")?;
            }
        }
        JobCommand::Enable { name } => set_enabled(remote, &mut client, name, true).await?,
        JobCommand::Disable { name } => set_enabled(remote, &mut client, name, false).await?,
        JobCommand::Retention { name, keep } => {
            return super::retention_plan::run(remote, &mut client, name, keep).await;
        }
        JobCommand::Run { name, wait } => {
            let run_id = client
                .run_job(pb::RunJobRequest { name: name.clone() })
                .await
                .map_err(api_error)?
                .into_inner()
                .run_id;
            if !wait {
                if remote.json() {
                    output::json(&json!({ "run_id": run_id }))?;
                } else {
                    crate::outln!("{run_id}")?;
                }
                return Ok(Outcome::Ok);
            }
            if !remote.json() {
                crate::errln!("run {run_id} of job {name} started; waiting for it to end");
            }
            return runs::wait_and_report(remote, run_id).await;
        }
    }
    Ok(Outcome::Ok)
}

async fn set_enabled(
    remote: &Remote,
    client: &mut JobsClient<tonic::transport::Channel>,
    name: String,
    enabled: bool,
) -> anyhow::Result<()> {
    let job = client
        .set_job_enabled(pb::SetJobEnabledRequest { name, enabled })
        .await
        .map_err(api_error)?
        .into_inner();
    if remote.json() {
        output::json(&json::job(&job))
    } else {
        let doc = json::job(&job);
        crate::outln!(
            "job {} {}",
            doc["name"].as_str().unwrap_or(""),
            if enabled { "enabled" } else { "disabled" }
        )?;
        Ok(())
    }
}
