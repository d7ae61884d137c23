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
