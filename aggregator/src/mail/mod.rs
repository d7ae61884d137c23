//! Mail as zeekctl sends it: headers from `bin/send-mail`, body ending in
//! `--\n[Automatically generated.]`, through `SendMail -t -oi` or SMTP. Every mail is queued on
//! disk first and removed only once the relay took it, so a relay outage or a restart delays
//! mail but never loses it, and a failure never blocks the writer.

mod notify;
mod queue;
mod transport;

pub use notify::Notifier;
pub use queue::Queue;
pub use transport::send;

use std::time::SystemTime;

use estuary_config::aggregator::MailConfig;

use crate::clock::Zone;

/// A mail before it gets its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// Without the MailSubjectPrefix.
    pub subject: String,
    pub to: String,
    pub body: String,
}

/// The complete RFC 5322 message. `id` makes the Message-ID, so a resend after a crash carries
/// the same id and receivers can tell it is one mail.
pub fn render(cfg: &MailConfig, mail: &Mail, id: &str, zone: Zone, date: SystemTime) -> String {
    let date = zone.at(date).unwrap_or_default();
    let host = hostname();
    let mut out = String::with_capacity(mail.body.len() + 512);
    out.push_str(&format!("From: {}\n", cfg.from));
    // The subject carries a notice's note and msg, which come from network traffic: a line
    // break in them would add headers (with `sendmail -t`, recipients).
    out.push_str(&format!(
        "Subject: {} {}\n",
        cfg.subject_prefix,
        one_line(&mail.subject)
    ));
    out.push_str(&format!("To: {}\n", mail.to));
    out.push_str(&format!(
        "User-Agent: estuary {}\n",
        env!("CARGO_PKG_VERSION")
    ));
    if let Some(reply_to) = &cfg.reply_to {
        out.push_str(&format!("Reply-To: {reply_to}\n"));
    }
    out.push_str(&format!("Date: {}\n", date.to_rfc2822()));
    out.push_str(&format!("Message-ID: <{id}@{host}>\n"));
    out.push('\n');
    out.push_str(&mail.body);
    if !mail.body.ends_with('\n') {
        out.push('\n');
    }
    out.push_str("\n--\n[Automatically generated.]\n\n");
    out
}

fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeekctl_headers_and_footer() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::testing::config(dir.path(), dir.path()).mail;
        cfg.reply_to = Some("noc@example.org".into());
        let text = render(
            &cfg,
            &Mail {
                subject: "cron: x".into(),
                to: "root@localhost".into(),
                body: "x".into(),
            },
            "1",
            Zone::Local,
            SystemTime::now(),
        );
        assert!(text.starts_with(
            "From: Big Brother <bro@localhost>\nSubject: [Bro] cron: x\nTo: root@localhost\nUser-Agent: estuary "
        ));
        assert!(text.contains("\nReply-To: noc@example.org\n"));
        assert!(text.ends_with("\n\nx\n\n--\n[Automatically generated.]\n\n"));
    }

    #[test]
    fn a_line_break_in_the_subject_adds_no_header() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::testing::config(dir.path(), dir.path()).mail;
        let mail = Mail {
            subject: "ALERT: X::Y: m\r\nBcc: victim@example.org".into(),
            to: "root@localhost".into(),
            body: "x".into(),
        };
        let text = render(&cfg, &mail, "1", Zone::Local, SystemTime::now());
        let headers = text.split("\n\n").next().unwrap();
        assert!(!headers.contains("\nBcc:"), "{headers}");
        assert!(headers.contains("\nSubject: [Bro] ALERT: X::Y: m  Bcc: victim@example.org\n"));
    }
}
