//! Protocol analyzers against Zeek's own logs for the zeek-dev traces (the workspace's
//! tests/fixtures/zeek-dev; see the README there).

mod support;

use std::path::{Path, PathBuf};

use support::run_trace;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/zeek-dev"
    ))
}

/// Entries whose weirds come from IP and IGMP decoding, which this analyzer harness does not
/// run; the whole sensor is compared on them in the workspace's tests/sensor_zeek_dev.rs.
const DECODER_ONLY: &[&str] = &["d38-weird-ipv6-mobility", "d39-weird-igmp-bad-checksum"];

/// The first batch of entries (d01-d40). The later ones are mostly tunnels and link layers,
/// beyond this harness's minimal packet path; the whole sensor is compared on every entry in
/// the workspace's tests/sensor_zeek_dev.rs.
fn first_batch(name: &str) -> bool {
    name.strip_prefix('d')
        .and_then(|rest| rest.split('-').next())
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n <= 40)
}

/// File ids are random in Zeek too: compare them as a placeholder.
fn mask_fuids(row: &str) -> String {
    row.split('\t')
        .map(|field| {
            field
                .split(',')
                .map(|e| {
                    let fuid = e.len() >= 15
                        && e.starts_with('F')
                        && e.chars().all(|c| c.is_ascii_alphanumeric());
                    if fuid {
                        "F*"
                    } else {
                        e
                    }
                })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\t")
}

/// The expected log of `entry`: `log` itself, or the `zeek-cut -m` form `log.cut`
/// (a first line of column names, no `#` lines; d27 stores its logs that way).
fn expected_file(entry: &Path, log: &str) -> Option<(PathBuf, bool)> {
    let plain = entry.join("expected").join(log);
    let cut = entry.join("expected").join(format!("{log}.cut"));
    if plain.exists() {
        Some((plain, false))
    } else if cut.exists() {
        Some((cut, true))
    } else {
        None
    }
}

/// Zeek prints sets in hash-table order: sort the elements of set columns (`types` are the
/// column types after `uid`) so rows compare as sets.
fn sort_sets(row: &str, types: &[String]) -> String {
    row.split('\t')
        .enumerate()
        .map(|(i, field)| {
            if types.get(i).is_some_and(|t| t.starts_with("set[")) {
                let mut elems: Vec<&str> = field.split(',').collect();
                elems.sort_unstable();
                elems.join(",")
            } else {
                field.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\t")
}

/// Expected rows of `log` in `entry`, without `ts` and `uid`.
fn expected_rows(entry: &Path, log: &str) -> Vec<String> {
    let Some((path, cut)) = expected_file(entry, log) else {
        return Vec::new();
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let types: Vec<String> = text
        .lines()
        .find_map(|l| l.strip_prefix("#types\t"))
        .map(|t| t.split('\t').skip(2).map(str::to_string).collect())
        .unwrap_or_default();
    text.lines()
        .skip(usize::from(cut))
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.splitn(3, '\t').nth(2).unwrap_or(""))
        .map(|row| {
            if log == "weird.log" {
                row.split('\t').take(6).collect::<Vec<_>>().join("\t")
            } else {
                sort_sets(&mask_fuids(row), &types)
            }
        })
        .collect()
}

/// Share of expected rows matched exactly (as a multiset), and the unmatched rows on both sides.
fn compare(expected: &[String], got: &[String]) -> (usize, Vec<String>, Vec<String>) {
    let mut left: Vec<String> = got.to_vec();
    let mut missing = Vec::new();
    let mut matched = 0;
    for e in expected {
        if let Some(i) = left.iter().position(|g| g == e) {
            left.remove(i);
            matched += 1;
        } else {
            missing.push(e.clone());
        }
    }
    (matched, missing, left)
}

/// Runs every fixture entry holding `log`; returns (matched, expected) over all of them.
fn score(log: &str) -> (usize, usize) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .expect("fixtures dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let name = name.as_deref().unwrap_or_default();
            first_batch(name) && !DECODER_ONLY.contains(&name) && expected_file(p, log).is_some()
        })
        .collect();
    entries.sort();
    let (mut total_matched, mut total) = (0, 0);
    for entry in entries {
        let trace = std::fs::read_dir(&entry)
            .expect("entry dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
            .expect("trace in entry");
        let logs = run_trace(&trace);
        let expected = expected_rows(&entry, log);
        let stem = log.trim_end_matches(".log");
        let got: Vec<String> = if stem == "weird" {
            logs.weirds.clone()
        } else {
            let rows = logs.rows.get(stem).cloned().unwrap_or_default();
            rows.iter().map(|r| mask_fuids(r)).collect()
        };
        let (matched, missing, extra) = compare(&expected, &got);
        println!(
            "{}: {log} {matched}/{} rows equal ({} produced)",
            entry
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            expected.len(),
            got.len()
        );
        for m in &missing {
            println!("  - {m}");
        }
        for x in &extra {
            println!("  + {x}");
        }
        total_matched += matched;
        total += expected.len();
    }
    println!("{log}: {total_matched}/{total}");
    (total_matched, total)
}

#[test]
fn dns_log_matches_zeek() {
    let (matched, total) = score("dns.log");
    assert!(total > 0);
    assert!(matched * 100 >= total * 90, "dns.log: {matched}/{total}");
}

#[test]
fn http_log_matches_zeek() {
    let (matched, total) = score("http.log");
    assert!(total > 0);
    assert!(matched * 100 >= total * 95, "http.log: {matched}/{total}");
}

#[test]
fn protocol_weirds_match_zeek() {
    let (matched, total) = score("weird.log");
    assert!(total > 0);
    assert!(matched * 100 >= total * 95, "weird.log: {matched}/{total}");
}

#[test]
fn ssl_log_matches_zeek() {
    let (matched, total) = score("ssl.log");
    assert!(total > 0);
    assert!(matched * 100 >= total * 95, "ssl.log: {matched}/{total}");
}

#[test]
fn ssh_log_matches_zeek() {
    let (matched, total) = score("ssh.log");
    assert!(total > 0);
    assert!(matched * 100 >= total * 95, "ssh.log: {matched}/{total}");
}

#[test]
fn ftp_log_matches_zeek() {
    let (matched, total) = score("ftp.log");
    assert!(total > 0);
    assert!(matched * 100 >= total * 95, "ftp.log: {matched}/{total}");
}

#[test]
fn smtp_log_matches_zeek() {
    let (matched, total) = score("smtp.log");
    assert!(total > 0);
    assert!(matched * 100 >= total * 95, "smtp.log: {matched}/{total}");
}
