//! Free space on the file systems holding LogDir and SpoolDir: zeekctl's MinDiskSpace warning
//! (once per crossing, state kept in SpoolDir) and estuary's hard floor, below which the writer
//! stops taking messages until space returns.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const STATE_FILE: &str = "disk-warnings.json";

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// `df`'s figure: used / (used + available to unprivileged users), in percent.
    pub used_percent: f64,
    /// Bytes used plus bytes available to unprivileged users.
    pub size: u64,
    /// Bytes available to unprivileged users.
    pub available: u64,
}

impl Usage {
    pub fn free_percent(&self) -> f64 {
        100.0 - self.used_percent
    }

    /// Bytes that can still be written before free space falls to `floor_percent`.
    pub fn headroom(&self, floor_percent: f64) -> u64 {
        let floor = (self.size as f64 * floor_percent / 100.0) as u64;
        self.available.saturating_sub(floor)
    }
}

pub fn usage(path: &Path) -> io::Result<Usage> {
    let st = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    let used = st.f_blocks.saturating_sub(st.f_bfree);
    let total = used + st.f_bavail;
    let used_percent = if total == 0 {
        0.0
    } else {
        used as f64 * 100.0 / total as f64
    };
    Ok(Usage {
        used_percent,
        size: total.saturating_mul(st.f_frsize),
        available: st.f_bavail.saturating_mul(st.f_frsize),
    })
}

/// Distinct file systems among `paths` (by device), each named by the first path on it.
pub fn filesystems(paths: &[&Path]) -> Vec<PathBuf> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if !seen.contains(&meta.dev()) => {
                seen.push(meta.dev());
                out.push(path.to_path_buf());
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(path = %path.display(), %err, "cannot check disk space"),
        }
    }
    out
}

/// The MinDiskSpace check: returns the warning lines for file systems that newly crossed the
/// threshold since the last check, and remembers which are over it.
pub fn check_min_space(
    spool_dir: &Path,
    host: &str,
    paths: &[&Path],
    min_free_percent: f64,
) -> io::Result<Vec<String>> {
    if min_free_percent <= 0.0 {
        return Ok(Vec::new());
    }
    let state_path = spool_dir.join(STATE_FILE);
    let mut over: BTreeMap<String, bool> = fs::read(&state_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut warnings = Vec::new();
    for fs_path in filesystems(paths) {
        let Ok(use_) = usage(&fs_path) else { continue };
        let key = fs_path.display().to_string();
        let is_over = use_.used_percent > 100.0 - min_free_percent;
        let was_over = over.get(&key).copied().unwrap_or(false);
        if is_over && !was_over {
            warnings.push(format!(
                "Disk space low on {host}:{key} - {:.1}% used.",
                use_.used_percent
            ));
        }
        over.insert(key, is_over);
    }
    let json = serde_json::to_vec(&over)?;
    estuary_fsutil::replace(&state_path, &json, estuary_fsutil::Durability::Durable)?;
    Ok(warnings)
}

/// The least free space among `paths` (percent) and the fewest bytes any of them can take
/// before reaching `floor_percent`; `None` when none can be measured.
pub fn room(paths: &[PathBuf], floor_percent: f64) -> Option<(f64, u64)> {
    paths
        .iter()
        .filter_map(|p| usage(p).ok())
        .map(|u| (u.free_percent(), u.headroom(floor_percent)))
        .reduce(|(f1, h1), (f2, h2)| (f1.min(f2), h1.min(h2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_a_percentage() {
        let dir = tempfile::tempdir().unwrap();
        let u = usage(dir.path()).unwrap();
        assert!((0.0..=100.0).contains(&u.used_percent));
        assert!(u.available <= u.size);
        assert!(u.headroom(0.0) == u.available && u.headroom(100.0) == 0);
    }

    #[test]
    fn warns_once_per_crossing() {
        let dir = tempfile::tempdir().unwrap();
        // 100 % free demanded: always over.
        let first = check_min_space(dir.path(), "h", &[dir.path()], 100.0).unwrap();
        assert_eq!(first.len(), 1);
        assert!(first[0].starts_with("Disk space low on h:"));
        assert!(first[0].ends_with("% used."));
        let second = check_min_space(dir.path(), "h", &[dir.path()], 100.0).unwrap();
        assert!(second.is_empty());
        // Back under the threshold, then over again: warns again.
        assert!(check_min_space(dir.path(), "h", &[dir.path()], 0.0001)
            .unwrap()
            .is_empty());
        let third = check_min_space(dir.path(), "h", &[dir.path()], 100.0).unwrap();
        assert_eq!(third.len(), 1);
    }
}
