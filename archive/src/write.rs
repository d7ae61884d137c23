//! Parallel compression: the input is cut into chunks of whole lines, every chunk becomes one gzip
//! member on some core, and the members are written in input order.

use std::io::{self, BufRead, BufReader, Read, Write};

use flate2::write::DeflateEncoder;
use flate2::Compression;
use rayon::prelude::*;

use crate::member::{self, LENGTH_AT};
use crate::CHUNK;

/// A gzip compression level, 1 (fastest) to 9 (smallest), as `gzip -1` ... `gzip -9`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level(u32);

impl Level {
    pub fn new(level: u32) -> Option<Level> {
        (1..=9).contains(&level).then_some(Level(level))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Level {
    /// gzip's own default, `gzip -6`.
    fn default() -> Self {
        Level(6)
    }
}

/// What [`compress`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub members: u64,
}

/// Compresses `input` into `output` as independent gzip members, on rayon's thread pool
/// (`RAYON_NUM_THREADS` sets its size). `name` goes into the first member's header as the
/// original file name.
pub fn compress(
    input: impl Read,
    mut output: impl Write,
    level: Level,
    name: Option<&str>,
) -> io::Result<Summary> {
    let mut input = BufReader::with_capacity(CHUNK, input);
    // Enough chunks in flight to keep every core busy while the previous batch is written.
    let batch = rayon::current_num_threads() * 2;
    let mut summary = Summary::default();
    loop {
        let mut chunks = Vec::with_capacity(batch);
        for _ in 0..batch {
            let chunk = read_chunk(&mut input)?;
            if chunk.is_empty() {
                break;
            }
            chunks.push(chunk);
        }
        let last = chunks.len() < batch;
        if chunks.is_empty() && summary.members > 0 {
            break;
        }
        let first = summary.members == 0;
        // An empty input still becomes one (empty) member: a valid gzip file.
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        let compressed: Vec<Vec<u8>> = chunks
            .par_iter()
            .enumerate()
            .map(|(i, chunk)| encode(chunk, level, name.filter(|_| first && i == 0)))
            .collect::<io::Result<_>>()?;
        for (chunk, member) in chunks.iter().zip(&compressed) {
            output.write_all(member)?;
            summary.bytes_in += chunk.len() as u64;
            summary.bytes_out += member.len() as u64;
            summary.members += 1;
        }
        if last {
            break;
        }
    }
    output.flush()?;
    Ok(summary)
}

/// About [`CHUNK`] bytes, extended to the end of the line so that no line spans two members.
fn read_chunk(input: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut chunk = Vec::with_capacity(CHUNK + 4096);
    input.take(CHUNK as u64).read_to_end(&mut chunk)?;
    if chunk.last().is_some_and(|&b| b != b'\n') {
        input.read_until(b'\n', &mut chunk)?;
    }
    Ok(chunk)
}

/// One complete gzip member: header with its own length, deflate data, CRC-32, size.
fn encode(data: &[u8], level: Level, name: Option<&str>) -> io::Result<Vec<u8>> {
    let mut out = member::header(level.get(), name);
    out.reserve(data.len() / 3 + 64);
    let mut deflate = DeflateEncoder::new(out, Compression::new(level.get()));
    deflate.write_all(data)?;
    let mut out = deflate.finish()?;
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    // ISIZE is the length modulo 2^32 by definition.
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let total = u32::try_from(out.len())
        .map_err(|_| io::Error::other("a line longer than 4 GiB does not fit one gzip member"))?;
    out[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&total.to_le_bytes());
    Ok(out)
}
