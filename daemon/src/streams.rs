//! Endless calls (log followers, run and change watchers) are each a task, a queue and
//! an HTTP/2 send buffer for as long as the client keeps them open, read or not. A
//! caller below admin may hold `[daemon] max_streams_per_uid` of them; the next one
//! gets RESOURCE_EXHAUSTED. What one stream may buffer is bounded where it is made
//! (a follower that falls behind loses lines and is told how many).

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
    /// A permit for one more endless call by `caller`; admins are not counted.
    pub fn acquire(&self, caller: Caller, limit: u32) -> Result<StreamPermit, Status> {
        if caller.role == Role::Admin {
            return Ok(StreamPermit {
                quota: None,
                uid: caller.uid,
            });
        }
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mine = open.entry(caller.uid).or_default();
        if *mine >= limit as usize {
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
    }
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
        };
        let held: Vec<_> = (0..3).map(|_| quota.acquire(viewer, 3).unwrap()).collect();
        let refused = quota.acquire(viewer, 3).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        let admin = Caller {
            uid: 0,
            role: Role::Admin,
        };
        assert!((0..10).all(|_| quota.acquire(admin, 3).is_ok()));
        drop(held);
        assert!(quota.acquire(viewer, 3).is_ok());
    }
}
