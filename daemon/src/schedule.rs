//! Schedules: a cron expression (5 fields, or 6 with seconds first) in an IANA time
//! zone. croner does the matching, including DST: a slot inside a spring-forward gap
//! runs at the first valid time after it, a slot in a fall-back hour runs once.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::store::{ScheduleSpec, UnixMs};

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    pub spec: ScheduleSpec,
}

impl Schedule {
    /// Parses and checks a schedule; the error says what is wrong, in words.
    pub fn parse(spec: &ScheduleSpec) -> Result<Schedule, String> {
        let fields = spec.cron.split_whitespace().count();
        if !spec.cron.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(format!(
                "cron {:?} has {fields} fields; give 5 (minute hour day month weekday) or 6 (seconds first)",
                spec.cron
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(&spec.cron)
            .map_err(|e| format!("cron {:?}: {e}", spec.cron))?;
        let tz = if spec.timezone.is_empty() {
            Tz::UTC
        } else {
            spec.timezone.parse::<Tz>().map_err(|_| {
                format!(
                    "timezone {:?} is not an IANA zone name (like Europe/Berlin or UTC)",
                    spec.timezone
                )
            })?
        };
        if spec.random_delay_seconds > 24 * 3600 {
            return Err("random_delay_seconds is over a day".into());
        }
        let schedule = Schedule {
            cron,
            tz,
            spec: spec.clone(),
        };
        // A pattern that never matches (Feb 30th) is a mistake, not a schedule.
        if schedule.next_after(Utc::now().timestamp_millis()).is_none() {
            return Err(format!("cron {:?} never fires", spec.cron));
        }
        Ok(schedule)
    }

    /// The first slot strictly after `after`.
    pub fn next_after(&self, after: UnixMs) -> Option<UnixMs> {
        // Slots are whole seconds; croner would carry the milliseconds into its answer.
        let whole = after - after.rem_euclid(1000);
        let start: DateTime<Tz> = self.tz.timestamp_millis_opt(whole).single()?;
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// Up to `count` slots after `after`.
    pub fn upcoming(&self, after: UnixMs, count: usize) -> Vec<UnixMs> {
        let mut out = Vec::with_capacity(count);
        let mut at = after;
        while out.len() < count {
            match self.next_after(at) {
                Some(next) => {
                    out.push(next);
                    at = next;
                }
                None => break,
            }
        }
        out
    }

    /// The schedule in words, with its zone.
    pub fn describe(&self) -> String {
        format!("{} ({})", self.cron.describe(), self.tz.name())
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cron: &str, timezone: &str) -> ScheduleSpec {
        ScheduleSpec {
            cron: cron.into(),
            timezone: timezone.into(),
            random_delay_seconds: 0,
            catch_up: Default::default(),
        }
    }

    fn at(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> UnixMs {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .unwrap()
            .timestamp_millis()
    }

    fn local(ms: UnixMs, tz: Tz) -> String {
        tz.timestamp_millis_opt(ms)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    #[test]
    fn five_and_six_fields_with_a_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let s = Schedule::parse(&spec("0 3 * * *", "Europe/Berlin")).unwrap();
        let next = s.upcoming(at(berlin, 2026, 1, 10, 12, 0), 2);
        assert_eq!(local(next[0], berlin), "2026-01-11 03:00:00 CET");
        assert_eq!(local(next[1], berlin), "2026-01-12 03:00:00 CET");
        let every5s = Schedule::parse(&spec("*/5 * * * * *", "")).unwrap();
        let next = every5s.upcoming(at(Tz::UTC, 2026, 1, 1, 0, 0), 3);
        assert_eq!(next[1] - next[0], 5000);
    }

    #[test]
    fn spring_forward_runs_a_slot_in_the_gap_once_right_after_it() {
        // Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let s = Schedule::parse(&spec("30 2 * * *", "Europe/Berlin")).unwrap();
        let next = s.upcoming(at(berlin, 2026, 3, 28, 12, 0), 2);
        assert_eq!(local(next[0], berlin), "2026-03-29 03:00:00 CEST");
        assert_eq!(local(next[1], berlin), "2026-03-30 02:30:00 CEST");
    }

    #[test]
    fn fall_back_runs_a_slot_in_the_repeated_hour_once() {
        // Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let s = Schedule::parse(&spec("30 2 * * *", "Europe/Berlin")).unwrap();
        let next = s.upcoming(at(berlin, 2026, 10, 24, 12, 0), 2);
        assert_eq!(local(next[0], berlin), "2026-10-25 02:30:00 CEST");
        assert_eq!(local(next[1], berlin), "2026-10-26 02:30:00 CET");
    }

    #[test]
    fn slots_are_whole_seconds_whatever_the_milliseconds_of_now() {
        let s = Schedule::parse(&spec("0 3 * * *", "")).unwrap();
        let next = s.next_after(at(Tz::UTC, 2026, 1, 1, 12, 0) + 600).unwrap();
        assert_eq!(next, at(Tz::UTC, 2026, 1, 2, 3, 0));
    }

    #[test]
    fn bad_schedules_are_explained() {
        let e = Schedule::parse(&spec("0 3 * *", "")).unwrap_err();
        assert!(e.contains("has 4 fields"), "{e}");
        let e = Schedule::parse(&spec("0 25 * * *", "")).unwrap_err();
        assert!(e.contains("0 25 * * *"), "{e}");
        let e = Schedule::parse(&spec("0 3 * * *", "Mars/Olympus")).unwrap_err();
        assert!(e.contains("not an IANA zone"), "{e}");
        let e = Schedule::parse(&spec("0 0 30 2 *", "")).unwrap_err();
        assert!(e.contains("never fires"), "{e}");
    }
}
