//! What a reader hands its destination's sender: encoded messages in one buffer, and for each
//! the point up to which its file is taken once the message is.

use std::ops::Range;

use crate::state::FileId;

/// Soft size limit of one batch's buffer.
pub const BATCH_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub file: FileId,
    /// The file offset after this line.
    pub end: u64,
    /// The message in the batch buffer (framed for stream transports); `None` for an empty line,
    /// which is skipped (as rsyslog does) but still moves the offset.
    pub msg: Option<Range<usize>>,
}

#[derive(Debug, Default)]
pub struct Batch {
    pub buf: Vec<u8>,
    pub entries: Vec<Entry>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.buf.len() >= BATCH_BYTES
    }

    /// Number of messages (empty lines excluded).
    pub fn messages(&self) -> u64 {
        self.entries.iter().filter(|e| e.msg.is_some()).count() as u64
    }
}
