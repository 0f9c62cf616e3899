//! The scheduler: fires jobs at their cron slots.
//!
//! The decision is a pure function ([`plan`]) of the schedule, the job's recorded
//! state (the last slot fired) and the wall clock, so DST, catch-up and clock jumps are
//! tested without waiting. The loop around it sleeps until the earliest next slot (at
//! most a minute, so a wall-clock jump is noticed), wakes early when jobs change, and
//! records each slot before starting its run: a slot is never fired twice, also across
//! a crash (a crash between recording and starting loses that one run instead).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{info, warn};

use crate::error::DaemonError;
use crate::schedule::Schedule;
use crate::state::DaemonState;
use crate::store::{
    CatchUp, JOBS, JobRecord, Rx, SCHEDULE, ScheduleState, StoreError, Trigger, UnixMs, now_ms,
};

/// The longest the loop sleeps without looking at the clock again.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// Slots found due at start that are older than this were missed while the daemon was
/// down (younger ones are simply on time).
const ON_TIME: i64 = 60_000;
/// Slots counted at most when a job was down for a long time (a per-second schedule
/// after a month off would otherwise count for a while).
const MAX_COUNTED: u64 = 100_000;

/// What to do about one job now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Start a run for this slot.
    pub fire: Option<(UnixMs, Trigger)>,
    /// The state to record (when it changed).
    pub state: Option<ScheduleState>,
    /// When to look at this job again.
    pub next_wake: Option<UnixMs>,
}

/// Decides for one job. `base` is when the job's schedule started counting (its last
/// change), `starting` is true on the daemon's first look after it started.
pub fn plan(
    schedule: &Schedule,
    state: &ScheduleState,
    base: UnixMs,
    now: UnixMs,
    starting: bool,
) -> Plan {
    let from = state.last_slot.unwrap_or(base);
    let mut due = Vec::new();
    let mut counted = 0u64;
    let mut at = from;
    while let Some(slot) = schedule.next_after(at) {
        if slot > now || counted >= MAX_COUNTED {
            break;
        }
        counted += 1;
        // Only the first (for the missed count) and the latest matter.
        if due.len() < 2 {
            due.push(slot);
        } else {
            due[1] = slot;
        }
        at = slot;
    }
    let next_wake = schedule.next_after(at.max(now).max(from));
    let Some(&latest) = due.last() else {
        return Plan {
            fire: None,
            state: None,
            next_wake,
        };
    };
    let missed_while_down = starting && now - latest > ON_TIME;
    let (fire, missed) = if missed_while_down {
        match schedule.spec.catch_up {
            CatchUp::Once => (Some((latest, Trigger::CatchUp)), counted - 1),
            CatchUp::Skip => (None, counted),
        }
    } else {
        // On time, or several slots at once after a clock jump: one run for them all.
        (Some((latest, Trigger::Schedule)), counted - 1)
    };
    Plan {
        fire,
        state: Some(ScheduleState {
            last_slot: Some(latest),
            missed: state.missed + missed,
        }),
        next_wake,
    }
}

/// When `job` runs next by its schedule: the first slot after now that was not fired
/// yet. A slot never fires twice, so after the clock went back the slots already fired
/// are not "next" again; nor are slots from before the job's last change. None when
/// the job is disabled or has no schedule.
pub fn next_run(job: &JobRecord, fired: &ScheduleState, now: UnixMs) -> Option<UnixMs> {
    let spec = job.schedule.as_ref().filter(|_| job.enabled)?;
    let schedule = Schedule::parse(spec).ok()?;
    schedule.next_after(now.max(fired.last_slot.unwrap_or(job.updated)))
}

/// Every job that is not damaged, with what its schedule fired so far.
pub fn jobs_with_schedules(rx: &Rx<'_>) -> Result<Vec<(JobRecord, ScheduleState)>, StoreError> {
    rx.list_named::<JobRecord>(JOBS, None, usize::MAX)?
        .into_iter()
        .map(|(name, job)| Ok((job, fired_slots(rx, &name)?)))
        .collect()
}

/// What the schedule of job `name` fired so far. A damaged record counts as nothing
/// fired (the job counts from its last change; the next slot rewrites the record), so
/// one bad record does not stop the scheduler or the status for every job.
pub fn fired_slots(rx: &Rx<'_>, name: &str) -> Result<ScheduleState, StoreError> {
    match rx.get_named::<ScheduleState>(SCHEDULE, name) {
        Ok(found) => Ok(found.unwrap_or_default()),
        Err(StoreError::Record { .. }) => Ok(ScheduleState::default()),
        Err(e) => Err(e),
    }
}

/// The job that runs next by its schedule, and when.
pub fn next_scheduled(
    jobs: &[(JobRecord, ScheduleState)],
    now: UnixMs,
) -> Option<(String, UnixMs)> {
    jobs.iter()
        .filter_map(|(job, fired)| Some((job.name.clone(), next_run(job, fired, now)?)))
        .min_by_key(|(_, at)| *at)
}

/// Runs until `shutdown` resolves. `changed` is notified when jobs are created, edited,
/// enabled or deleted.
pub async fn run(
    state: Arc<DaemonState>,
    changed: Arc<Notify>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut starting = true;
    loop {
        let wake = match tick(&state, starting).await {
            Ok(wake) => wake,
            Err(e) => {
                warn!(error = %e, "scheduler could not read the jobs; trying again in a minute");
                None
            }
        };
        starting = false;
        let sleep = wake
            .map(|at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = changed.notified() => {}
            () = &mut shutdown => return,
        }
    }
}

/// Looks at every job once; returns the earliest time to look again.
async fn tick(state: &Arc<DaemonState>, starting: bool) -> Result<Option<UnixMs>, DaemonError> {
    let reader = state.clone();
    let jobs = tokio::task::spawn_blocking(move || {
        reader.store.read("reading schedules", |rx| {
            if starting {
                for (name, why) in rx.damaged_named::<JobRecord>(JOBS)? {
                    warn!(job = %name, reason = %why, "the stored record of this job is damaged: it does not run (the others do); `cairn job delete` it and create it again");
                }
            }
            jobs_with_schedules(rx)
        })
    })
    .await
    .map_err(|e| DaemonError::Internal(e.to_string()))??;
    let now = now_ms();
    let mut earliest: Option<UnixMs> = None;
    for (job, job_state) in jobs {
        let Some(spec) = job.schedule.as_ref().filter(|_| job.enabled) else {
            continue;
        };
        let Ok(schedule) = Schedule::parse(spec) else {
            warn!(job = %job.name, cron = %spec.cron, "schedule no longer parses; the job does not fire");
            continue;
        };
        let decided = plan(&schedule, &job_state, job.updated, now, starting);
        if let Some(at) = decided.next_wake {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        if let Some(new_state) = decided.state {
            let missed = new_state.missed - job_state.missed;
            if missed > 0 {
                warn!(job = %job.name, missed, "schedule slots missed (daemon down, clock jump, or a run still going)");
            }
            let writer = state.clone();
            let name = job.name.clone();
            tokio::task::spawn_blocking(move || {
                writer.store.write("recording a schedule slot", |tx| {
                    tx.put_named(SCHEDULE, &name, &new_state)
                })
            })
            .await
            .map_err(|e| DaemonError::Internal(e.to_string()))??;
        }
        if let Some((slot, trigger)) = decided.fire {
            start_later(
                state.clone(),
                job,
                slot,
                trigger,
                schedule.spec.random_delay_seconds,
            );
        }
    }
    Ok(earliest)
}

/// Starts the run after the job's random delay (none by default).
fn start_later(
    state: Arc<DaemonState>,
    job: JobRecord,
    slot: UnixMs,
    trigger: Trigger,
    delay_max: u32,
) {
    tokio::spawn(async move {
        if delay_max > 0 {
            let delay = u64::from(random_below(delay_max + 1));
            tokio::time::sleep(Duration::from_secs(delay)).await;
        }
        let runner = state.runner.clone();
        let name = job.name.clone();
        let queued =
            tokio::task::spawn_blocking(move || runner.enqueue(&job, trigger, None, Some(slot)))
                .await;
        match queued {
            Ok(Ok(run)) => {
                info!(job = %name, run, slot, trigger = ?trigger, "scheduled run queued")
            }
            Ok(Err(e)) => {
                warn!(job = %name, slot, error = %e, "scheduled run not started");
                let writer = state.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    writer.store.write("counting a missed slot", |tx| {
                        let mut s: ScheduleState =
                            tx.get_named(SCHEDULE, &name)?.unwrap_or_default();
                        s.missed += 1;
                        tx.put_named(SCHEDULE, &name, &s)
                    })
                })
                .await;
            }
            Err(e) => warn!(job = %name, error = %e, "scheduled run not started"),
        }
    });
}

fn random_below(n: u32) -> u32 {
    let mut bytes = [0u8; 4];
    if getrandom::fill(&mut bytes).is_err() {
        return 0;
    }
    u32::from_le_bytes(bytes) % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ScheduleSpec;
    use chrono::TimeZone;
    use chrono_tz::Tz;

    fn schedule(cron: &str, tz: &str, catch_up: CatchUp) -> Schedule {
        Schedule::parse(&ScheduleSpec {
            cron: cron.into(),
            timezone: tz.into(),
            random_delay_seconds: 0,
            catch_up,
        })
        .unwrap()
    }

    fn at(tz: &str, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> UnixMs {
        let tz: Tz = tz.parse().unwrap();
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .timestamp_millis()
    }

    /// Steps a simulated clock minute by minute, applying plans as the loop would;
    /// returns the fired slots.
    fn simulate(s: &Schedule, from: UnixMs, to: UnixMs) -> Vec<UnixMs> {
        let mut state = ScheduleState::default();
        let mut fired = Vec::new();
        let mut now = from;
        let mut starting = true;
        while now <= to {
            let p = plan(s, &state, from, now, starting);
            starting = false;
            if let Some((slot, _)) = p.fire {
                fired.push(slot);
            }
            if let Some(new) = p.state {
                state = new;
            }
            now += 60_000;
        }
        fired
    }

    #[test]
    fn a_daily_job_fires_once_per_day_across_both_dst_changes_in_berlin() {
        let s = schedule("30 2 * * *", "Europe/Berlin", CatchUp::Once);
        // Spring forward (02:30 does not exist on 2026-03-29) and fall back (02:30
        // happens twice on 2026-10-25): one run each day all the same.
        for (start, days) in [((3, 27), 4), ((10, 23), 4)] {
            let from = at("Europe/Berlin", 2026, start.0, start.1, 12, 0);
            let fired = simulate(&s, from, from + days * 86_400_000);
            assert_eq!(fired.len(), days as usize, "{start:?}: {fired:?}");
            let mut unique = fired.clone();
            unique.dedup();
            assert_eq!(unique, fired);
        }
    }

    #[test]
    fn missed_slots_run_once_at_start_or_are_skipped_by_policy() {
        let last = at("UTC", 2026, 1, 1, 3, 0);
        let now = at("UTC", 2026, 1, 4, 12, 0); // down for three slots
        let state = ScheduleState {
            last_slot: Some(last),
            missed: 0,
        };
        let once = plan(
            &schedule("0 3 * * *", "", CatchUp::Once),
            &state,
            0,
            now,
            true,
        );
        assert_eq!(
            once.fire,
            Some((at("UTC", 2026, 1, 4, 3, 0), Trigger::CatchUp))
        );
        assert_eq!(once.state.as_ref().unwrap().missed, 2);
        let skip = plan(
            &schedule("0 3 * * *", "", CatchUp::Skip),
            &state,
            0,
            now,
            true,
        );
        assert_eq!(skip.fire, None);
        assert_eq!(skip.state.as_ref().unwrap().missed, 3);
        assert_eq!(
            skip.state.unwrap().last_slot,
            Some(at("UTC", 2026, 1, 4, 3, 0))
        );
        assert_eq!(skip.next_wake, Some(at("UTC", 2026, 1, 5, 3, 0)));
    }

    #[test]
    fn a_slot_is_never_fired_twice_even_when_the_clock_goes_back() {
        let s = schedule("0 * * * *", "", CatchUp::Once);
        let ten = at("UTC", 2026, 5, 1, 10, 0);
        let first = plan(
            &s,
            &ScheduleState::default(),
            ten - 60_000,
            ten + 1000,
            false,
        );
        assert_eq!(first.fire, Some((ten, Trigger::Schedule)));
        let state = first.state.unwrap();
        // The clock is set back 20 minutes: 10:00 comes round again, and is not fired.
        let back = plan(&s, &state, 0, ten - 20 * 60_000, false);
        assert_eq!(back.fire, None);
        assert_eq!(back.next_wake, Some(ten + 3_600_000));
        let again = plan(&s, &state, 0, ten + 5000, false);
        assert_eq!(again.fire, None);
    }

    #[test]
    fn a_clock_jump_forward_fires_one_run_for_the_skipped_slots() {
        let s = schedule("*/10 * * * *", "", CatchUp::Once);
        let t = at("UTC", 2026, 5, 1, 10, 0);
        let state = ScheduleState {
            last_slot: Some(t),
            missed: 0,
        };
        let p = plan(&s, &state, 0, t + 45 * 60_000, false);
        assert_eq!(p.fire, Some((t + 40 * 60_000, Trigger::Schedule)));
        assert_eq!(p.state.unwrap().missed, 3);
    }

    #[test]
    fn a_new_job_does_not_fire_for_slots_before_it_existed() {
        let s = schedule("0 3 * * *", "", CatchUp::Once);
        let created = at("UTC", 2026, 1, 10, 12, 0);
        let p = plan(&s, &ScheduleState::default(), created, created + 1000, true);
        assert_eq!(p.fire, None);
        assert_eq!(p.next_wake, Some(at("UTC", 2026, 1, 11, 3, 0)));
    }
}
