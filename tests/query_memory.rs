//! `estuary query` over an archive far larger than the memory it may use: every row of about
//! 190 MB of conn.log comes out in time order (rows are out of order inside each file and files
//! overlap in time), while the query process's peak resident set stays under half the data, less than the answer alone.
//! Alone in its test binary, so that the peak of the children it waited for is the query's.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use chrono::DateTime;
use common::*;

const FILES: i64 = 96;
const ROWS_PER_FILE: usize = 20_000;
/// Minutes each file covers; rows reach back 10 minutes before the file opened.
const SPAN_MINUTES: i64 = 15;

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\ttunnel_parents\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tset[string]\n";

/// Writes the archive with `gzip -1` (fast, and the reading path of any zeekctl archive);
/// returns the bytes of log and the rows.
fn generate(log_dir: &Path) -> (u64, u64) {
    let mut rng = Lcg(7);
    let (mut bytes, mut rows) = (0u64, 0u64);
    let start = 1_793_577_600i64; // 2026-11-02T00:00:00Z
    for n in 0..FILES {
        let open = start + n * SPAN_MINUTES * 60;
        let close = open + SPAN_MINUTES * 60;
        let (o, c) = (
            DateTime::from_timestamp(open, 0).unwrap(),
            DateTime::from_timestamp(close, 0).unwrap(),
        );
        let dir = log_dir.join(o.format("%Y-%m-%d").to_string());
        fs::create_dir_all(&dir).unwrap();
        let name = format!(
            "conn.{}-{}.log.gz",
            o.format("%H:%M:%S"),
            c.format("%H:%M:%S")
        );
        let mut text = String::with_capacity(ROWS_PER_FILE * 110);
        text.push_str(HEADER);
        for i in 0..ROWS_PER_FILE {
            let ts = open - 600 + rng.below((close - open + 600) as u64) as i64;
            let us = rng.below(1_000_000);
            let host = rng.below(250);
            text.push_str(&format!(
                "{ts}.{us:06}\tC{n:04x}{i:013x}\t10.1.{}.{host}\t{}\t198.51.100.{}\t443\ttcp\tssl\t{}.{:06}\t{}\t-\n",
                host / 3,
                1024 + rng.below(60_000),
                rng.below(200),
                rng.below(100),
                rng.below(1_000_000),
                rng.below(100_000),
            ));
        }
        bytes += text.len() as u64;
        rows += ROWS_PER_FILE as u64;
        let mut gzip = Command::new("gzip")
            .args(["-1", "-c"])
            .stdin(Stdio::piped())
            .stdout(fs::File::create(dir.join(name)).unwrap())
            .spawn()
            .expect("gzip");
        gzip.stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        assert!(gzip.wait().unwrap().success());
    }
    (bytes, rows)
}

/// The largest peak resident set of the children waited for so far, in bytes.
fn children_peak() -> u64 {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    // Linux reports kilobytes.
    usage.max_rss() as u64 * 1024
}

#[test]
fn a_large_archive_streams_in_time_order_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (bytes, rows) = generate(dir.path());
    assert!(bytes > 180 << 20, "{bytes} bytes of log");
    let before = children_peak();
    let mut child = Command::new(estuary_bin())
        .env("TZ", "UTC")
        .env("RAYON_NUM_THREADS", "2")
        .args(["query", "--logdir"])
        .arg(dir.path())
        .args(["conn", "--cut", "ts,uid,id.orig_h,id.resp_h"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut seen, mut last, mut out_bytes) = (0u64, 0i64, 0u64);
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        out_bytes += line.len() as u64 + 1;
        let ts: i64 = line
            .split('\t')
            .next()
            .unwrap()
            .replace('.', "")
            .parse()
            .unwrap();
        assert!(ts >= last, "row {seen} out of time order: {line}");
        last = ts;
        seen += 1;
    }
    assert!(child.wait().unwrap().success());
    assert_eq!(seen, rows);
    let peak = children_peak();
    assert!(
        peak > before,
        "the query is the largest child ({peak} bytes)"
    );
    // The answer alone is about 125 MB; the data 180 MB.
    let bound = bytes / 2;
    assert!(out_bytes > bound, "a weak case: the answer fits the bound");
    assert!(
        peak < bound,
        "peak resident set {} MiB, bound {} MiB ({} MiB of log)",
        peak >> 20,
        bound >> 20,
        bytes >> 20
    );
    let _ = writeln!(
        std::io::stderr(),
        "query over {} MiB of log, {} MiB of answer: peak resident set {} MiB",
        bytes >> 20,
        out_bytes >> 20,
        peak >> 20
    );
}
