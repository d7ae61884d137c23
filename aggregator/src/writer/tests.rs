use std::collections::BTreeMap;
use std::path::Path;

use super::*;
use crate::clock::from_unix_secs;
use crate::pending::segment_path;
use proptest::prelude::Strategy;

pub(super) fn msg<'a>(
    host: &'a str,
    tag: &'a str,
    body: &'a str,
    origin: Option<(u64, u64)>,
) -> Message<'a> {
    Message {
        host: host.as_bytes(),
        tag: tag.as_bytes(),
        body: body.as_bytes(),
        raw: body.as_bytes(),
        origin: origin.map(|(file, offset)| Origin {
            sender: host,
            file,
            offset,
        }),
    }
}

pub(super) fn setup() -> (tempfile::TempDir, AggregatorConfig) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = crate::testing::config(&dir.path().join("logs"), &dir.path().join("spool"));
    (dir, cfg)
}

pub(super) fn read(cfg: &AggregatorConfig, name: &str) -> String {
    fs::read_to_string(cfg.log_dir.join("current").join(name)).unwrap_or_default()
}

pub(super) const T0: u64 = 1_795_388_400;

#[test]
fn routes_and_drops_replays() {
    let (_d, cfg) = setup();
    let now = from_unix_secs(T0);
    let mut w = Writer::open(&cfg, now, Zone::Local, crate::testing::events()).unwrap();
    for i in 0..3u64 {
        let body = format!("line{i}\tx\t");
        assert_eq!(
            w.write(&msg("s1", "bro_conn", &body, Some((7, i * 10))), now)
                .unwrap(),
            Outcome::Written
        );
    }
    // Replay of offsets 0 and 10: dropped; 20 too; 30 is new.
    for off in [0, 10, 20] {
        assert_eq!(
            w.write(&msg("s1", "bro_conn", "dup", Some((7, off))), now)
                .unwrap(),
            Outcome::Duplicate
        );
    }
    // The same offsets from another host or file are not replays.
    w.write(&msg("s2", "bro_conn", "other-host", Some((7, 0))), now)
        .unwrap();
    w.write(&msg("s1", "sshd", "<13>raw sshd line", None), now)
        .unwrap();
    w.write(&msg("s1", "bro_../x", "evil", None), now).unwrap();
    w.commit().unwrap();
    assert_eq!(
        read(&cfg, "conn.log"),
        "line0\tx\t\nline1\tx\t\nline2\tx\t\nother-host\n"
    );
    assert_eq!(read(&cfg, "unrouted.log"), "<13>raw sshd line\nevil\n");

    // Marks survive a restart.
    drop(w);
    let mut w = Writer::open(&cfg, now, Zone::Local, crate::testing::events()).unwrap();
    assert_eq!(
        w.write(&msg("s1", "bro_conn", "dup", Some((7, 20))), now)
            .unwrap(),
        Outcome::Duplicate
    );
}

/// The marks the journal holds, latest record per file, as `M <host> <file> <offset>`.
fn journal_marks(cfg: &AggregatorConfig) -> Vec<String> {
    let journal = fs::read_to_string(cfg.spool_dir.join("commit.journal")).unwrap();
    let mut latest = BTreeMap::new();
    for record in journal.lines().filter(|l| l.starts_with("M ")) {
        let f: Vec<&str> = record.split(' ').collect();
        latest.insert((f[1], f[2]), format!("M {} {} {}", f[1], f[2], f[3]));
    }
    latest.into_values().collect()
}

/// Runs the writer for `hours`, rotating every hour as the service does.
fn run_hours(w: &mut Writer, clock: &crate::clock::ManualClock, hours: u64) {
    use crate::clock::Clock as _;
    for _ in 0..hours {
        clock.advance(Duration::from_secs(3600));
        w.rotate(clock.now()).unwrap();
    }
}

#[test]
fn marks_silent_past_retention_are_pruned_and_compacted_away() {
    let (_d, cfg) = setup();
    assert_eq!(
        cfg.replay_mark_retention,
        Some(Duration::from_secs(7 * 86_400))
    );
    use crate::clock::Clock as _;
    let clock = crate::clock::ManualClock::new(from_unix_secs(T0));
    let mut w = Writer::open(&cfg, clock.now(), clock.zone(), crate::testing::events()).unwrap();
    // Two incarnations of a rotated file from s1, one from s2, all old.
    for (host, file, off) in [("s1", 1, 0), ("s1", 1, 10), ("s1", 2, 0), ("s2", 5, 0)] {
        let m = msg(host, "bro_conn", "old", Some((file, off)));
        assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
    }
    w.commit().unwrap();
    run_hours(&mut w, &clock, 6 * 24);
    // s1's file 2 is still being written; file 3 is new.
    for (file, off) in [(2, 20), (3, 0)] {
        let m = msg("s1", "bro_conn", "recent", Some((file, off)));
        assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
    }
    w.rotate(clock.now()).unwrap();
    assert_eq!(
        journal_marks(&cfg),
        ["M s1 1 10", "M s1 2 20", "M s1 3 0", "M s2 5 0"],
        "nothing is older than the retention yet"
    );

    run_hours(&mut w, &clock, 25);
    assert_eq!(journal_marks(&cfg), ["M s1 2 20", "M s1 3 0"]);
    let journal = fs::read_to_string(cfg.spool_dir.join("commit.journal")).unwrap();
    assert_eq!(
        journal.lines().filter(|l| l.starts_with("C ")).count(),
        1,
        "pruning rewrites the journal as one snapshot:\n{journal}"
    );

    // Recent files still drop their replays, before and after a restart.
    let replay = msg("s1", "bro_conn", "dup", Some((2, 20)));
    assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
    drop(w);
    let mut w = Writer::open(&cfg, clock.now(), clock.zone(), crate::testing::events()).unwrap();
    assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
    let replay = msg("s1", "bro_conn", "dup", Some((3, 0)));
    assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
    // The pruned file's mark is gone: this is the outage length the retention bounds.
    let late = msg("s2", "bro_conn", "late", Some((5, 0)));
    assert_eq!(w.write(&late, clock.now()).unwrap(), Outcome::Written);
}

/// Marks are pruned at the rotation right after startup, before any shipper could replay:
/// a downtime longer than the retention must not count as silence, or every replay of an
/// unacknowledged window would be written twice. Silence while running still counts.
#[test]
fn downtime_does_not_count_as_silence() {
    let (_d, mut cfg) = setup();
    let hour = Duration::from_secs(3600);
    cfg.replay_mark_retention = Some(hour);
    use crate::clock::Clock as _;
    let clock = crate::clock::ManualClock::new(from_unix_secs(T0));
    let mut w = Writer::open(&cfg, clock.now(), clock.zone(), crate::testing::events()).unwrap();
    let m = msg("s2", "bro_conn", "a", Some((5, 0)));
    assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
    w.commit().unwrap();
    clock.advance(hour / 2);
    for off in [0, 10] {
        let m = msg("s1", "bro_conn", "a", Some((1, off)));
        assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
    }
    w.commit().unwrap();
    drop(w);

    // Down for two hours; the service rotates whatever is due at once.
    clock.advance(2 * hour);
    let mut w = Writer::open(&cfg, clock.now(), clock.zone(), crate::testing::events()).unwrap();
    w.rotate(clock.now()).unwrap();
    for replay in [
        msg("s1", "bro_conn", "dup", Some((1, 10))),
        msg("s2", "bro_conn", "dup", Some((5, 0))),
    ] {
        assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
    }
    let m = msg("s1", "bro_conn", "b", Some((1, 20)));
    assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
    w.commit().unwrap();

    // s2 has now been silent for 30 + 45 minutes of uptime, s1 for 45.
    clock.advance(hour * 3 / 4);
    w.rotate(clock.now()).unwrap();
    assert_eq!(journal_marks(&cfg), ["M s1 1 20"]);
    // A restart right away moves nothing.
    drop(w);
    let mut w = Writer::open(&cfg, clock.now(), clock.zone(), crate::testing::events()).unwrap();
    w.rotate(clock.now()).unwrap();
    let replay = msg("s1", "bro_conn", "dup", Some((1, 20)));
    assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
    let late = msg("s2", "bro_conn", "late", Some((5, 0)));
    assert_eq!(w.write(&late, clock.now()).unwrap(), Outcome::Written);
}

/// A forward jump of the wall clock between two rotations is not silence either; the marks
/// keep their lead over a restart, and silence after the jump still counts.
#[test]
fn a_clock_jump_does_not_count_as_silence() {
    let (_d, mut cfg) = setup();
    let hour = Duration::from_secs(3600);
    cfg.replay_mark_retention = Some(hour);
    use crate::clock::Clock as _;
    let clock = crate::clock::ManualClock::new(from_unix_secs(T0));
    let mut w = Writer::open(&cfg, clock.now(), clock.zone(), crate::testing::events()).unwrap();
    let m = msg("s1", "bro_conn", "a", Some((1, 0)));
    assert_eq!(w.write(&m, clock.now()).unwrap(), Outcome::Written);
    w.commit().unwrap();
    clock.advance(hour / 2);
    w.rotate(clock.now()).unwrap();
    clock.advance(3 * hour);
    w.rotate(clock.now()).unwrap();
    let replay = msg("s1", "bro_conn", "dup", Some((1, 0)));
    assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
    drop(w);
    let mut w = Writer::open(&cfg, clock.now(), clock.zone(), crate::testing::events()).unwrap();
    w.rotate(clock.now()).unwrap();
    assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Duplicate);
    run_hours(&mut w, &clock, 2);
    assert_eq!(w.write(&replay, clock.now()).unwrap(), Outcome::Written);
}

#[test]
fn marks_are_kept_forever_without_retention() {
    let (_d, mut cfg) = setup();
    cfg.replay_mark_retention = None;
    let mut w = Writer::open(
        &cfg,
        from_unix_secs(T0),
        Zone::Local,
        crate::testing::events(),
    )
    .unwrap();
    w.write(
        &msg("s1", "bro_conn", "a", Some((1, 0))),
        from_unix_secs(T0),
    )
    .unwrap();
    w.rotate(from_unix_secs(T0 + 365 * 86_400)).unwrap();
    assert_eq!(journal_marks(&cfg), ["M s1 1 0"]);
}

#[test]
fn crash_before_commit_loses_nothing_and_doubles_nothing() {
    let (_d, cfg) = setup();
    let now = from_unix_secs(T0);
    let mut w = Writer::open(&cfg, now, Zone::Local, crate::testing::events()).unwrap();
    w.write(&msg("s1", "bro_conn", "a", Some((1, 0))), now)
        .unwrap();
    w.commit().unwrap();
    w.write(&msg("s1", "bro_conn", "b", Some((1, 2))), now)
        .unwrap();
    // The data reaches the file, the journal group does not (kill -9 here).
    for log in w.files.map.values_mut() {
        log.flush().unwrap();
    }
    assert_eq!(read(&cfg, "conn.log"), "a\nb\n");
    drop(w);
    let mut w = Writer::open(&cfg, now, Zone::Local, crate::testing::events()).unwrap();
    assert_eq!(read(&cfg, "conn.log"), "a\n");
    // The sender had no acknowledgement for b and sends it again: accepted exactly once.
    assert_eq!(
        w.write(&msg("s1", "bro_conn", "b", Some((1, 2))), now)
            .unwrap(),
        Outcome::Written
    );
    assert_eq!(
        w.write(&msg("s1", "bro_conn", "a", Some((1, 0))), now)
            .unwrap(),
        Outcome::Duplicate
    );
    w.commit().unwrap();
    assert_eq!(read(&cfg, "conn.log"), "a\nb\n");
}

const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-11-22-10-00-00\n#fields\tts\tuid\n#types\ttime\tstring";

fn send_header(w: &mut Writer, host: &str, header: &str, now: SystemTime) {
    for line in header.lines() {
        w.write(&msg(host, "bro_conn", line, None), now).unwrap();
    }
}

#[test]
fn one_header_per_file_and_changed_fields_go_elsewhere() {
    let (_d, cfg) = setup();
    let now = from_unix_secs(T0);
    let mut w = Writer::open(&cfg, now, Zone::UTC, crate::testing::events()).unwrap();
    send_header(&mut w, "s1", HEADER, now);
    w.write(&msg("s1", "bro_conn", "1\tA", None), now).unwrap();
    send_header(&mut w, "s2", HEADER, now);
    w.write(&msg("s2", "bro_conn", "2\tB", None), now).unwrap();
    let changed = HEADER
        .replace("#fields\tts\tuid", "#fields\tts\tuid\textra")
        .replace("#types\ttime\tstring", "#types\ttime\tstring\tcount");
    send_header(&mut w, "s3", &changed, now);
    w.write(&msg("s3", "bro_conn", "3\tC\t9", None), now)
        .unwrap();
    w.write(
        &msg("s1", "bro_conn", "#close\t2026-11-22-11-00-00", None),
        now,
    )
    .unwrap();
    w.commit().unwrap();
    let conn = read(&cfg, "conn.log");
    assert_eq!(conn.matches("#fields").count(), 1, "{conn}");
    assert!(conn.starts_with("#separator \\x09\n"));
    assert!(conn.contains("#open\t2026-11-22-"));
    assert!(
        conn.ends_with("#types\ttime\tstring\n1\tA\n2\tB\n"),
        "{conn}"
    );
    let variant = fs::read_dir(cfg.log_dir.join("current"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("conn-"))
        .unwrap();
    let other = read(&cfg, &variant);
    assert!(other.contains("#fields\tts\tuid\textra\n"));
    assert!(other.ends_with("3\tC\t9\n"));

    // After a restart s3 still goes to its own file.
    drop(w);
    let mut w = Writer::open(&cfg, now, Zone::UTC, crate::testing::events()).unwrap();
    w.write(&msg("s3", "bro_conn", "4\tD\t9", None), now)
        .unwrap();
    w.commit().unwrap();
    assert!(read(&cfg, &variant).ends_with("3\tC\t9\n4\tD\t9\n"));
    assert!(read(&cfg, "conn.log").ends_with("2\tB\n"));
}

#[test]
fn rotation_closes_and_reopens_with_header() {
    let (_d, cfg) = setup();
    let t = from_unix_secs(T0 + 100);
    let mut w = Writer::open(&cfg, t, Zone::UTC, crate::testing::events()).unwrap();
    send_header(&mut w, "s1", HEADER, t);
    w.write(&msg("s1", "bro_conn", "1\tA", None), t).unwrap();
    // Not yet due.
    assert!(w.rotate(from_unix_secs(T0 + 3000)).unwrap().is_empty());
    let boundary = from_unix_secs(T0 + 3600);
    let rotated = w.rotate(boundary).unwrap();
    assert_eq!(rotated.len(), 1);
    let (path, r) = &rotated[0];
    let text = fs::read_to_string(path).unwrap();
    assert!(
        text.ends_with("1\tA\n#close\t2026-11-23-00-00-00\n"),
        "{text}"
    );
    assert_eq!(r.open, t);
    assert!(!cfg.log_dir.join("current/conn.log").exists());
    w.write(&msg("s1", "bro_conn", "2\tB", None), boundary)
        .unwrap();
    w.commit().unwrap();
    let conn = read(&cfg, "conn.log");
    assert!(conn.starts_with("#separator"));
    assert!(conn.ends_with("#types\ttime\tstring\n2\tB\n"));
    let archived = crate::archive::archive(
        &cfg.log_dir,
        path,
        r,
        Zone::UTC,
        crate::archive::level(&cfg),
    )
    .unwrap();
    assert!(archived.ends_with("2026-11-22/conn.23:01:40-00:00:00.log.gz"));
}

#[test]
fn per_host_folders() {
    let (_d, mut cfg) = setup();
    cfg.routing.per_host = true;
    let now = from_unix_secs(T0);
    let mut w = Writer::open(&cfg, now, Zone::Local, crate::testing::events()).unwrap();
    w.write(&msg("s1", "bro_dns", "x", None), now).unwrap();
    w.write(&msg("../../etc", "bro_dns", "y", None), now)
        .unwrap();
    w.commit().unwrap();
    assert_eq!(read(&cfg, "s1/dns.log"), "x\n");
    assert_eq!(read(&cfg, "unknown/dns.log"), "y\n");
    let rotated = w.rotate_all(from_unix_secs(T0 + 10)).unwrap();
    assert_eq!(rotated.len(), 2);
    assert!(rotated.iter().any(|(_, r)| r.host.as_deref() == Some("s1")));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    /// Untrusted hosts, tags and bodies: never a panic, never a file outside `current/`.
    #[test]
    fn fuzz_writer(
        msgs in proptest::collection::vec(
            (
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
                    "bro_[a-z./#]{0,8}".prop_map(String::into_bytes),
                ],
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
                    "#[a-z]{0,6}\t[a-z]{0,4}".prop_map(String::into_bytes),
                ],
                proptest::option::of((0u64..4, 0u64..100)),
            ),
            1..20,
        ),
        per_host in proptest::prelude::any::<bool>(),
    ) {
        let (dir, mut cfg) = setup();
        cfg.routing.per_host = per_host;
        let mut w = Writer::open(&cfg, from_unix_secs(T0), Zone::Local, crate::testing::events()).unwrap();
        let now = from_unix_secs(T0);
        for (host, tag, body, origin) in &msgs {
            let sender = String::from_utf8_lossy(host);
            let origin = origin.map(|(file, offset)| Origin { sender: &sender, file, offset });
            let m = Message { host, tag, body, raw: body, origin };
            w.write(&m, now).unwrap();
        }
        w.commit().unwrap();
        w.rotate_all(from_unix_secs(T0 + 1)).unwrap();
        let logs = dir.path().join("logs");
        for entry in walk(dir.path()) {
            let inside = entry.starts_with(logs.join("current")) || entry.starts_with(dir.path().join("spool"));
            proptest::prop_assert!(inside, "{}", entry.display());
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn notices_are_recorded_for_mail() {
    let (_d, cfg) = setup();
    let now = from_unix_secs(T0);
    let mut w = Writer::open(&cfg, now, Zone::Local, crate::testing::events()).unwrap();
    w.write(
        &msg(
            "s1",
            "bro_notice",
            r#"{"ts":1.5,"note":"Scan::Port_Scan","msg":"scan","actions":["Notice::ACTION_ALARM"]}"#,
            None,
        ),
        now,
    )
    .unwrap();
    w.commit().unwrap();
    let committed = w.notices_committed();
    assert!(committed.offset > 0);
    let pending = fs::read_to_string(segment_path(&cfg.spool_dir, committed.segment)).unwrap();
    assert!(pending.contains("Scan::Port_Scan"));
    assert_eq!(read(&cfg, "notice.log").lines().count(), 1);
}
