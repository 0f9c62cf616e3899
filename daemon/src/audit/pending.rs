//! The audit record of a change being made. The change is written through
//! [`Pending::write`], which adds the record to the same transaction, so no change is
//! kept without its record and no record claims a change that was rolled back. A call
//! that failed, or changed nothing in the store (a reload, a cancel), gets its record
//! on its own afterwards, from whoever made the `Pending` ([`crate::rpc::change`]).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::AuditSection;
use crate::store::{AuditRecord, Store, Tx, WriteError};

#[derive(Debug)]
pub struct Pending {
    /// The record as it reads when the change succeeds.
    succeeded: AuditRecord,
    config: AuditSection,
    recorded: AtomicBool,
}

impl Pending {
    pub fn new(succeeded: AuditRecord, config: AuditSection) -> Self {
        Pending {
            succeeded,
            config,
            recorded: AtomicBool::new(false),
        }
    }

    /// Who asked for the change.
    pub fn uid(&self) -> u32 {
        self.succeeded.uid
    }

    /// Runs `f` in one write transaction with the record added (as a success) when `f`
    /// succeeds; see [`Store::write`]. A change made in several transactions is
    /// recorded with the first that commits.
    pub fn write<T, E: WriteError>(
        &self,
        store: &Store,
        action: &'static str,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let first = !self.recorded();
        let value = store.write(action, |tx| {
            let value = f(tx)?;
            if first {
                super::append(tx, &self.config, vec![self.succeeded.clone()]).map_err(E::from)?;
            }
            Ok::<_, E>(value)
        })?;
        self.recorded.store(true, Ordering::Release);
        Ok(value)
    }

    /// Whether a committed change carries the record already.
    pub fn recorded(&self) -> bool {
        self.recorded.load(Ordering::Acquire)
    }
}
