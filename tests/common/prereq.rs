//! Prerequisites a test needs from the machine (root, a loop device, tcpreplay ...). CI provides
//! them all, so there a missing one fails the test; on a developer's machine the test is skipped,
//! visibly.

use std::io::Write;

/// Whether the suite runs under CI (`CI=true`), where every prerequisite must be there.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether the test may go on: true when `available`. Otherwise it panics with `reason` under
/// `CI=true`, and elsewhere prints `SKIPPED: reason` past the test harness's output capture (so
/// that the skip shows in the summary) and returns false: the caller returns.
pub fn require(available: bool, reason: &str) -> bool {
    if available {
        return true;
    }
    assert!(!under_ci(), "prerequisite missing under CI=true: {reason}");
    // Written to the process's stderr, not through `eprintln!`, which the harness captures.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
    false
}

/// [`require`] for a prerequisite that is a value: `Some` goes on, `None` skips or fails.
pub fn require_some<T>(value: Option<T>, reason: &str) -> Option<T> {
    let available = value.is_some();
    require(available, reason).then_some(value).flatten()
}
