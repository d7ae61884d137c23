//! Hostile and careless peers against the real `estuary aggregate` on 127.0.0.1: nothing
//! acknowledged is lost, the RELP protocol is enforced, and every refusal is counted by reason.

mod common;

use std::time::Duration;

use common::relp::Relp;
use common::*;

const WAIT: Duration = Duration::from_secs(10);

fn rfc5424(host: &str, tag: &str, body: &str) -> Vec<u8> {
    format!("<190>1 2026-11-22T12:00:00Z {host} {tag} - - - {body}").into_bytes()
}

/// Lines starting with `#` on a routed tag that belong to no Zeek header block are data: every
/// one that was acknowledged is in the log, once; a real header block still becomes the header.
#[test]
fn hash_lines_on_a_routed_tag_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let agg = Aggregator::start(dir.path(), &format!("ListenRELP = 127.0.0.1:{relp}\n"));
    let mut client = Relp::connect(relp);
    let bodies = [
        "seq=0\tplain",
        "# seq=1 a comment",
        "#fields\tseq=2 outside any header block",
        "#separator seq=3 a block cut short",
        "seq=4\tthe line that cuts it",
        "#\tseq=5",
        "#separator \\x09",
        "#set_separator\t,",
        "#empty_field\t(empty)",
        "#unset_field\t-",
        "#path\tnotes",
        "#open\t2026-11-22-12-00-00",
        "#fields\tts\tmsg",
        "#types\ttime\tstring",
        "seq=6\tafter the header",
        "#types\tseq=7 after the header, outside a block",
    ];
    for body in bodies {
        let txnr = client.send("syslog", &rfc5424("sensor1", "bro_notes", body));
        assert_eq!(client.read_rsp(), (txnr, "200 OK".to_owned()), "{body}");
    }
    let notes = agg.wait_lines("notes.log", 8, WAIT);
    assert_eq!(
        tally(&count_sequence_numbers(&notes), 0..8),
        Tally::default(),
        "{notes}"
    );
    // The header block became the file's header, not data.
    assert!(!notes.contains("#path\tnotes"), "{notes}");
}

/// What the syslog parser rejects is kept whole in the catch-all log (and counted malformed),
/// over RELP and over TCP.
#[test]
fn messages_that_are_not_syslog_go_whole_to_the_catch_all_log() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let agg = Aggregator::start(dir.path(), &format!("ListenRELP = 127.0.0.1:{relp}\n"));
    let mut client = Relp::connect(relp);
    for seq in 0..3 {
        let raw = format!("<999>not syslog seq={seq}");
        let txnr = client.send("syslog", raw.as_bytes());
        assert_eq!(client.read_rsp(), (txnr, "200 OK".to_owned()));
    }
    send_tcp(agg.tcp, b"plain text seq=3\nno header at all seq=4\n");
    let unrouted = agg.wait_lines("unrouted.log", 5, WAIT);
    assert_eq!(
        tally(&count_sequence_numbers(&unrouted), 0..5),
        Tally::default()
    );
    assert!(unrouted.contains("<999>not syslog seq=0\n"), "{unrouted}");
    wait_for(WAIT, "unparsed messages counted malformed", || {
        (agg.status()["peers"]["127.0.0.1"]["malformed"] == 5).then_some(())
    });
}

/// The RELP server enforces the protocol: a repeated transaction number is not written twice,
/// numbers out of sequence and bad `open` offers end the session, and nothing sent after that
/// is written.
#[test]
fn relp_protocol_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let agg = Aggregator::start(dir.path(), &format!("ListenRELP = 127.0.0.1:{relp}\n"));
    let msg = |seq: u32| rfc5424("sensor1", "bro_conn", &format!("seq={seq}\tx"));

    // A repeated txnr: the first is written and acknowledged, the repeat ends the session.
    let mut client = Relp::connect(relp);
    client.send_txnr(2, "syslog", &msg(0));
    assert_eq!(client.read_rsp(), (2, "200 OK".to_owned()));
    client.send_txnr(2, "syslog", &msg(1));
    assert_eq!(client.try_read_rsp(), None);

    // Zero, a gap, going backwards: refused and the session closed, nothing written.
    for (seq, txnrs) in [(2, &[0][..]), (3, &[5]), (4, &[2, 3, 2])] {
        let mut client = Relp::connect(relp);
        for (i, txnr) in txnrs.iter().enumerate() {
            client.send_txnr(*txnr, "syslog", &msg(seq * 10 + i as u32));
        }
        let answers: Vec<_> = std::iter::from_fn(|| client.try_read_rsp()).collect();
        let acked = txnrs.len() - 1;
        assert_eq!(answers.len(), acked, "{txnrs:?}: {answers:?}");
    }

    // Offers the server must refuse: the answer is an error and the session ends.
    for offers in [
        "relp_version=99\nrelp_software=x\ncommands=syslog",
        "relp_version=0\nrelp_software=x",
        "\u{1}garbage=",
    ] {
        let mut client = Relp::connect_raw(relp);
        client.send("open", offers.as_bytes());
        let (_, answer) = client.read_rsp();
        assert!(answer.starts_with("500 "), "{offers:?}: {answer}");
        client.send("syslog", &msg(99));
        assert_eq!(client.try_read_rsp(), None, "{offers:?}");
    }
    // Syslog before open.
    let mut client = Relp::connect_raw(relp);
    client.send("syslog", &msg(98));
    assert_eq!(client.try_read_rsp(), None);

    // A good client afterwards: its line lands after all the above.
    let mut good = Relp::connect(relp);
    let txnr = good.send("syslog", &msg(100));
    assert_eq!(good.read_rsp(), (txnr, "200 OK".to_owned()));
    let conn = agg.wait_lines("conn.log", 1, WAIT);
    let counts = count_sequence_numbers(&conn);
    let expected = [0, 40, 41, 100];
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        expected,
        "{conn}"
    );
    assert!(counts.values().all(|n| *n == 1), "{conn}");
    wait_for(WAIT, "protocol violations counted by reason", || {
        let n = agg.status()["refusals"]["relp_protocol"].as_u64();
        (n == Some(8)).then_some(())
    });
}

/// An aggregator on a TOML configuration with RELP on a free port; `extra` is appended.
fn start_toml(dir: &std::path::Path, extra: &str) -> (Daemon, u16, std::path::PathBuf) {
    let relp = free_tcp_port();
    let config = dir.join("aggregator.toml");
    let text = format!(
        "log_dir = \"{}\"\nspool_dir = \"{}\"\n[listen]\nrelp = \"127.0.0.1:{relp}\"\n[mail]\nsendmail = \"\"\n{extra}",
        dir.join("logs").display(),
        dir.join("spool").display(),
    );
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::estuary(
        "aggregator",
        &["aggregate", "--config", config.to_str().unwrap()],
        dir,
    );
    wait_for_tcp_listen(relp, Duration::from_secs(20));
    (daemon, relp, dir.join("logs/current"))
}

fn origin_msg(host: &str, tag: &str, file: u64, offset: u64, body: &str) -> Vec<u8> {
    format!(
        "<190>1 2026-11-22T12:00:00Z {host} {tag} - - [origin@32473 file=\"{file:016x}\" off=\"{offset}\"] {body}"
    )
    .into_bytes()
}

/// Marks belong to the sender that is connected, not to the host name a message claims: a peer
/// allowed only `bro_dns` that names another sensor and its file with the largest offset makes
/// none of that sensor's lines look like replays; its tag rule is checked before its origin is
/// believed; and an offset far past a file's mark does not move the mark.
#[test]
fn marks_cannot_be_poisoned_by_another_peer() {
    let dir = tempfile::tempdir().unwrap();
    let (_agg, relp, current) = start_toml(
        dir.path(),
        "[[peer]]\naddress = \"127.0.0.1\"\n[[peer]]\naddress = \"127.0.0.2\"\ntag_regex = \"^bro_dns$\"\n",
    );
    let victim_file = 0xab;
    let mut victim = Relp::connect(relp);
    let send = |client: &mut Relp, msg: Vec<u8>| {
        let txnr = client.send("syslog", &msg);
        assert_eq!(client.read_rsp(), (txnr, "200 OK".to_owned()));
    };
    for seq in 0..10u64 {
        let body = format!("1.0\tC{seq:017}\tx");
        send(
            &mut victim,
            origin_msg("sensor1", "bro_conn", victim_file, seq * 100, &body),
        );
    }
    let mut attacker = Relp::connect_from([127, 0, 0, 2].into(), relp);
    for tag in ["bro_dns", "bro_conn"] {
        let msg = origin_msg("sensor1", tag, victim_file, u64::MAX, "1.0\tpoison\tx");
        send(&mut attacker, msg);
    }
    for seq in 10..110u64 {
        let body = format!("1.0\tC{seq:017}\tx");
        send(
            &mut victim,
            origin_msg("sensor1", "bro_conn", victim_file, seq * 100, &body),
        );
    }
    // The attacker's own file: a jump far ahead is written but leaves the mark where it was.
    for (seq, offset) in [(200, 0), (201, u64::MAX / 2), (202, 100)] {
        let body = format!("1.0\tC{seq:017}\tx");
        send(
            &mut attacker,
            origin_msg("sensor9", "bro_dns", 7, offset, &body),
        );
    }
    let conn = wait_for(WAIT, "110 lines in conn.log", || {
        let text = std::fs::read_to_string(current.join("conn.log")).unwrap_or_default();
        (text.lines().count() >= 110).then_some(text)
    });
    assert_eq!(
        tally(&count_sequence_numbers(&conn), 0..110),
        Tally::default()
    );
    let dns = std::fs::read_to_string(current.join("dns.log")).unwrap();
    assert_eq!(
        tally(&count_sequence_numbers(&dns), 200..203),
        Tally::default(),
        "{dns}"
    );
    assert_eq!(dns.matches("poison").count(), 1, "{dns}");
    let status: serde_json::Value = wait_for(WAIT, "status", || {
        let bytes = std::fs::read(dir.path().join("spool/status.json")).ok()?;
        let status: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        (status["refusals"]["mark_jump"] == 1).then_some(status)
    });
    assert_eq!(status["peers"]["127.0.0.1"]["duplicates"], 0, "{status}");
    assert_eq!(status["refusals"]["tag_not_allowed"], 1, "{status}");
}

/// One address holding more connections than the whole daemon serves (idle, never sending a
/// frame) takes only its own share: a RELP sender and `logger --tcp` on another address still
/// deliver, and the refusals are counted by reason.
#[test]
fn one_address_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let agg = Aggregator::start(dir.path(), &format!("ListenRELP = 127.0.0.1:{relp}\n"));
    let _held = common::relp::tcp_from([127, 0, 0, 2].into(), agg.tcp, 4200);
    let _held_relp = common::relp::tcp_from([127, 0, 0, 2].into(), relp, 100);
    let mut client = Relp::connect(relp);
    let txnr = client.send("syslog", &rfc5424("sensor1", "bro_conn", "seq=0\tx"));
    assert_eq!(client.read_rsp(), (txnr, "200 OK".to_owned()));
    let status = std::process::Command::new("logger")
        .args([
            "-n",
            "127.0.0.1",
            "-P",
            &agg.tcp.to_string(),
            "-T",
            "--rfc5424",
        ])
        .args(["-t", "bro_conn", "seq=1\tx"])
        .status()
        .unwrap();
    assert!(status.success());
    let conn = agg.wait_lines("conn.log", 2, WAIT);
    assert_eq!(
        tally(&count_sequence_numbers(&conn), 0..2),
        Tally::default()
    );
    wait_for(WAIT, "refusals counted", || {
        let n = agg.status()["refusals"]["address_connection_limit"].as_u64();
        n.is_some_and(|n| n >= 4200 + 100 - 256).then_some(())
    });
}

/// Refusals of different kinds from one peer are each logged (at most once a minute per kind),
/// so the log says why a sensor is refused; each is counted by reason.
#[test]
fn each_kind_of_refusal_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(&dir.path().join("pki"));
    let tls = free_tcp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!(
            "ListenTLS = 127.0.0.1:{tls}\nTLSCertFile = {}\nTLSKeyFile = {}\nAllowedPeers = 127.0.0.2\n",
            pki.server.0.display(),
            pki.server.1.display()
        ),
    );
    // Not allowed: starting the aggregator already knocked on its TCP port; again, to be sure.
    send_tcp(agg.tcp, b"x");
    // Not TLS at all.
    send_tcp(tls, b"this is not a ClientHello\n");
    wait_for(WAIT, "both refusals logged", || {
        let output = agg.daemon.output();
        (output.contains("peer not allowed") && output.contains("TLS handshake failed"))
            .then_some(())
    });
    wait_for(WAIT, "both refusals counted", || {
        let refusals = &agg.status()["refusals"];
        (refusals["peer_not_allowed"].as_u64() >= Some(2) && refusals["tls_handshake_failed"] == 1)
            .then_some(())
    });
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Header blocks that never reach `#types`, under many invented host names, hold a bounded
/// amount of memory; what they held is written as data, nothing is lost.
#[test]
fn unfinished_header_blocks_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let agg = Aggregator::start(dir.path(), "MaxMessageSize = 65536\n");
    let before = rss_kib(agg.daemon.pid());
    // Blocks too large for a header, and many that fit but never finish.
    let mut frames = Vec::new();
    let mut sent = 0;
    for (hosts, lines, size) in [(60, 20, 50 << 10), (400, 10, 5 << 10)] {
        let filler = "f".repeat(size);
        for host in 0..hosts {
            let host = format!("invented{size}-{host}");
            frames.extend(octet_frame(&host, "bro_dns", "#separator \\x09"));
            for _ in 0..lines {
                frames.extend(octet_frame(&host, "bro_dns", &format!("#path\t{filler}")));
            }
            sent += lines;
        }
    }
    frames.extend(octet_frame("sensor1", "bro_dns", "seq=0\tlast"));
    send_tcp(agg.tcp, &frames);
    wait_for(Duration::from_secs(30), "the last line", || {
        agg.current("dns.log").contains("seq=0\tlast").then_some(())
    });
    let grown_mib = rss_kib(agg.daemon.pid()).saturating_sub(before) / 1024;
    assert!(grown_mib < 30, "grew by {grown_mib} MiB");
    // What was evicted is data; what still waits is the newest blocks, within the bound.
    let written = agg.current("dns.log").matches("#path\t").count();
    assert!(
        written + 2600 >= sent && written < sent,
        "{written} of {sent}"
    );
    wait_for(WAIT, "evictions counted", || {
        (agg.status()["refusals"]["header_block_evicted"].as_u64() > Some(0)).then_some(())
    });
}

/// Connections that never send a ClientHello, from one address, beyond what the daemon serves:
/// only a few handshakes per address wait, and a sensor on another address still gets through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tls_handshakes_cannot_lock_a_sensor_out() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(&dir.path().join("pki"));
    let tls = free_tcp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!(
            "ListenTLS = 127.0.0.1:{tls}\nTLSCertFile = {}\nTLSKeyFile = {}\n",
            pki.server.0.display(),
            pki.server.1.display()
        ),
    );
    let held = tokio::task::spawn_blocking(move || {
        common::relp::tcp_from([127, 0, 0, 2].into(), tls, 4200)
    })
    .await
    .unwrap();
    let client = estuary_wire::tls::client_config(&pki.ca, None).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", tls))
        .await
        .unwrap();
    let name = estuary_wire::tls::server_name("localhost").unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(client)
        .connect(name, tcp)
        .await
        .expect("the sensor's handshake");
    stream
        .write_all(&octet_frame("sensor1", "bro_conn", "seq=0\tx"))
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let conn = tokio::task::spawn_blocking(move || {
        let conn = agg.wait_lines("conn.log", 1, WAIT);
        wait_for(WAIT, "handshakes refused per address", || {
            let n = agg.status()["refusals"]["handshake_limit"].as_u64();
            n.is_some_and(|n| n >= 256 - 16).then_some(())
        });
        conn
    })
    .await
    .unwrap();
    assert_eq!(conn, "seq=0\tx\n");
    drop(held);
}
