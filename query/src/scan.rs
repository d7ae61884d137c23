//! Searching one file: its pieces (gzip members, or stretches of a plain file) on every core, rows
//! found by the prefilter first when there is one, then split, checked against the time range and
//! the filters, and rendered.

use std::fs;
use std::io::{self, Read};

use rayon::prelude::*;

use crate::filter::Compiled;
use crate::header::Header;
use crate::render::Renderer;
use crate::source::Source;
use crate::time::{parse_ts, Micros};

/// A plain file is searched in pieces of about this many bytes.
const PIECE: usize = 4 << 20;
/// Bytes asked of a decoder at a time.
const READ: usize = 1 << 20;

/// Everything needed to search the rows of one file.
pub struct Plan<'a> {
    pub header: &'a Header,
    pub filters: &'a Compiled,
    pub renderer: &'a Renderer,
    /// The `ts` column: the range is checked and the answer ordered by it.
    pub ts: Option<usize>,
    pub from: Option<Micros>,
    pub to: Option<Micros>,
}

/// The rows one piece contributed, rendered one after another into `buf`.
#[derive(Debug, Default)]
pub struct Matches {
    pub buf: Vec<u8>,
    /// Each row's `ts` (`Micros::MIN` when unset) and the end of its text in `buf`.
    pub rows: Vec<(Micros, usize)>,
    pub count: u64,
    /// Rows whose number of fields is not the header's.
    pub corrupt: u64,
}

/// What searching one file found.
pub struct FileResult {
    pub pieces: Vec<Matches>,
    /// Damage that stopped a piece early (rows before it were searched).
    pub damage: Option<io::Error>,
}

pub fn file(source: &Source, plan: &Plan) -> io::Result<FileResult> {
    let data = fs::read(&source.path)?;
    let results: Vec<(Matches, Option<io::Error>)> = if source.compressed {
        estuary_archive::members(&data)
            .into_par_iter()
            .map(|range| stream(estuary_archive::decoder(&data[range]), plan))
            .collect()
    } else {
        let data = if source.growing {
            // The writer may be in the middle of a row.
            &data[..memchr::memrchr(b'\n', &data).map_or(0, |at| at + 1)]
        } else {
            &data[..]
        };
        pieces(data)
            .into_par_iter()
            .map(|piece| {
                let mut matches = Matches::default();
                plan.block(piece, &mut matches);
                (matches, None)
            })
            .collect()
    };
    let mut damage = None;
    let pieces = results
        .into_iter()
        .map(|(matches, error)| {
            damage = damage.take().or(error);
            matches
        })
        .collect();
    Ok(FileResult { pieces, damage })
}

/// `data` cut after a newline about every [`PIECE`] bytes.
fn pieces(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() > PIECE {
        let cut = memchr::memchr(b'\n', &rest[PIECE..]).map_or(rest.len(), |at| PIECE + at + 1);
        let (piece, tail) = rest.split_at(cut);
        out.push(piece);
        rest = tail;
    }
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Searches a decompressing reader block by block. On an error, the whole rows before it are
/// searched and the error returned beside them.
fn stream(mut reader: impl Read, plan: &Plan) -> (Matches, Option<io::Error>) {
    let mut matches = Matches::default();
    let mut buf: Vec<u8> = Vec::with_capacity(READ * 2);
    loop {
        let start = buf.len();
        buf.resize(start + READ, 0);
        match reader.read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                plan.block(&buf, &mut matches);
                return (matches, None);
            }
            Ok(n) => {
                buf.truncate(start + n);
                if let Some(end) = memchr::memrchr(b'\n', &buf[start..]).map(|at| start + at + 1) {
                    plan.block(&buf[..end], &mut matches);
                    buf.drain(..end);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => buf.truncate(start),
            Err(e) => return (matches, Some(e)),
        }
    }
}

impl Plan<'_> {
    /// Searches every row of `block` (whole lines; the last may lack its newline).
    fn block(&self, block: &[u8], out: &mut Matches) {
        let mut fields: Vec<&[u8]> = Vec::with_capacity(self.header.fields.len() + 1);
        match self.filters.prefilter() {
            Some(prefilter) => {
                let mut at = 0;
                while let Some(hit) = prefilter.find(block, at) {
                    let start = memchr::memrchr(b'\n', &block[..hit]).map_or(0, |p| p + 1);
                    let end = memchr::memchr(b'\n', &block[hit..]).map_or(block.len(), |p| hit + p);
                    self.row(&block[start..end], &mut fields, out);
                    at = end + 1;
                }
            }
            None => {
                for line in block.split(|&b| b == b'\n') {
                    self.row(line, &mut fields, out);
                }
            }
        }
    }

    fn row<'b>(&self, line: &'b [u8], fields: &mut Vec<&'b [u8]>, out: &mut Matches) {
        if line.is_empty() || line[0] == b'#' {
            return;
        }
        fields.clear();
        let mut start = 0;
        for at in memchr::memchr_iter(self.header.separator, line) {
            fields.push(&line[start..at]);
            start = at + 1;
        }
        fields.push(&line[start..]);
        if fields.len() != self.header.fields.len() {
            out.corrupt += 1;
            return;
        }
        let ts = self
            .ts
            .and_then(|i| parse_ts(fields[i]))
            .unwrap_or(Micros::MIN);
        if self.from.is_some_and(|from| ts < from) || self.to.is_some_and(|to| ts >= to) {
            return;
        }
        if !self.filters.matches(fields, self.header) {
            return;
        }
        out.count += 1;
        if !self.renderer.counts_only() {
            self.renderer
                .render(line, fields, self.header, &mut out.buf);
            out.rows.push((ts, out.buf.len()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_end_at_newlines() {
        let line = b"1700000000.000000\tCabc\t10.0.0.1\n";
        let data: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(line.len() * 400_000)
            .collect();
        let parts = pieces(&data);
        assert!(parts.len() > 2);
        assert!(parts.iter().all(|p| p.ends_with(b"\n")));
        assert_eq!(parts.concat(), data);
        assert!(pieces(b"").is_empty());
    }
}
