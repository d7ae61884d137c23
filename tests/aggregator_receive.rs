//! The aggregator receiving from real senders: util-linux `logger` over UDP and TCP, rsyslog
//! `omfwd` and `omrelp`, a RELP client replaying after a reconnect, and bad input beside a good
//! peer.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::relp::Relp;
use common::*;

fn logger(args: &[&str]) {
    let status = Command::new("logger")
        .args(args)
        .status()
        .expect("run logger");
    assert!(status.success(), "logger {args:?} failed");
}

#[test]
fn logger_udp_and_tcp_reach_merged_logs() {
    let dir = tempfile::tempdir().unwrap();
    let udp = free_udp_port();
    let agg = Aggregator::start(dir.path(), &format!("ListenUDP = 127.0.0.1:{udp}\n"));
    let (udp, tcp) = (udp.to_string(), agg.tcp.to_string());
    let base = ["-n", "127.0.0.1", "-t"];
    logger(
        &[
            &base[..],
            &["bro_conn", "-P", &udp, "-d", "--rfc3164", "seq=1\ta\t-"],
        ]
        .concat(),
    );
    logger(
        &[
            &base[..],
            &[
                "bro_conn",
                "-P",
                &udp,
                "-d",
                "--rfc5424",
                "seq=2\tb\t(empty)",
            ],
        ]
        .concat(),
    );
    logger(
        &[
            &base[..],
            &[
                "bro_conn",
                "-P",
                &tcp,
                "-T",
                "--rfc5424",
                "--octet-count",
                "seq=3\tc",
            ],
        ]
        .concat(),
    );
    logger(
        &[
            &base[..],
            &["bro_dns", "-P", &tcp, "-T", "--rfc3164", "seq=4\td"],
        ]
        .concat(),
    );
    logger(
        &[
            &base[..],
            &["sshd", "-P", &tcp, "-T", "--rfc5424", "seq=5 not zeek"],
        ]
        .concat(),
    );

    let conn = agg.wait_lines("conn.log", 3, Duration::from_secs(10));
    let mut lines: Vec<&str> = conn.lines().collect();
    lines.sort();
    assert_eq!(lines, ["seq=1\ta\t-", "seq=2\tb\t(empty)", "seq=3\tc"]);
    assert_eq!(
        agg.wait_lines("dns.log", 1, Duration::from_secs(10)),
        "seq=4\td\n"
    );
    let unrouted = agg.wait_lines("unrouted.log", 1, Duration::from_secs(10));
    assert!(
        unrouted.contains("sshd") && unrouted.ends_with("seq=5 not zeek\n"),
        "{unrouted}"
    );
}

#[test]
fn rsyslog_omfwd_and_omrelp_deliver_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let agg = Aggregator::start(dir.path(), &format!("ListenRELP = 127.0.0.1:{relp}\n"));
    let (conn_in, dns_in) = (dir.path().join("conn.in"), dir.path().join("dns.in"));
    const N: u64 = 3000;
    let mut conn_text = String::new();
    let mut dns_text = String::new();
    for i in 0..N {
        conn_text.push_str(&format!("1.0\tC{i:017}\t10.0.0.1\t80\t\t(empty)\n"));
        dns_text.push_str(&format!("2.0\tC{:017}\tdns\t-\n", i + N));
    }
    std::fs::write(&conn_in, conn_text).unwrap();
    std::fs::write(&dns_in, dns_text).unwrap();
    let config = format!(
        r#"global(parser.escapeControlCharacterTab="off")
module(load="imfile" mode="polling" pollingInterval="1")
module(load="omrelp")
input(type="imfile" file="{conn}" tag="bro_conn" facility="local7" ruleset="tcp")
input(type="imfile" file="{dns}" tag="bro_dns" facility="local7" ruleset="relp")
ruleset(name="tcp") {{
  action(type="omfwd" target="127.0.0.1" port="{tcp}" protocol="tcp" tcp_framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}}
ruleset(name="relp") {{
  action(type="omrelp" target="127.0.0.1" port="{relp}" template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
        conn = conn_in.display(),
        dns = dns_in.display(),
        tcp = agg.tcp,
    );
    let mut rsyslog = start_rsyslog("rsyslog", dir.path(), &config);
    let conn = agg.wait_lines("conn.log", N as usize, Duration::from_secs(30));
    let dns = agg.wait_lines("dns.log", N as usize, Duration::from_secs(30));
    rsyslog.terminate(Duration::from_secs(5));
    let t = tally(&count_sequence_numbers(&conn), 0..N);
    assert_eq!(t, Tally::default(), "omfwd");
    let t = tally(&count_sequence_numbers(&dns), N..2 * N);
    assert_eq!(t, Tally::default(), "omrelp");
    // Byte for byte: the empty field before (empty) survives.
    assert!(
        conn.lines().all(|l| l.ends_with("\t80\t\t(empty)")),
        "tabs altered"
    );
}

fn origin_msg(seq: u64, offset: u64) -> Vec<u8> {
    format!(
        "<190>1 2026-11-22T12:00:00Z sensor1 bro_conn - - [origin@32473 file=\"00000000000000ab\" off=\"{offset}\"] 1.0\tC{seq:017}\tx"
    )
    .into_bytes()
}

#[test]
fn relp_acknowledges_after_write_and_drops_replays() {
    let dir = tempfile::tempdir().unwrap();
    let relp = free_tcp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!(
            "ListenRELP = 127.0.0.1:{relp}\nDurability = synced\nTimeFmt = %Y/%m/%d %H:%M:%S\n"
        ),
    );
    let mut client = Relp::connect(relp);
    for seq in 0..50u64 {
        let txnr = client.send("syslog", &origin_msg(seq, seq * 100));
        let (got, data) = client.read_rsp();
        assert_eq!((got, data.as_str()), (txnr, "200 OK"));
        // Acknowledged means written: the line is already in the file.
        assert!(
            agg.current("conn.log").contains(&format!("C{seq:017}")),
            "acknowledged before written: {seq}"
        );
    }
    drop(client);
    // The shipper reconnects and resends from an older offset: overlap dropped, the rest kept.
    let mut client = Relp::connect(relp);
    for seq in 40..80u64 {
        client.send("syslog", &origin_msg(seq, seq * 100));
    }
    for _ in 40..80 {
        assert_eq!(client.read_rsp().1, "200 OK");
    }
    let close = client.send("close", b"");
    assert_eq!(client.read_rsp(), (close, "200 OK".into()));
    let text = agg.current("conn.log");
    assert_eq!(
        tally(&count_sequence_numbers(&text), 0..80),
        Tally::default()
    );
    wait_for(
        Duration::from_secs(5),
        "duplicates counted in status",
        || (agg.status()["peers"]["127.0.0.1"]["duplicates"] == 10).then_some(()),
    );
    // `estuary status` prints times with TimeFmt, as `zeekctl status` prints Started.
    let out = Command::new(estuary_bin())
        .args(["status", "--config"])
        .arg(&agg.config)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    let first = regex::Regex::new(
        r"^aggregator status \(pid \d+\), started \d{4}/\d\d/\d\d \d\d:\d\d:\d\d, as of \d{4}/\d\d/\d\d \d\d:\d\d:\d\d \(\d+s ago\)\n",
    )
    .unwrap();
    assert!(first.is_match(&out), "{out}");
    assert!(
        out.contains("peer 127.0.0.1 received=90 accepted=80 refused=0 malformed=0 duplicates=10 "),
        "{out}"
    );
}

#[test]
fn bad_input_does_not_stop_good_peers() {
    let dir = tempfile::tempdir().unwrap();
    let udp = free_udp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!("ListenUDP = 127.0.0.1:{udp}\nMaxMessageSize = 4096\n"),
    );
    // Idle, half-open connections holding a partial frame, and a flood of idle connections.
    let mut held = Vec::new();
    for i in 0..200 {
        let mut s = TcpStream::connect(("127.0.0.1", agg.tcp)).unwrap();
        if i % 2 == 0 {
            s.write_all(b"500 <190>1 2026-11-22T12:00:00Z h bro_conn - - - partial")
                .unwrap();
        }
        held.push(s);
    }
    // Garbage that breaks framing, an oversized frame followed by a good one, garbage datagrams.
    send_tcp(agg.tcp, b"12x garbage \x00\xff\xfe");
    let mut big = octet_frame("h", "bro_conn", &"A".repeat(10_000));
    big.extend(octet_frame("h", "bro_conn", "seq=999999\tafter-oversized"));
    send_tcp(agg.tcp, &big);
    send_tcp(agg.tcp, b"not syslog at all\n<999>bad pri\n");
    let udp_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..100 {
        udp_sock
            .send_to(b"\x00\x01garbage", ("127.0.0.1", udp))
            .unwrap();
    }
    udp_sock.send_to(&[b'x'; 5000], ("127.0.0.1", udp)).unwrap();
    // Meanwhile a good peer sends 2000 lines.
    let mut good = Vec::new();
    for seq in 0..2000u64 {
        good.extend(octet_frame(
            "sensor1",
            "bro_conn",
            &format!("seq={seq}\tok"),
        ));
    }
    send_tcp(agg.tcp, &good);
    let text = agg.wait_lines("conn.log", 2001, Duration::from_secs(15));
    let counts = count_sequence_numbers(&text);
    let t = tally(&counts, 0..2000);
    assert!(t.missing.is_empty() && t.duplicated.is_empty(), "{t:?}");
    assert!(text.contains("seq=999999\tafter-oversized\n"));
    assert!(!text.contains("partial"));
    wait_for(Duration::from_secs(5), "malformed input counted", || {
        let malformed = agg.status()["peers"]["127.0.0.1"]["malformed"]
            .as_u64()
            .unwrap_or(0);
        let expected = 100 + 1 + 1 + 2 + 1;
        (malformed >= expected).then_some(())
    });
    let mut agg = agg;
    assert!(agg.daemon.is_running());
    drop(held);
}
