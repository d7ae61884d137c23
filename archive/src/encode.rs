//! One chunk of log into one complete gzip member, reusing the deflate state from chunk to chunk.

use std::io;

use flate2::{Compress, Compression, FlushCompress, Status};

use crate::member::{self, LENGTH_AT};
use crate::Level;

/// A worker's compressor.
pub struct Encoder {
    level: Level,
    deflate: Compress,
}

impl Encoder {
    pub fn new(level: Level) -> Encoder {
        Encoder {
            level,
            // Raw deflate: the gzip framing is written here, with the member's length in it.
            deflate: Compress::new(Compression::new(level.get()), false),
        }
    }

    /// Replaces `out` with the member of `data`: header with its own length, deflate data,
    /// CRC-32, size.
    pub fn member(&mut self, data: &[u8], name: Option<&str>, out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        out.extend_from_slice(&member::header(self.level.get(), name));
        // Deflate's worst case is a few bytes per stored block over the input.
        out.reserve(data.len() + data.len() / 1000 + 64);
        self.deflate.reset();
        let mut rest = data;
        loop {
            let before = self.deflate.total_in();
            let status = self
                .deflate
                .compress_vec(rest, out, FlushCompress::Finish)
                .map_err(|e| io::Error::other(format!("deflate: {e}")))?;
            rest = &rest[(self.deflate.total_in() - before) as usize..];
            match status {
                Status::StreamEnd => break,
                Status::Ok | Status::BufError => out.reserve(64 << 10),
            }
        }
        out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        // ISIZE is the length modulo 2^32 by definition.
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        let total = u32::try_from(out.len()).map_err(|_| {
            io::Error::other("a line longer than 4 GiB does not fit one gzip member")
        })?;
        out[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&total.to_le_bytes());
        Ok(())
    }
}
