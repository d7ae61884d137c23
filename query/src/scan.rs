//! Searching one file as a stream: its pieces (the gzip members of an estuary archive, or the
//! whole of any other file) decompressed a block at a time on every core, rows found by the
//! prefilter first when there is one, then split, checked against the time range and the
//! filters, and rendered. Only the matching rows are kept, sorted by time for the merge across
//! files (and with `--limit N` only the N earliest).

use std::fs::File;
use std::io::{self, Read};

use estuary_archive::RangeReader;
use rayon::prelude::*;

use crate::filter::Compiled;
use crate::header::Header;
use crate::render::Renderer;
use crate::source::Source;
use crate::time::{parse_ts, Micros};

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
    /// Keep only this many rows, the earliest.
    pub limit: Option<usize>,
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

impl Matches {
    /// Keeps the `limit` earliest rows (the first of equal times), in their order.
    fn keep_earliest(&mut self, limit: usize) {
        if self.rows.len() <= limit {
            return;
        }
        let mut order: Vec<(Micros, usize)> = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, &(ts, _))| (ts, i))
            .collect();
        order.select_nth_unstable(limit);
        let mut keep: Vec<usize> = order[..limit].iter().map(|&(_, i)| i).collect();
        keep.sort_unstable();
        let mut buf = Vec::new();
        let mut rows = Vec::with_capacity(limit);
        for i in keep {
            let start = if i == 0 { 0 } else { self.rows[i - 1].1 };
            let (ts, end) = self.rows[i];
            buf.extend_from_slice(&self.buf[start..end]);
            rows.push((ts, buf.len()));
        }
        self.buf = buf;
        self.rows = rows;
    }
}

/// What searching one file found: its matching rows in time order.
#[derive(Debug, Default)]
pub struct FileResult {
    pub pieces: Vec<Matches>,
    /// (ts, piece, start, end) of every kept row, by time, ties in file order.
    pub order: Vec<(Micros, u32, usize, usize)>,
    pub count: u64,
    pub corrupt: u64,
    /// Damage that stopped a piece early (rows before it were searched).
    pub damage: Option<io::Error>,
}

impl FileResult {
    pub fn row(&self, i: usize) -> (Micros, &[u8]) {
        let (ts, piece, start, end) = self.order[i];
        (ts, &self.pieces[piece as usize].buf[start..end])
    }
}

pub fn file(source: &Source, plan: &Plan) -> io::Result<FileResult> {
    let file = File::open(&source.path)?;
    let results: Vec<(Matches, Option<io::Error>)> = if source.compressed {
        estuary_archive::file_members(&file)?
            .into_par_iter()
            .map(|range| {
                let reader = estuary_archive::decoder(RangeReader::new(&file, range));
                stream(reader, plan, false)
            })
            .collect()
    } else {
        let len = file.metadata()?.len();
        // On the pool, as every other piece: the caller only waits.
        rayon::iter::once(())
            .map(|()| stream(RangeReader::new(&file, 0..len), plan, source.growing))
            .collect()
    };
    let mut found = FileResult::default();
    for (piece, (matches, error)) in results.into_iter().enumerate() {
        found.damage = found.damage.take().or(error);
        found.count += matches.count;
        found.corrupt += matches.corrupt;
        let mut start = 0;
        for &(ts, end) in &matches.rows {
            found.order.push((ts, piece as u32, start, end));
            start = end;
        }
        found.pieces.push(matches);
    }
    found.order.sort_unstable();
    if let Some(limit) = plan.limit {
        found.order.truncate(limit);
    }
    Ok(found)
}

/// Searches a reader block by block. On an error, the whole rows before it are searched and the
/// error returned beside them. A `growing` file's last line without its newline is not yet a row.
fn stream(mut reader: impl Read, plan: &Plan, growing: bool) -> (Matches, Option<io::Error>) {
    let mut matches = Matches::default();
    let mut buf: Vec<u8> = Vec::with_capacity(READ * 2);
    loop {
        let start = buf.len();
        buf.resize(start + READ, 0);
        match reader.read(&mut buf[start..]) {
            Ok(0) => {
                buf.truncate(start);
                if !growing {
                    plan.block(&buf, &mut matches);
                }
                return (matches, None);
            }
            Ok(n) => {
                buf.truncate(start + n);
                if let Some(end) = memchr::memrchr(b'\n', &buf[start..]).map(|at| start + at + 1) {
                    plan.block(&buf[..end], &mut matches);
                    buf.drain(..end);
                    if let Some(limit) = plan
                        .limit
                        .filter(|&l| matches.rows.len() >= 2 * l.max(1024))
                    {
                        matches.keep_earliest(limit);
                    }
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
    fn keep_earliest_keeps_the_first_of_equal_times_in_order() {
        let mut m = Matches::default();
        for (ts, text) in [(5, "a\n"), (1, "b\n"), (5, "c\n"), (3, "d\n"), (1, "e\n")] {
            m.buf.extend_from_slice(text.as_bytes());
            m.rows.push((ts, m.buf.len()));
        }
        m.keep_earliest(3);
        assert_eq!(m.buf, b"b\nd\ne\n");
        assert_eq!(m.rows, [(1, 2), (3, 4), (1, 6)]);
    }
}
