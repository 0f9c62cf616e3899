//! The `--keep-*` flags of `cairn job create|update` and `cairn job retention`.

use cairn_proto::v1 as pb;

use crate::cli::KeepArgs;

/// The retention flags as the API's message; None when no flag was given.
pub(super) fn retention(keep: KeepArgs) -> Option<pb::Retention> {
    let r = pb::Retention {
        keep_last: keep.keep_last,
        keep_hourly: keep.keep_hourly,
        keep_daily: keep.keep_daily,
        keep_weekly: keep.keep_weekly,
        keep_monthly: keep.keep_monthly,
        keep_yearly: keep.keep_yearly,
        keep_within: keep.keep_within.unwrap_or_default(),
        keep_tags: keep.keep_tags,
    };
    (r != pb::Retention::default()).then_some(r)
}
