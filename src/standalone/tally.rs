//! Rows counted while the run goes on, reading each file only where it grew: a current log from
//! where the last count stopped, an archive once. Checked every tick, so the cost of a check must
//! not grow with what was already counted.

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where counting stopped in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counted {
    /// (device, inode): a new file under the same name is counted from its start.
    id: (u64, u64),
    /// Just past the last whole line counted.
    offset: u64,
    rows: u64,
}

#[derive(Debug, Default)]
pub struct Tally {
    files: HashMap<PathBuf, Counted>,
}

impl Tally {
    /// The rows of each path in `paths` (gzip archives when `gzip`); files no longer listed are
    /// forgotten.
    pub fn rows<'a>(&mut self, paths: impl IntoIterator<Item = (&'a Path, bool)>) -> Vec<u64> {
        let mut seen = HashMap::new();
        let counts = paths
            .into_iter()
            .map(|(path, gzip)| {
                let counted = self.count(path, gzip);
                if let Some(c) = counted {
                    seen.insert(path.to_path_buf(), c);
                }
                counted.map_or(0, |c| c.rows)
            })
            .collect();
        self.files = seen;
        counts
    }

    fn count(&self, path: &Path, gzip: bool) -> Option<Counted> {
        let mut file = fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        let id = (meta.dev(), meta.ino());
        let before = self.files.get(path).copied();
        if gzip {
            // An archive is written once, under a temporary name, then renamed into place.
            if let Some(c) = before.filter(|c| c.id == id) {
                return Some(c);
            }
            let rows = count_rows(BufReader::new(flate2::read::MultiGzDecoder::new(file))).0;
            return Some(Counted {
                id,
                offset: meta.len(),
                rows,
            });
        }
        let start = before
            .filter(|c| c.id == id && c.offset <= meta.len())
            .unwrap_or(Counted {
                id,
                offset: 0,
                rows: 0,
            });
        file.seek(SeekFrom::Start(start.offset)).ok()?;
        let (rows, consumed) = count_rows(BufReader::new(file));
        Some(Counted {
            id,
            offset: start.offset + consumed,
            rows: start.rows + rows,
        })
    }
}

/// Rows (whole lines that are neither empty nor `#` headers) and the bytes of the whole lines.
fn count_rows(mut reader: impl BufRead) -> (u64, u64) {
    let (mut rows, mut consumed) = (0, 0);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) if line.ends_with(b"\n") => {
                consumed += n as u64;
                if line.len() > 1 && !line.starts_with(b"#") {
                    rows += 1;
                }
            }
            // An unfinished last line: counted once it ends.
            Ok(_) => break,
        }
    }
    (rows, consumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rows_skip_headers_and_blank_lines() {
        let text = b"#fields\ta\n1\n2\n\n#close\tx\n";
        assert_eq!(count_rows(&text[..]), (2, text.len() as u64));
    }

    #[test]
    fn appended_rows_are_counted_from_where_counting_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conn.log");
        fs::write(&path, "#fields\ta\n1\n2\npart").unwrap();
        let mut tally = Tally::default();
        assert_eq!(tally.rows([(path.as_path(), false)]), [2]);
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"ial\n\n#close\n3\n").unwrap();
        assert_eq!(tally.rows([(path.as_path(), false)]), [4]);
        assert_eq!(
            tally.files[&path].offset,
            fs::metadata(&path).unwrap().len()
        );
        // Replaced by a new file: counted from its start.
        fs::remove_file(&path).unwrap();
        fs::write(&path, "9\n").unwrap();
        assert_eq!(tally.rows([(path.as_path(), false)]), [1]);
        // Cut back below where counting stopped: counted again.
        fs::write(&path, "").unwrap();
        assert_eq!(tally.rows([(path.as_path(), false)]), [0]);
    }

    #[test]
    fn archives_are_read_once_and_missing_files_count_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("conn.00:00:00-01:00:00.log.gz");
        let mut enc = flate2::write::GzEncoder::new(
            fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        enc.write_all(b"#fields\ta\n1\n2\n3\n").unwrap();
        enc.finish().unwrap();
        let mut tally = Tally::default();
        assert_eq!(tally.rows([(gz.as_path(), true)]), [3]);
        assert_eq!(tally.rows([(gz.as_path(), true)]), [3]);
        assert_eq!(
            tally.rows([(dir.path().join("gone").as_path(), false)]),
            [0]
        );
        assert!(tally.files.is_empty());
    }
}
