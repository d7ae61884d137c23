//! Which names belong to an input: the files a path or glob names, and the names their rotations
//! take beside them (logrotate's and Zeek's).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tracing::warn;

/// Whether `candidate` is named like a rotation of a name `live` accepts: logrotate's
/// `app.log.1` and `app.log-20240101`, or Zeek's own `conn.2026-11-22-12-00-00.log` for
/// `conn.log`. A name `live` accepts is not a rotation: it is an input file itself.
pub fn is_rotation_name(live: impl Fn(&str) -> bool, candidate: &str) -> bool {
    if live(candidate) {
        return false;
    }
    let cuts = candidate
        .char_indices()
        .filter(|&(_, c)| matches!(c, '.' | '-' | '_'));
    let logrotate = cuts.clone().any(|(i, _)| i > 0 && live(&candidate[..i]));
    let zeek = candidate.strip_suffix(".log").is_some_and(|stem| {
        cuts.filter(|&(i, c)| c == '.' && i > 0 && i + 1 < stem.len())
            .any(|(i, _)| live(&format!("{}.log", &candidate[..i])))
    });
    logrotate || zeek
}

/// Files beside `path` named like rotations of it (see [`is_rotation_name`]), not compressed.
/// For a glob, beside every file it matches, in every directory it matches.
pub fn siblings(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let live: Box<dyn Fn(&str) -> bool> = if is_glob(Path::new(name)) {
        match glob::Pattern::new(name) {
            Ok(pattern) => Box::new(move |n| pattern.matches(n)),
            Err(_) => return Vec::new(),
        }
    } else {
        Box::new(move |n| n == name)
    };
    let mut out: Vec<PathBuf> = expand(dir)
        .iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            is_rotation_name(&live, &n)
                && ![".gz", ".bz2", ".xz", ".zst", ".lz4", ".zip"]
                    .iter()
                    .any(|ext| n.ends_with(ext))
                && e.metadata().is_ok_and(|m| m.is_file())
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

pub fn newest_first(mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
    paths.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).and_then(|m| m.modified()).ok()));
    paths
}

/// The name beside `path` (or `path` itself) that the file `id` (device, inode) has now.
pub fn renamed_to(path: &Path, id: (u64, u64)) -> Option<PathBuf> {
    std::iter::once(path.to_owned())
        .chain(siblings(path))
        .find(|p| fs::metadata(p).is_ok_and(|m| (m.dev(), m.ino()) == id))
}

/// Whether the input `pattern` (a path or a glob) names `path`.
pub fn names(pattern: &Path, path: &Path) -> bool {
    if is_glob(pattern) {
        glob::Pattern::new(&pattern.to_string_lossy()).is_ok_and(|p| p.matches_path(path))
    } else {
        pattern == path
    }
}

fn is_glob(path: &Path) -> bool {
    path.to_string_lossy().contains(['*', '?', '['])
}

/// The files a path or glob names, sorted.
pub fn expand(pattern: &Path) -> Vec<PathBuf> {
    if !is_glob(pattern) {
        return vec![pattern.to_owned()];
    }
    let text = pattern.to_string_lossy();
    match glob::glob(&text) {
        Ok(paths) => {
            let mut paths: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
            paths.sort();
            paths
        }
        Err(err) => {
            warn!(pattern = %text, %err, "bad glob");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_rotation_name;

    #[test]
    fn rotation_names_of_logrotate_and_zeek() {
        let conn = |n: &str| n == "conn.log";
        for rotated in [
            "conn.log.1",
            "conn.log-20261122",
            "conn.2026-11-22-12-00-00.log",
            "conn.x.log",
        ] {
            assert!(is_rotation_name(conn, rotated), "{rotated}");
        }
        for other in [
            "conn.log",
            "conn..log",
            "conn_summary.log",
            "connx.log",
            "dns.1.log",
        ] {
            assert!(!is_rotation_name(conn, other), "{other}");
        }
        assert!(!is_rotation_name(|n| n == "app.txt", "app.1.txt"));
    }

    #[test]
    fn rotation_names_of_a_glob_are_names_it_does_not_match() {
        let pattern = glob::Pattern::new("f*.log").unwrap();
        let live = |n: &str| pattern.matches(n);
        for rotated in ["f1.log.1", "f112.log-20261122", "f1.log_old"] {
            assert!(is_rotation_name(live, rotated), "{rotated}");
        }
        // Matched by the glob itself, or not derived from any name it matches.
        for other in ["f1.log", "f1.2026-11-22-12-00-00.log", "g1.log.1", "f1.txt"] {
            assert!(!is_rotation_name(live, other), "{other}");
        }
    }
}
