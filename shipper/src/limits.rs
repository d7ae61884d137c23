//! How many files the shipper may hold open.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use tracing::{debug, warn};

/// Descriptors left for sockets, state files and the watcher when budgeting open files.
const RESERVED_DESCRIPTORS: u64 = 128;
/// Files held open at most, however high the descriptor limit.
const MAX_OPEN_FILES: u64 = 65_536;

/// How many files the registry may hold open. Every file read stays open until shipped, rotated
/// ones too, so the soft descriptor limit (often 1024) is first raised to the hard one.
pub fn open_file_budget() -> usize {
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = raised,
            Err(err) => warn!(%err, "cannot raise the open file limit"),
        }
    }
    let descriptors = limit.current.unwrap_or(u64::MAX);
    let budget = descriptors
        .saturating_sub(RESERVED_DESCRIPTORS)
        .clamp(1, MAX_OPEN_FILES);
    debug!(descriptors, budget, "open file budget");
    budget as usize
}
