//! The protocol analyzers against `tshark` on public captures (the workspace's
//! tests/fixtures/pcaps): the facts both tools see (DNS queries and answers, HTTP methods, hosts
//! and URIs, TLS server names and versions, SSH banners, FTP commands, SMTP senders and
//! recipients) must agree.

mod support;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{run_trace, Logs};

/// Captures whose link layer (PPPoE) the analyzer harness does not decode; the whole sensor
/// reads them in the workspace's tests/sensor_pcaps_tshark.rs.
const UNDECODED: &[&str] = &["http-over-pppoe.pcap"];

fn pcaps(prefix: &str) -> Vec<PathBuf> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/pcaps");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixtures/pcaps")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(prefix) && !UNDECODED.contains(&n.as_ref())
            }) && p.extension().is_some_and(|x| x == "pcap")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no {prefix}* captures");
    files
}

/// `tshark -Y filter -T fields -e ...`: one row per matching packet, occurrences of a field
/// joined by `,`.
fn tshark(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-Y", filter, "-T", "fields"]);
    cmd.args([
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark is installed (.ci/setup)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

fn set(v: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    v.into_iter()
        .filter(|s| !s.is_empty() && s != "-")
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// dns.log rows of the DNS port (port 137 is NetBIOS, which tshark calls NBNS).
fn dns_column(logs: &Logs, column: &str) -> Vec<String> {
    let ports = logs.column("dns", "id.resp_p");
    logs.column("dns", column)
        .into_iter()
        .zip(ports)
        .filter(|(_, p)| p != "137")
        .map(|(v, _)| v)
        .collect()
}

/// The A/AAAA addresses of the answer section (dns.log keeps no others): tshark lists the
/// records of all sections in order, so the first `dns.count.answers` types say how many of
/// the `dns.a` and `dns.aaaa` values are answers.
fn answer_section_addresses(row: &[String]) -> Vec<String> {
    let field = |i: usize| -> Vec<String> {
        row.get(i)
            .map(|f| {
                f.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let count: usize = row.first().and_then(|c| c.parse().ok()).unwrap_or(0);
    let types = field(1);
    let answer_types = &types[..count.min(types.len())];
    let n_a = answer_types.iter().filter(|t| *t == "1").count();
    let n_aaaa = answer_types.iter().filter(|t| *t == "28").count();
    let mut out: Vec<String> = field(2).into_iter().take(n_a).collect();
    out.extend(field(3).into_iter().take(n_aaaa));
    out
}

#[test]
fn dns_queries_and_answers_match_tshark() {
    for pcap in pcaps("dns-") {
        let logs = run_trace(&pcap);
        let rows = tshark(
            &pcap,
            "dns",
            &[
                "dns.flags.response",
                "dns.qry.name",
                "dns.count.answers",
                "dns.resp.type",
                "dns.a",
                "dns.aaaa",
            ],
        );
        // Several messages can share a TCP segment: their fields come comma-joined.
        let is_response = |r: &Vec<String>| r[0].split(',').any(|f| f == "1" || f == "True");
        let queries = set(dns_column(&logs, "query"));
        let expected = set(rows.iter().filter(|r| !is_response(r)).flat_map(|r| {
            r[1].split(',')
                .map(|n| n.to_ascii_lowercase())
                .collect::<Vec<_>>()
        }));
        assert_eq!(queries, expected, "{}: queries", pcap.display());

        let answers = set(dns_column(&logs, "answers")
            .iter()
            .flat_map(|a| a.split(',').map(str::to_string).collect::<Vec<_>>())
            .filter(|a| a.parse::<IpAddr>().is_ok()));
        let expected = set(rows
            .iter()
            .filter(|r| is_response(r))
            .flat_map(|r| answer_section_addresses(&r[2..])));
        assert_eq!(answers, expected, "{}: A/AAAA answers", pcap.display());
    }
}

#[test]
fn http_requests_match_tshark() {
    for pcap in pcaps("http-") {
        let logs = run_trace(&pcap);
        let got: Vec<String> = logs
            .column("http", "method")
            .into_iter()
            .zip(logs.column("http", "host"))
            .zip(logs.column("http", "uri"))
            .map(|((m, h), u)| format!("{m} {h} {u}"))
            .collect();
        let expected: Vec<String> = tshark(
            &pcap,
            "http.request",
            &["http.request.method", "http.host", "http.request.uri"],
        )
        .into_iter()
        .map(|r| {
            let host = r.get(1).filter(|h| !h.is_empty()).cloned();
            let host = host.unwrap_or_else(|| "-".into());
            format!("{} {host} {}", r[0], r.get(2).cloned().unwrap_or_default())
        })
        .collect();
        assert_eq!(sorted(got), sorted(expected), "{}", pcap.display());
    }
}

fn tls_version_name(v: &str) -> Option<String> {
    let n = u16::from_str_radix(v.trim_start_matches("0x"), 16).ok()?;
    Some(match n {
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv10".into(),
        0x0302 => "TLSv11".into(),
        0x0303 => "TLSv12".into(),
        0x0304 => "TLSv13".into(),
        0x7f00..=0x7fff => format!("TLSv13-draft{}", n & 0xff),
        _ => return None,
    })
}

#[test]
fn tls_server_names_and_versions_match_tshark() {
    for pcap in pcaps("tls") {
        let logs = run_trace(&pcap);
        let rows = tshark(
            &pcap,
            "tls.handshake.type == 1 || tls.handshake.type == 2",
            &[
                "tls.handshake.type",
                "tls.handshake.extensions_server_name",
                "tls.handshake.version",
                "tls.handshake.extensions.supported_version",
            ],
        );
        let names = set(logs.column("ssl", "server_name"));
        let expected = set(rows
            .iter()
            .filter(|r| r[0].starts_with('1'))
            .map(|r| r[1].clone()));
        assert_eq!(names, expected, "{}: server names", pcap.display());

        let versions = sorted(
            logs.column("ssl", "version")
                .into_iter()
                .filter(|v| v != "-")
                .collect(),
        );
        let expected = sorted(
            rows.iter()
                .filter(|r| r[0].starts_with('2'))
                .filter_map(|r| {
                    let chosen = r.get(3).filter(|s| !s.is_empty()).unwrap_or(&r[2]);
                    tls_version_name(chosen)
                })
                .collect(),
        );
        assert_eq!(versions, expected, "{}: versions", pcap.display());
    }
}

#[test]
fn ssh_banners_match_tshark() {
    for pcap in pcaps("ssh-") {
        let logs = run_trace(&pcap);
        let banners = set(logs
            .column("ssh", "client")
            .into_iter()
            .chain(logs.column("ssh", "server")));
        let expected = set(tshark(&pcap, "ssh.protocol", &["ssh.protocol"])
            .into_iter()
            .flatten());
        assert_eq!(banners, expected, "{}", pcap.display());
    }
}

/// Zeek's `FTP::logged_commands`.
const FTP_LOGGED: &[&str] = &[
    "APPE", "DELE", "RETR", "STOR", "STOU", "ACCT", "PORT", "PASV", "EPRT", "EPSV",
];

#[test]
fn ftp_commands_match_tshark() {
    for pcap in pcaps("ftp-").into_iter().chain(pcaps("mixed-lan")) {
        let logs = run_trace(&pcap);
        let got = sorted(logs.column("ftp", "command"));
        let expected = sorted(
            tshark(&pcap, "ftp.request", &["ftp.request.command"])
                .into_iter()
                .flatten()
                .map(|c| c.to_ascii_uppercase())
                .filter(|c| FTP_LOGGED.contains(&c.as_str()))
                .collect(),
        );
        assert_eq!(got, expected, "{}", pcap.display());
    }
}

/// Parameters of `verb` (`MAIL` or `RCPT`). tshark misreads pipelined commands sent in one
/// segment as message text; it then lists them as IMF "extensions" (`MAIL FROM`, `RCPT TO`).
fn smtp_params(pcap: &Path, verb: &str) -> Vec<String> {
    let ext = if verb == "MAIL" {
        "MAIL FROM"
    } else {
        "RCPT TO"
    };
    let mut params = Vec::new();
    let rows = tshark(
        pcap,
        "smtp.req.command || imf.extension.type",
        &[
            "smtp.req.command",
            "smtp.req.parameter",
            "imf.extension.type",
            "imf.extension.value",
        ],
    );
    for row in rows {
        if row[0].eq_ignore_ascii_case(verb) {
            params.push(row[1].clone());
        }
        let types: Vec<&str> = row[2].split(',').collect();
        let values: Vec<&str> = row[3].split(',').collect();
        for (t, v) in types.iter().zip(values) {
            if t.eq_ignore_ascii_case(ext) {
                params.push(format!("{ext}:{v}"));
            }
        }
    }
    params
}

/// The address of a `FROM:<a@b> ...` / `TO:a@b` parameter.
fn angle_addr(param: &str) -> Option<String> {
    let value = param.split_once(':').map_or(param, |(_, v)| v).trim();
    match value.find('<') {
        Some(start) => {
            let end = value[start..].find('>')? + start;
            Some(value[start + 1..end].to_string())
        }
        None => value.split_whitespace().next().map(str::to_string),
    }
}

#[test]
fn smtp_senders_and_recipients_match_tshark() {
    for pcap in pcaps("smtp-") {
        let logs = run_trace(&pcap);
        let senders = set(logs.column("smtp", "mailfrom"));
        let expected = set(smtp_params(&pcap, "MAIL")
            .into_iter()
            .filter_map(|p| angle_addr(&p)));
        assert_eq!(senders, expected, "{}: senders", pcap.display());

        let recipients = set(logs
            .column("smtp", "rcptto")
            .iter()
            .flat_map(|r| r.split(',').map(str::to_string).collect::<Vec<_>>()));
        let expected = set(smtp_params(&pcap, "RCPT")
            .into_iter()
            .filter_map(|p| angle_addr(&p)));
        assert_eq!(recipients, expected, "{}: recipients", pcap.display());
    }
}
