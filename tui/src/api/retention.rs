//! A retention policy as people write and read it: "last 3, daily 7, weekly 4,
//! within 14d, tag release". `cairn job show` and the console print it this way, and
//! the console's editor reads it back. The daemon checks what it means (`within`
//! spans included) when the job is saved.

use cairn_proto::v1 as pb;

/// The rules that count snapshots, by the words used for them.
const COUNTS: [&str; 6] = ["last", "hourly", "daily", "weekly", "monthly", "yearly"];

fn counts(r: &pb::Retention) -> [u32; 6] {
    [
        r.keep_last,
        r.keep_hourly,
        r.keep_daily,
        r.keep_weekly,
        r.keep_monthly,
        r.keep_yearly,
    ]
}

fn count_mut<'a>(r: &'a mut pb::Retention, rule: &str) -> Option<&'a mut u32> {
    Some(match rule {
        "last" => &mut r.keep_last,
        "hourly" => &mut r.keep_hourly,
        "daily" => &mut r.keep_daily,
        "weekly" => &mut r.keep_weekly,
        "monthly" => &mut r.keep_monthly,
        "yearly" => &mut r.keep_yearly,
        _ => return None,
    })
}

/// A job's retention policy, if it has one (only backups do).
pub fn of_job(job: &pb::Job) -> Option<pb::Retention> {
    match job.spec.as_ref()?.kind.as_ref()? {
        pb::job_spec::Kind::Backup(b) => b.retention.clone(),
        _ => None,
    }
}

/// The policy in words; empty when it has no rule (everything is kept).
pub fn describe(r: &pb::Retention) -> String {
    let mut parts: Vec<String> = COUNTS
        .iter()
        .zip(counts(r))
        .filter(|(_, n)| *n > 0)
        .map(|(rule, n)| format!("{rule} {n}"))
        .collect();
    if !r.keep_within.is_empty() {
        parts.push(format!("within {}", r.keep_within));
    }
    parts.extend(r.keep_tags.iter().map(|t| format!("tag {t}")));
    parts.join(", ")
}

/// Reads the words back. Empty text is no policy (None). Rules are separated by
/// commas; each is a rule name and its value.
pub fn parse(text: &str) -> Result<Option<pb::Retention>, String> {
    let mut r = pb::Retention::default();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (rule, value) = part
            .split_once(char::is_whitespace)
            .map(|(rule, value)| (rule, value.trim()))
            .ok_or_else(|| format!("{part:?}: give a rule and its value, like \"daily 7\""))?;
        match rule {
            "within" => r.keep_within = value.to_owned(),
            "tag" => r.keep_tags.push(value.to_owned()),
            _ => {
                let slot = count_mut(&mut r, rule).ok_or_else(|| {
                    format!(
                        "{rule:?} is not a rule; rules: {}, within, tag",
                        COUNTS.join(", ")
                    )
                })?;
                *slot = value
                    .parse()
                    .map_err(|_| format!("{part:?}: {rule} takes a whole number"))?;
            }
        }
    }
    Ok((r != pb::Retention::default()).then_some(r))
}

/// For `--output json` and job files alike: the same keys as `[jobs.NAME.keep]`.
pub fn json(r: &pb::Retention) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    for (rule, n) in COUNTS.iter().zip(counts(r)) {
        if n > 0 {
            doc.insert((*rule).to_owned(), n.into());
        }
    }
    if !r.keep_within.is_empty() {
        doc.insert("within".into(), r.keep_within.clone().into());
    }
    if !r.keep_tags.is_empty() {
        doc.insert("tags".into(), r.keep_tags.clone().into());
    }
    doc.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_read_back_to_the_same_policy() {
        let r = pb::Retention {
            keep_last: 3,
            keep_daily: 7,
            keep_yearly: 2,
            keep_within: "14d".into(),
            keep_tags: vec!["release".into(), "pinned".into()],
            ..Default::default()
        };
        let text = describe(&r);
        assert_eq!(
            text,
            "last 3, daily 7, yearly 2, within 14d, tag release, tag pinned"
        );
        assert_eq!(parse(&text).unwrap(), Some(r));
        assert_eq!(parse("  ").unwrap(), None, "nothing typed: keep everything");
        assert_eq!(parse("daily 0").unwrap(), None);
    }

    #[test]
    fn a_mistyped_rule_says_what_is_accepted() {
        let error = parse("dialy 7").unwrap_err();
        assert!(error.contains("\"dialy\" is not a rule"), "{error}");
        assert!(error.contains("last, hourly, daily"), "{error}");
        assert!(parse("daily seven").unwrap_err().contains("whole number"));
        assert!(parse("daily").unwrap_err().contains("rule and its value"));
    }
}
