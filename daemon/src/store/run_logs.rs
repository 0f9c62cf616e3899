//! The run log table: (run id, line seq) → line. Lines are written in batches by the
//! log writer (`logs/stored.rs`), bounded per run, and dropped with their run's
//! retention.

use redb::ReadableTable;

use super::{LogRecord, RUN_LOGS, Rx, StoreError, Tx, decode, encode};

fn key_text(key: (u64, u64)) -> String {
    format!("run {} line {}", key.0, key.1)
}

impl Tx<'_> {
    pub fn append_run_log(&mut self, line: &LogRecord) -> Result<(), StoreError> {
        let mut t = db!(self, self.txn.open_table(RUN_LOGS))?;
        db!(
            self,
            t.insert((line.run, line.seq), encode(line).as_slice())
        )?;
        Ok(())
    }

    /// How many lines of `run` are stored.
    pub fn count_run_logs(&mut self, run: u64) -> Result<u64, StoreError> {
        let t = db!(self, self.txn.open_table(RUN_LOGS))?;
        let mut n = 0;
        for item in db!(self, t.range((run, 0)..=(run, u64::MAX)))? {
            db!(self, item)?;
            n += 1;
        }
        Ok(n)
    }

    /// Deletes the stored log lines of `run`; returns how many there were.
    pub fn delete_run_logs(&mut self, run: u64) -> Result<u64, StoreError> {
        self.drop_oldest_run_logs(run, u64::MAX)
    }

    /// Deletes the oldest `n` stored lines of `run`; returns how many were deleted.
    pub fn drop_oldest_run_logs(&mut self, run: u64, n: u64) -> Result<u64, StoreError> {
        let mut t = db!(self, self.txn.open_table(RUN_LOGS))?;
        let mut left = n;
        let removed = db!(
            self,
            t.extract_from_if((run, 0)..=(run, u64::MAX), |_, _| {
                let take = left > 0;
                left = left.saturating_sub(1);
                take
            })
        )?;
        let mut count = 0;
        for item in removed {
            db!(self, item)?;
            count += 1;
        }
        Ok(count)
    }
}

impl Rx<'_> {
    /// Log lines of `run` with seq > `after`, in order, at most `limit`.
    pub fn run_logs(
        &self,
        run: u64,
        after: u64,
        limit: usize,
    ) -> Result<Vec<LogRecord>, StoreError> {
        let t = db!(self, self.txn.open_table(RUN_LOGS))?;
        let start = after.saturating_add(1);
        let mut out = Vec::new();
        for item in db!(self, t.range((run, start)..=(run, u64::MAX)))?.take(limit) {
            let (k, v) = db!(self, item)?;
            out.push(decode(
                self.path,
                "run_logs",
                key_text(k.value()),
                v.value(),
            )?);
        }
        Ok(out)
    }

    /// Every run that has stored lines, with the seq of its last line; in run order.
    pub fn runs_with_logs(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let t = db!(self, self.txn.open_table(RUN_LOGS))?;
        let mut out = Vec::new();
        let mut from = 0u64;
        loop {
            let first = db!(self, t.range((from, 0)..))?.next();
            let Some(first) = first else { break };
            let (run, _) = db!(self, first)?.0.value();
            let last = db!(self, t.range((run, 0)..=(run, u64::MAX)))?.next_back();
            if let Some(last) = last {
                out.push((run, db!(self, last)?.0.value().1));
            }
            match run.checked_add(1) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(out)
    }
}
