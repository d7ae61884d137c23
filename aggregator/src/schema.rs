//! Zeek TSV header lines (`#separator` ... `#types`) arrive from every sensor at each of its own
//! rotations. The aggregator keeps one header per file: a sensor's header block is collected
//! until `#types`, then compared with the file's schema (every header line but `#open`).
//! Same schema: dropped. Different schema (a sensor with changed `#fields`): that sensor's lines
//! go to a separate file `<log>-<hash>.log` with its own header, so no file ever mixes columns.

use std::collections::HashMap;

/// Longest header block we collect before giving up on it.
const MAX_HEADER_LINES: usize = 32;

/// A header line for which we need to know what to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Meta {
    /// The line was taken into a block still being collected (or dropped: `#close`).
    Held,
    /// A complete block: every header line, in order.
    Block(Vec<Vec<u8>>),
}

#[derive(Default)]
pub struct Collector {
    pending: HashMap<(String, String), Vec<Vec<u8>>>,
}

impl Collector {
    /// `source` tells sensors apart (host and log name).
    pub fn meta_line(&mut self, host: &str, log: &str, line: &[u8]) -> Meta {
        if line.starts_with(b"#close") {
            return Meta::Held;
        }
        let key = (host.to_owned(), log.to_owned());
        if line.starts_with(b"#separator") {
            self.pending.insert(key.clone(), Vec::new());
        }
        let block = self.pending.entry(key.clone()).or_default();
        if block.len() >= MAX_HEADER_LINES {
            tracing::warn!(host, log, "header block too long; discarded");
            block.clear();
        }
        block.push(line.to_vec());
        if line.starts_with(b"#types") {
            return Meta::Block(self.pending.remove(&key).unwrap_or_default());
        }
        Meta::Held
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
        for (i, line) in HEADER.iter().enumerate() {
            // Another sensor interleaves its own block.
            assert_eq!(c.meta_line("b", "conn", HEADER[0].as_bytes()), Meta::Held);
            match c.meta_line("a", "conn", line.as_bytes()) {
                Meta::Block(b) => {
                    assert_eq!(i, HEADER.len() - 1);
                    got = Some(b);
                }
                Meta::Held => {}
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
}
