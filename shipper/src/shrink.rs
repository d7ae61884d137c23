//! A file cut back below where it was read, its first bytes unchanged ([`OnShrink::Retract`]):
//! reading goes on from the end of the last whole line left instead of from the start.
//!
//! [`OnShrink::Retract`]: estuary_config::shipper::OnShrink::Retract

use std::fs::File;
use std::io;

use estuary_fsutil::read_full_at;

use crate::hash::Span;

/// Bytes looked at per step back for a line end.
const STEP: usize = 64 * 1024;

/// Where reading of `file` goes on when it is shorter than `offset` and still begins with
/// `fingerprint`: the end of the last whole line at or before its length. `None` when it is not
/// shorter or its first bytes changed (new content).
pub fn retract_to(file: &File, fingerprint: &Span, offset: u64) -> io::Result<Option<u64>> {
    let len = file.metadata()?.len();
    if len >= offset || !fingerprint.matches(file)? {
        return Ok(None);
    }
    last_line_end(file, len).map(Some)
}

/// The offset just past the last `\n` before `len`; 0 when there is none.
fn last_line_end(file: &File, len: u64) -> io::Result<u64> {
    let mut buf = vec![0; STEP];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(STEP as u64);
        let want = (end - start) as usize;
        let n = read_full_at(file, &mut buf[..want], start)?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(content: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.log");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        (dir, File::open(&path).unwrap())
    }

    #[test]
    fn a_shorter_file_with_its_first_bytes_goes_on_after_its_last_whole_line() {
        let (_dir, file) = file_with(b"one\ntwo\nthr");
        let fp = Span::read(&file, 0, 4).unwrap();
        assert_eq!(retract_to(&file, &fp, 20).unwrap(), Some(8));
        assert_eq!(retract_to(&file, &fp, 11).unwrap(), None, "not shorter");
        let other = Span::read(&file, 4, 4).unwrap();
        let changed = Span { at: 0, ..other };
        assert_eq!(
            retract_to(&file, &changed, 20).unwrap(),
            None,
            "new content"
        );
    }

    #[test]
    fn a_line_end_is_found_further_back_than_one_step() {
        let mut content = b"first\n".to_vec();
        content.resize(6 + 3 * STEP, b'x');
        let (_dir, file) = file_with(&content);
        assert_eq!(last_line_end(&file, content.len() as u64).unwrap(), 6);
        let (_dir, none) = file_with(b"no line end");
        assert_eq!(last_line_end(&none, 11).unwrap(), 0);
    }
}
