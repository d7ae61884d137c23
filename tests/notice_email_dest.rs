//! A notice whose `email_dest` names addresses is mailed to them as well as to MailTo, as Zeek's
//! notice framework does, through a real SMTP server.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn notice_email_goes_to_its_email_dest_too() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = free_tcp_port();
    let (_smtpd, inbox) = smtp_server(dir.path(), smtp);
    let agg = Aggregator::start(
        dir.path(),
        &format!("MailTo = soc@example.org\nSmtpServer = 127.0.0.1:{smtp}\n"),
    );
    let header = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tnotice\n#open\t2026-11-22-10-00-00\n#fields\tts\tnote\tmsg\tsrc\tactions\temail_dest\n#types\ttime\tenum\tstring\taddr\tset[enum]\tset[string]";
    let rows = [
        "1795352400.250000\tSSH::Password_Guessing\t10.0.0.1 guessed\t10.0.0.1\tNotice::ACTION_LOG,Notice::ACTION_EMAIL\tsec@example.org,soc@example.org",
        // An address that would add a header is not used.
        "1795352401.250000\tSSH::Password_Guessing\tsecond\t10.0.0.2\tNotice::ACTION_EMAIL\tevil@example.org>\\nBcc: x@y",
    ];
    let mut frames = Vec::new();
    for line in header.lines().chain(rows) {
        frames.extend(octet_frame("sensor1", "bro_notice", line));
    }
    send_tcp(agg.tcp, &frames);

    let mails = wait_for(Duration::from_secs(30), "two notice mails", || {
        let mails = inbox_mails(&inbox);
        (mails.len() >= 2).then_some(mails)
    });
    let first = mails
        .iter()
        .find(|m| m.contains("guessed"))
        .expect("first notice mailed");
    assert!(
        first.starts_with("X-Rcpt: soc@example.org,sec@example.org\n"),
        "{first}"
    );
    let second = mails
        .iter()
        .find(|m| m.contains("second"))
        .expect("second notice mailed");
    assert!(second.starts_with("X-Rcpt: soc@example.org\n"), "{second}");
}
