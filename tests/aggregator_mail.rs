//! Mail from the real binary to a real SMTP server (aiosmtpd) started by the test: the alarm
//! digest at rotation, a Notice::ACTION_EMAIL notice at once (its time printed with `TimeFmt`, as
//! zeekctl prints times), and a mail queued while the relay is down surviving a `kill -9` and
//! being delivered exactly once when the relay comes back. A notice whose time chrono cannot
//! hold does not stop mail.

mod common;

use std::time::Duration;

use common::*;

const NOTICE_HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tnotice\n#open\t2026-11-22-10-00-00\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tnote\tmsg\tsub\tsrc\tdst\tp\tpeer_descr\tactions\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tstring\taddr\taddr\tport\tstring\tset[enum]";

/// Not zeekctl's default, so the test sees that TimeFmt is used.
const TIME_FMT: &str = "%a %d %b %Y %H.%M.%S";

fn notice(note: &str, msg: &str, actions: &str) -> String {
    format!("1795352400.250000\tCx1\t10.0.0.1\t4711\t10.0.0.2\t22\t{note}\t{msg}\t-\t10.0.0.1\t10.0.0.2\t22\t-\t{actions}")
}

fn send_notices(port: u16, lines: &[String]) {
    let mut frames = Vec::new();
    for line in NOTICE_HEADER
        .lines()
        .map(str::to_owned)
        .chain(lines.iter().cloned())
    {
        frames.extend(octet_frame("sensor1", "bro_notice", &line));
    }
    send_tcp(port, &frames);
}

#[test]
fn smtp_alarm_digest_at_rotation_and_notice_email_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = free_tcp_port();
    let (_server, inbox_dir) = smtp_server(dir.path(), smtp);
    let agg = Aggregator::start(
        dir.path(),
        &format!(
            "SmtpServer = 127.0.0.1:{smtp}\nLogRotationInterval = 1\nMailAlarms = 1\nMailTo = noc@example.org\nMailAlarmsTo = alarms@example.org\nMailReplyTo = soc@example.org\nTimeFmt = {TIME_FMT}\n"
        ),
    );
    send_notices(
        agg.tcp,
        &[
            notice(
                "SSH::Password_Guessing",
                "10.0.0.1 guessed 30 passwords",
                "Notice::ACTION_LOG,Notice::ACTION_ALARM",
            ),
            notice(
                "Scan::Port_Scan",
                "10.0.0.1 scanned 100 ports",
                "Notice::ACTION_LOG,Notice::ACTION_EMAIL",
            ),
            notice("Weird::Activity", "only logged", "Notice::ACTION_LOG"),
        ],
    );
    let mails = wait_for(Duration::from_secs(20), "two mails", || {
        let m = inbox_mails(&inbox_dir);
        (m.len() >= 2).then_some(m)
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        inbox_mails(&inbox_dir).len(),
        2,
        "one digest, one notice mail, nothing else"
    );
    // The notices waiting for mail were deleted once mailed (the queue does not grow).
    let pending: Vec<String> = std::fs::read_dir(&agg.spool_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("notices.") && n.ends_with(".pending"))
        .collect();
    assert_eq!(pending, Vec::<String>::new());
    let email = mails
        .iter()
        .find(|m| m.contains("ALERT:"))
        .expect("notice mail");
    assert!(
        email.contains("\nSubject: [Bro] ALERT: Scan::Port_Scan: 10.0.0.1 scanned 100 ports\n"),
        "{email}"
    );
    assert!(
        email.starts_with("X-Rcpt: alarms@example.org\nFrom: Big Brother <bro@localhost>\n"),
        "{email}"
    );
    assert!(email.contains("\nTo: alarms@example.org\n"));
    assert!(email.contains("\nReply-To: soc@example.org\n"));
    assert!(email.contains("\nUser-Agent: estuary "));
    assert!(email.contains("Message: 10.0.0.1 scanned 100 ports\n"));
    assert!(email.contains("Connection: 10.0.0.1:4711 -> 10.0.0.2:22\n"));
    // The daemon runs in this process's time zone; zeekctl formats local time too.
    let ts = chrono::TimeZone::timestamp_opt(&chrono::Local, 1_795_352_400, 250_000_000)
        .single()
        .unwrap();
    let time_line = format!("\nTime: {}\n", ts.format(TIME_FMT));
    assert!(time_line.contains(" 2026 "), "{time_line}");
    assert!(email.contains(&time_line), "{time_line:?} in {email}");
    assert!(
        email
            .trim_end()
            .ends_with("\n--\n[Automatically generated.]"),
        "{email:?}"
    );

    let digest = mails
        .iter()
        .find(|m| m.contains("Alarm summary"))
        .expect("digest");
    let subject = regex::Regex::new(
        r"(?m)^Subject: \[Bro\] Alarm summary from \d\d:\d\d:\d\d-\d\d:\d\d:\d\d$",
    )
    .unwrap();
    assert!(subject.is_match(digest), "{digest}");
    assert!(
        digest.contains(" SSH::Password_Guessing 10.0.0.1:4711 -> 10.0.0.2:22 (uid Cx1)\n"),
        "{digest}"
    );
    assert!(digest.contains("   <sensor1> 10.0.0.1 guessed 30 passwords\n"));
    assert!(!digest.contains("Port_Scan") && !digest.contains("Weird::Activity"));
    assert!(digest
        .trim_end()
        .ends_with("\n--\n[Automatically generated.]"));
}

#[test]
fn mail_queued_while_relay_is_down_survives_kill9_and_is_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = free_tcp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!("SmtpServer = 127.0.0.1:{smtp}\nMailAlarms = 1\n"),
    );
    send_notices(
        agg.tcp,
        &[notice(
            "Scan::Port_Scan",
            "queued while down",
            "Notice::ACTION_EMAIL",
        )],
    );
    let queue = agg.spool_dir.join("mail");
    let queued = || {
        std::fs::read_dir(&queue)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
                    .count()
            })
            .unwrap_or(0)
    };
    wait_for(Duration::from_secs(10), "a queued mail", || {
        (queued() == 1).then_some(())
    });
    let agg = agg.restart();
    let (_server, inbox_dir) = smtp_server(dir.path(), smtp);
    // Any new message wakes the mailer (it also retries on its own every few seconds).
    send_tcp(agg.tcp, &octet_frame("sensor1", "bro_conn", "seq=1\tx"));
    let mails = wait_for(
        Duration::from_secs(20),
        &format!("the queued mail; {}", agg.daemon.output()),
        || {
            let m = inbox_mails(&inbox_dir);
            (!m.is_empty()).then_some(m)
        },
    );
    assert!(mails[0].contains("Subject: [Bro] ALERT: Scan::Port_Scan: queued while down\n"));
    send_tcp(agg.tcp, &octet_frame("sensor1", "bro_conn", "seq=2\tx"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(inbox_mails(&inbox_dir).len(), 1, "sent twice");
    assert_eq!(queued(), 0);
}

/// A sensor's ts = 1e15 (some 31 million years ahead) once panicked the mailer thread: that
/// mail and every later one, digest and segment deletion stopped, after every restart too.
#[test]
fn a_notice_time_past_chrono_does_not_stop_mail() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = free_tcp_port();
    let (_server, inbox_dir) = smtp_server(dir.path(), smtp);
    let mut agg = Aggregator::start(
        dir.path(),
        &format!("SmtpServer = 127.0.0.1:{smtp}\nMailAlarms = 1\n"),
    );
    let far = notice("Far::Future", "from the far future", "Notice::ACTION_EMAIL").replacen(
        "1795352400.250000",
        "1000000000000000",
        1,
    );
    send_notices(
        agg.tcp,
        &[
            far,
            notice("Scan::Port_Scan", "after it", "Notice::ACTION_EMAIL"),
        ],
    );
    let mails = wait_for(
        Duration::from_secs(20),
        &format!("two mails; {}", agg.daemon.output()),
        || {
            let m = inbox_mails(&inbox_dir);
            (m.len() >= 2).then_some(m)
        },
    );
    let far = mails
        .iter()
        .find(|m| m.contains("ALERT: Far::Future"))
        .expect("the far-future notice mailed");
    assert!(far.contains("\nTime: 1000000000000000.000000\n"), "{far}");
    assert!(mails
        .iter()
        .any(|m| m.contains("ALERT: Scan::Port_Scan: after it")));
    let status = agg.daemon.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        agg.daemon.output()
    );
}
