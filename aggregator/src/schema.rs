//! Zeek TSV header lines (`#separator` ... `#types`) arrive from every sensor at each of its own
//! rotations. The aggregator keeps one header per file: a sensor's header block is collected
//! until `#types`, then compared with the file's schema (every header line but `#open`). A line
//! starting with `#` that is not part of such a block (another log's comment, a block cut short
//! or too large) is data and written as such; `#close` is dropped, as each file gets its own.
//! Same schema: dropped. Different schema (a sensor with changed `#fields`): that sensor's lines
//! go to a separate file `<log>-<hash>.log` with its own header, so no file ever mixes columns.

use std::collections::{HashMap, VecDeque};

/// Longest header block we collect (Zeek writes eight lines); longer is not a header.
const MAX_HEADER_LINES: usize = 16;
/// Largest header block we collect; larger is not a header.
const MAX_BLOCK_BYTES: usize = 64 << 10;
/// Blocks being collected at once, over all senders; the oldest gives way.
const MAX_PENDING_BLOCKS: usize = 256;
/// Bytes held in blocks being collected, over all senders; the oldest give way.
const MAX_PENDING_BYTES: usize = 4 << 20;

/// What a line starting with `#` is to a Zeek log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// `#separator`: a header block starts.
    Start,
    /// A header line between `#separator` and `#types`.
    Inner,
    /// `#types`: the block is complete.
    Types,
    /// `#close`: Zeek's footer; every file gets its own from the aggregator.
    Close,
    /// Not a header line: data.
    Other,
}

fn classify(line: &[u8]) -> Line {
    const INNER: [&[u8]; 6] = [
        b"#set_separator\t",
        b"#empty_field\t",
        b"#unset_field\t",
        b"#path\t",
        b"#open\t",
        b"#fields\t",
    ];
    if line.starts_with(b"#separator ") {
        Line::Start
    } else if INNER.iter().any(|p| line.starts_with(p)) {
        Line::Inner
    } else if line.starts_with(b"#types\t") {
        Line::Types
    } else if line == b"#close" || line.starts_with(b"#close\t") {
        Line::Close
    } else {
        Line::Other
    }
}

/// Which sender's block: sending host and log name.
pub type Source = (String, String);

/// What became of a line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Lines of the same source to write as data, in order: a block that did not complete,
    /// and the line itself when it is not a header line.
    pub data: Vec<Vec<u8>>,
    /// A complete header block.
    pub block: Option<Vec<Vec<u8>>>,
    /// A block of another source that gave way to bounds; its lines are data.
    pub evicted: Option<(Source, Vec<Vec<u8>>)>,
}

#[derive(Default)]
pub struct Collector {
    pending: HashMap<Source, Vec<Vec<u8>>>,
    /// Sources in the order their blocks started, oldest first (may name finished ones).
    order: VecDeque<Source>,
    bytes: usize,
}

impl Collector {
    /// No block is being collected.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// Takes one line starting with `#` from `host`'s `log`.
    pub fn meta_line(&mut self, host: &str, log: &str, line: &[u8]) -> Collected {
        let source = (host.to_owned(), log.to_owned());
        let mut out = Collected::default();
        match classify(line) {
            Line::Start => {
                out.data = self.take(&source);
                out.evicted = self.make_room(line.len());
                self.bytes += line.len();
                self.pending.insert(source.clone(), vec![line.to_vec()]);
                if self.order.len() >= 2 * MAX_PENDING_BLOCKS {
                    let pending = &self.pending;
                    self.order.retain(|s| pending.contains_key(s));
                }
                self.order.push_back(source);
            }
            Line::Inner | Line::Types if self.pending.contains_key(&source) => {
                let block = self.pending.get_mut(&source).expect("checked above");
                block.push(line.to_vec());
                self.bytes += line.len();
                let size: usize = block.iter().map(Vec::len).sum();
                if block.len() > MAX_HEADER_LINES || size > MAX_BLOCK_BYTES {
                    out.data = self.take(&source);
                } else if classify(line) == Line::Types {
                    out.block = Some(self.take(&source));
                } else {
                    out.evicted = self.make_room(0);
                }
            }
            Line::Close => out.data = self.take(&source),
            Line::Inner | Line::Types | Line::Other => {
                out.data = self.take(&source);
                out.data.push(line.to_vec());
            }
        }
        out
    }

    /// A data line arrived from `host`'s `log`: a block it was collecting is no header.
    pub fn interrupt(&mut self, host: &str, log: &str) -> Vec<Vec<u8>> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        self.take(&(host.to_owned(), log.to_owned()))
    }

    fn take(&mut self, source: &Source) -> Vec<Vec<u8>> {
        let lines = self.pending.remove(source).unwrap_or_default();
        self.bytes -= lines.iter().map(Vec::len).sum::<usize>();
        if self.pending.is_empty() {
            self.order.clear();
        }
        lines
    }

    /// Gives up the oldest block when the bounds leave no room for `more` bytes.
    fn make_room(&mut self, more: usize) -> Option<(Source, Vec<Vec<u8>>)> {
        let full =
            self.pending.len() >= MAX_PENDING_BLOCKS || self.bytes + more > MAX_PENDING_BYTES;
        if !full {
            return None;
        }
        while let Some(oldest) = self.order.pop_front() {
            if self.pending.contains_key(&oldest) {
                let lines = self.take(&oldest);
                return Some((oldest, lines));
            }
        }
        None
    }
}

/// The schema identity of a block: every line except `#open`, joined.
pub fn schema_of(block: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in block.iter().filter(|l| !l.starts_with(b"#open")) {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// Eight hex digits naming a schema variant (FNV-1a of the schema).
pub fn variant_suffix(schema: &[u8]) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in schema {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The header to write at the top of a new file: the schema's lines with our own `#open` after
/// `#path` (Zeek's order).
pub fn header_for(schema: &[u8], open: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(schema.len() + 32);
    let mut wrote_open = false;
    for line in schema.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if !wrote_open && (line.starts_with(b"#fields") || line.starts_with(b"#types")) {
            out.extend_from_slice(format!("#open\t{open}\n").as_bytes());
            wrote_open = true;
        }
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

/// Column names from a schema's `#fields` line.
pub fn fields(schema: &[u8]) -> Vec<String> {
    schema
        .split(|b| *b == b'\n')
        .find_map(|l| l.strip_prefix(b"#fields\t"))
        .map(|rest| {
            rest.split(|b| *b == b'\t')
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &[&str] = &[
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tconn",
        "#open\t2026-11-22-11-00-00",
        "#fields\tts\tuid",
        "#types\ttime\tstring",
    ];

    #[test]
    fn collects_blocks_per_sensor() {
        let mut c = Collector::default();
        let mut got = None;
        assert_eq!(
            c.meta_line("b", "conn", HEADER[0].as_bytes()),
            Collected::default()
        );
        for (i, line) in HEADER.iter().enumerate() {
            // Another sensor interleaves its own block.
            assert_eq!(
                c.meta_line("b", "conn", HEADER[(i + 1).min(6)].as_bytes()),
                Collected::default()
            );
            let collected = c.meta_line("a", "conn", line.as_bytes());
            assert!(collected.data.is_empty() && collected.evicted.is_none());
            if let Some(b) = collected.block {
                assert_eq!(i, HEADER.len() - 1);
                got = Some(b);
            }
        }
        let block = got.unwrap();
        assert_eq!(block.len(), HEADER.len());
        let schema = schema_of(&block);
        assert!(!String::from_utf8_lossy(&schema).contains("#open"));
        assert_eq!(fields(&schema), vec!["ts", "uid"]);
        let header = String::from_utf8(header_for(&schema, "2026-11-22-12-00-00")).unwrap();
        let lines: Vec<&str> = header.lines().collect();
        assert_eq!(lines[5], "#open\t2026-11-22-12-00-00");
        assert_eq!(lines.len(), HEADER.len());
    }

    #[test]
    fn lines_outside_a_block_are_data() {
        let mut c = Collector::default();
        let line = |s: &str| s.as_bytes().to_vec();
        // Not a header line, or a header line outside a block.
        for text in ["# a comment", "#fields\tx", "#types\tstring"] {
            assert_eq!(c.meta_line("a", "x", text.as_bytes()).data, [line(text)]);
        }
        assert_eq!(c.meta_line("a", "x", b"#close\t2026"), Collected::default());
        // A block cut short by a data line, by a comment or by a new block.
        c.meta_line("a", "x", b"#separator \\x09");
        c.meta_line("a", "x", b"#path\tx");
        assert_eq!(
            c.interrupt("a", "x"),
            [line("#separator \\x09"), line("#path\tx")]
        );
        assert!(c.is_idle());
        c.meta_line("a", "x", b"#separator \\x09");
        assert_eq!(
            c.meta_line("a", "x", b"# note").data,
            [line("#separator \\x09"), line("# note")]
        );
        c.meta_line("a", "x", b"#separator 1");
        assert_eq!(
            c.meta_line("a", "x", b"#separator 2").data,
            [line("#separator 1")]
        );
        // A field list too long for a header.
        let huge = format!("#fields\t{}", "f\t".repeat(MAX_BLOCK_BYTES));
        let collected = c.meta_line("a", "x", huge.as_bytes());
        assert_eq!(collected.data, [line("#separator 2"), huge.into_bytes()]);
        assert!(c.is_idle());
    }

    #[test]
    fn blocks_that_never_finish_are_bounded() {
        let mut c = Collector::default();
        let mut evicted = 0;
        for host in 0..MAX_PENDING_BLOCKS * 3 {
            let collected = c.meta_line(&format!("h{host}"), "conn", b"#separator \\x09");
            if let Some(((h, _), lines)) = collected.evicted {
                assert_eq!(h, format!("h{}", host - MAX_PENDING_BLOCKS));
                assert_eq!(lines.len(), 1);
                evicted += 1;
            }
        }
        assert_eq!(evicted, MAX_PENDING_BLOCKS * 2);
        // Blocks that finish leave no trace.
        for host in 0..MAX_PENDING_BLOCKS * 3 {
            let host = format!("f{host}");
            c.meta_line(&host, "conn", b"#separator \\x09");
            assert!(c.meta_line(&host, "conn", b"#types\tx").block.is_some());
        }
        assert!(c.order.len() <= 2 * MAX_PENDING_BLOCKS + 1);
        assert!(c.pending.len() <= MAX_PENDING_BLOCKS);
    }
}
