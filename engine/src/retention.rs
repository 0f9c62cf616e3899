//! Which snapshots a retention policy keeps, and why. A pure decision: the caller
//! lists the snapshots of one backup set (same host and paths), this says keep or
//! drop for each with the rules that kept it; forgetting acts on it later.
//!
//! The rules, like the ones operators know from other tools: the newest `last`; the
//! newest snapshot of each of the newest `hourly` hours, `daily` days, `weekly` ISO
//! weeks, `monthly` months and `yearly` years that have one (calendar periods in the
//! given time zone); every snapshot `within` a span of now; every snapshot carrying
//! one of `tags`. A policy with no rule keeps everything: an empty policy must never
//! mean "delete it all".

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeepPolicy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    /// Keep every snapshot this recent.
    pub within: Option<SignedDuration>,
    pub tags: Vec<String>,
}

impl KeepPolicy {
    /// No rule at all: everything is kept.
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none()
            && self.tags.is_empty()
    }
}

/// Reads a `within` span: a number and a unit, repeated, with units `h` (hours), `d`
/// (days of 24 hours) and `w` (weeks): "36h", "14d", "8w", "1w3d12h". Months and years
/// are left out on purpose: their length varies, and "30d" or "365d" says exactly what
/// is meant.
pub fn parse_within(text: &str) -> Result<SignedDuration> {
    let bad = |reason: &str| Error::invalid(format!("keep within {text:?}"), reason.to_owned());
    let mut hours: i64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit_hours = match c {
            'h' => 1,
            'd' => 24,
            'w' => 24 * 7,
            'm' | 'y' => {
                return Err(bad(
                    "months and years vary in length; write days (\"30d\", \"365d\")",
                ));
            }
            _ => {
                return Err(bad(
                    "expected a number and a unit h, d or w (\"14d\", \"1w3d12h\")",
                ));
            }
        };
        if digits.is_empty() {
            return Err(bad("each unit needs a number before it (\"14d\")"));
        }
        // Only digits: a number too big for i64 is too long a span.
        let count: i64 = digits
            .parse()
            .map_err(|_| bad("longer than a thousand years"))?;
        digits.clear();
        hours = count
            .checked_mul(unit_hours)
            .and_then(|h| hours.checked_add(h))
            .filter(|h| *h <= 24 * 365 * 1000)
            .ok_or_else(|| bad("longer than a thousand years"))?;
    }
    if !digits.is_empty() {
        return Err(bad("the last number has no unit (h, d or w)"));
    }
    if hours == 0 {
        return Err(bad("expected a span longer than zero (\"14d\")"));
    }
    Ok(SignedDuration::from_hours(hours))
}

/// One snapshot as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub time: Timestamp,
    pub tags: Vec<String>,
}

/// The decision for one candidate (same order as given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub keep: bool,
    /// The rules that keep it ("last", "daily", "within", "tag nightly", ...).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Period {
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    fn name(self) -> &'static str {
        match self {
            Period::Hour => "hourly",
            Period::Day => "daily",
            Period::Week => "weekly",
            Period::Month => "monthly",
            Period::Year => "yearly",
        }
    }

    /// The calendar period a time falls in, in `tz`.
    fn key(self, time: Timestamp, tz: &TimeZone) -> (i32, i32, i32, i32) {
        let local = time.to_zoned(tz.clone());
        let date = local.date();
        match self {
            Period::Hour => (
                i32::from(date.year()),
                i32::from(date.day_of_year()),
                i32::from(local.hour()),
                0,
            ),
            Period::Day => (i32::from(date.year()), i32::from(date.day_of_year()), 0, 0),
            Period::Week => {
                let week = date.iso_week_date();
                (i32::from(week.year()), i32::from(week.week()), 0, 0)
            }
            Period::Month => (i32::from(date.year()), i32::from(date.month()), 0, 0),
            Period::Year => (i32::from(date.year()), 0, 0, 0),
        }
    }
}

/// Decides for each candidate; `now` anchors `within`, `tz` the calendar periods.
pub fn plan(
    candidates: &[Candidate],
    policy: &KeepPolicy,
    now: Timestamp,
    tz: &TimeZone,
) -> Vec<Decision> {
    let mut decisions: Vec<Decision> = candidates
        .iter()
        .map(|_| Decision {
            keep: policy.is_empty(),
            reasons: if policy.is_empty() {
                vec!["no retention rule".to_owned()]
            } else {
                Vec::new()
            },
        })
        .collect();
    if policy.is_empty() {
        return decisions;
    }
    // Newest first; equal times keep their given order.
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| candidates[b].time.cmp(&candidates[a].time));

    let mut keep = |i: usize, reason: String| {
        decisions[i].keep = true;
        decisions[i].reasons.push(reason);
    };
    for &i in order.iter().take(policy.last as usize) {
        keep(i, "last".to_owned());
    }
    for (period, count) in [
        (Period::Hour, policy.hourly),
        (Period::Day, policy.daily),
        (Period::Week, policy.weekly),
        (Period::Month, policy.monthly),
        (Period::Year, policy.yearly),
    ] {
        let mut seen = None;
        let mut kept = 0;
        for &i in &order {
            if kept >= count {
                break;
            }
            let key = period.key(candidates[i].time, tz);
            if seen != Some(key) {
                seen = Some(key);
                kept += 1;
                keep(i, period.name().to_owned());
            }
        }
    }
    if let Some(within) = policy.within {
        let since = now.checked_sub(within).unwrap_or(Timestamp::MIN);
        for &i in &order {
            if candidates[i].time >= since {
                keep(i, "within".to_owned());
            }
        }
    }
    for &i in &order {
        if let Some(tag) = candidates[i].tags.iter().find(|t| policy.tags.contains(t)) {
            keep(i, format!("tag {tag}"));
        }
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn candidates(times: &[&str]) -> Vec<Candidate> {
        times
            .iter()
            .map(|t| Candidate {
                time: at(t),
                tags: Vec::new(),
            })
            .collect()
    }

    fn kept(decisions: &[Decision]) -> Vec<usize> {
        decisions
            .iter()
            .enumerate()
            .filter(|(_, d)| d.keep)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn an_empty_policy_keeps_everything() {
        let c = candidates(&["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]);
        let d = plan(
            &c,
            &KeepPolicy::default(),
            at("2026-02-01T00:00:00Z"),
            &TimeZone::UTC,
        );
        assert_eq!(kept(&d), [0, 1]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_day_in_the_zone() {
        // 23:30 UTC on the 1st is already the 2nd in Berlin.
        let c = candidates(&[
            "2026-01-01T10:00:00Z",
            "2026-01-01T23:30:00Z",
            "2026-01-02T08:00:00Z",
            "2026-01-03T08:00:00Z",
        ]);
        let policy = KeepPolicy {
            daily: 3,
            ..KeepPolicy::default()
        };
        let now = at("2026-01-04T00:00:00Z");
        let utc = plan(&c, &policy, now, &TimeZone::UTC);
        assert_eq!(
            kept(&utc),
            [1, 2, 3],
            "UTC: the 1st's newest, the 2nd, the 3rd"
        );
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let local = plan(&c, &policy, now, &berlin);
        assert_eq!(
            kept(&local),
            [0, 2, 3],
            "Berlin: 23:30 UTC belongs to the 2nd"
        );
        assert_eq!(local[3].reasons, ["daily"]);
    }

    #[test]
    fn last_within_and_tags_add_up_with_their_reasons() {
        let mut c = candidates(&[
            "2026-01-01T00:00:00Z",
            "2026-01-05T00:00:00Z",
            "2026-01-09T00:00:00Z",
            "2026-01-10T00:00:00Z",
        ]);
        c[0].tags = vec!["release".into()];
        let policy = KeepPolicy {
            last: 1,
            within: Some(SignedDuration::from_hours(24 * 2)),
            tags: vec!["release".into()],
            ..KeepPolicy::default()
        };
        let d = plan(&c, &policy, at("2026-01-10T12:00:00Z"), &TimeZone::UTC);
        assert_eq!(kept(&d), [0, 2, 3]);
        assert_eq!(d[3].reasons, ["last", "within"]);
        assert_eq!(d[0].reasons, ["tag release"]);
        assert!(!d[1].keep && d[1].reasons.is_empty());
    }

    #[test]
    fn within_reads_hours_days_and_weeks() {
        assert_eq!(parse_within("36h").unwrap(), SignedDuration::from_hours(36));
        assert_eq!(
            parse_within("14d").unwrap(),
            SignedDuration::from_hours(14 * 24)
        );
        assert_eq!(
            parse_within(" 1w3d12h ").unwrap(),
            SignedDuration::from_hours(7 * 24 + 3 * 24 + 12)
        );
        for (text, says) in [
            ("", "longer than zero"),
            ("0d", "longer than zero"),
            ("14", "no unit"),
            ("d", "needs a number"),
            ("1m", "write days"),
            ("2y", "write days"),
            ("3 days", "expected a number and a unit"),
            ("99999999999w", "thousand years"),
            ("99999999999999999999999d", "thousand years"),
        ] {
            let error = parse_within(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text:?}: {error}");
            assert!(
                error.contains(&format!("{text:?}")),
                "names the input: {error}"
            );
        }
    }

    proptest! {
        /// Each period rule keeps at most its count, each in a different period, and
        /// always the newest snapshot of the periods it keeps; `last` keeps the newest.
        #[test]
        fn period_rules_keep_the_newest_of_distinct_periods(
            offsets in proptest::collection::vec(0i64..(400 * 86_400), 1..60),
            daily in 0u32..10,
            monthly in 0u32..5,
            last in 0u32..4,
        ) {
            let base = at("2025-01-01T00:00:00Z");
            let c: Vec<Candidate> = offsets
                .iter()
                .map(|s| Candidate { time: base.checked_add(SignedDuration::from_secs(*s)).unwrap(), tags: Vec::new() })
                .collect();
            let policy = KeepPolicy { daily, monthly, last, ..KeepPolicy::default() };
            let d = plan(&c, &policy, base, &TimeZone::UTC);
            if policy.is_empty() {
                prop_assert!(d.iter().all(|d| d.keep));
                return Ok(());
            }
            let by_rule = |rule: &str| -> Vec<usize> {
                (0..c.len()).filter(|i| d[*i].reasons.iter().any(|r| r == rule)).collect()
            };
            for (rule, count, period) in [("daily", daily, Period::Day), ("monthly", monthly, Period::Month)] {
                let chosen = by_rule(rule);
                prop_assert!(chosen.len() <= count as usize);
                let mut keys: Vec<_> = chosen.iter().map(|&i| period.key(c[i].time, &TimeZone::UTC)).collect();
                keys.sort();
                keys.dedup();
                prop_assert_eq!(keys.len(), chosen.len(), "one per period");
                for &i in &chosen {
                    let key = period.key(c[i].time, &TimeZone::UTC);
                    prop_assert!(c.iter().all(|o| period.key(o.time, &TimeZone::UTC) != key || o.time <= c[i].time));
                }
            }
            let newest = c.iter().map(|c| c.time).max().unwrap();
            if last > 0 {
                prop_assert!(by_rule("last").iter().any(|&i| c[i].time == newest));
            }
            // Nothing is dropped without a reason missing: kept means a reason.
            for decision in &d {
                prop_assert_eq!(decision.keep, !decision.reasons.is_empty());
            }
        }
    }
}
