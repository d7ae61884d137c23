//! Content checks that tell one file incarnation from another across restarts.
//!
//! FNV-1a is used because the values are persisted: the hash must not change between builds.

use estuary_fsutil::read_full_at;
use std::fs::File;
use std::io;

use serde::{Deserialize, Serialize};

/// How many leading bytes identify a file's content (rsyslog uses 512).
pub const FINGERPRINT_BYTES: usize = 512;
/// How many bytes before a resume offset must match on restart.
pub const CHECK_BYTES: usize = 64;

pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// A hash of `len` bytes of a file starting at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub at: u64,
    pub len: u32,
    pub hash: u64,
}

impl Span {
    /// Hashes up to `max` bytes starting at `at` (fewer if the file is shorter).
    pub fn read(file: &File, at: u64, max: usize) -> io::Result<Span> {
        let mut buf = vec![0; max];
        let n = read_full_at(file, &mut buf, at)?;
        Ok(Span {
            at,
            len: n as u32,
            hash: fnv1a(&buf[..n]),
        })
    }

    /// The first bytes of a file.
    pub fn fingerprint(file: &File) -> io::Result<Span> {
        Span::read(file, 0, FINGERPRINT_BYTES)
    }

    /// The bytes just before `offset`.
    pub fn before(file: &File, offset: u64) -> io::Result<Span> {
        let len = offset.min(CHECK_BYTES as u64);
        Span::read(file, offset - len, len as usize)
    }

    /// Whether `file` still holds exactly these bytes.
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        let now = Span::read(file, self.at, self.len as usize)?;
        Ok(now == *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn fnv_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn span_detects_rewrite() {
        let f = tempfile::tempfile().unwrap();
        f.write_all_at(b"#header\nline one\nline two\n", 0).unwrap();
        let check = Span::before(&f, 17).unwrap();
        assert_eq!(check.len, 17);
        assert!(check.matches(&f).unwrap());
        f.set_len(0).unwrap();
        f.write_all_at(b"#header\nline 111\nline two\n", 0).unwrap();
        assert!(!check.matches(&f).unwrap());
        f.set_len(3).unwrap();
        assert!(!check.matches(&f).unwrap());
    }
}
