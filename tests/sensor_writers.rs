//! Log writers: Zeek TSV headers and footers, JSON lines equal to the TSV rows, size
//! rotation by rename-and-create, and readability by a third-party Zeek parser
//! (parsezeeklogs, installed by .ci/setup; skipped with a message when missing).

mod common;
mod sensor_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use sensor_support::{output_ok, read_log, run_sensor};

fn trace(name: &str) -> String {
    common::fixtures()
        .join("pcaps")
        .join(name)
        .to_string_lossy()
        .to_string()
}

const CONN_KEY: &[&str] = &[
    "id.orig_h",
    "id.orig_p",
    "id.resp_h",
    "id.resp_p",
    "proto",
    "conn_state",
    "history",
    "orig_pkts",
    "duration",
];

#[test]
fn tsv_header_and_footer_follow_zeek() {
    let tmp = tempfile::tempdir().expect("tempdir");
    run_sensor(
        &common::estuary_bin(),
        tmp.path(),
        &["-r", &trace("http-all-headers.pcap")],
    );
    let text = std::fs::read_to_string(tmp.path().join("conn.log")).expect("conn.log");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#separator \\x09");
    assert_eq!(lines[1], "#set_separator\t,");
    assert_eq!(lines[2], "#empty_field\t(empty)");
    assert_eq!(lines[3], "#unset_field\t-");
    assert_eq!(lines[4], "#path\tconn");
    assert_matches(r"^#open\t\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d$", lines[5]);
    assert_eq!(
        lines[6],
        "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes\tresp_pkts\tresp_ip_bytes\ttunnel_parents\tip_proto"
    );
    assert_eq!(
        lines[7],
        "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\tcount"
    );
    assert!(
        lines.last().is_some_and(|l| l.starts_with("#close\t")),
        "no #close"
    );
    let row: Vec<&str> = lines[8].split('\t').collect();
    assert_eq!(row.len(), 22);
    assert_matches(r"^\d+\.\d{6}$", row[0]);
    assert_matches(r"^C[0-9A-Za-z]{2,17}$", row[1]);
}

fn assert_matches(pattern: &str, text: &str) {
    let re = regex::Regex::new(pattern).expect("regex");
    assert!(re.is_match(text), "{text:?} does not match {pattern}");
}

fn conn_keys_tsv(dir: &Path) -> BTreeMap<String, usize> {
    let log = read_log(&dir.join("conn.log"), false).expect("conn.log");
    let mut m = BTreeMap::new();
    for r in &log.rows {
        let k: Vec<&str> = CONN_KEY
            .iter()
            .map(|c| log.get(r, c).unwrap_or(""))
            .collect();
        *m.entry(k.join(" ")).or_insert(0) += 1;
    }
    m
}

fn conn_keys_json(dir: &Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(dir.join("conn.log")).expect("conn.log");
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {e}: {line}"));
        let obj = v.as_object().expect("object");
        let k: Vec<String> = CONN_KEY
            .iter()
            .map(|c| match obj.get(*c) {
                None => "-".to_string(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Number(n)) if *c == "duration" => {
                    format!("{:.6}", n.as_f64().unwrap_or(0.0))
                }
                Some(other) => other.to_string(),
            })
            .collect();
        *m.entry(k.join(" ")).or_insert(0) += 1;
    }
    m
}

#[test]
fn json_rows_equal_tsv_rows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (tsv, json) = (tmp.path().join("tsv"), tmp.path().join("json"));
    let t = trace("mixed-lan-ftp-http.pcap");
    run_sensor(&common::estuary_bin(), &tsv, &["-r", &t]);
    run_sensor(&common::estuary_bin(), &json, &["-r", &t, "--json"]);
    assert_eq!(conn_keys_tsv(&tsv), conn_keys_json(&json));
    // Every log is JSON lines with keys in column order and no header.
    for entry in std::fs::read_dir(&json)
        .expect("dir")
        .filter_map(Result::ok)
    {
        let p = entry.path();
        if p.extension().and_then(|e| e.to_str()) != Some("log") {
            continue;
        }
        let tsv_log = read_log(&tsv.join(p.file_name().expect("name")), false).expect("tsv twin");
        for line in std::fs::read_to_string(&p).expect("read").lines() {
            assert!(line.starts_with("{\"ts\":"), "{}: {line}", p.display());
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).expect("object");
            // serde_json's map is sorted; recover the written order from the text.
            let mut keys: Vec<(usize, &String)> = map
                .keys()
                .map(|k| (line.find(&format!("\"{k}\":")).expect("key in text"), k))
                .collect();
            keys.sort();
            let order: Vec<usize> = keys
                .iter()
                .map(|(_, k)| tsv_log.column(k).expect("known column"))
                .collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "{}: keys out of column order",
                p.display()
            );
        }
    }
}

#[test]
fn size_rotation_renames_and_loses_no_row() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (plain, rotated) = (tmp.path().join("plain"), tmp.path().join("rotated"));
    let t = trace("mixed-lan-ftp-http.pcap");
    run_sensor(&common::estuary_bin(), &plain, &["-r", &t]);
    run_sensor(
        &common::estuary_bin(),
        &rotated,
        &["-r", &t, "--rotate-size", "4096"],
    );
    let expected = read_log(&plain.join("conn.log"), false)
        .expect("conn.log")
        .rows
        .len();
    let mut files: Vec<_> = std::fs::read_dir(&rotated)
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("conn.") && n.ends_with(".log"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected several rotated files, got {files:?}"
    );
    assert!(files.contains(&"conn.log".to_string()));
    let name =
        regex::Regex::new(r"^conn\.(\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d(-\d+)?\.)?log$").expect("regex");
    let mut rows = 0;
    for f in &files {
        assert!(name.is_match(f), "{f}");
        let text = std::fs::read_to_string(rotated.join(f)).expect("read");
        assert!(text.starts_with("#separator \\x09\n"), "{f}: no header");
        assert!(
            text.lines()
                .last()
                .is_some_and(|l| l.starts_with("#close\t")),
            "{f}: no #close"
        );
        rows += text.lines().filter(|l| !l.starts_with('#')).count();
    }
    assert_eq!(rows, expected, "rows lost or duplicated by rotation");
}

#[test]
fn parsezeeklogs_reads_tsv_and_json() {
    let probe = Command::new("python3")
        .args(["-c", "import parsezeeklogs"])
        .output();
    if !common::prereq::require(
        probe.is_ok_and(|o| o.status.success()),
        "python3 module parsezeeklogs is not installed (.ci/setup installs it)",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = trace("mixed-lan-ftp-http.pcap");
    for (dir, extra) in [("tsv", None), ("json", Some("--json"))] {
        let d = tmp.path().join(dir);
        let mut args = vec!["-r", t.as_str()];
        args.extend(extra);
        run_sensor(&common::estuary_bin(), &d, &args);
        let expected = if dir == "tsv" {
            read_log(&d.join("conn.log"), false)
                .expect("conn.log")
                .rows
                .len()
        } else {
            std::fs::read_to_string(d.join("conn.log"))
                .expect("conn.log")
                .lines()
                .count()
        };
        let script = "import sys\nfrom parsezeeklogs import read_zeek\nn=0\nfor r in read_zeek(sys.argv[1]):\n    assert isinstance(r['id.orig_p'], int), r\n    assert r['proto'] in ('tcp','udp','icmp','unknown_transport'), r\n    n+=1\nprint(n)\n";
        let out = output_ok(
            Command::new("python3")
                .args(["-c", script])
                .arg(d.join("conn.log")),
            dir,
        );
        let n: usize = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("count");
        assert_eq!(
            n, expected,
            "{dir}: parsezeeklogs read a different number of rows"
        );
    }
}
