//! The sensor on a damaged capture file (cut inside a packet or a record header, a record of
//! impossible length, a cut pcapng block): every packet before the damage is analyzed and its
//! connections logged as at the end of a file, a `damaged_capture_file` weird says where, and
//! the run fails naming the file and the byte offset. Each damaged file is made here from a
//! fixture; its logs must equal those of the same bytes cut just before the damaged record.

mod common;
mod sensor_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sensor_support::{read_log, ZeekLog};

/// One HTTP conversation (34 packets); the damage goes into the 20th, mid-response.
const PCAP: &str = "http-all-headers.pcap";
/// The same packets in pcapng (one section header, one interface, enhanced packet blocks).
const PCAPNG: &str = "http-all-headers.pcapng";
const DAMAGED: usize = 19;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(common::fixtures().join("pcaps").join(name)).expect("read fixture")
}

/// Where each record of a little-endian pcap starts, with its captured length.
fn pcap_records(file: &[u8]) -> Vec<(usize, usize)> {
    assert_eq!(file[..4], [0xd4, 0xc3, 0xb2, 0xa1], "a little-endian pcap");
    let mut at = 24;
    let mut records = Vec::new();
    while at < file.len() {
        let caplen = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        records.push((at, caplen));
        at += 16 + caplen;
    }
    records
}

/// Where each enhanced packet block of a little-endian pcapng starts, with its length.
fn pcapng_packets(file: &[u8]) -> Vec<(usize, usize)> {
    let mut at = 0;
    let mut packets = Vec::new();
    while at < file.len() {
        let kind = u32::from_le_bytes(file[at..at + 4].try_into().unwrap());
        let len = u32::from_le_bytes(file[at + 4..at + 8].try_into().unwrap()) as usize;
        if kind == 6 {
            packets.push((at, len));
        }
        at += len;
    }
    packets
}

struct Run {
    out: Output,
    logs: PathBuf,
}

impl Run {
    fn log(&self, name: &str) -> ZeekLog {
        read_log(&self.logs.join(format!("{name}.log")), false).unwrap_or_default()
    }

    /// A log's rows without the connection and file ids (random per run), sorted.
    fn rows(&self, name: &str) -> Vec<Vec<String>> {
        let log = self.log(name);
        let random =
            |field: &String| field == "uid" || field.contains("fuid") || field.contains("uids");
        let mut rows: Vec<Vec<String>> = log
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .zip(&log.fields)
                    .filter(|(_, field)| !random(field))
                    .map(|(v, _)| v.clone())
                    .collect()
            })
            .collect();
        rows.sort();
        rows
    }

    /// The logs written but weird.log, by name (`conn`, `http` ...).
    fn log_names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.logs)
            .expect("read log dir")
            .filter_map(|e| {
                let name = e.ok()?.file_name().to_string_lossy().to_string();
                name.strip_suffix(".log").map(str::to_string)
            })
            .filter(|n| n != "weird")
            .collect();
        names.sort();
        names
    }

    fn weirds(&self) -> Vec<(String, String)> {
        let log = self.log("weird");
        log.rows
            .iter()
            .map(|r| {
                let get = |f| log.get(r, f).unwrap_or_default().to_string();
                (get("name"), get("addl"))
            })
            .collect()
    }
}

fn sensor(dir: &Path, name: &str, bytes: &[u8], extra: &[&str]) -> Run {
    let file = dir.join(name);
    std::fs::write(&file, bytes).expect("write capture");
    let logs = dir.join(format!("{name}.logs"));
    std::fs::create_dir_all(&logs).expect("log dir");
    let out = Command::new(common::estuary_bin())
        .arg("sensor")
        .arg("-r")
        .arg(&file)
        .arg("--logdir")
        .arg(&logs)
        .args(extra)
        .output()
        .expect("start estuary sensor");
    Run { out, logs }
}

/// Runs the sensor on `damaged` and on `whole` (the bytes before the damaged record), and
/// checks that the damaged run logged the same rows, one weird, and failed naming the file and
/// `offset`.
fn assert_damage_handled(damaged: &[u8], whole: &[u8], ext: &str, offset: usize, extra: &[&str]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = sensor(dir.path(), &format!("whole.{ext}"), whole, extra);
    assert!(
        reference.out.status.success(),
        "the whole packets alone: {}",
        String::from_utf8_lossy(&reference.out.stderr)
    );
    let run = sensor(dir.path(), &format!("damaged.{ext}"), damaged, extra);
    let stderr = String::from_utf8_lossy(&run.out.stderr);
    assert!(!run.out.status.success(), "a damaged capture fails the run");
    assert!(
        stderr.contains(&format!("damaged.{ext}"))
            && stderr.contains(&format!("byte offset {offset} (after packet {DAMAGED})")),
        "the error names the file, the offset and the packet: {stderr}"
    );
    for log in ["conn", "http"] {
        assert!(
            !reference.rows(log).is_empty(),
            "{log}.log of the whole packets has rows"
        );
    }
    let names = reference.log_names();
    assert_eq!(run.log_names(), names, "the same logs as the whole packets");
    for log in &names {
        let rows = reference.rows(log);
        assert_eq!(
            run.rows(log),
            rows,
            "{log}.log: the same rows as the whole packets"
        );
    }
    let weirds = run.weirds();
    let damage: Vec<_> = weirds
        .iter()
        .filter(|(name, _)| name == "damaged_capture_file")
        .collect();
    assert_eq!(
        damage.len(),
        1,
        "one damaged_capture_file weird: {weirds:?}"
    );
    assert!(
        damage[0].1.contains(&format!("byte offset {offset}")),
        "the weird says where: {damage:?}"
    );
    assert_eq!(weirds.len(), reference.weirds().len() + 1, "no other weird");
    assert!(
        run.log("conn")
            .header
            .iter()
            .any(|l| l.starts_with("#close")),
        "the logs are closed"
    );
}

#[test]
fn pcap_cut_inside_a_packet_logs_the_packets_before() {
    let file = fixture(PCAP);
    let (at, caplen) = pcap_records(&file)[DAMAGED];
    let whole = &file[..at];
    assert_damage_handled(&file[..at + 16 + caplen / 2], whole, "pcap", at, &[]);
}

#[test]
fn pcap_cut_inside_a_packet_with_two_workers() {
    let file = fixture(PCAP);
    let (at, caplen) = pcap_records(&file)[DAMAGED];
    let two = ["--lb-procs", "2"];
    assert_damage_handled(&file[..at + 16 + caplen / 2], &file[..at], "pcap", at, &two);
}

#[test]
fn pcap_cut_inside_a_record_header_logs_the_packets_before() {
    let file = fixture(PCAP);
    let (at, _) = pcap_records(&file)[DAMAGED];
    assert_damage_handled(&file[..at + 7], &file[..at], "pcap", at, &[]);
}

#[test]
fn pcap_record_of_impossible_length_logs_the_packets_before() {
    let file = fixture(PCAP);
    let (at, _) = pcap_records(&file)[DAMAGED];
    let mut damaged = file.clone();
    // Over libpcap's 256 KiB maximum (and the file's snaplen): no record can be that long.
    damaged[at + 8..at + 12].copy_from_slice(&(1u32 << 20).to_le_bytes());
    assert_damage_handled(&damaged, &file[..at], "pcap", at, &[]);
}

#[test]
fn pcapng_cut_inside_a_block_logs_the_packets_before() {
    let file = fixture(PCAPNG);
    let (at, len) = pcapng_packets(&file)[DAMAGED];
    assert_damage_handled(&file[..at + len / 2], &file[..at], "pcapng", at, &[]);
}

#[test]
fn pcapng_cut_inside_a_block_header_logs_the_packets_before() {
    let file = fixture(PCAPNG);
    let (at, _) = pcapng_packets(&file)[DAMAGED];
    assert_damage_handled(&file[..at + 6], &file[..at], "pcapng", at, &[]);
}
