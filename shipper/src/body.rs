//! What a line becomes in its message: the line as read, or a row of a Zeek TSV log as the
//! object Zeek's JSON writer writes, typed by its file's header.

use std::fs::File;
use std::os::unix::fs::FileExt;

use estuary_config::shipper::Body;
use estuary_zeektsv::Header;

/// How much of a file's start is read for its header when reading resumes inside the file.
const HEADER_BYTES: usize = 64 * 1024;

/// The header lines Zeek writes; any other line starting with `#` is data.
const HEADER_KEYS: &[&[u8]] = &[
    b"#separator ",
    b"#set_separator",
    b"#empty_field",
    b"#unset_field",
    b"#path",
    b"#open",
    b"#fields",
    b"#types",
    b"#close",
];

/// One file's lines turned into message bodies.
pub enum Bodies {
    Lines,
    ZeekJson(Box<ZeekRows>),
}

impl Bodies {
    pub fn new(body: Body) -> Self {
        match body {
            Body::Line => Bodies::Lines,
            Body::ZeekJson => Bodies::ZeekJson(Box::default()),
        }
    }

    /// The body for `line`, which starts at `at` in `file`; `None` for a line not sent (a
    /// header line).
    pub fn body<'a>(&'a mut self, line: &'a [u8], file: &File, at: u64) -> Option<&'a [u8]> {
        match self {
            Bodies::Lines => Some(line),
            Bodies::ZeekJson(rows) => rows.body(line, file, at),
        }
    }
}

#[derive(Default)]
pub struct ZeekRows {
    /// The lines of the header block being read.
    block: Vec<u8>,
    header: Option<Header>,
    /// Whether the file's start was read for a header (reading began inside the file).
    looked_back: bool,
    json: Vec<u8>,
}

impl ZeekRows {
    fn body<'a>(&'a mut self, line: &'a [u8], file: &File, at: u64) -> Option<&'a [u8]> {
        if HEADER_KEYS.iter().any(|key| line.starts_with(key)) {
            self.header_line(line);
            return None;
        }
        if line.starts_with(b"#") {
            // Not a header line and never a Zeek row: data, sent as it is.
            return Some(line);
        }
        if self.header.is_none() && !self.looked_back {
            self.looked_back = true;
            self.header = header_before(file, at);
        }
        let Some(header) = &self.header else {
            return Some(line);
        };
        self.json.clear();
        estuary_zeektsv::write_json_row(line, header, &mut self.json);
        Some(&self.json)
    }

    fn header_line(&mut self, line: &[u8]) {
        if line.starts_with(b"#separator ") {
            self.block.clear();
        }
        self.block.extend_from_slice(line);
        self.block.push(b'\n');
        if line.starts_with(b"#types") {
            match Header::parse(&self.block) {
                Ok((header, _)) => self.header = Some(header),
                Err(err) => tracing::debug!(%err, "not a Zeek header; rows go as read"),
            }
            self.block.clear();
            self.looked_back = true;
        }
    }
}

/// The header block at the start of `file`, if it ends before `at`.
fn header_before(file: &File, at: u64) -> Option<Header> {
    let mut buf = vec![0; HEADER_BYTES.min(usize::try_from(at).unwrap_or(HEADER_BYTES))];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Header::parse(&buf[..filled]).ok().map(|(header, _)| header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-12-01-14-00-00\n#fields\tts\tuid\tid.resp_p\n#types\ttime\tstring\tport\n";

    fn bodies(file: &File, lines: &[(&str, u64)]) -> Vec<Option<String>> {
        let mut b = Bodies::new(Body::ZeekJson);
        lines
            .iter()
            .map(|(line, at)| {
                b.body(line.as_bytes(), file, *at)
                    .map(|x| String::from_utf8_lossy(x).into_owned())
            })
            .collect()
    }

    #[test]
    fn header_lines_are_not_sent_and_rows_become_json() {
        let empty = tempfile::tempfile().unwrap();
        let mut lines: Vec<(&str, u64)> = HEADER.lines().map(|l| (l, 0)).collect();
        lines.push(("1.5\tC1\t80", 0));
        lines.push(("#close\t2026-12-01-15-00-00", 0));
        lines.push(("# a comment that is data", 0));
        let out = bodies(&empty, &lines);
        assert!(out[..8].iter().all(Option::is_none), "{out:?}");
        assert_eq!(
            out[8].as_deref(),
            Some(r#"{"ts":1.5,"uid":"C1","id.resp_p":80}"#)
        );
        assert_eq!(out[9], None);
        assert_eq!(out[10].as_deref(), Some("# a comment that is data"));
    }

    #[test]
    fn reading_resumed_inside_a_file_takes_the_header_from_its_start() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(HEADER.as_bytes()).unwrap();
        file.write_all(b"1.0\tC0\t53\n2.0\tC2\t443\n").unwrap();
        let at = HEADER.len() as u64 + 10;
        let out = bodies(&file, &[("2.0\tC2\t443", at)]);
        assert_eq!(
            out[0].as_deref(),
            Some(r#"{"ts":2.0,"uid":"C2","id.resp_p":443}"#)
        );
    }

    #[test]
    fn a_file_without_a_zeek_header_goes_as_read() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"plain text\nmore\n").unwrap();
        let out = bodies(&file, &[("more", 11)]);
        assert_eq!(out[0].as_deref(), Some("more"));
    }
}
