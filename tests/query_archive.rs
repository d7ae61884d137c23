//! `estuary query` run as the real binary over archives laid out as zeekctl lays them: answers
//! compared with a reference computed here from the generated rows, `--cut` compared byte for
//! byte with this file's own rendition of zeek-cut, damaged files reported and skipped, and
//! estuary's multi-member archives read back by the real `zcat`.

mod common;

use std::fs;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use chrono::{DateTime, NaiveDate, Utc};
use common::*;

const FIELDS: &[(&str, &str)] = &[
    ("ts", "time"),
    ("uid", "string"),
    ("id.orig_h", "addr"),
    ("id.orig_p", "port"),
    ("id.resp_h", "addr"),
    ("id.resp_p", "port"),
    ("proto", "enum"),
    ("service", "string"),
    ("duration", "interval"),
    ("orig_bytes", "count"),
    ("tunnel_parents", "set[string]"),
];
/// The column a sensor with a newer schema adds (the aggregator keeps it in a `conn-<hash>` file).
const EXTRA: (&str, &str) = ("sensor", "string");
const DAYS: i64 = 3;
const SLOT_HOURS: i64 = 4;
const ROWS_PER_FILE: usize = 150;
const HOUR: i64 = 3_600_000_000;
const WATCHED: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

#[derive(Debug, Clone)]
enum Set {
    Unset,
    Empty,
    Items(Vec<String>),
}

#[derive(Debug, Clone)]
struct Row {
    ts: i64,
    uid: String,
    orig_h: Ipv4Addr,
    orig_p: u16,
    resp_h: Ipv4Addr,
    resp_p: u16,
    proto: &'static str,
    service: Option<&'static str>,
    duration: Option<f64>,
    orig_bytes: u64,
    tunnel: Set,
    sensor: Option<String>,
}

impl Row {
    /// The row in a file with (`extra`) or without the added column.
    fn tsv(&self, extra: bool) -> String {
        let mut cols = vec![
            format!(
                "{}.{:06}",
                self.ts.div_euclid(1_000_000),
                self.ts.rem_euclid(1_000_000)
            ),
            self.uid.clone(),
            self.orig_h.to_string(),
            self.orig_p.to_string(),
            self.resp_h.to_string(),
            self.resp_p.to_string(),
            self.proto.to_owned(),
            self.service.unwrap_or("-").to_owned(),
            self.duration.map_or("-".into(), |d| format!("{d:.6}")),
            self.orig_bytes.to_string(),
            match &self.tunnel {
                Set::Unset => "-".into(),
                Set::Empty => "(empty)".into(),
                Set::Items(items) => items.join(","),
            },
        ];
        if extra {
            cols.push(self.sensor.clone().unwrap_or("-".into()));
        }
        cols.join("\t")
    }
}

/// A small deterministic generator (no crate: the reference must not share code with estuary).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn header(path: &str, open: &str, extra: bool) -> String {
    let mut fields: Vec<(&str, &str)> = FIELDS.to_vec();
    if extra {
        fields.push(EXTRA);
    }
    let names: Vec<&str> = fields.iter().map(|f| f.0).collect();
    let types: Vec<&str> = fields.iter().map(|f| f.1).collect();
    format!(
        "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\t{path}\n#open\t{open}\n#fields\t{}\n#types\t{}\n",
        names.join("\t"),
        types.join("\t")
    )
}

fn day0() -> i64 {
    NaiveDate::from_ymd_opt(2026, 11, 2)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

fn utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap()
}

/// How a file is compressed: by estuary (parallel members) or as zeekctl does (`gzip -9`).
#[derive(Clone, Copy)]
enum Writer {
    Estuary,
    Gzip,
}

fn write_archive(path: &Path, text: &str, writer: Writer) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    match writer {
        Writer::Estuary => {
            let out = fs::File::create(path).unwrap();
            estuary_archive::compress(
                text.as_bytes(),
                out,
                estuary_archive::Level::default(),
                None,
            )
            .unwrap();
        }
        Writer::Gzip => {
            let mut child = Command::new("gzip")
                .args(["-9", "-c"])
                .stdin(Stdio::piped())
                .stdout(fs::File::create(path).unwrap())
                .spawn()
                .expect("gzip");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
            assert!(child.wait().unwrap().success());
        }
    }
}

/// Three days of 4-hour archives from two sensors; day 1 of sensor s1 written by `gzip -9` as
/// zeekctl does; sensor s2 gains a column on day 2 (a `conn-<hash>` file). Some rows start
/// before their file opened (connections logged when they end). Returns every row.
fn generate(log_dir: &Path) -> Vec<Row> {
    let mut rng = Lcg(42);
    let mut all = Vec::new();
    let mut serial = 0u64;
    for day in 0..DAYS {
        for slot in 0..24 / SLOT_HOURS {
            let open = day0() + day * 24 * HOUR + slot * SLOT_HOURS * HOUR;
            let close = open + SLOT_HOURS * HOUR;
            for host in ["s1", "s2"] {
                let extra = host == "s2" && day == 2;
                let mut rows = Vec::new();
                for _ in 0..ROWS_PER_FILE {
                    serial += 1;
                    let early = rng.below(10) == 0;
                    let ts = if early {
                        open - 1 - rng.below(20 * 60 * 1_000_000) as i64
                    } else {
                        open + rng.below((close - open) as u64) as i64
                    };
                    // Distinct times, so that the order of the answer is fully defined.
                    let ts = ts - ts.rem_euclid(1000) + (serial % 1000) as i64;
                    let resp_h = if rng.below(15) == 0 {
                        WATCHED
                    } else {
                        Ipv4Addr::new(198, 51, 100, rng.below(40) as u8)
                    };
                    let orig_h = match rng.below(3) {
                        0 => Ipv4Addr::new(10, 1, rng.below(4) as u8, rng.below(255) as u8),
                        1 => Ipv4Addr::new(10, 2, 0, rng.below(255) as u8),
                        _ => Ipv4Addr::new(192, 168, 1, rng.below(255) as u8),
                    };
                    let (proto, resp_p, service) = match rng.below(4) {
                        0 => ("udp", 53, Some("dns")),
                        1 => ("tcp", 443, Some("ssl")),
                        2 => ("tcp", 80, Some("http")),
                        _ => ("tcp", 1024 + rng.below(5000) as u16, None),
                    };
                    rows.push(Row {
                        ts,
                        uid: format!("C{serial:x}"),
                        orig_h,
                        orig_p: 1024 + rng.below(60000) as u16,
                        resp_h,
                        resp_p,
                        proto,
                        service,
                        duration: (rng.below(5) != 0).then(|| rng.below(10_000_000) as f64 / 1e6),
                        orig_bytes: rng.below(5000),
                        tunnel: match rng.below(4) {
                            0 => Set::Empty,
                            1 => Set::Items(vec!["Ca".into(), format!("T{}", rng.below(3))]),
                            _ => Set::Unset,
                        },
                        sensor: extra.then(|| host.to_owned()),
                    });
                }
                let open_name = utc(open);
                let path_name = if extra { "conn-0a1b2c3d" } else { "conn" };
                let file = log_dir
                    .join(open_name.format("%Y-%m-%d").to_string())
                    .join(format!(
                        "{path_name}.{}-{}-{host}.log.gz",
                        open_name.format("%H:%M:%S"),
                        utc(close).format("%H:%M:%S")
                    ));
                let mut text = header(
                    path_name,
                    &open_name.format("%Y-%m-%d-%H-%M-%S").to_string(),
                    extra,
                );
                for row in &rows {
                    text.push_str(&row.tsv(extra));
                    text.push('\n');
                }
                text.push_str(&format!(
                    "#close\t{}\n",
                    utc(close).format("%Y-%m-%d-%H-%M-%S")
                ));
                let writer = if day == 1 && host == "s1" {
                    Writer::Gzip
                } else {
                    Writer::Estuary
                };
                write_archive(&file, &text, writer);
                all.extend(rows);
            }
        }
    }
    // Another log in the same folders must not be read as conn.
    write_archive(
        &log_dir.join("2026-11-02/conn_long.00:00:00-04:00:00.log.gz"),
        &header("conn_long", "2026-11-02-00-00-00", false),
        Writer::Estuary,
    );
    all
}

fn query(log_dir: &Path, args: &[&str]) -> Output {
    Command::new(estuary_bin())
        .env("TZ", "UTC")
        .arg("query")
        .arg("--logdir")
        .arg(log_dir)
        .args(args)
        .output()
        .expect("run estuary query")
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "estuary query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn rows_of(tsv: &str) -> Vec<&str> {
    tsv.lines().filter(|l| !l.starts_with('#')).collect()
}

fn expected(rows: &[Row], from: i64, to: i64, keep: impl Fn(&Row) -> bool) -> Vec<String> {
    let mut hits: Vec<&Row> = rows
        .iter()
        .filter(|r| r.ts >= from && r.ts < to && keep(r))
        .collect();
    hits.sort_by_key(|r| r.ts);
    hits.iter().map(|r| r.tsv(true)).collect()
}

fn iso(micros: i64) -> String {
    utc(micros).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn in_net(a: Ipv4Addr, net: Ipv4Addr, bits: u32) -> bool {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(a) & mask == u32::from(net) & mask
}

#[test]
fn filters_match_a_reference_over_a_generated_archive() {
    let dir = tempfile::tempdir().unwrap();
    let rows = generate(dir.path());
    let from = day0() + 10 * HOUR;
    let to = day0() + 2 * 24 * HOUR + 14 * HOUR;
    let range = ["--from".to_owned(), iso(from), "--to".to_owned(), iso(to)];
    type Keep = Box<dyn Fn(&Row) -> bool>;
    let cases: Vec<(Vec<&str>, Keep)> = vec![
        (
            vec!["id.resp_h=203.0.113.7"],
            Box::new(|r| r.resp_h == WATCHED),
        ),
        (
            vec!["id.resp_h=203.0.113.7", "id.resp_p=443"],
            Box::new(|r| r.resp_h == WATCHED && r.resp_p == 443),
        ),
        (
            vec!["id.orig_h=10.1.0.0/16", "proto!=udp"],
            Box::new(|r| in_net(r.orig_h, Ipv4Addr::new(10, 1, 0, 0), 16) && r.proto != "udp"),
        ),
        (
            vec!["service=dns", "--or", "id.resp_p>=4000", "orig_bytes<100"],
            Box::new(|r| r.service == Some("dns") || (r.resp_p >= 4000 && r.orig_bytes < 100)),
        ),
        (vec!["service=-"], Box::new(|r| r.service.is_none())),
        (
            vec!["duration>=5.5"],
            Box::new(|r| r.duration.is_some_and(|d| d >= 5.5)),
        ),
        (
            vec!["tunnel_parents=T1"],
            Box::new(|r| matches!(&r.tunnel, Set::Items(i) if i.iter().any(|t| t == "T1"))),
        ),
        (
            vec!["tunnel_parents=(empty)"],
            Box::new(|r| matches!(r.tunnel, Set::Empty)),
        ),
        (
            vec!["tunnel_parents=-"],
            Box::new(|r| matches!(r.tunnel, Set::Unset)),
        ),
        (
            vec!["uid~^C[0-9a-f]{2}7$"],
            Box::new(|r| r.uid.len() == 4 && r.uid.ends_with('7')),
        ),
        (
            vec!["sensor=s2"],
            Box::new(|r| r.sensor.as_deref() == Some("s2")),
        ),
        (
            vec!["ts<2026-11-03T00:00:00Z", "id.orig_h=192.168.1.0/24"],
            Box::new(|r| {
                r.ts < day0() + 24 * HOUR && in_net(r.orig_h, Ipv4Addr::new(192, 168, 1, 0), 24)
            }),
        ),
    ];
    for (filters, keep) in &cases {
        let want = expected(&rows, from, to, keep);
        assert!(!want.is_empty(), "{filters:?} selects nothing: a weak case");
        let mut args: Vec<&str> = vec!["conn"];
        args.extend(filters.iter());
        args.extend(range.iter().map(String::as_str));
        let tsv = stdout_ok(&query(dir.path(), &args));
        assert_eq!(rows_of(&tsv), want, "rows for {filters:?}");
        args.push("--count");
        let count = stdout_ok(&query(dir.path(), &args));
        assert_eq!(
            count.trim(),
            want.len().to_string(),
            "count for {filters:?}"
        );
    }
}

#[test]
fn the_log_dir_comes_from_the_aggregator_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let rows = generate(&dir.path().join("logs"));
    let cfg = dir.path().join("cluster.cfg");
    fs::write(
        &cfg,
        "LogDir = logs\nSpoolDir = spool\nListenTCP = 127.0.0.1:0\n",
    )
    .unwrap();
    let out = Command::new(estuary_bin())
        .env("TZ", "UTC")
        .args(["query", "-c"])
        .arg(&cfg)
        .args(["conn", "id.resp_h=203.0.113.7", "--count"])
        .output()
        .unwrap();
    let want = rows.iter().filter(|r| r.resp_h == WATCHED).count();
    assert_eq!(stdout_ok(&out).trim(), want.to_string());
    fs::write(
        &cfg,
        "LogDir = logs\nSpoolDir = spool\nListenTCP = 127.0.0.1:0\nCompressLevel = 11\n",
    )
    .unwrap();
    let out = Command::new(estuary_bin())
        .args(["query", "-c"])
        .arg(&cfg)
        .arg("conn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cluster.cfg") && stderr.contains("CompressLevel"),
        "{stderr}"
    );
}

#[test]
fn output_has_one_valid_header_and_json_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let rows = generate(dir.path());
    let tsv = stdout_ok(&query(dir.path(), &["conn", "id.resp_h=203.0.113.7"]));
    let headers: Vec<&str> = tsv.lines().take_while(|l| l.starts_with('#')).collect();
    assert_eq!(headers[0], "#separator \\x09");
    let names: Vec<&str> = FIELDS.iter().chain([&EXTRA]).map(|f| f.0).collect();
    let types: Vec<&str> = FIELDS.iter().chain([&EXTRA]).map(|f| f.1).collect();
    assert!(headers.contains(&format!("#fields\t{}", names.join("\t")).as_str()));
    assert!(headers.contains(&format!("#types\t{}", types.join("\t")).as_str()));
    assert!(headers.contains(&"#path\tconn"));
    assert_eq!(tsv.matches("#fields").count(), 1);
    assert!(
        tsv.ends_with("#close\t2026-11-05-00-00-00\n"),
        "{}",
        &tsv[tsv.len() - 60..]
    );
    let want = expected(&rows, i64::MIN, i64::MAX, |r| r.resp_h == WATCHED);
    assert_eq!(rows_of(&tsv), want);

    let json = stdout_ok(&query(
        dir.path(),
        &["conn", "id.resp_h=203.0.113.7", "--json"],
    ));
    let objects: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), want.len());
    let mut watched: Vec<&Row> = rows.iter().filter(|r| r.resp_h == WATCHED).collect();
    watched.sort_by_key(|r| r.ts);
    for (object, row) in objects.iter().zip(watched) {
        assert_eq!(object["uid"], row.uid.as_str());
        assert_eq!(object["id.resp_p"], row.resp_p);
        assert_eq!(object["ts"].as_f64().unwrap(), row.ts as f64 / 1e6);
        assert_eq!(object.get("service").and_then(|s| s.as_str()), row.service);
        match &row.tunnel {
            Set::Unset => assert!(object.get("tunnel_parents").is_none()),
            Set::Empty => assert_eq!(object["tunnel_parents"], serde_json::json!([])),
            Set::Items(items) => assert_eq!(object["tunnel_parents"], serde_json::json!(items)),
        }
    }

    let limited = stdout_ok(&query(
        dir.path(),
        &["conn", "id.resp_h=203.0.113.7", "--limit", "3"],
    ));
    assert_eq!(rows_of(&limited), want[..3].to_vec());
}

#[test]
fn unknown_fields_and_bad_arguments_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let out = query(dir.path(), &["conn", "id.resp_h=203.0.113.7", "nosuch=1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nosuch\""));
    for (args, needle) in [
        (&["conn", "id.resp_h=10.0.0.0/40"][..], "10.0.0.0/40"),
        (&["conn", "id.resp_p=https"][..], "id.resp_p=https"),
        (&["conn", "proto<tcp"][..], "proto<tcp"),
        (&["conn", "--from", "last tuesday"][..], "last tuesday"),
        (&["conn", "--cut", "uid,nosuch"][..], "nosuch"),
    ] {
        let out = query(dir.path(), args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

/// What zeek-cut prints for `columns` of Zeek TSV `input` (no header options), written from
/// zeek-cut's source (zeek/zeek auxil/zeek-aux/zeek-cut/zeek-cut.c): selected columns in the
/// order asked, a missing column printed empty, the input separator as output separator, and
/// with -d/-u each `time` column's whole seconds as `%Y-%m-%dT%H:%M:%S%z` (a value that is not
/// `<digits>.<...>` printed as it is).
fn zeek_cut(input: &str, columns: &[&str], utc_times: Option<bool>) -> String {
    let mut out = String::new();
    let mut sep = '\t';
    let mut indexes: Vec<Option<usize>> = Vec::new();
    let mut time_cols: Vec<bool> = Vec::new();
    for line in input.lines() {
        if let Some(s) = line.strip_prefix("#separator ") {
            sep = match s.strip_prefix("\\x") {
                Some(hex) => u8::from_str_radix(hex, 16).unwrap() as char,
                None => s.chars().next().unwrap(),
            };
        } else if let Some(f) = line.strip_prefix("#fields") {
            let names: Vec<&str> = f[1..].split(sep).collect();
            indexes = columns
                .iter()
                .map(|c| names.iter().position(|n| n == c))
                .collect();
        } else if let Some(t) = line.strip_prefix("#types") {
            time_cols = t[1..].split(sep).map(|t| t == "time").collect();
        } else if !line.starts_with('#') {
            let fields: Vec<&str> = line.split(sep).collect();
            let cols: Vec<String> = indexes
                .iter()
                .map(|i| match i {
                    None => String::new(),
                    Some(i) => {
                        let v = fields[*i];
                        match (utc_times, time_cols[*i], v.split_once('.')) {
                            (Some(in_utc), true, Some((secs, _)))
                                if !secs.is_empty() && secs.bytes().all(|b| b.is_ascii_digit()) =>
                            {
                                let t = DateTime::from_timestamp(secs.parse().unwrap(), 0).unwrap();
                                let fmt = "%Y-%m-%dT%H:%M:%S%z";
                                if in_utc {
                                    t.format(fmt).to_string()
                                } else {
                                    t.with_timezone(&chrono::Local).format(fmt).to_string()
                                }
                            }
                            _ => v.to_owned(),
                        }
                    }
                })
                .collect();
            out.push_str(&cols.join(&sep.to_string()));
            out.push('\n');
        }
    }
    out
}

/// Real Zeek conn.log rows (the sensor fixtures' expected output, whose times Zeek's test
/// canonifier masked: they get times here) archived as zeekctl does: `gzip -9`, dated folders.
fn zeek_made_archive(log_dir: &Path) -> usize {
    let mut logs: Vec<PathBuf> = fs::read_dir(fixtures().join("zeek-dev"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("expected/conn.log"))
        .filter(|p| p.exists())
        .collect();
    logs.sort();
    assert!(logs.len() >= 5);
    let mut rows = 0;
    for (n, log) in logs.iter().enumerate() {
        let open = day0() + n as i64 * HOUR;
        let mut k = 0;
        let text: String = fs::read_to_string(log)
            .unwrap()
            .lines()
            .map(|l| {
                let line = if l.starts_with("#open") || l.starts_with("#close") {
                    let key = if l.starts_with("#open") {
                        "#open"
                    } else {
                        "#close"
                    };
                    format!("{key}\t{}", utc(open).format("%Y-%m-%d-%H-%M-%S"))
                } else if l.starts_with('#') {
                    l.to_owned()
                } else {
                    k += 1;
                    rows += 1;
                    let ts = open + k * 1_234_567;
                    l.replacen(
                        "XXXXXXXXXX.XXXXXX",
                        &format!("{}.{:06}", ts / 1_000_000, ts % 1_000_000),
                        1,
                    )
                };
                line + "\n"
            })
            .collect();
        let name = format!(
            "{}/conn.{}-{}.log.gz",
            utc(open).format("%Y-%m-%d"),
            utc(open).format("%H:%M:%S"),
            utc(open + HOUR).format("%H:%M:%S")
        );
        write_archive(&log_dir.join(name), &text, Writer::Gzip);
    }
    rows
}

#[test]
fn cut_is_byte_for_byte_zeek_cut_on_a_zeekctl_archive() {
    let dir = tempfile::tempdir().unwrap();
    let rows = zeek_made_archive(dir.path());
    let tsv = stdout_ok(&query(dir.path(), &["conn"]));
    assert_eq!(rows_of(&tsv).len(), rows);
    let columns = [
        "ts",
        "uid",
        "id.orig_h",
        "id.resp_p",
        "service",
        "duration",
        "tunnel_parents",
    ];
    let list = columns.join(",");
    for (flag, times) in [
        (None, None),
        (Some("-u"), Some(true)),
        (Some("-d"), Some(false)),
    ] {
        let mut args = vec!["conn", "--cut", &list];
        args.extend(flag);
        let cut = stdout_ok(&query(dir.path(), &args));
        assert_eq!(cut, zeek_cut(&tsv, &columns, times), "--cut {flag:?}");
    }
    let tcp = stdout_ok(&query(
        dir.path(),
        &["conn", "proto=tcp", "--cut", "uid,history"],
    ));
    let tcp_tsv = stdout_ok(&query(dir.path(), &["conn", "proto=tcp"]));
    assert!(!tcp.is_empty());
    assert_eq!(tcp, zeek_cut(&tcp_tsv, &["uid", "history"], None));
}

#[test]
fn damaged_files_are_reported_by_name_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let day = dir.path().join("2026-11-02");
    let good = |n: usize| -> String {
        let mut text = header("conn", "2026-11-02-00-00-00", false);
        for i in 0..n {
            let row = Row {
                ts: day0() + i as i64 * 1_000_000,
                uid: format!("C{i}"),
                orig_h: Ipv4Addr::new(10, 0, 0, 1),
                orig_p: 5000,
                resp_h: WATCHED,
                resp_p: 443,
                proto: "tcp",
                service: None,
                duration: None,
                orig_bytes: i as u64,
                tunnel: Set::Unset,
                sensor: None,
            };
            text.push_str(&row.tsv(false));
            text.push('\n');
        }
        text
    };
    // Fine: 10 rows.
    write_archive(
        &day.join("conn.00:00:00-01:00:00.log.gz"),
        &good(10),
        Writer::Estuary,
    );
    // A corrupt line among 5 good rows (with the address: rows the prefilter passes over are
    // never split, so a corrupt one is noticed only when it could have matched).
    let mut corrupt = good(5);
    corrupt.push_str("1793577600.000000\tCbad\t203.0.113.7\tnot enough fields\n");
    write_archive(
        &day.join("conn.01:00:00-02:00:00.log.gz"),
        &corrupt,
        Writer::Gzip,
    );
    // Truncated: estuary's members (about 1 MiB of log each) cut in the third member.
    let big = good(60_000);
    let mut members = Vec::new();
    estuary_archive::compress(
        big.as_bytes(),
        &mut members,
        estuary_archive::Level::default(),
        None,
    )
    .unwrap();
    fs::write(
        day.join("conn.02:00:00-03:00:00.log.gz"),
        &members[..members.len() * 2 / 3],
    )
    .unwrap();
    // Truncated gzip -9 stream, no header, garbage, empty.
    write_archive(
        &day.join("conn.03:00:00-04:00:00.log.gz"),
        &good(20_000),
        Writer::Gzip,
    );
    let cut = fs::read(day.join("conn.03:00:00-04:00:00.log.gz")).unwrap();
    fs::write(
        day.join("conn.03:00:00-04:00:00.log.gz"),
        &cut[..cut.len() / 2],
    )
    .unwrap();
    write_archive(
        &day.join("conn.04:00:00-05:00:00.log.gz"),
        "just\ttext\n",
        Writer::Estuary,
    );
    fs::write(
        day.join("conn.05:00:00-06:00:00.log.gz"),
        b"\x1f\x8b\x08garbage",
    )
    .unwrap();
    fs::write(day.join("conn.06:00:00-07:00:00.log.gz"), b"").unwrap();

    let out = query(
        dir.path(),
        &["conn", "id.resp_h=203.0.113.7", "--cut", "uid"],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "damage is exit status 2, as grep"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, what) in [
        ("conn.01:00:00-02:00:00.log.gz", "1 corrupt rows"),
        ("conn.02:00:00-03:00:00.log.gz", "truncated"),
        ("conn.03:00:00-04:00:00.log.gz", "truncated"),
        ("conn.04:00:00-05:00:00.log.gz", "no Zeek header"),
        ("conn.05:00:00-06:00:00.log.gz", "skipped"),
        ("conn.06:00:00-07:00:00.log.gz", "skipped"),
    ] {
        assert!(
            stderr.lines().any(|l| l.contains(name) && l.contains(what)),
            "{name}: {what} not reported in:\n{stderr}"
        );
    }
    let uids: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    // Every good row of the intact and corrupt-line files, then whole rows from the truncated
    // ones: never a partial row.
    let first: Vec<String> = (0..10).map(|i| format!("C{i}")).collect();
    assert!(
        uids.iter()
            .filter(|u| first.contains(&u.to_string()))
            .count()
            >= 10 + 5
    );
    assert!(
        uids.len() > 15 + 20_000,
        "rows before the damage were kept: {}",
        uids.len()
    );
    assert!(uids
        .iter()
        .all(|u| u.starts_with('C') && u[1..].parse::<u32>().is_ok()));
    assert!(!uids.contains(&"Cbad"));
}

#[test]
fn current_files_only_with_current() {
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path());
    let current = dir.path().join("current");
    fs::create_dir_all(current.join(".rotated")).unwrap();
    fs::create_dir_all(current.join("s9")).unwrap();
    let now = day0() + 3 * 24 * HOUR + 5 * 1_000_000;
    let row = |uid: &str| {
        format!(
            "{}.000000\t{uid}\t10.9.9.9\t1\t203.0.113.7\t443\ttcp\t-\t-\t0\t-\n",
            now / 1_000_000
        )
    };
    let head = header("conn", "2026-11-05-00-00-00", false);
    // The writer is in the middle of a row: not yet a row.
    fs::write(
        current.join("conn.log"),
        format!("{head}{}1793", row("Ccur")),
    )
    .unwrap();
    fs::write(
        current.join("s9/conn.log"),
        format!("{head}{}", row("Chost")),
    )
    .unwrap();
    fs::write(
        current.join(".rotated/conn~1793750400~1793754000~.log"),
        format!("{head}{}", row("Crot")),
    )
    .unwrap();
    // A sensor with another schema: the aggregator writes its lines to `conn-<8 hex>.log`, and
    // rotates them as any other.
    let variant = header("conn-0a1b2c3d", "2026-11-05-00-00-00", true);
    let variant_row = |uid: &str| format!("{}\ts3\n", row(uid).trim_end());
    fs::write(
        current.join("conn-0a1b2c3d.log"),
        format!("{variant}{}", variant_row("Cvar")),
    )
    .unwrap();
    fs::write(
        current.join(".rotated/conn-0a1b2c3d~1793750400~1793754000~s3.log"),
        format!("{variant}{}", variant_row("Cvarrot")),
    )
    .unwrap();
    let archived = stdout_ok(&query(
        dir.path(),
        &["conn", "id.orig_h=10.9.9.9", "--count"],
    ));
    assert_eq!(archived.trim(), "0");
    let all = stdout_ok(&query(
        dir.path(),
        &["conn", "id.orig_h=10.9.9.9", "--current", "--cut", "uid"],
    ));
    let mut uids: Vec<&str> = all.lines().collect();
    uids.sort();
    assert_eq!(uids, ["Ccur", "Chost", "Crot", "Cvar", "Cvarrot"]);
    let sensors = stdout_ok(&query(
        dir.path(),
        &["conn", "sensor=s3", "--current", "--cut", "uid"],
    ));
    let mut sensors: Vec<&str> = sensors.lines().collect();
    sensors.sort();
    assert_eq!(sensors, ["Cvar", "Cvarrot"]);
}

#[test]
fn zcat_reads_a_multi_member_archive_as_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..120_000)
        .map(|i| {
            format!(
                "{}.{:06}\tC{i}\t10.0.{}.{}\t443\n",
                1_793_577_600 + i,
                i % 999_999,
                i % 256,
                i % 199
            )
        })
        .collect();
    let path = dir.path().join("conn.log.gz");
    let summary = estuary_archive::compress(
        text.as_bytes(),
        fs::File::create(&path).unwrap(),
        estuary_archive::Level::new(9).unwrap(),
        Some("conn.log"),
    )
    .unwrap();
    assert!(summary.members >= 4, "{summary:?}");
    let zcat = Command::new("zcat").arg(&path).output().expect("zcat");
    assert!(zcat.status.success());
    assert_eq!(zcat.stdout, text.as_bytes());
    let test = Command::new("gzip").arg("-t").arg(&path).status().unwrap();
    assert!(test.success());
}

#[test]
fn an_archive_the_aggregator_wrote_is_searched_on_all_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let rotated_dir = dir.path().join("current/.rotated");
    fs::create_dir_all(&rotated_dir).unwrap();
    let name = "conn~1793577600~1793581200~.log";
    let mut text = header("conn", "2026-11-02-00-00-00", false);
    let mut watched = 0;
    for i in 0..40_000u32 {
        let resp = if i % 7 == 0 {
            WATCHED
        } else {
            Ipv4Addr::new(198, 51, 100, (i % 200) as u8)
        };
        watched += usize::from(resp == WATCHED);
        text.push_str(&format!(
            "1793577600.{i:06}\tC{i}\t10.0.0.1\t5000\t{resp}\t443\ttcp\tssl\t1.000000\t{i}\t-\n"
        ));
    }
    assert!(text.len() > 3 << 20, "several gzip members");
    fs::write(rotated_dir.join(name), &text).unwrap();
    let rotated = estuary_aggregator::archive::Rotated::parse(name).unwrap();
    let archived = estuary_aggregator::archive::archive(
        dir.path(),
        &rotated_dir.join(name),
        &rotated,
        estuary_aggregator::clock::Zone::Local,
        estuary_archive::Level::default(),
    )
    .unwrap();
    let zcat = Command::new("zcat").arg(&archived).output().unwrap();
    assert_eq!(zcat.stdout, text.as_bytes());
    let count = stdout_ok(&query(
        dir.path(),
        &["conn", "id.resp_h=203.0.113.7", "--count"],
    ));
    assert_eq!(count.trim(), watched.to_string());
    let all = stdout_ok(&query(dir.path(), &["conn"]));
    assert_eq!(rows_of(&all).len(), 40_000);
}
