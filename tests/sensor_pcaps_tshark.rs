//! Runs `estuary sensor` over the public captures in tests/fixtures/pcaps and checks that every
//! TCP and UDP flow tshark sees appears in conn.log with the same endpoints, packet count and
//! IP byte count (summed over both directions and over rows that share a 5-tuple).
//!
//! tshark counts every frame; the sensor counts what it analyzes, so packets it handles
//! differently (tunnels, fragments reassembled into one, lengths beyond the frame) are left out
//! of tshark's view. x509.log is checked against the certificates tshark decodes in TLS
//! handshakes (serials, and the name strings of subjects and issuers), files.log against the
//! HTTP objects tshark exports (their sizes and media types), the files of FTP data
//! connections, and the MIME entities of the mails tshark exports (sizes and names). Skipped
//! with a message when tshark is not installed.

mod common;
mod sensor_support;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use sensor_support::tshark_objects::{
    export_objects, tshark_http_responses, tshark_mail_entities, MailEntity,
};
use sensor_support::{read_log, run_sensor};

type Flow = (String, String, u16, u16, &'static str);

fn canonical(a: &str, ap: u16, b: &str, bp: u16, proto: &'static str) -> Flow {
    if (a, ap) <= (b, bp) {
        (a.to_string(), b.to_string(), ap, bp, proto)
    } else {
        (b.to_string(), a.to_string(), bp, ap, proto)
    }
}

/// Per flow: (packets, IP bytes) as tshark reports them.
fn tshark_flows(file: &std::path::Path) -> Option<BTreeMap<Flow, (u64, u64)>> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=/t", "-E", "occurrence=l"])
        .args([
            "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst",
        ])
        .args([
            "-e",
            "tcp.srcport",
            "-e",
            "tcp.dstport",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
        ])
        .args([
            "-e",
            "ip.len",
            "-e",
            "ipv6.plen",
            "-e",
            "ip.flags.mf",
            "-e",
            "ip.frag_offset",
            "-e",
            "ip.proto",
        ])
        .args([
            "-e",
            "gre.proto",
            "-e",
            "_ws.expert.message",
            "-e",
            "ipv6.fraghdr.ident",
            "-e",
            "frame.len",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let mut flows = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let c: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| c.get(i).copied().unwrap_or("");
        // Tunnels, fragments and malformed frames are counted differently; leave them out.
        if !get(13).is_empty()
            || get(10) == "1"
            || get(10) == "True"
            || !matches!(get(11), "" | "0")
        {
            continue;
        }
        if get(14).contains("alformed") || get(14).contains("runcated") || !get(15).is_empty() {
            continue;
        }
        let (src, dst) = if !get(0).is_empty() {
            (get(0), get(2))
        } else {
            (get(1), get(3))
        };
        let (sp, dp, proto) = if !get(4).is_empty() {
            (get(4), get(5), "tcp")
        } else if !get(6).is_empty() {
            (get(6), get(7), "udp")
        } else {
            continue;
        };
        let (Ok(sp), Ok(dp)) = (sp.parse::<u16>(), dp.parse::<u16>()) else {
            continue;
        };
        let ip_len: u64 = if !get(8).is_empty() {
            get(8).parse().unwrap_or(0)
        } else {
            get(9).parse::<u64>().unwrap_or(0) + 40
        };
        // An IP length beyond the frame cannot be real: Zeek (and the sensor) drop such
        // packets as `truncated_IP_len`.
        if ip_len > get(16).parse().unwrap_or(u64::MAX) {
            continue;
        }
        let e = flows
            .entry(canonical(src, sp, dst, dp, proto))
            .or_insert((0, 0));
        e.0 += 1;
        e.1 += ip_len;
    }
    Some(flows)
}

/// The captures in tests/fixtures/pcaps, sorted; `None` (the test skips) without tshark.
fn public_captures() -> Option<Vec<std::path::PathBuf>> {
    if !common::prereq::require(
        Command::new("tshark").arg("-v").output().is_ok(),
        "tshark is not installed",
    ) {
        return None;
    }
    let mut files: Vec<_> = std::fs::read_dir(common::fixtures().join("pcaps"))
        .expect("pcaps dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    Some(files)
}

#[test]
fn conn_log_agrees_with_tshark_on_public_captures() {
    let Some(files) = public_captures() else {
        return;
    };
    let bin = common::estuary_bin();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut total, mut equal) = (0usize, 0usize);
    let mut report = Vec::new();
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let dir = tmp.path().join(&name);
        run_sensor(&bin, &dir, &["-r", &file.to_string_lossy(), "-C"]);
        let Some(expected) = tshark_flows(file) else {
            continue;
        };
        let mut got: BTreeMap<Flow, (u64, u64)> = BTreeMap::new();
        if let Some(conn) = read_log(&dir.join("conn.log"), false) {
            for r in &conn.rows {
                let f = |n: &str| conn.get(r, n).unwrap_or("").to_string();
                let proto = match f("proto").as_str() {
                    "tcp" => "tcp",
                    "udp" => "udp",
                    _ => continue,
                };
                if f("tunnel_parents") != "-" {
                    continue;
                }
                let (Ok(op), Ok(rp)) = (f("id.orig_p").parse(), f("id.resp_p").parse()) else {
                    continue;
                };
                let num = |n: &str| f(n).parse::<u64>().unwrap_or(0);
                let e = got
                    .entry(canonical(&f("id.orig_h"), op, &f("id.resp_h"), rp, proto))
                    .or_insert((0, 0));
                e.0 += num("orig_pkts") + num("resp_pkts");
                e.1 += num("orig_ip_bytes") + num("resp_ip_bytes");
            }
        }
        let mut file_equal = 0;
        for (flow, counts) in &expected {
            total += 1;
            if got.get(flow) == Some(counts) {
                equal += 1;
                file_equal += 1;
            } else {
                report.push(format!(
                    "{name}: {flow:?} tshark {counts:?} sensor {:?}",
                    got.get(flow)
                ));
            }
        }
        println!(
            "{name:<40} {file_equal:>4}/{:<4} flows equal",
            expected.len()
        );
    }
    for r in &report {
        println!("{r}");
    }
    let share = equal as f64 / total.max(1) as f64;
    println!("TOTAL {equal}/{total} flows equal ({:.1}%)", 100.0 * share);
    assert!(total > 100, "too few flows compared: {total}");
    assert!(
        share >= 0.99,
        "only {:.1}% of flows agree with tshark",
        100.0 * share
    );
}

/// Per capture: the serials (uppercase hex, no leading zero bytes) and the name strings
/// (printable and UTF-8 attribute values of subjects and issuers) of every certificate tshark
/// decodes in TLS handshakes.
fn tshark_certificates(file: &std::path::Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", "tls.handshake.certificate", "-T", "fields"])
        .args([
            "-E",
            "separator=/t",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
        ])
        .args(["-e", "x509af.serialNumber"])
        .args(["-e", "x509sat.printableString", "-e", "x509sat.uTF8String"])
        .output()
        .expect("run tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let (mut serials, mut names) = (BTreeSet::new(), BTreeSet::new());
    for line in text.lines() {
        let mut cols = line.split('\t');
        for s in cols
            .next()
            .unwrap_or_default()
            .split('|')
            .filter(|s| !s.is_empty())
        {
            let s = s.trim_start_matches("00").to_uppercase();
            serials.insert(if s.is_empty() { "00".into() } else { s });
        }
        for strings in cols {
            names.extend(
                strings
                    .split('|')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
    }
    (serials, names)
}

#[test]
fn x509_log_agrees_with_tshark_on_certificates() {
    let Some(files) = public_captures() else {
        return;
    };
    let bin = common::estuary_bin();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut with_certs = 0;
    for file in &files {
        let (serials, names) = tshark_certificates(file);
        if serials.is_empty() {
            continue;
        }
        with_certs += 1;
        let dir = tmp.path().join(file.file_name().expect("file name"));
        run_sensor(&bin, &dir, &["-r", &file.to_string_lossy(), "-C"]);
        let x509 = read_log(&dir.join("x509.log"), false)
            .unwrap_or_else(|| panic!("{}: no x509.log", file.display()));
        let col = |r: &Vec<String>, c: &str| x509.get(r, c).unwrap_or_default().to_string();
        let got: BTreeSet<String> = x509
            .rows
            .iter()
            .map(|r| col(r, "certificate.serial"))
            .collect();
        assert_eq!(got, serials, "{}: certificate serials", file.display());
        let dns: Vec<String> = x509
            .rows
            .iter()
            .flat_map(|r| [col(r, "certificate.subject"), col(r, "certificate.issuer")])
            // Compared unescaped: RFC 2253 escapes `,` and the like, TSV the backslashes.
            .map(|dn| dn.replace('\\', ""))
            .collect();
        for name in &names {
            assert!(
                dns.iter().any(|dn| dn.contains(name.as_str())),
                "{}: {name:?} is in no subject or issuer of x509.log: {dns:?}",
                file.display()
            );
        }
    }
    assert!(
        with_certs >= 4,
        "only {with_certs} captures hold certificates"
    );
}

/// The sizes of the HTTP objects tshark exports from `file` (`--export-objects http`).
fn tshark_http_object_sizes(file: &std::path::Path, into: &std::path::Path) -> Vec<u64> {
    let mut sizes: Vec<u64> = export_objects(file, "http", into)
        .iter()
        .filter_map(|p| p.metadata().ok().map(|m| m.len()))
        .collect();
    sizes.sort_unstable();
    sizes
}

/// Every HTTP body tshark exports is in files.log as a file of that many bytes (`seen_bytes`),
/// dechunked and decompressed as both read it. The sensor may have more: bodies with a gap, which
/// tshark does not export. Byte-range replies are left out: Zeek joins the ranges of one URL into
/// one file, where tshark exports each range.
#[test]
fn files_log_has_every_http_object_tshark_exports() {
    let Some(files) = public_captures() else {
        return;
    };
    let bin = common::estuary_bin();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut objects = 0;
    for file in files
        .iter()
        .filter(|p| !p.to_string_lossy().contains("range"))
    {
        let dir = tmp.path().join(file.file_name().expect("file name"));
        let exported = tshark_http_object_sizes(file, &dir.join("objects"));
        if exported.is_empty() {
            continue;
        }
        objects += exported.len();
        run_sensor(&bin, &dir, &["-r", &file.to_string_lossy(), "-C"]);
        let log = read_log(&dir.join("files.log"), false)
            .unwrap_or_else(|| panic!("{}: no files.log", file.display()));
        let mut seen: Vec<u64> = log
            .rows
            .iter()
            .filter(|r| log.get(r, "source") == Some("HTTP"))
            .filter_map(|r| log.get(r, "seen_bytes")?.parse().ok())
            .collect();
        seen.sort_unstable();
        let mut missing = Vec::new();
        for size in &exported {
            match seen.iter().position(|s| s == size) {
                Some(i) => {
                    seen.remove(i);
                }
                None => missing.push(*size),
            }
        }
        assert!(
            missing.is_empty(),
            "{}: objects of {missing:?} bytes are not in files.log (tshark {exported:?})",
            file.display()
        );
    }
    assert!(objects > 50, "too few HTTP objects compared: {objects}");
}

/// Per FTP data connection and sending port, the payload bytes tshark dissects as `ftp-data`.
fn tshark_ftp_data_sizes(file: &std::path::Path) -> Vec<u64> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", "ftp-data", "-T", "fields", "-E", "separator=/t"])
        .args(["-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.len"])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "{}: {out:?}", file.display());
    let mut per_stream: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let c: Vec<&str> = line.split('\t').collect();
        let [stream, port, len] = c[..] else {
            continue;
        };
        *per_stream.entry((stream.into(), port.into())).or_default() +=
            len.parse::<u64>().unwrap_or(0);
    }
    let mut sizes: Vec<u64> = per_stream.into_values().filter(|n| *n > 0).collect();
    sizes.sort_unstable();
    sizes
}

/// The named files tshark exports from FTP data connections (`--export-objects ftp-data`):
/// (name, size).
fn tshark_ftp_objects(file: &std::path::Path, into: &std::path::Path) -> Vec<(String, u64)> {
    export_objects(file, "ftp-data", into)
        .iter()
        .filter_map(|p| {
            let size = p.metadata().ok()?.len();
            Some((p.file_name()?.to_string_lossy().into_owned(), size))
        })
        .collect()
}

/// Every FTP data transfer is a files.log row of source FTP_DATA (Zeek's `File_Analyzer`,
/// one file per direction of a data connection): as many rows as tshark sees directions
/// carrying `ftp-data`, with the same sizes (`seen_bytes`); each object tshark exports by name
/// is one of them, and a `.txt` one is typed `text/plain`. tshark exports only the transfers of
/// named commands, one per name, so listings and repeated names are counted from the dissection.
#[test]
fn files_log_has_every_ftp_data_transfer_tshark_sees() {
    let Some(files) = public_captures() else {
        return;
    };
    let bin = common::estuary_bin();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut transfers = 0;
    for file in &files {
        let expected = tshark_ftp_data_sizes(file);
        if expected.is_empty() {
            continue;
        }
        transfers += expected.len();
        let dir = tmp.path().join(file.file_name().expect("file name"));
        let objects = tshark_ftp_objects(file, &dir.join("objects"));
        run_sensor(&bin, &dir, &["-r", &file.to_string_lossy(), "-C"]);
        let log = read_log(&dir.join("files.log"), false)
            .unwrap_or_else(|| panic!("{}: no files.log", file.display()));
        let rows: Vec<(u64, &str)> = log
            .rows
            .iter()
            .filter(|r| log.get(r, "source") == Some("FTP_DATA"))
            .filter_map(|r| {
                let size = log.get(r, "seen_bytes")?.parse().ok()?;
                Some((size, log.get(r, "mime_type")?))
            })
            .collect();
        let mut seen: Vec<u64> = rows.iter().map(|(s, _)| *s).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            expected,
            "{}: FTP_DATA files (left) and tshark's ftp-data (right)",
            file.display()
        );
        for (name, size) in &objects {
            let typed: Vec<&str> = rows
                .iter()
                .filter(|(s, _)| s == size)
                .map(|(_, m)| *m)
                .collect();
            assert!(
                !typed.is_empty(),
                "{}: {name} ({size} bytes) is not in files.log",
                file.display()
            );
            if name.ends_with(".txt") {
                assert!(
                    typed.contains(&"text/plain"),
                    "{}: {name} typed {typed:?}",
                    file.display()
                );
            }
        }
    }
    assert!(
        transfers >= 20,
        "too few FTP transfers compared: {transfers}"
    );
}

/// Every leaf MIME entity of every mail tshark exports is a files.log row of source SMTP with
/// its decoded size (`seen_bytes`: the size of a mail's file is not announced, so
/// `total_bytes` stays unset) and the name entities.zeek takes from its headers; no other SMTP
/// rows. A capture of SMTP that switches to TLS has no cleartext mail and so no rows.
#[test]
fn files_log_has_every_mail_entity_tshark_exports() {
    let Some(files) = public_captures() else {
        return;
    };
    let bin = common::estuary_bin();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut mails, mut entities) = (0, 0);
    for file in &files {
        let dir = tmp.path().join(file.file_name().expect("file name"));
        let exported = tshark_mail_entities(file, &dir.join("objects"));
        let smtp = file.to_string_lossy().contains("smtp");
        if exported.is_empty() && !smtp {
            continue;
        }
        mails += exported.len();
        let mut expected: Vec<MailEntity> = exported.into_iter().flatten().collect();
        entities += expected.len();
        expected.sort();
        run_sensor(&bin, &dir, &["-r", &file.to_string_lossy(), "-C"]);
        let mut got: Vec<MailEntity> = read_log(&dir.join("files.log"), false)
            .map(|log| {
                log.rows
                    .iter()
                    .filter(|r| log.get(r, "source") == Some("SMTP"))
                    .map(|r| MailEntity {
                        size: log
                            .get(r, "seen_bytes")
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0),
                        name: log
                            .get(r, "filename")
                            .filter(|n| *n != "-")
                            .map(str::to_string),
                    })
                    .collect()
            })
            .unwrap_or_default();
        got.sort();
        assert_eq!(
            got,
            expected,
            "{}: SMTP files (left) and the mails' entities (right)",
            file.display()
        );
    }
    assert!(mails >= 3, "too few mails compared: {mails}");
    assert!(entities >= 4, "too few entities compared: {entities}");
}

/// The media types files.log gives HTTP bodies agree with the Content-Type tshark reads where
/// the body plainly is of that type. Zeek types a file by sniffing its first bytes
/// (`file_sniff`, libmagic-style signatures), never by the header, so only bodies whose start
/// shows the type are compared: HTML that begins with a doctype or `<html` (an XHTML page
/// that begins `<?xml`, or a fragment, is typed otherwise by Zeek). Where tshark reads a
/// Content-Disposition file name, http.log's `resp_filenames` for that URL has it.
#[test]
fn http_media_types_and_names_agree_with_tshark() {
    let Some(files) = public_captures() else {
        return;
    };
    let bin = common::estuary_bin();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (mut typed, mut named) = (0, 0);
    for file in &files {
        let responses = tshark_http_responses(file);
        if responses.is_empty() {
            continue;
        }
        let dir = tmp.path().join(file.file_name().expect("file name"));
        run_sensor(&bin, &dir, &["-r", &file.to_string_lossy(), "-C"]);
        let log = read_log(&dir.join("http.log"), false)
            .unwrap_or_else(|| panic!("{}: no http.log", file.display()));
        let col = |r: &Vec<String>, c: &str| log.get(r, c).unwrap_or_default().to_string();
        let rows_for = |url: &str| -> Vec<&Vec<String>> {
            log.rows
                .iter()
                .filter(|r| format!("http://{}{}", col(r, "host"), col(r, "uri")) == url)
                .collect()
        };
        for resp in &responses {
            if body_shows_type(&resp.content_type, &resp.body_head) {
                typed += 1;
                let types: Vec<String> = rows_for(&resp.url)
                    .iter()
                    .map(|r| col(r, "resp_mime_types"))
                    .collect();
                assert!(
                    types
                        .iter()
                        .any(|t| t.split(',').any(|t| t == resp.content_type)),
                    "{}: {} is {} by tshark, http.log has {types:?}",
                    file.display(),
                    resp.url,
                    resp.content_type
                );
            }
            if let Some(name) = &resp.disposition_name {
                named += 1;
                let names: Vec<String> = rows_for(&resp.url)
                    .iter()
                    .map(|r| col(r, "resp_filenames"))
                    .collect();
                assert!(
                    names.iter().any(|n| n.split(',').any(|n| n == name)),
                    "{}: {} names {name}, http.log has {names:?}",
                    file.display(),
                    resp.url
                );
            }
        }
    }
    println!("{typed} HTTP bodies typed, {named} Content-Disposition names compared");
    assert!(typed >= 2, "too few HTTP media types compared: {typed}");
}

/// The body's first bytes show it is of `media_type` (one Zeek's signatures name the same).
/// tshark prints bodies as text, so only textual starts can be read from it.
fn body_shows_type(media_type: &str, head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head)
        .trim_start()
        .to_ascii_lowercase();
    media_type == "text/html" && (text.starts_with("<!doctype html") || text.starts_with("<html"))
}
