//! SIGHUP while numbered lines flow: the shipper takes a changed tag filter and a second
//! destination, the aggregator a changed rotation option; no line is lost or repeated and the
//! change is applied.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::JoinHandle;
use std::time::Duration;

use common::{count_sequence_numbers, free_tcp_port, tally, Aggregator, Daemon, Tally};

const LINES: Duration = Duration::from_secs(60);

fn hangup(pid: u32) {
    let ok = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

fn append(path: &Path, line: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

/// Appends `seq=0..n` to each of `files`, paced so that a reload lands while lines flow.
fn write_paced(files: Vec<PathBuf>, n: u64) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for seq in 0..n {
            for f in &files {
                append(f, &format!("seq={seq}"));
            }
            if seq % 50 == 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    })
}

fn destination(name: &str, port: u16, tag_regex: Option<&str>) -> String {
    let filter = tag_regex.map_or(String::new(), |r| format!("tag_regex = \"{r}\"\n"));
    format!(
        "\n[[destination]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\ntransport = \"relp\"\n{filter}"
    )
}

/// The shipper's destination `first` stops taking `bro_noise` and a destination `second` is
/// added. Expected: `first` has every app line exactly once and a prefix of the noise lines
/// (each once) that ends with the reload; `second`, which has no offsets, reads both files
/// from their start: every line of both exactly once.
#[test]
fn sighup_changes_a_tag_filter_and_adds_a_destination_while_lines_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let (relp1, relp2) = (free_tcp_port(), free_tcp_port());
    for dir in ["first", "second"] {
        fs::create_dir_all(tmp.path().join(dir)).unwrap();
    }
    let first = Aggregator::start(
        &tmp.path().join("first"),
        &format!("ListenRELP = 127.0.0.1:{relp1}\n"),
    );
    let second = Aggregator::start(
        &tmp.path().join("second"),
        &format!("ListenRELP = 127.0.0.1:{relp2}\n"),
    );
    let (app, noise) = (tmp.path().join("app.log"), tmp.path().join("noise.log"));
    let inputs = format!(
        "work_dir = \"{}\"\n[[input]]\npath = \"{}\"\ntag = \"bro_app:\"\n[[input]]\npath = \"{}\"\ntag = \"bro_noise:\"\n",
        tmp.path().join("ship-spool").display(),
        app.display(),
        noise.display()
    );
    let config = tmp.path().join("ship.toml");
    fs::write(
        &config,
        format!("{inputs}{}", destination("first", relp1, Some("^bro_"))),
    )
    .unwrap();
    let mut shipper = Daemon::estuary(
        "shipper",
        &["ship", "-c", config.to_str().unwrap()],
        tmp.path(),
    );
    let pid = shipper.pid();

    const N: u64 = 3000;
    let writer = write_paced(vec![app.clone(), noise.clone()], N);
    first.wait_lines("noise.log", 300, LINES);
    fs::write(
        &config,
        format!(
            "{inputs}{}{}",
            destination("first", relp1, Some("^bro_app")),
            destination("second", relp2, None)
        ),
    )
    .unwrap();
    hangup(pid);
    writer.join().unwrap();

    let want_all = |agg: &Aggregator, name: &str| {
        let text = agg.wait_lines(name, N as usize, LINES);
        assert_eq!(
            tally(&count_sequence_numbers(&text), 0..N),
            Tally::default(),
            "{name}"
        );
    };
    want_all(&first, "app.log");
    want_all(&second, "app.log");
    want_all(&second, "noise.log");
    // A noise line written once `second` has everything: read by the shipper, filtered out
    // for `first`.
    append(&noise, &format!("seq={N}"));
    second.wait_lines("noise.log", N as usize + 1, LINES);
    let filtered = count_sequence_numbers(&first.current("noise.log"));
    let taken = filtered.len() as u64;
    assert!((300..N).contains(&taken), "first took {taken} noise lines");
    assert_eq!(tally(&filtered, 0..taken), Tally::default());
    assert_eq!(shipper.pid(), pid);
    assert!(shipper.is_running(), "{}", shipper.output());
    assert!(
        shipper.output().contains("restarting on it"),
        "{}",
        shipper.output()
    );
}

/// The aggregator's rotation interval is changed by SIGHUP while a shipper sends over RELP:
/// the new interval rotates (archives appear) and every line is in current or the archive
/// exactly once.
#[test]
fn sighup_changes_the_aggregators_rotation_while_lines_flow() {
    let tmp = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let mut agg = Aggregator::start(tmp.path(), &format!("ListenRELP = 127.0.0.1:{relp}\n"));
    let app = tmp.path().join("app.log");
    let config = tmp.path().join("ship.toml");
    fs::write(
        &config,
        format!(
            "work_dir = \"{}\"\n[[input]]\npath = \"{}\"\ntag = \"bro_app:\"\n{}",
            tmp.path().join("ship-spool").display(),
            app.display(),
            destination("agg", relp, None)
        ),
    )
    .unwrap();
    let _shipper = Daemon::estuary(
        "shipper",
        &["ship", "-c", config.to_str().unwrap()],
        tmp.path(),
    );
    const N: u64 = 3000;
    let writer = write_paced(vec![app], N);
    agg.wait_lines("app.log", 300, LINES);
    let pid = agg.daemon.pid();
    let text = fs::read_to_string(&agg.config).unwrap();
    fs::write(&agg.config, format!("{text}LogRotationInterval = 1\n")).unwrap();
    hangup(pid);
    writer.join().unwrap();
    // A read while a rotation moves a file may see it twice or not at all: read until the
    // outcome holds or the deadline passes, and show the last one.
    let deadline = std::time::Instant::now() + LINES;
    let outcome = loop {
        let counts = count_sequence_numbers(&common::read_aggregator_logs(&agg.log_dir));
        let outcome = tally(&counts, 0..N);
        if outcome == Tally::default() || std::time::Instant::now() > deadline {
            break outcome;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(outcome, Tally::default());
    let archived = fs::read_dir(&agg.log_dir)
        .unwrap()
        .flatten()
        .any(|e| e.file_name() != "current");
    assert!(archived, "the new rotation interval archived nothing");
    assert_eq!(agg.daemon.pid(), pid);
    assert!(agg.daemon.is_running(), "{}", agg.daemon.output());
}
