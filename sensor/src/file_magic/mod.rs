//! File-type detection as Zeek's file analysis does it (`File::InferMetadata`): the first
//! `default_file_bof_buffer_size` bytes of a file are matched against the `file-magic`
//! signatures of `base/frameworks/files/magic`, and the MIME type of the strongest match wins.
//!
//! Zeek's signature patterns are implicitly anchored at the start of the buffer, and `.` does
//! not match a newline, which `regex`'s defaults reproduce once a `^` is put in front.
//! Among matches of equal strength Zeek takes the first of a sorted `std::set`, i.e. the
//! lexicographically smallest MIME type.

mod signatures;

use std::sync::OnceLock;

use regex::bytes::Regex;

/// Zeek's `default_file_bof_buffer_size`: how much of a file's start is kept for matching.
pub const BOF_BUFFER_SIZE: usize = 4096;

/// Appends to a file's BOF buffer what of `bytes` still fits in it.
pub fn keep_bof(bof: &mut Vec<u8>, bytes: &[u8]) {
    let room = BOF_BUFFER_SIZE.saturating_sub(bof.len());
    bof.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

struct Compiled {
    mime: &'static str,
    strength: i32,
    re: Regex,
}

fn compiled() -> &'static [Compiled] {
    static SIGS: OnceLock<Vec<Compiled>> = OnceLock::new();
    SIGS.get_or_init(|| {
        signatures::SIGNATURES
            .iter()
            .filter_map(|s| {
                let pattern = format!("(?-u)^(?:{})", s.magic);
                match Regex::new(&pattern) {
                    Ok(re) => Some(Compiled {
                        mime: s.mime,
                        strength: s.strength,
                        re,
                    }),
                    Err(e) => {
                        tracing::warn!(mime = s.mime, error = %e, "file-magic signature does not compile");
                        None
                    }
                }
            })
            .collect()
    })
}

/// The MIME type Zeek infers for a file starting with `bof` (only its first
/// [`BOF_BUFFER_SIZE`] bytes are looked at); `None` when no signature matches or the buffer
/// is empty.
pub fn detect(bof: &[u8]) -> Option<&'static str> {
    let bof = &bof[..bof.len().min(BOF_BUFFER_SIZE)];
    if bof.is_empty() {
        return None;
    }
    compiled()
        .iter()
        .filter(|c| c.re.is_match(bof))
        .max_by(|a, b| a.strength.cmp(&b.strength).then(b.mime.cmp(a.mime)))
        .map(|c| c.mime)
}

#[cfg(test)]
mod tests;
