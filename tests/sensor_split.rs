//! Load balancing: N sensor nodes over one capture, and lb_procs worker threads in one node.
//!
//! - The default split (the sensor's symmetric address hash, computed after VLAN/QinQ/MPLS and
//!   IPv6 decoding) logs every connection exactly once across the nodes, VLAN and IPv6 included.
//! - `--bpf-split` applies the seed's filter `(ip[14:2]+ip[18:2]) - (N*((ip[14:2]+ip[18:2])/N)) == k`:
//!   untagged IPv4 is split correctly, but 802.1Q, QinQ and IPv6 traffic matches on no node.
//! - `--lb-procs P` gives the same conn.log rows as one worker.

mod common;
mod sensor_support;

use std::collections::BTreeMap;
use std::path::Path;

use sensor_support::{read_log, run_sensor};

/// Files with plain IPv4 (and a little IPv6), 802.1Q, QinQ and IPv6-only traffic.
const FILES: &[(&str, Traffic)] = &[
    ("mixed-lan-ftp-http.pcap", Traffic::Mixed),
    ("vlan-tcp-stream.pcap", Traffic::Vlan),
    ("frag-vlan-ipv4-tcp-syn.pcap", Traffic::Vlan),
    ("vlan-qinq-flow.pcap", Traffic::Vlan),
    ("tls-ipv6-community-id.pcap", Traffic::Ipv6),
    ("dns-udp-many-queries.pcap", Traffic::PlainIpv4),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traffic {
    PlainIpv4,
    Mixed,
    Vlan,
    Ipv6,
}

/// conn.log rows by (ts, 5-tuple, proto, tunnelled or not), counted.
fn conn_rows(dir: &Path) -> BTreeMap<String, usize> {
    let mut rows = BTreeMap::new();
    if let Some(log) = read_log(&dir.join("conn.log"), false) {
        for r in &log.rows {
            let mut key: Vec<&str> = [
                "ts",
                "id.orig_h",
                "id.orig_p",
                "id.resp_h",
                "id.resp_p",
                "proto",
            ]
            .iter()
            .map(|c| log.get(r, c).unwrap_or(""))
            .collect();
            let direct = log.get(r, "tunnel_parents") == Some("-");
            key.push(if direct { "direct" } else { "tunnelled" });
            *rows.entry(key.join(" ")).or_insert(0) += 1;
        }
    }
    rows
}

fn merge(into: &mut BTreeMap<String, usize>, from: BTreeMap<String, usize>) {
    for (k, n) in from {
        *into.entry(k).or_insert(0) += n;
    }
}

#[test]
fn node_split_default_hash_vs_bpf() {
    let bin = common::estuary_bin();
    let root = common::fixtures().join("pcaps");
    let tmp = tempfile::tempdir().expect("tempdir");
    const N: u32 = 3;
    for (file, traffic) in FILES {
        let trace = root.join(file).to_string_lossy().to_string();
        let base = tmp.path().join(format!("{file}-all"));
        run_sensor(&bin, &base, &["-r", &trace, "-C", "--no-analyzers"]);
        let all = conn_rows(&base);
        assert!(!all.is_empty(), "{file}: no connections at all");

        let mut hashed = BTreeMap::new();
        let mut bpf = BTreeMap::new();
        for k in 0..N {
            let (n, k) = (N.to_string(), k.to_string());
            let node = [
                "-r",
                &trace,
                "-C",
                "--no-analyzers",
                "--node-count",
                &n,
                "--node-index",
                &k,
            ];
            let d = tmp.path().join(format!("{file}-hash-{k}"));
            run_sensor(&bin, &d, &node);
            merge(&mut hashed, conn_rows(&d));
            let d = tmp.path().join(format!("{file}-bpf-{k}"));
            run_sensor(&bin, &d, &[&node[..], &["--bpf-split"]].concat());
            merge(&mut bpf, conn_rows(&d));
        }
        assert_eq!(
            hashed, all,
            "{file}: the default split must log every connection exactly once"
        );
        assert!(
            hashed.values().all(|&n| n == 1),
            "{file}: a connection logged twice"
        );

        // IPv6 outside a tunnel; IPv6 inside an IPv4 tunnel (Teredo) travels as IPv4.
        let ipv6 = |k: &String| {
            k.split(' ').nth(1).is_some_and(|a| a.contains(':')) && k.ends_with("direct")
        };
        match traffic {
            Traffic::PlainIpv4 => {
                assert_eq!(bpf, all, "{file}: BPF split loses or duplicates IPv4")
            }
            Traffic::Mixed => {
                let v4: BTreeMap<_, _> = all
                    .iter()
                    .filter(|(k, _)| !ipv6(k))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                assert!(
                    all.keys().any(ipv6),
                    "{file}: expected some IPv6 connections"
                );
                assert_eq!(
                    bpf, v4,
                    "{file}: BPF split keeps exactly the IPv4 connections"
                );
            }
            Traffic::Vlan | Traffic::Ipv6 => {
                assert!(bpf.is_empty(), "{file}: the seed's BPF split drops {traffic:?} traffic on every node, got {bpf:?}")
            }
        }
    }
}

#[test]
fn lb_procs_give_the_same_conn_log_as_one_worker() {
    let bin = common::estuary_bin();
    let root = common::fixtures().join("pcaps");
    let tmp = tempfile::tempdir().expect("tempdir");
    for (file, _) in FILES {
        let trace = root.join(file).to_string_lossy().to_string();
        let one = tmp.path().join(format!("{file}-1"));
        run_sensor(&bin, &one, &["-r", &trace, "-C"]);
        let four = tmp.path().join(format!("{file}-4"));
        run_sensor(&bin, &four, &["-r", &trace, "-C", "--lb-procs", "4"]);
        let full = |d: &Path| -> BTreeMap<String, usize> {
            let mut m = BTreeMap::new();
            if let Some(log) = read_log(&d.join("conn.log"), false) {
                for r in &log.rows {
                    // Everything but the uid and the tunnel parent's uid (random per run).
                    let key: Vec<&str> = r
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != 1 && *i != 20)
                        .map(|(_, v)| v.as_str())
                        .collect();
                    *m.entry(key.join(" ")).or_insert(0) += 1;
                }
            }
            m
        };
        assert_eq!(
            full(&one),
            full(&four),
            "{file}: lb_procs=4 differs from one worker"
        );
        let stats = std::fs::read_to_string(four.join("netstats.json")).expect("netstats.json");
        assert!(stats.contains("\"workers\":[{\"worker\":0"), "{stats}");
        assert_eq!(stats.matches("\"worker\":").count(), 4, "{stats}");
    }
}
