//! Endless calls (log followers, run and change watchers) are each a task, a queue and
//! an HTTP/2 send buffer for as long as the client keeps them open, read or not. A
//! caller below admin may hold `[daemon] max_streams_per_uid` of them, and all callers
//! below admin together `max_streams` (many uids in the socket's group must not add up
//! to unbounded memory); the next one gets RESOURCE_EXHAUSTED. What one stream may
//! buffer is bounded where it is made (a follower that falls behind loses lines and is
//! told how many). When the last of them ends, the daemon hands the memory they used
//! back to the system.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tonic::Status;

use crate::auth::Role;
use crate::rpc::Caller;

#[derive(Debug, Default, Clone)]
pub struct StreamQuota(Arc<Mutex<HashMap<u32, usize>>>);

/// One open stream of a uid, given back when the stream's task ends.
#[derive(Debug)]
pub struct StreamPermit {
    quota: Option<StreamQuota>,
    uid: u32,
}

impl StreamQuota {
    /// A permit for one more endless call by `caller` (at most `per_uid` of one uid
    /// and `total` of all); admins are not counted.
    pub fn acquire(
        &self,
        caller: Caller,
        per_uid: u32,
        total: u32,
    ) -> Result<StreamPermit, Status> {
        if caller.role == Role::Admin {
            return Ok(StreamPermit {
                quota: None,
                uid: caller.uid,
            });
        }
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let all: usize = open.values().sum();
        if all >= total as usize {
            return Err(Status::resource_exhausted(format!(
                "the daemon has {all} log follows and watches open ([daemon] max_streams); try again later"
            )));
        }
        let mine = open.entry(caller.uid).or_default();
        if *mine >= per_uid as usize {
            return Err(Status::resource_exhausted(format!(
                "uid {} has {mine} log follows and watches open ([daemon] max_streams_per_uid); close one first",
                caller.uid
            )));
        }
        *mine += 1;
        Ok(StreamPermit {
            quota: Some(self.clone()),
            uid: caller.uid,
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let Some(quota) = &self.quota else {
            return;
        };
        let mut open = quota.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.uid);
            }
        }
        let last = open.is_empty();
        drop(open);
        // The streams' buffers went back to the arenas, which keep them: after a crowd
        // of followers, the process would stay at its peak.
        if last {
            give_back_after_streams();
        }
    }
}

/// Returns free memory to the kernel when the last counted stream ends, at most once a
/// second (a single client coming and going does not pay for it each time).
fn give_back_after_streams() {
    static LAST: Mutex<Option<std::time::Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1)) {
        return;
    }
    *last = Some(std::time::Instant::now());
    drop(last);
    cairn_engine::alloc::give_back_free_memory();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_below_admin_holds_at_most_its_share_of_streams() {
        let quota = StreamQuota::default();
        let viewer = Caller {
            uid: 1000,
            role: Role::Viewer,
            rpc: "",
        };
        let held: Vec<_> = (0..3)
            .map(|_| quota.acquire(viewer, 3, 100).unwrap())
            .collect();
        let refused = quota.acquire(viewer, 3, 100).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        let admin = Caller {
            uid: 0,
            role: Role::Admin,
            rpc: "",
        };
        assert!((0..10).all(|_| quota.acquire(admin, 3, 3).is_ok()));
        drop(held);
        assert!(quota.acquire(viewer, 3, 100).is_ok());
    }

    #[test]
    fn many_uids_together_hold_at_most_the_total() {
        let quota = StreamQuota::default();
        let held: Vec<_> = (0..10)
            .map(|uid| {
                let caller = Caller {
                    uid: 2000 + uid,
                    role: Role::Viewer,
                    rpc: "",
                };
                quota.acquire(caller, 2, 10).unwrap()
            })
            .collect();
        let another = Caller {
            uid: 3000,
            role: Role::Viewer,
            rpc: "",
        };
        let refused = quota.acquire(another, 2, 10).unwrap_err();
        assert!(refused.message().contains("max_streams"), "{refused:?}");
        let admin = Caller {
            uid: 0,
            role: Role::Admin,
            rpc: "",
        };
        assert!(quota.acquire(admin, 2, 10).is_ok(), "admins always get in");
        drop(held);
        assert!(quota.acquire(another, 2, 10).is_ok());
    }
}
