//! The runs going on, as the rules for changing jobs and repositories need to know
//! them. The runner implements it; the rules only ask, so the arrow points from the
//! runner to the rules and never back.

pub trait RunsGoing: std::fmt::Debug {
    /// The run of `job` queued or running, if any.
    fn active_run_of(&self, job: &str) -> Option<u64>;
    /// Whether a run (of a job or not) is queued or running on `repository`.
    fn uses_repository(&self, repository: &str) -> bool;
}
