//! Helpers for the sensor tests: run `estuary sensor`, read Zeek logs, compare row multisets.
#![allow(dead_code)] // each test binary uses a different subset

pub mod tshark_objects;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cmd` to its end; panics with `what` and its stderr unless it succeeds.
pub fn output_ok(cmd: &mut Command, what: &str) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `estuary sensor` with `args` plus `--logdir <dir>`; panics with stderr on failure.
pub fn run_sensor(bin: &Path, dir: &Path, args: &[&str]) {
    std::fs::create_dir_all(dir).expect("create log dir");
    output_ok(
        Command::new(bin)
            .arg("sensor")
            .args(args)
            .arg("--logdir")
            .arg(dir),
        &format!("estuary sensor {args:?}"),
    );
}

/// A Zeek TSV log: its columns and rows.
#[derive(Debug, Clone, Default)]
pub struct ZeekLog {
    pub fields: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub header: Vec<String>,
}

impl ZeekLog {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f == name)
    }

    pub fn get<'a>(&self, row: &'a [String], name: &str) -> Option<&'a str> {
        self.column(name)
            .and_then(|i| row.get(i))
            .map(String::as_str)
    }
}

/// btest's `diff-remove-first-timestamp`: the first 9-10 digit `.`-number on a line becomes
/// `XXXXXXXXXX.XXXXXX`.
pub fn mask_first_timestamp(line: &str) -> String {
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !b[i - 1].is_ascii_digit()) {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let int_len = i - start;
            if (9..=10).contains(&int_len) && i < b.len() && b[i] == b'.' {
                let frac_start = i + 1;
                let mut j = frac_start;
                while j < b.len() && b[j].is_ascii_digit() && j - frac_start < 8 {
                    j += 1;
                }
                if j > frac_start {
                    return format!("{}XXXXXXXXXX.XXXXXX{}", &line[..start], &line[j..]);
                }
            }
        } else {
            i += 1;
        }
    }
    line.to_string()
}

/// Reads a TSV log. `mask` applies the btest canonifier (sensor output only).
pub fn read_log(path: &Path, mask: bool) -> Option<ZeekLog> {
    let text = std::fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let mut log = ZeekLog::default();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            log.fields = f.split('\t').map(str::to_string).collect();
        }
        if line.starts_with('#') {
            log.header.push(line.to_string());
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let line = if mask {
            mask_first_timestamp(line)
        } else {
            line.to_string()
        };
        log.rows
            .push(line.split('\t').map(str::to_string).collect());
    }
    Some(log)
}

/// The data rows (not `#` header lines) of a Zeek TSV log's text, sorted.
pub fn sorted_rows(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    rows.sort();
    rows
}

/// A `zeek-cut -m` file: first line the column names, then rows.
pub fn read_cut(path: &Path) -> Option<ZeekLog> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let fields = lines.next()?.split('\t').map(str::to_string).collect();
    let rows = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect();
    Some(ZeekLog {
        fields,
        rows,
        header: Vec::new(),
    })
}

/// Columns holding random ids: compared only up to renaming, so left out of the key.
const ID_COLUMNS: &[&str] = &[
    "ts",
    "uid",
    "fuid",
    "fuids",
    "orig_fuids",
    "resp_fuids",
    "tunnel_parents",
];

/// The columns compared for a log: fixed lists for conn.log and files.log (files.log's times
/// and timeouts depend on when a file is closed), every non-id column else.
pub fn key_columns(log: &str, fields: &[String]) -> Vec<String> {
    if log.starts_with("conn") {
        let conn = [
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "proto",
            "service",
            "duration",
            "orig_bytes",
            "resp_bytes",
            "conn_state",
            "history",
            "orig_pkts",
            "resp_pkts",
        ];
        return conn
            .iter()
            .filter(|c| fields.iter().any(|f| f == *c))
            .map(|c| c.to_string())
            .collect();
    }
    if log.starts_with("files") {
        let files = [
            "id.orig_h",
            "id.orig_p",
            "id.resp_h",
            "id.resp_p",
            "source",
            "depth",
            "analyzers",
            "mime_type",
            "filename",
            "is_orig",
            "seen_bytes",
            "total_bytes",
            "missing_bytes",
        ];
        return files
            .iter()
            .filter(|c| fields.iter().any(|f| f == *c))
            .map(|c| c.to_string())
            .collect();
    }
    fields
        .iter()
        .filter(|f| !ID_COLUMNS.contains(&f.as_str()))
        .cloned()
        .collect()
}

/// Rows equal on the key columns, counted as multisets: (matched, expected, got).
pub fn compare(log: &str, expected: &ZeekLog, got: Option<&ZeekLog>) -> (usize, usize, usize) {
    let keys = key_columns(log, &expected.fields);
    let project = |l: &ZeekLog| -> HashMap<Vec<String>, usize> {
        let idx: Vec<Option<usize>> = keys.iter().map(|k| l.column(k)).collect();
        let mut m = HashMap::new();
        for r in &l.rows {
            let key: Vec<String> = idx
                .iter()
                .map(|i| {
                    i.and_then(|i| r.get(i))
                        .cloned()
                        .unwrap_or_else(|| "<missing>".into())
                })
                .collect();
            *m.entry(key).or_insert(0) += 1;
        }
        m
    };
    let e = project(expected);
    let g = got.map(project).unwrap_or_default();
    let matched = e
        .iter()
        .map(|(k, n)| (*n).min(g.get(k).copied().unwrap_or(0)))
        .sum();
    (
        matched,
        expected.rows.len(),
        got.map_or(0, |l| l.rows.len()),
    )
}

/// Rows of `expected` that `got` lacks, and the reverse, for failure messages.
pub fn differences(log: &str, expected: &ZeekLog, got: Option<&ZeekLog>) -> Vec<String> {
    let keys = key_columns(log, &expected.fields);
    let rows = |l: &ZeekLog| -> Vec<String> {
        let idx: Vec<Option<usize>> = keys.iter().map(|k| l.column(k)).collect();
        l.rows
            .iter()
            .map(|r| {
                idx.iter()
                    .map(|i| i.and_then(|i| r.get(i)).map_or("<missing>", String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    let e = rows(expected);
    let g = got.map(rows).unwrap_or_default();
    let mut out = Vec::new();
    let mut g_left = g.clone();
    for r in &e {
        if let Some(p) = g_left.iter().position(|x| x == r) {
            g_left.remove(p);
        } else {
            out.push(format!("  zeek:   {r}"));
        }
    }
    for r in g_left {
        out.push(format!("  sensor: {r}"));
    }
    out
}

/// One line of the zeek-dev manifest.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub trace: PathBuf,
    pub logs: Vec<String>,
    pub ignore_checksums: bool,
    /// `default`, `bare` or `policy` (the test loaded a policy script default Zeek lacks).
    pub mode: String,
    /// The scripts the test loaded (meta.txt's `scripts:` line).
    pub scripts: Vec<String>,
}

impl Entry {
    /// A bare run loading no protocol script beyond `base/protocols/conn` (frameworks
    /// only): Zeek attaches no application analyzer, as the sensor's `--no-analyzers`.
    pub fn loads_no_protocol(&self) -> bool {
        self.mode == "bare"
            && self.scripts.iter().all(|s| {
                s == "base/protocols/conn"
                    || s.starts_with("base/frameworks/")
                    || s.starts_with("frameworks/")
            })
    }
}

/// meta.txt's `scripts:` line of an entry, split at commas.
fn meta_scripts(root: &Path, id: &str) -> Vec<String> {
    let meta = std::fs::read_to_string(root.join(id).join("meta.txt")).unwrap_or_default();
    meta.lines()
        .find_map(|l| l.strip_prefix("scripts:"))
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

pub fn manifest(root: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(root.join("manifest.tsv")).expect("manifest.tsv");
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            Some(Entry {
                scripts: meta_scripts(root, c.first()?),
                id: c.first()?.to_string(),
                trace: root.join(c.get(1)?),
                logs: c.get(4)?.split(',').map(str::to_string).collect(),
                ignore_checksums: *c.get(6)? == "-C",
                mode: c.get(5)?.to_string(),
            })
        })
        .collect()
}

/// Per-log totals: (matched, expected, got).
pub type Table = BTreeMap<String, (usize, usize, usize)>;

pub fn print_table(title: &str, t: &Table) {
    println!("{title}");
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>7}",
        "log", "matched", "zeek", "sensor", "share"
    );
    for (log, (m, e, g)) in t {
        let share = if *e == 0 {
            100.0
        } else {
            100.0 * *m as f64 / (*e.max(g)) as f64
        };
        println!("{log:<12} {m:>8} {e:>8} {g:>8} {share:>6.1}%");
    }
}

/// Share of rows equal, counting extra sensor rows against it.
pub fn share(t: &Table, log: &str) -> f64 {
    t.get(log).map_or(0.0, |(m, e, g)| {
        if *e == 0 && *g == 0 {
            1.0
        } else {
            *m as f64 / (*e.max(g)) as f64
        }
    })
}

/// Writes small Ethernet/IPv4 pcap files with correct checksums, for tests that need traffic
/// no public capture has (scans, timeouts).
#[derive(Debug, Default)]
pub struct PcapBuilder {
    bytes: Vec<u8>,
}

fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;

impl PcapBuilder {
    pub fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        bytes.extend_from_slice(&0i32.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        PcapBuilder { bytes }
    }

    fn frame(&mut self, ts: f64, frame: &[u8]) {
        let sec = ts.floor() as u32;
        let usec = ((ts - ts.floor()) * 1e6).round() as u32;
        self.bytes.extend_from_slice(&sec.to_le_bytes());
        self.bytes.extend_from_slice(&usec.to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(frame);
    }

    fn ipv4(&mut self, ts: f64, src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) {
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
        let total = (20 + l4.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let c = fold(ones_sum(&ip, 0));
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut frame = vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00];
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(l4);
        self.frame(ts, &frame);
    }

    fn pseudo(src: [u8; 4], dst: [u8; 4], proto: u8, len: usize) -> u32 {
        let mut sum = ones_sum(&src, 0);
        sum = ones_sum(&dst, sum);
        sum + u32::from(proto) + len as u32
    }

    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &mut self,
        ts: f64,
        src: [u8; 4],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
        flags: u8,
        seq: u32,
        ack: u32,
        payload: &[u8],
    ) {
        let mut t = Vec::with_capacity(20 + payload.len());
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&ack.to_be_bytes());
        t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(payload);
        let c = fold(ones_sum(&t, Self::pseudo(src, dst, 6, t.len())));
        t[16..18].copy_from_slice(&c.to_be_bytes());
        self.ipv4(ts, src, dst, 6, &t);
    }

    pub fn udp(
        &mut self,
        ts: f64,
        src: [u8; 4],
        sport: u16,
        dst: [u8; 4],
        dport: u16,
        payload: &[u8],
    ) {
        let mut u = Vec::with_capacity(8 + payload.len());
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        let c = fold(ones_sum(&u, Self::pseudo(src, dst, 17, u.len())));
        u[6..8].copy_from_slice(&c.to_be_bytes());
        self.ipv4(ts, src, dst, 17, &u);
    }

    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.bytes).expect("write pcap");
    }
}
