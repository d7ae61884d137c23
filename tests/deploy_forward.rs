//! Onward forwarding to ELSA: `estuary forward` follows an aggregator's current logs and sends
//! them to a real syslog-ng configured as ELSA's (routing by program, `bro_conn` and `bro_dns`,
//! into per-log files holding the raw TSV body). syslog-ng is stopped for a while and started
//! again; afterwards every line the aggregator committed for a forwarded tag is there, tabs
//! intact, duplicates (plain TCP has no acknowledgement) counted and bounded, and a tag outside
//! `ForwardTags` is not sent. Needs syslog-ng unpacked by `.ci/setup`.

mod common;
mod deploy_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use deploy_support::{syslog_ng_args, syslog_ng_root};

/// ELSA's routing: one file per Bro log, chosen by the syslog program, holding the message body.
fn start_syslog_ng(dir: &Path, port: u16) -> Daemon {
    let root = syslog_ng_root();
    let out = dir.join("elsa");
    std::fs::create_dir_all(&out).unwrap();
    let mut conf = format!(
        "@version: 3.38\n\
         options {{ keep-hostname(yes); use-dns(no); flush-lines(0); log-msg-size(65536); }};\n\
         source s_bro {{ network(ip(127.0.0.1) port({port}) transport(tcp) max-connections(10)); }};\n\
         destination d_other {{ file(\"{out}/other.log\" template(\"${{PROGRAM}} ${{MSG}}\\n\")); }};\n",
        out = out.display()
    );
    for log in ["conn", "dns"] {
        conf.push_str(&format!(
            "filter f_{log} {{ program(\"^bro_{log}$\"); }};\n\
             destination d_{log} {{ file(\"{out}/bro_{log}.log\" template(\"${{MSG}}\\n\") template-escape(no)); }};\n\
             log {{ source(s_bro); filter(f_{log}); destination(d_{log}); flags(final); }};\n",
            out = out.display()
        ));
    }
    conf.push_str("log { source(s_bro); destination(d_other); flags(fallback); };\n");
    let conf_file = dir.join("syslog-ng.conf");
    std::fs::write(&conf_file, conf).unwrap();
    let mut cmd = Command::new(root.join("usr/sbin/syslog-ng"));
    syslog_ng_args(&mut cmd, &root, &conf_file, dir);
    let daemon = Daemon::spawn("syslog-ng", cmd, dir);
    wait_for_tcp_listen(port, Duration::from_secs(20));
    daemon
}

fn frames(tag: &str, seqs: std::ops::Range<u64>) -> Vec<u8> {
    seqs.flat_map(|i| octet_frame("sensor1", tag, &format!("{i}.000000\tseq={i}\t{tag}\t\t-")))
        .collect()
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn forwarded_to_elsa_syslog_ng_through_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let elsa_port = free_tcp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!("ForwardTo = tcp://127.0.0.1:{elsa_port}\nForwardTags = ^bro_(conn|dns)$\n"),
    );
    let mut elsa = start_syslog_ng(dir.path(), elsa_port);
    let forward = Daemon::estuary(
        "forward",
        &["forward", "--config", agg.config.to_str().unwrap()],
        dir.path(),
    );

    send_tcp(agg.tcp, &frames("bro_conn", 0..500));
    send_tcp(agg.tcp, &frames("bro_dns", 10_000..10_300));
    send_tcp(agg.tcp, &frames("bro_http", 20_000..20_100));
    let elsa_dir = dir.path().join("elsa");
    wait_for(
        Duration::from_secs(30),
        "the first lines at syslog-ng",
        || {
            (lines_of(&elsa_dir.join("bro_conn.log")).len() >= 500
                && lines_of(&elsa_dir.join("bro_dns.log")).len() >= 300)
                .then_some(())
        },
    );

    // The SIEM goes away; the aggregator keeps committing.
    elsa.terminate(Duration::from_secs(10));
    send_tcp(agg.tcp, &frames("bro_conn", 500..2000));
    agg.wait_lines("conn.log", 2000, Duration::from_secs(30));
    wait_for(
        Duration::from_secs(30),
        "the forwarder to meet the outage",
        || forward.output().contains("cannot connect").then_some(()),
    );
    let elsa = start_syslog_ng(dir.path(), elsa_port);
    send_tcp(agg.tcp, &frames("bro_conn", 2000..2500));
    wait_for(
        Duration::from_secs(60),
        "every conn line at syslog-ng",
        || {
            let counts =
                count_sequence_numbers(&lines_of(&elsa_dir.join("bro_conn.log")).join("\n"));
            (counts.len() >= 2500).then_some(())
        },
    );

    let committed: std::collections::HashSet<String> = agg
        .current("conn.log")
        .lines()
        .chain(agg.current("dns.log").lines())
        .map(str::to_owned)
        .collect();
    let conn = lines_of(&elsa_dir.join("bro_conn.log"));
    let tally = tally(&count_sequence_numbers(&conn.join("\n")), 0..2500);
    assert!(tally.missing.is_empty(), "lost: {:?}", tally.missing);
    eprintln!(
        "duplicates at syslog-ng after the outage: {}",
        tally.duplicated.len()
    );
    // Plain TCP has no acknowledgement: the only repeat is the batch whose write failed when the
    // receiver went away, written again whole after reconnecting. So duplicates, if any, are
    // one run of consecutive lines, all sent after the first 500 were already there.
    let dups = &tally.duplicated;
    assert!(
        dups.iter().all(|seq| *seq >= 500) && dups.windows(2).all(|w| w[1] == w[0] + 1),
        "{tally:?}"
    );
    let dns = lines_of(&elsa_dir.join("bro_dns.log"));
    let tally = tally_dns(&dns);
    assert!(
        tally.missing.is_empty() && tally.duplicated.is_empty(),
        "{tally:?}"
    );
    for line in conn.iter().chain(&dns) {
        assert!(
            committed.contains(line),
            "not as committed (tabs?): {line:?}"
        );
    }
    let status = Command::new(estuary_bin())
        .args(["status", "--config", agg.config.to_str().unwrap()])
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout);
    let dest = format!("[tcp://127.0.0.1:{elsa_port}]");
    assert!(
        status.contains("forwarder status") && status.contains(&dest) && status.contains("lines="),
        "{status}"
    );
    assert!(
        lines_of(&elsa_dir.join("other.log")).is_empty(),
        "bro_http is not in ForwardTags: {}",
        elsa.output()
    );
}

/// How many rotated `conn` logs the archive holds (`<date>/conn.<from>-<to>.log.gz`).
fn archived_conn_logs(log_dir: &Path) -> usize {
    let days = std::fs::read_dir(log_dir).into_iter().flatten().flatten();
    days.filter(|day| day.file_name() != "current")
        .flat_map(|day| {
            std::fs::read_dir(day.path())
                .into_iter()
                .flatten()
                .flatten()
        })
        .filter(|f| f.file_name().to_string_lossy().starts_with("conn."))
        .count()
}

fn tally_dns(lines: &[String]) -> Tally {
    tally(&count_sequence_numbers(&lines.join("\n")), 10_000..10_300)
}

/// RELP to rsyslog's imrelp while the aggregator rotates every second: the forwarder finishes
/// each rotated file through its descriptor, so lines committed during the receiver's outage and
/// rotated away before it returns still arrive, each exactly once.
#[test]
fn relp_forwarding_follows_rotation_through_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let relp_port = free_tcp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!(
            "LogRotationInterval = 1\nForwardTo = relp://127.0.0.1:{relp_port}\nForwardFormat = rfc5424\n"
        ),
    );
    let out = dir.path().join("siem.log");
    let siem_config = format!(
        "global(parser.escapeControlCharacterTab=\"off\")\nmodule(load=\"imrelp\")\n\
         template(name=\"plain\" type=\"string\" string=\"%app-name% %msg%\\n\")\n\
         ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{}\" template=\"plain\") }}\n\
         input(type=\"imrelp\" address=\"127.0.0.1\" port=\"{relp_port}\" ruleset=\"out\")\n",
        out.display()
    );
    let mut siem = start_rsyslog("siem", dir.path(), &siem_config);
    wait_for_tcp_listen(relp_port, Duration::from_secs(20));
    let forward = Daemon::estuary(
        "forward",
        &["forward", "--config", agg.config.to_str().unwrap()],
        dir.path(),
    );
    // A log is forwarded once the forwarder has seen it in current/; with a rotation every
    // second, lines of a brand-new log can be archived before that (they are not counted).
    let mut warm_up = 900_000..;
    wait_for(
        Duration::from_secs(30),
        "the forwarder to know conn.log",
        || {
            let seq = warm_up.next()?;
            send_tcp(agg.tcp, &frames("bro_conn", seq..seq + 1));
            std::thread::sleep(Duration::from_millis(100));
            (!lines_of(&out).is_empty()).then_some(())
        },
    );
    send_tcp(agg.tcp, &frames("bro_conn", 0..1000));
    wait_for(
        Duration::from_secs(30),
        "the first lines at the SIEM",
        || {
            let text = lines_of(&out).join("\n");
            (count_sequence_numbers(&text).range(0..1000).count() >= 1000).then_some(())
        },
    );

    assert!(siem.terminate(Duration::from_secs(10)).is_some());
    wait_for(
        Duration::from_secs(30),
        "the forwarder to meet the outage",
        || forward.output().contains("cannot connect").then_some(()),
    );
    let before = archived_conn_logs(&agg.log_dir);
    for chunk in 1..4u64 {
        send_tcp(
            agg.tcp,
            &frames("bro_conn", chunk * 1000..(chunk + 1) * 1000),
        );
        std::thread::sleep(Duration::from_millis(1100)); // a rotation between chunks
    }
    wait_for(
        Duration::from_secs(30),
        "all committed, each chunk rotated into the archive",
        || {
            let all = count_sequence_numbers(&read_aggregator_logs(&agg.log_dir));
            let all: Vec<_> = all.range(0..4000).collect();
            (all.len() >= 4000 && archived_conn_logs(&agg.log_dir) >= before + 3).then_some(())
        },
    );
    let _siem = start_rsyslog("siem2", dir.path(), &siem_config);
    let got = wait_for(Duration::from_secs(60), "every line at the SIEM", || {
        let text = lines_of(&out).join("\n");
        (count_sequence_numbers(&text).range(0..4000).count() >= 4000).then_some(text)
    });
    let mut counts = count_sequence_numbers(&got);
    counts.retain(|seq, _| *seq < 900_000);
    let tally = tally(&counts, 0..4000);
    assert!(tally.missing.is_empty(), "lost {:?}", tally.missing);
    eprintln!(
        "RELP duplicates after the outage: {}",
        tally.duplicated.len()
    );
    // The receiver was stopped with everything acknowledged and nothing could be sent while it
    // was away, so RELP repeats nothing (its window, 128, would bound a repeat after a crash).
    assert!(tally.duplicated.is_empty(), "{tally:?}");
    let intact = |l: &str| l.starts_with("bro_conn ") && l.split('\t').count() == 5;
    // rsyslogd's own notices (the broken session at its restart) land in the file too.
    let broken = got
        .lines()
        .filter(|l| !l.starts_with("rsyslogd"))
        .find(|l| !intact(l));
    assert!(broken.is_none(), "program and tabs intact: {broken:?}");
}

/// The forwarder keeps a pid file like the other daemons: a second one on the same spool is
/// refused, and `estuary status` says when it is gone instead of showing its last figures. It
/// takes in a log that appears while it runs without ending, and SIGTERM stops it cleanly.
#[test]
fn one_forwarder_per_spool_and_status_knows_when_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let nobody = free_tcp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!("ForwardTo = tcp://127.0.0.1:{nobody}\n"),
    );
    let config = agg.config.to_str().unwrap();
    let mut forward = Daemon::estuary("forward", &["forward", "--config", config], dir.path());
    let pid_file = agg.spool_dir.join("estuary-forward.pid");
    wait_for(Duration::from_secs(20), "the forwarder's pid file", || {
        pid_file.exists().then_some(())
    });
    send_tcp(agg.tcp, &frames("bro_conn", 0..10));
    wait_for(
        Duration::from_secs(30),
        "the forwarder to take conn.log in",
        || {
            forward
                .output()
                .contains("restarting with it")
                .then_some(())
        },
    );

    let twin = Command::new(estuary_bin())
        .args(["forward", "--config", config])
        .output()
        .unwrap();
    assert!(!twin.status.success());
    assert!(
        String::from_utf8_lossy(&twin.stderr).contains(&forward.pid().to_string()),
        "{twin:?}"
    );
    assert!(forward.is_running(), "{}", forward.output());

    let status = |agg: &Aggregator| {
        let out = Command::new(estuary_bin())
            .args(["status", "--config", agg.config.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for(Duration::from_secs(10), "the forwarder's figures", || {
        status(&agg).contains("forwarder status").then_some(())
    });
    let exit = forward.terminate(Duration::from_secs(20));
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    let after = status(&agg);
    assert!(
        after.contains("forwarder: stopped") && !after.contains("forwarder status"),
        "{after}"
    );
}

/// Each JSON object of a file (one per line), connection uids masked (each sensor run draws its
/// own) and
/// numbers rounded to Zeek's microseconds, sorted.
fn json_objects(path: &Path) -> Vec<String> {
    let mut objects: Vec<String> = lines_of(path)
        .iter()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()));
            let object = value.as_object_mut().expect("an object per line");
            for ids in ["uid", "tunnel_parents"] {
                if let Some(value) = object.get_mut(ids) {
                    *value = "C*".into();
                }
            }
            round_numbers(&mut value);
            value.to_string()
        })
        .collect();
    objects.sort();
    objects
}

/// Numbers as text with six decimals: `1`, `1.0` and `1.000000` are the same interval.
fn round_numbers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => *value = format!("{:.6}", n.as_f64().unwrap()).into(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(round_numbers),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(round_numbers),
        _ => {}
    }
}

/// `ForwardFormat = json`: the sensor's TSV logs, shipped by `estuary ship` to the aggregator
/// and forwarded to syslog-ng, arrive as the objects the sensor itself writes with `--json` for
/// the same capture; the header lines are not sent.
#[test]
fn json_forwarding_sends_each_row_as_the_sensor_writes_it_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trace = fixtures().join("pcaps/mixed-lan-ftp-http.pcap");
    for (logs, extra) in [("tsv", None), ("json", Some("--json"))] {
        let mut sensor = Command::new(estuary_bin());
        sensor
            .args(["sensor", "-r"])
            .arg(&trace)
            .arg("--logdir")
            .arg(d.join(logs));
        sensor.args(extra);
        let out = sensor.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let elsa_port = free_tcp_port();
    let agg = Aggregator::start(
        d,
        &format!(
            "ForwardTo = tcp://127.0.0.1:{elsa_port}\nForwardTags = ^bro_(conn|dns)$\nForwardFormat = json\n"
        ),
    );
    let _elsa = start_syslog_ng(d, elsa_port);
    let _forward = Daemon::estuary(
        "forward",
        &["forward", "--config", agg.config.to_str().unwrap()],
        d,
    );
    let ship = d.join("ship.toml");
    let mut config = format!(
        "work_dir = \"{}\"\n[[destination]]\nhost = \"127.0.0.1\"\nport = {}\ntransport = \"tcp\"\n",
        d.join("ship").display(),
        agg.tcp
    );
    for log in ["conn", "dns"] {
        config.push_str(&format!(
            "[[input]]\npath = \"{}\"\ntag = \"bro_{log}:\"\n",
            d.join("tsv").join(format!("{log}.log")).display()
        ));
    }
    std::fs::write(&ship, config).unwrap();
    let _shipper = Daemon::estuary("ship", &["ship", "--config", ship.to_str().unwrap()], d);

    for log in ["conn", "dns"] {
        let expected = json_objects(&d.join("json").join(format!("{log}.log")));
        assert!(expected.len() > 1, "{log}: the trace makes rows");
        let path = d.join("elsa").join(format!("bro_{log}.log"));
        wait_for(Duration::from_secs(60), "every row at syslog-ng", || {
            (lines_of(&path).len() >= expected.len()).then_some(())
        });
        assert_eq!(json_objects(&path), expected, "{log}.log");
    }
}
