//! Files under the real binary: rotation and archiving with zeekctl names while lines flow,
//! `kill -9` at random points with a replaying RELP sender, `estuary cron` expiry and disk
//! warning mail, and the disk hard floor on a small tmpfs.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-11-22-10-00-00\n#fields\tts\tuid\tnote\n#types\ttime\tstring\tstring";

fn header_frames(host: &str) -> Vec<u8> {
    HEADER
        .lines()
        .flat_map(|l| octet_frame(host, "bro_conn", l))
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

fn gunzip(path: &Path) -> String {
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn rotation_archives_with_zeekctl_names_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut agg = Aggregator::start(dir.path(), "LogRotationInterval = 1\n");
    let mut s = TcpStream::connect(("127.0.0.1", agg.tcp)).unwrap();
    s.write_all(&header_frames("sensor1")).unwrap();
    const N: u64 = 3000;
    let start = Instant::now();
    for chunk in 0..30u64 {
        let mut frames = Vec::new();
        for seq in chunk * 100..(chunk + 1) * 100 {
            frames.extend(octet_frame(
                "sensor1",
                "bro_conn",
                &format!("1.0\tC{seq:017}\tx"),
            ));
        }
        s.write_all(&frames).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(s);
    assert!(start.elapsed() < Duration::from_secs(10));
    let archives = wait_for(Duration::from_secs(10), "three archives", || {
        let gz: Vec<PathBuf> = files_under(&agg.log_dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "gz"))
            // An archive still being compressed has a hidden temporary name.
            .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
            .collect();
        (gz.len() >= 3).then_some(gz)
    });
    agg.daemon.terminate(Duration::from_secs(10));
    let name = regex::Regex::new(
        r"/\d{4}-\d{2}-\d{2}/conn\.\d\d:\d\d:\d\d-\d\d:\d\d:\d\d(-\d+)?\.log\.gz$",
    )
    .unwrap();
    for a in &archives {
        let p = a.to_string_lossy();
        assert!(name.is_match(&p), "archive name {p}");
        let text = gunzip(a);
        assert!(text.starts_with("#separator \\x09\n"), "{p}: {text}");
        assert_eq!(text.matches("#fields").count(), 1, "{p}");
        let last = text.lines().last().unwrap();
        assert!(last.starts_with("#close\t20"), "{p}: {last}");
    }
    assert!(files_under(&agg.log_dir)
        .iter()
        .all(|p| !p.to_string_lossy().contains(".tmp.")));
    let all = read_aggregator_logs(&agg.log_dir);
    assert_eq!(tally(&count_sequence_numbers(&all), 0..N), Tally::default());
}

/// RELP client that remembers what was acknowledged, like a shipper's offsets.
struct Sender {
    port: u16,
    stream: Option<TcpStream>,
    txnr: u32,
    buf: Vec<u8>,
}

impl Sender {
    fn open(&mut self) -> bool {
        let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        self.stream = Some(stream);
        self.txnr = 0;
        self.buf.clear();
        self.frame(
            "open",
            b"relp_version=0\nrelp_software=test\ncommands=syslog",
        ) && self.rsp().is_some()
    }

    fn frame(&mut self, command: &str, data: &[u8]) -> bool {
        self.txnr += 1;
        let mut f = format!("{} {command} {} ", self.txnr, data.len()).into_bytes();
        f.extend_from_slice(data);
        f.push(b'\n');
        self.stream
            .as_mut()
            .is_some_and(|s| s.write_all(&f).is_ok())
    }

    fn rsp(&mut self) -> Option<u32> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line);
                if text.contains("200 OK") {
                    return text.split(' ').next()?.parse().ok();
                }
                continue;
            }
            let mut chunk = [0u8; 4096];
            match self.stream.as_mut()?.read(&mut chunk) {
                Ok(n) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }
}

#[test]
fn kill9_while_lines_flow_and_rotate_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let mut agg = Aggregator::start(
        dir.path(),
        &format!("ListenRELP = 127.0.0.1:{relp}\nLogRotationInterval = 1\n"),
    );
    const N: u64 = 6000;
    const WINDOW: u64 = 64;
    let mut sender = Sender {
        port: relp,
        stream: None,
        txnr: 0,
        buf: Vec::new(),
    };
    // `acked` = lines the aggregator confirmed; after a failure everything from there is resent.
    let mut acked = 0u64;
    let kill_points = [900u64, 2500, 4100];
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked < N {
        assert!(Instant::now() < deadline, "stuck at {acked}");
        if sender.stream.is_none() && !sender.open() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let end = (acked + WINDOW).min(N);
        let first_txnr = sender.txnr + 1;
        let mut ok = true;
        for seq in acked..end {
            let msg = format!(
                "<190>1 2026-11-22T12:00:00Z sensor1 bro_conn - - [origin@32473 file=\"0000000000000001\" off=\"{}\"] 1.0\tC{seq:017}\tx",
                seq * 40
            );
            ok &= sender.frame("syslog", msg.as_bytes());
        }
        if kills < kill_points.len() && end >= kill_points[kills] {
            // kill -9 with a window in flight, part of it written and journaled (answered), then
            // restart on the same folders: the resent part already journaled is a duplicate.
            assert!(
                sender.rsp().is_some_and(|t| t >= first_txnr),
                "no answer before the kill"
            );
            agg = agg.restart();
            kills += 1;
            sender.stream = None;
            continue;
        }
        let mut got = 0;
        while ok && got < end - acked {
            match sender.rsp() {
                Some(t) if t >= first_txnr => got += 1,
                Some(_) => {}
                None => ok = false,
            }
        }
        if ok {
            acked = end;
        } else {
            sender.stream = None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(kills, 3);
    wait_for(Duration::from_secs(10), "archives", || {
        files_under(&agg.log_dir)
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "gz"))
            .then_some(())
    });
    // The journaled part of the last kill's window came again and was dropped as duplicates.
    wait_for(Duration::from_secs(10), "duplicates in the status", || {
        (agg.status()["peers"]["127.0.0.1"]["duplicates"].as_u64() > Some(0)).then_some(())
    });
    agg.daemon.terminate(Duration::from_secs(10));
    let all = read_aggregator_logs(&agg.log_dir);
    assert_eq!(tally(&count_sequence_numbers(&all), 0..N), Tally::default());
    assert!(files_under(&agg.log_dir)
        .iter()
        .all(|p| !p.to_string_lossy().contains(".tmp.")));
}

fn sendmail_script(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let outbox = dir.join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let script = dir.join("sendmail");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1 $2\" = \"-t -oi\" ] || exit 64\ncat > {}/mail.$$.$(date +%s%N)\n",
            outbox.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, outbox)
}

fn mails(outbox: &Path) -> Vec<String> {
    std::fs::read_dir(outbox)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect()
}

#[test]
fn cron_expires_like_zeekctl_and_mails_disk_warning_once() {
    let dir = tempfile::tempdir().unwrap();
    let (script, outbox) = sendmail_script(dir.path());
    let logs = dir.path().join("logs");
    let old = logs.join("2020-01-01");
    let recent = logs.join("2020-01-02");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::create_dir_all(&recent).unwrap();
    let now = std::time::SystemTime::now();
    let day = Duration::from_secs(86_400);
    for (d, name, age) in [
        (&old, "conn.00:00:00-01:00:00.log.gz", 31),
        (&recent, "conn.00:00:00-01:00:00.log.gz", 31),
        (&recent, "dns.00:00:00-01:00:00.log.gz", 31),
        (&recent, "http.00:00:00-01:00:00.log.gz", 2),
    ] {
        let p = d.join(name);
        std::fs::write(&p, b"x").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(now - day * age)
            .unwrap();
    }
    let config = dir.path().join("cron.cfg");
    // MinDiskSpace 99.9: any ordinary disk is "low". LogDir is relative, and run from another
    // folder: the warning names it whole.
    std::fs::write(
        &config,
        format!(
            "LogDir = ./logs\nSpoolDir = spool\nListenTCP = 127.0.0.1:1\nLogExpireInterval = 30day\nKeepLogs = dns*\nMinDiskSpace = 99.9\nSendMail = {}\nMailTo = noc@example.org\n",
            script.display()
        ),
    )
    .unwrap();
    let cron = || {
        let out = Command::new(estuary_bin())
            .current_dir(&logs)
            .args(["cron", "--config", config.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = cron();
    assert!(out.contains("expired 2 files, 1 folders"), "{out}");
    assert!(!old.exists());
    assert!(recent.join("dns.00:00:00-01:00:00.log.gz").exists());
    assert!(recent.join("http.00:00:00-01:00:00.log.gz").exists());
    let sent = mails(&outbox);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let mail = &sent[0];
    let re = regex::Regex::new(
        r"(?m)^Subject: \[Bro\] cron: Disk space low on [^:]+:(\S+) - \d+\.\d% used\.$",
    )
    .unwrap();
    let named = re.captures(mail).unwrap_or_else(|| panic!("{mail}"));
    assert_eq!(Path::new(&named[1]), logs.canonicalize().unwrap(), "{mail}");
    assert!(mail.contains("\nTo: noc@example.org\n"));
    assert!(mail.ends_with("\n--\n[Automatically generated.]\n\n"));
    // Still low, no new crossing: no second warning.
    cron();
    assert_eq!(mails(&outbox).len(), 1);
}

#[test]
fn disk_hard_floor_holds_messages_until_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = prereq::require_some(
        Tmpfs::mount(&dir.path().join("fs"), "4m"),
        "cannot mount a tmpfs here (needs root); disk floor not tested",
    ) else {
        return;
    };
    let mut agg = Aggregator::start(fs.path(), "MinDiskSpace = 60\nDiskHardFloor = 50\n");
    send_tcp(agg.tcp, &octet_frame("s1", "bro_conn", "seq=0\tbefore"));
    agg.wait_lines("conn.log", 1, Duration::from_secs(5));
    // Fill the file system to about 62 % used: below the floor of 50 % free.
    let filler = fs.path().join("filler");
    std::fs::write(&filler, vec![0u8; 2600 * 1024]).unwrap();
    // The writer looks at the disk when it has something to write and its last look is a
    // second old (or its allowance spent): probe with a line at a time until it pauses.
    let mut probes = 0u64;
    let paused_at = wait_for(
        Duration::from_secs(10),
        "the writer paused at the floor",
        || {
            let status = agg.status();
            if status["disk_paused"] == true {
                return status["time"].as_u64();
            }
            let seq = 101 + probes;
            send_tcp(
                agg.tcp,
                &octet_frame("s1", "bro_conn", &format!("seq={seq}\tprobe")),
            );
            probes += 1;
            None
        },
    );
    let written = agg.current("conn.log").lines().count();
    let mut frames = Vec::new();
    for seq in 1..=100u64 {
        frames.extend(octet_frame("s1", "bro_conn", &format!("seq={seq}\tduring")));
    }
    send_tcp(agg.tcp, &frames);
    // Nothing is written while paused: two status snapshots later (the disk is looked at as
    // often), still only what was written before the pause.
    wait_for(
        Duration::from_secs(10),
        "two status snapshots while paused",
        || (agg.status()["time"].as_u64()? >= paused_at + 2).then_some(()),
    );
    assert_eq!(
        agg.current("conn.log").lines().count(),
        written,
        "written below the floor"
    );
    assert_eq!(agg.status()["disk_paused"], true);
    assert!(agg.daemon.is_running());
    std::fs::remove_file(&filler).unwrap();
    let all = 101 + probes;
    let text = agg.wait_lines("conn.log", all as usize, Duration::from_secs(10));
    assert_eq!(
        tally(&count_sequence_numbers(&text), 0..all),
        Tally::default()
    );
    agg.daemon.terminate(Duration::from_secs(5));
}
