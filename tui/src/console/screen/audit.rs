//! The audit trail (admin): who did what through the API, newest first, filterable.

use cairn_proto::v1 as pb;

use crate::console::screen::TextInput;

/// Entries loaded at a time.
pub const LOADED: u32 = 1000;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditScreen {
    /// Newest first; None while loading.
    pub entries: Option<Vec<pb::AuditEntry>>,
    pub selected: usize,
    pub filter: TextInput,
    pub denied_only: bool,
}

impl AuditScreen {
    /// The entries the filter lets through: every word in the call, uid, role,
    /// arguments or result.
    pub fn visible(&self) -> Vec<&pb::AuditEntry> {
        let words: Vec<String> = self
            .filter
            .text
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.entries
            .iter()
            .flatten()
            .filter(|e| {
                let text = format!(
                    "{} uid={} {} {} {}",
                    e.rpc,
                    e.uid,
                    crate::console::role_name(pb::Role::try_from(e.role).unwrap_or_default()),
                    e.arguments,
                    e.result
                )
                .to_lowercase();
                words.iter().all(|w| text.contains(w.as_str()))
            })
            .collect()
    }
}
