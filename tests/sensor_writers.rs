//! Log writers: Zeek TSV headers and footers, JSON lines equal to the TSV rows, size
//! rotation by rename-and-create, and readability by a third-party Zeek parser
//! (parsezeeklogs, installed by .ci/setup; skipped with a message when missing).

mod common;
mod sensor_support;

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

/// Traces that between them make every log the sensor writes from packets.
const WRITER_TRACES: &[&str] = &[
    "mixed-lan-ftp-http.pcap",
    "smtp-attachment.pcap",
    "dns-udp-additionals.pcap",
    "tls-cert-issuer.pcap",
    "ssh-hassh.pcap",
    "ipv4-truncated-header.pcap",
];

#[test]
fn json_rows_equal_tsv_rows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut logs_compared = std::collections::BTreeSet::new();
    for name in WRITER_TRACES {
        let (tsv, json) = (
            tmp.path().join(name).join("tsv"),
            tmp.path().join(name).join("json"),
        );
        let t = trace(name);
        run_sensor(&common::estuary_bin(), &tsv, &["-r", &t]);
        run_sensor(&common::estuary_bin(), &json, &["-r", &t, "--json"]);
        let mut tsv_logs: Vec<_> = log_names(&tsv);
        let json_logs: Vec<_> = log_names(&json);
        tsv_logs.sort();
        assert_eq!(tsv_logs, json_logs, "{name}: the same logs in both formats");
        for log in tsv_logs {
            let tsv_log = read_log(&tsv.join(&log), false).expect("tsv log");
            let json_rows = json_as_tsv_rows(&json.join(&log), &tsv_log);
            let json_rows = masked_ids(&tsv_log.fields, json_rows);
            let tsv_rows = masked_ids(&tsv_log.fields, tsv_log.rows.clone());
            assert!(!tsv_rows.is_empty(), "{name} {log}: no rows");
            let only_json: Vec<_> = json_rows
                .iter()
                .filter(|r| !tsv_rows.contains(r))
                .take(3)
                .collect();
            let only_tsv: Vec<_> = tsv_rows
                .iter()
                .filter(|r| !json_rows.contains(r))
                .take(3)
                .collect();
            assert!(
                json_rows == tsv_rows,
                "{name} {log}: JSON rows differ from TSV rows; only in JSON: {only_json:?}; only in TSV: {only_tsv:?}"
            );
            logs_compared.insert(log);
        }
    }
    for log in [
        "conn.log",
        "dns.log",
        "http.log",
        "ftp.log",
        "smtp.log",
        "ssl.log",
        "ssh.log",
        "weird.log",
    ] {
        assert!(
            logs_compared.contains(log),
            "no trace wrote {log}: {logs_compared:?}"
        );
    }
}

/// Columns of random ids (uids and fuids differ between two runs).
const ID_COLUMNS: &[&str] = &[
    "uid",
    "fuid",
    "fuids",
    "orig_fuids",
    "resp_fuids",
    "parent_fuid",
    "tunnel_parents",
    "conn_uids",
];

/// Rows sorted, with each id replaced by its prefix letter: the columns' shape (unset, empty,
/// how many ids of which kind) is compared, not the random ids themselves.
fn masked_ids(fields: &[String], mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let ids: Vec<usize> = fields
        .iter()
        .enumerate()
        .filter(|(_, f)| ID_COLUMNS.contains(&f.as_str()))
        .map(|(i, _)| i)
        .collect();
    for row in &mut rows {
        for &i in &ids {
            let cell = &mut row[i];
            if cell != "-" && cell != "(empty)" {
                *cell = cell
                    .split(',')
                    .map(|id| format!("{}*", id.get(..1).unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",");
            }
        }
    }
    rows.sort();
    rows
}

fn log_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("log dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

/// A JSON log's rows rendered as TSV cells, sorted: every column, in the TSV log's column
/// order, each value converted by its TSV type. Also checks that each line is an object whose
/// keys come in column order, without a header.
fn json_as_tsv_rows(path: &Path, tsv_log: &sensor_support::ZeekLog) -> Vec<Vec<String>> {
    let types: Vec<&str> = tsv_log
        .header
        .iter()
        .find_map(|h| h.strip_prefix("#types\t"))
        .expect("#types")
        .split('\t')
        .collect();
    let mut rows = Vec::new();
    for line in std::fs::read_to_string(path).expect("read").lines() {
        assert!(line.starts_with("{\"ts\":"), "{}: {line}", path.display());
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
            path.display()
        );
        rows.push(
            tsv_log
                .fields
                .iter()
                .zip(&types)
                .map(|(f, ty)| tsv_cell(ty, map.get(f)))
                .collect(),
        );
    }
    rows.sort();
    rows
}

/// One JSON value as Zeek's TSV writer prints a value of type `ty`.
fn tsv_cell(ty: &str, v: Option<&serde_json::Value>) -> String {
    use estuary_sensor::zeeklog::{format::tsv_value, FieldType, Value};
    let field_type = match ty {
        "time" => FieldType::Time,
        "interval" => FieldType::Interval,
        "addr" => FieldType::Addr,
        "port" => FieldType::Port,
        "count" => FieldType::Count,
        "int" => FieldType::Int,
        "double" => FieldType::Double,
        "bool" => FieldType::Bool,
        "enum" => FieldType::Enum,
        "set[string]" => FieldType::SetString,
        "set[enum]" => FieldType::SetEnum,
        "vector[string]" => FieldType::VectorString,
        "vector[count]" => FieldType::VectorCount,
        "vector[interval]" => FieldType::VectorInterval,
        "vector[addr]" => FieldType::VectorAddr,
        _ => FieldType::String,
    };
    fn value(ty: FieldType, v: &serde_json::Value) -> Value {
        match (ty, v) {
            (_, serde_json::Value::Null) => Value::Unset,
            (_, serde_json::Value::Array(items)) => {
                Value::List(items.iter().map(|i| value(ty, i)).collect())
            }
            (_, serde_json::Value::Bool(b)) => Value::Bool(*b),
            (FieldType::Time | FieldType::Interval | FieldType::VectorInterval, n) => {
                Value::Interval(n.as_f64().expect("number"))
            }
            (FieldType::Double, n) => Value::Double(n.as_f64().expect("number")),
            (_, serde_json::Value::Number(n)) => match n.as_u64() {
                Some(c) => Value::Count(c),
                None => Value::Int(n.as_i64().expect("integer")),
            },
            (_, serde_json::Value::String(s)) => Value::Str(s.clone()),
            (_, other) => panic!("unexpected JSON value {other}"),
        }
    }
    let mut cell = String::new();
    tsv_value(
        &mut cell,
        field_type,
        &v.map_or(Value::Unset, |v| value(field_type, v)),
    );
    cell
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
    let plain_log = read_log(&plain.join("conn.log"), false).expect("conn.log");
    // Rows as multisets, uids masked (each run draws its own).
    let rows_of = |text: &str| -> Vec<Vec<String>> {
        let rows = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect();
        masked_ids(&plain_log.fields, rows)
    };
    let expected = masked_ids(&plain_log.fields, plain_log.rows.clone());
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
    let mut rows = Vec::new();
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
        rows.extend(rows_of(&text));
    }
    rows.sort();
    assert!(!expected.is_empty());
    assert_eq!(
        rows, expected,
        "rows lost, duplicated or changed by rotation"
    );
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
