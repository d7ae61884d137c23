//! A file an analyzer feeds from a stream, as Zeek's files framework reads it
//! (`file_analysis::File`): its type is sniffed once, from the BOF buffer, when that buffer
//! is full, a gap ends it (`File::Gap`) or the file ends (`File::EndOfFile`), and its
//! files.log row is written when it ends.

use crate::file_magic::{detect, keep_bof, BOF_BUFFER_SIZE};
use crate::files_log::FileInfo;
use crate::flow::Timestamp;
use crate::proto::Emit;

/// The file being transferred, if any.
#[derive(Default)]
pub(crate) struct FileStream {
    open: Option<Open>,
}

struct Open {
    info: FileInfo,
    bof: Vec<u8>,
    sniffed: bool,
}

/// The moment Zeek raises `file_sniff`: the type the BOF buffer gave, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sniff {
    pub mime_type: Option<&'static str>,
}

impl Open {
    fn sniff(&mut self) -> Option<Sniff> {
        if self.sniffed {
            return None;
        }
        self.sniffed = true;
        self.info.mime_type = detect(&self.bof);
        Some(Sniff {
            mime_type: self.info.mime_type,
        })
    }
}

impl FileStream {
    /// A new file begins (the previous one, if still open, ends first).
    pub fn begin(&mut self, info: FileInfo, out: &mut dyn Emit) {
        self.end(out);
        self.open = Some(Open {
            info,
            bof: Vec::new(),
            sniffed: false,
        });
    }

    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Bytes of the open file; the sniff, when these bytes filled the BOF buffer.
    pub fn data(&mut self, ts: Timestamp, bytes: &[u8]) -> Option<Sniff> {
        let open = self.open.as_mut()?;
        open.info.last = ts;
        open.info.seen_bytes += bytes.len() as u64;
        if open.sniffed {
            return None;
        }
        keep_bof(&mut open.bof, bytes);
        if open.bof.len() >= BOF_BUFFER_SIZE {
            return open.sniff();
        }
        None
    }

    /// Bytes of the open file were lost (`File::Gap`): the type is sniffed from what came before.
    pub fn gap(&mut self, len: u64) -> Option<Sniff> {
        let open = self.open.as_mut()?;
        open.info.missing_bytes += len;
        open.sniff()
    }

    /// The file ends: sniffed now if it was not yet, and its row is written.
    pub fn end(&mut self, out: &mut dyn Emit) -> Option<Sniff> {
        let mut open = self.open.take()?;
        let sniff = open.sniff();
        out.file(open.info);
        sniff
    }
}
