//! The file of a byte-range download. For a request with a `Range` header,
//! `base/protocols/http/files.zeek` names the reply's file by the client and the URL alone
//! (not by transaction), so every 206 reply for that URL adds to one file: each body at its
//! range's offset (`file_mgr->DataIn` with an offset). `HTTP_Message::Done` leaves a 206
//! reply's file open; Zeek's file reassembler keeps the data past the contiguous start, and
//! the file ends when that start reaches the announced size (`File::DeliverChunk`) or when
//! analysis ends (then `timedout`, and the reassembler's flush counts each hole before the
//! last byte as missing). Only data at offset 0 can give the file a MIME type.
//!
//! The fuid (and a type inferred in time) is listed in http.log by the transaction that opens
//! the file on this connection (`file_over_new_connection`); later transactions for the same
//! URL do not list it.

use super::*;
use crate::files_log::FileInfo;

pub(super) struct RangeFile {
    key: Vec<u8>,
    fuid: String,
    start: Timestamp,
    last: Timestamp,
    total: Option<u64>,
    mime: Option<&'static str>,
    /// The file name of the entity that opened the file (`file_over_new_connection`).
    filename: Option<Vec<u8>>,
    /// Byte ranges delivered, as `[first, end)`.
    ranges: Vec<(u64, u64)>,
}

/// What a set of ranges covers: (bytes covered, holes before the last byte, the contiguous
/// length from offset 0).
fn coverage(ranges: &[(u64, u64)]) -> (u64, u64, u64) {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let (mut seen, mut end, mut prefix) = (0u64, 0u64, 0u64);
    for (first, last) in sorted {
        if last <= end {
            continue;
        }
        if first <= prefix && prefix == end {
            prefix = last;
        }
        seen += last - first.max(end);
        end = last;
    }
    (seen, end - seen, prefix)
}

impl RangeFile {
    fn record(&self, conn: &ConnInfo, timedout: bool) -> FileInfo {
        let (seen, missing, _) = coverage(&self.ranges);
        FileInfo {
            ts: self.start,
            fuid: self.fuid.clone(),
            conn: conn.clone(),
            source: "HTTP",
            depth: 0,
            mime_type: self.mime,
            filename: self.filename.clone(),
            last: self.last,
            local_orig: None,
            dir: Direction::Resp,
            seen_bytes: seen,
            total_bytes: self.total,
            missing_bytes: missing,
            timedout,
        }
    }
}

impl HttpAnalyzer {
    /// The key of a 206 reply's file when its request asked for a range.
    pub(super) fn range_file_key(&self, dir: Direction, head: &Head) -> Option<Vec<u8>> {
        if dir != Direction::Resp || head.status != Some(206) {
            return None;
        }
        let info = self.pending.get(&self.current_response)?;
        info.range_request.then(|| {
            let mut key = info.host.clone().unwrap_or_default();
            key.extend_from_slice(info.uri.as_deref().unwrap_or(b"/<missed_request>"));
            key
        })
    }

    /// Adds a 206 reply's bodies to the URL's file; returns the fuid for http.log when this
    /// reply opened the file.
    pub(super) fn range_file_data(
        &mut self,
        key: Vec<u8>,
        start: Timestamp,
        ts: Timestamp,
        files: Vec<BodyFile>,
        out: &mut dyn Emit,
    ) -> Vec<(String, BodyFile)> {
        let mut listed = Vec::new();
        for f in files {
            let at = match self.range_files.iter().position(|r| r.key == key) {
                Some(at) => at,
                None => {
                    let fuid = self.fuids.next('F');
                    self.range_files.push(RangeFile {
                        key: key.clone(),
                        fuid: fuid.clone(),
                        start,
                        last: ts,
                        total: None,
                        mime: None,
                        filename: f.filename.clone(),
                        ranges: Vec::new(),
                    });
                    listed.push((fuid, f.clone()));
                    self.range_files.len() - 1
                }
            };
            let file = &mut self.range_files[at];
            let (offset, total) = f.range.unwrap_or((0, None));
            file.total = file.total.or(total.filter(|n| *n > 0));
            if offset == 0 && f.seen > 0 {
                file.mime = file.mime.or(f.mime);
            }
            if f.seen > 0 {
                file.ranges.push((offset, offset.saturating_add(f.seen)));
            }
            file.last = ts;
            let (_, _, prefix) = coverage(&file.ranges);
            if file.total.is_some_and(|t| prefix >= t) {
                let done = self.range_files.remove(at);
                out.file(done.record(&self.conn, false));
            }
        }
        listed
    }

    /// Analysis ends: the files still open time out.
    pub(super) fn close_range_files(&mut self, out: &mut dyn Emit) {
        for file in std::mem::take(&mut self.range_files) {
            out.file(file.record(&self.conn, true));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::coverage;
    use crate::flow::{Direction, Timestamp, Transport};
    use crate::proto::http::HttpAnalyzer;
    use crate::proto::testkit::{conn, Collect};
    use crate::proto::Analyzer;

    #[test]
    fn coverage_counts_overlaps_once_and_holes_before_the_end() {
        assert_eq!(coverage(&[(10, 20), (15, 30), (40, 45)]), (25, 20, 0));
        assert_eq!(coverage(&[(0, 10), (10, 20), (30, 35)]), (25, 10, 20));
        assert_eq!(coverage(&[]), (0, 0, 0));
    }

    fn ranged(a: &mut HttpAnalyzer, out: &mut Collect, t: f64, range: &str, body: &[u8]) {
        let req = b"GET /f HTTP/1.1\r\nHost: h\r\nRange: bytes=1-\r\n\r\n";
        a.data(Timestamp(t), Direction::Orig, req, out);
        let mut resp = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {range}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        resp.extend_from_slice(body);
        a.data(Timestamp(t + 0.5), Direction::Resp, &resp, out);
    }

    /// Two ranges of one URL are one file that times out at the end, with the hole before
    /// the second range missing; only the first transaction lists the fuid.
    #[test]
    fn ranges_of_one_url_are_one_file() {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        ranged(&mut a, &mut out, 1.0, "100-109/1000", b"0123456789");
        ranged(&mut a, &mut out, 2.0, "200-204/1000", b"abcde");
        a.finish(Timestamp(3.0), &mut out);
        assert_eq!(out.files.len(), 1);
        let f = &out.files[0];
        assert_eq!(
            (f.seen_bytes, f.missing_bytes, f.total_bytes, f.timedout),
            (15, 190, Some(1000), true)
        );
        assert_eq!(f.mime_type, None);
        let rows = out.rows();
        assert!(rows[0].contains(&f.fuid), "{}", rows[0]);
        assert!(!rows[1].contains(&f.fuid), "{}", rows[1]);
    }

    /// A file whose contiguous start reaches the announced size ends then, typed.
    #[test]
    fn a_complete_range_file_ends_at_once() {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        ranged(&mut a, &mut out, 1.0, "0-15/16", b"some plain text.");
        assert_eq!(out.files.len(), 1);
        let f = &out.files[0];
        assert_eq!((f.seen_bytes, f.timedout), (16, false));
        assert_eq!(f.mime_type, Some("text/plain"));
    }
}
