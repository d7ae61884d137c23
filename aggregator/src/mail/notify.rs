//! Turns committed notices into mails: Notice::ACTION_EMAIL at once (MailAlarms = 1), the
//! ACTION_ALARM digest at each digest interval. Two cursors into the pending notices say what
//! has been queued; a mail is queued under an id derived from its position (or interval) before
//! its cursor moves, so a crash in between re-queues the same file, never a second mail. Segments
//! both cursors have left are deleted after the cursors are saved (see [`crate::pending`]).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::SystemTime;

use estuary_config::aggregator::{AggregatorConfig, MailConfig};
use serde::{Deserialize, Serialize};

use super::{send, Mail, Queue};
use crate::alarms::NoticeEvent;
use crate::clock::{from_unix_secs, unix_secs, Zone};
use crate::pending::{self, NoticePos};
use estuary_fsutil::{replace, Durability};

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursors {
    #[serde(deserialize_with = "pending::deserialize_pos")]
    email: NoticePos,
    #[serde(deserialize_with = "pending::deserialize_pos")]
    digest: NoticePos,
    /// Start of the current digest interval (epoch seconds).
    digest_open: u64,
}

pub struct Notifier {
    cfg: MailConfig,
    /// `TimeFmt`, for the times in mail bodies.
    time_fmt: String,
    /// The zone of the times in mails.
    zone: Zone,
    queue: Queue,
    spool_dir: PathBuf,
    state_path: PathBuf,
    cursors: Cursors,
}

impl Notifier {
    pub fn open(config: &AggregatorConfig, zone: Zone, now: SystemTime) -> io::Result<Self> {
        let queue = Queue::open(&config.spool_dir)?;
        let state_path = queue.dir().join("notify.json");
        let cursors = std::fs::read(&state_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Cursors {
                digest_open: unix_secs(now),
                ..Cursors::default()
            });
        Ok(Self {
            cfg: config.mail.clone(),
            time_fmt: config.time_fmt.clone(),
            zone,
            queue,
            spool_dir: config.spool_dir.clone(),
            state_path,
            cursors,
        })
    }

    fn save(&self) -> io::Result<()> {
        let json = serde_json::to_vec(&self.cursors)?;
        replace(&self.state_path, &json, Durability::Durable)
    }

    /// After a crash that lost committed notices (power loss with `Durability = written`) the
    /// cursors can be ahead of what the writer has: move them back, or the notices written
    /// next would be skipped. Call before the writer takes messages.
    pub fn clamp(&mut self, committed: NoticePos) -> io::Result<()> {
        if self.cursors.email <= committed && self.cursors.digest <= committed {
            return Ok(());
        }
        tracing::warn!(
            ?committed,
            email = ?self.cursors.email,
            digest = ?self.cursors.digest,
            "mail cursors are ahead of the committed notices; moving them back"
        );
        self.cursors.email = self.cursors.email.min(committed);
        self.cursors.digest = self.cursors.digest.min(committed);
        self.save()
    }

    /// Notices between `from` and `to`, with their positions.
    fn read(&self, from: NoticePos, to: NoticePos) -> io::Result<Vec<(NoticePos, NoticeEvent)>> {
        let mut out = Vec::new();
        for segment in from.segment..=to.segment {
            let start = if segment == from.segment {
                from.offset
            } else {
                0
            };
            let end = (segment == to.segment).then_some(to.offset);
            if end.is_some_and(|end| end <= start) {
                continue;
            }
            let path = pending::segment_path(&self.spool_dir, segment);
            let mut file = match File::open(&path) {
                Ok(f) => f,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {
                    tracing::warn!(path = %path.display(), "pending notices segment is missing");
                    continue;
                }
                Err(err) => return Err(err),
            };
            file.seek(SeekFrom::Start(start))?;
            let mut buf = Vec::new();
            match end {
                Some(end) => file.take(end - start).read_to_end(&mut buf)?,
                // A closed segment: everything in it was committed.
                None => file.read_to_end(&mut buf)?,
            };
            let mut offset = start;
            for line in buf.split_inclusive(|b| *b == b'\n') {
                let at = NoticePos { segment, offset };
                match serde_json::from_slice(line) {
                    Ok(event) => out.push((at, event)),
                    Err(err) => tracing::warn!(?at, %err, "unreadable pending notice skipped"),
                }
                offset += line.len() as u64;
            }
        }
        Ok(out)
    }

    /// Deletes the segments both cursors have left (after the cursors were saved: a crash in
    /// between leaves a segment the next call deletes).
    fn remove_read_segments(&self) {
        let first_kept = self.cursors.email.segment.min(self.cursors.digest.segment);
        match pending::remove_below(&self.spool_dir, first_kept) {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(removed, "mailed notice segments removed"),
            Err(err) => tracing::warn!(%err, "cannot remove mailed notice segments"),
        }
    }

    /// Queues one mail per new Notice::ACTION_EMAIL notice committed up to `committed`.
    pub fn emails(&mut self, committed: NoticePos, now: SystemTime) -> io::Result<usize> {
        if committed <= self.cursors.email {
            return Ok(0);
        }
        let mut queued = 0;
        if self.cfg.mail_alarms {
            for (at, event) in self.read(self.cursors.email, committed)? {
                if !event.email {
                    continue;
                }
                let mut to = vec![self.cfg.alarms_to.as_str()];
                for dest in &event.email_dest {
                    if !to.contains(&dest.as_str()) {
                        to.push(dest);
                    }
                }
                let Some(mail) = guarded(at, || Mail {
                    subject: format!("{} {}: {}", self.cfg.alarm_prefix, event.note, event.msg),
                    to: to.join(", "),
                    body: event.email_body(&self.time_fmt, self.zone),
                }) else {
                    continue;
                };
                let id = format!("notice-{}-{}", at.segment, at.offset);
                self.queue.push(&self.cfg, &id, &mail, self.zone, now)?;
                queued += 1;
            }
        }
        self.cursors.email = committed;
        self.save()?;
        self.remove_read_segments();
        Ok(queued)
    }

    /// Closes the digest interval at `now`: queues `Alarm summary from HH:MM:SS-HH:MM:SS` with
    /// every alarm committed since the last digest; nothing when there was none.
    pub fn digest(&mut self, committed: NoticePos, now: SystemTime) -> io::Result<bool> {
        let alarms: Vec<String> = self
            .read(self.cursors.digest.min(committed), committed)?
            .into_iter()
            .filter(|(_, e)| e.alarm)
            .filter_map(|(at, e)| guarded(at, || e.pretty_alarm(self.zone)))
            .collect();
        let queued = !alarms.is_empty();
        if queued {
            let time = |t: SystemTime| match self.zone.at(t) {
                Some(t) => t.format("%H:%M:%S").to_string(),
                None => unix_secs(t).to_string(),
            };
            let mail = Mail {
                subject: format!(
                    "Alarm summary from {}-{}",
                    time(from_unix_secs(self.cursors.digest_open)),
                    time(now)
                ),
                to: self.cfg.alarms_to.clone(),
                body: alarms.concat(),
            };
            let id = format!("digest-{}-{}", self.cursors.digest_open, unix_secs(now));
            self.queue.push(&self.cfg, &id, &mail, self.zone, now)?;
        }
        self.cursors.digest = self.cursors.digest.max(committed);
        self.cursors.digest_open = unix_secs(now);
        self.save()?;
        self.remove_read_segments();
        Ok(queued)
    }

    /// Sends queued mails in order; stops at the first failure (the relay is down: try later).
    pub fn flush(&self) -> usize {
        // The daemon and `estuary cron` share the queue: one sender at a time.
        let lock = match self.queue.lock() {
            Ok(Some(lock)) => lock,
            Ok(None) => return 0,
            Err(err) => {
                tracing::warn!(%err, "cannot lock the mail queue");
                return 0;
            }
        };
        let pending = match self.queue.pending() {
            Ok(p) => p,
            Err(err) => {
                tracing::warn!(%err, "cannot list the mail queue");
                return 0;
            }
        };
        let mut sent = 0;
        for path in pending {
            let message = match std::fs::read(&path) {
                Ok(m) => m,
                Err(err) => {
                    tracing::warn!(path = %path.display(), %err, "cannot read queued mail");
                    continue;
                }
            };
            match send(&self.cfg, &message) {
                Ok(false) => {
                    // Mail is off: nothing will ever send these.
                    let _ = self.queue.done(&path);
                }
                Ok(true) => {
                    if let Err(err) = self.queue.done(&path) {
                        tracing::error!(path = %path.display(), %err, "mail sent but not removed from the queue");
                    }
                    sent += 1;
                }
                Err(err) if err.is_permanent() => {
                    tracing::error!(path = %path.display(), %err, "mail cannot be delivered; moved to the failed folder");
                    if let Err(err) = self.queue.fail(&path) {
                        tracing::error!(%err, "cannot move the failed mail");
                        break;
                    }
                }
                Err(err) => {
                    tracing::warn!(%err, "mail not sent; kept in the queue for the next try");
                    break;
                }
            }
        }
        drop(lock);
        sent
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    pub fn config(&self) -> &MailConfig {
        &self.cfg
    }
}

/// Formats the mail for one notice. Formatting must not panic on any input (see the tests in
/// [`crate::alarms`]); should it all the same, that notice is logged and skipped rather than
/// killing the mailer thread: its cursor would never pass the notice, and every restart would
/// panic on it again.
fn guarded<T>(at: NoticePos, format: impl FnOnce() -> T) -> Option<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(format)) {
        Ok(formatted) => Some(formatted),
        Err(_) => {
            tracing::error!(
                ?at,
                "formatting this pending notice panicked; it is not mailed"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_secs;
    use crate::writer::{Message, Writer};
    use estuary_config::aggregator::{AggregatorConfig, MailTransport};

    /// A config whose SendMail program saves each mail into the returned folder.
    fn config_with_sink(dir: &std::path::Path) -> (AggregatorConfig, PathBuf) {
        let mut cfg = crate::testing::config(&dir.join("logs"), &dir.join("spool"));
        let sink = dir.join("sent");
        std::fs::create_dir_all(&sink).unwrap();
        let script = dir.join("sendmail");
        std::fs::write(
            &script,
            format!("#!/bin/sh\ncat > {}/$(date +%s%N).eml\n", sink.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        cfg.mail.transport = MailTransport::SendMail(script);
        (cfg, sink)
    }

    fn sent(sink: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(sink)
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect()
    }

    fn write_notice(w: &mut Writer, note: &str, action: &str, at: SystemTime) {
        let body = format!(
            r#"{{"ts":1795388401.0,"note":"{note}","msg":"m {note}","actions":["{action}"]}}"#
        );
        w.write(
            &Message {
                host: b"s1",
                tag: b"bro_notice",
                body: body.as_bytes(),
                raw: body.as_bytes(),
                origin: None,
            },
            at,
        )
        .unwrap();
    }

    fn segments(cfg: &AggregatorConfig) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&cfg.spool_dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("notices."))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn digest_and_email_are_queued_once() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, sink) = config_with_sink(dir.path());
        let t0 = from_unix_secs(1_795_388_400);
        let mut w = Writer::open(&cfg, t0, Zone::Local, crate::testing::events()).unwrap();
        let mut n = Notifier::open(&cfg, Zone::Local, t0).unwrap();
        for (note, action) in [
            ("A::One", "Notice::ACTION_ALARM"),
            ("B::Two", "Notice::ACTION_EMAIL"),
            ("C::Three", "Notice::ACTION_LOG"),
        ] {
            write_notice(&mut w, note, action, t0);
        }
        w.commit().unwrap();
        assert_eq!(n.emails(w.notices_committed(), t0).unwrap(), 1);
        assert_eq!(n.emails(w.notices_committed(), t0).unwrap(), 0);
        let t1 = from_unix_secs(1_795_392_000);
        assert!(n.digest(w.notices_committed(), t1).unwrap());
        // Restart: nothing new to queue.
        let mut n = Notifier::open(&cfg, Zone::Local, t1).unwrap();
        assert_eq!(n.emails(w.notices_committed(), t1).unwrap(), 0);
        assert!(!n.digest(w.notices_committed(), t1).unwrap());
        assert_eq!(n.flush(), 2);
        assert_eq!(n.flush(), 0);
        let mails = sent(&sink);
        assert_eq!(mails.len(), 2);
        assert!(mails
            .iter()
            .any(|m| m.contains("Subject: [Bro] ALERT: B::Two: m B::Two\n")));
        let digest = mails.iter().find(|m| m.contains("Alarm summary")).unwrap();
        assert!(digest.contains("Subject: [Bro] Alarm summary from "));
        assert!(digest.contains("A::One"));
        assert!(!digest.contains("C::Three"));
        assert!(digest.ends_with("--\n[Automatically generated.]\n\n"));
    }

    /// Many digest intervals with restarts of either side at the awkward points: the pending
    /// notices never pile up, and every alarm and email is mailed exactly once.
    #[test]
    fn pending_notices_are_removed_once_mailed() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, sink) = config_with_sink(dir.path());
        let hour = std::time::Duration::from_secs(3600);
        let mut t = from_unix_secs(1_795_388_400);
        let mut w = Writer::open(&cfg, t, Zone::Local, crate::testing::events()).unwrap();
        let mut n = Notifier::open(&cfg, Zone::Local, t).unwrap();
        const ROUNDS: usize = 12;
        for round in 0..ROUNDS {
            write_notice(
                &mut w,
                &format!("Alarm::R{round}"),
                "Notice::ACTION_ALARM",
                t,
            );
            write_notice(
                &mut w,
                &format!("Email::R{round}"),
                "Notice::ACTION_EMAIL",
                t,
            );
            for _ in 0..50 {
                write_notice(&mut w, "Log::Only", "Notice::ACTION_LOG", t);
            }
            w.commit().unwrap();
            if round % 3 == 0 {
                n.emails(w.notices_committed(), t).unwrap();
            }
            t += hour;
            w.rotate(t).unwrap();
            match round % 4 {
                // The writer restarts after closing the segment, before the mailer saw it.
                1 => {
                    drop(w);
                    w = Writer::open(&cfg, t, Zone::Local, crate::testing::events()).unwrap();
                }
                // The mailer restarts between two rounds.
                2 => {
                    drop(n);
                    n = Notifier::open(&cfg, Zone::Local, t).unwrap();
                    n.clamp(w.notices_committed()).unwrap();
                }
                _ => {}
            }
            n.emails(w.notices_committed(), t).unwrap();
            assert!(n.digest(w.notices_committed(), t).unwrap(), "round {round}");
            // Everything is mailed: no segment is left (the next one starts with a notice).
            assert_eq!(segments(&cfg), Vec::<String>::new(), "round {round}");
            if round % 2 == 0 {
                n.flush();
            }
        }
        n.flush();
        let mails = sent(&sink);
        assert_eq!(mails.len(), 2 * ROUNDS);
        for round in 0..ROUNDS {
            let digests: Vec<&String> = mails
                .iter()
                .filter(|m| m.contains(&format!(" Alarm::R{round}\n")))
                .collect();
            assert_eq!(digests.len(), 1, "round {round}");
            assert!(digests[0].contains("Alarm summary from "));
            assert!(!digests[0].contains("Log::Only"));
            let emails = mails
                .iter()
                .filter(|m| m.contains(&format!("ALERT: Email::R{round}: ")))
                .count();
            assert_eq!(emails, 1, "round {round}");
        }
        // A crash between saving the cursors and deleting: the next pass deletes the rest.
        std::fs::write(pending::segment_path(&cfg.spool_dir, 0), "{}\n").unwrap();
        write_notice(&mut w, "Email::Last", "Notice::ACTION_EMAIL", t);
        w.commit().unwrap();
        assert_eq!(n.emails(w.notices_committed(), t).unwrap(), 1);
        assert!(!pending::segment_path(&cfg.spool_dir, 0).exists());
    }

    /// An earlier version kept one `notices.pending` file and bare offsets as cursors: what it
    /// had not mailed yet is mailed after the upgrade, what it had is not mailed again.
    #[test]
    fn pending_notices_of_an_earlier_version_are_mailed_once() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, sink) = config_with_sink(dir.path());
        let t0 = from_unix_secs(1_795_388_400);
        let mut w = Writer::open(&cfg, t0, Zone::Local, crate::testing::events()).unwrap();
        write_notice(&mut w, "Alarm::Mailed", "Notice::ACTION_ALARM", t0);
        w.commit().unwrap();
        let mailed = w.notices_committed().offset;
        write_notice(&mut w, "Alarm::Waiting", "Notice::ACTION_ALARM", t0);
        w.commit().unwrap();
        let end = w.notices_committed().offset;
        drop(w);
        // The earlier layout: one file, cursors as offsets into it.
        std::fs::rename(
            pending::segment_path(&cfg.spool_dir, 0),
            cfg.spool_dir.join(pending::LEGACY_FILE),
        )
        .unwrap();
        std::fs::create_dir_all(cfg.spool_dir.join("mail")).unwrap();
        std::fs::write(
            cfg.spool_dir.join("mail/notify.json"),
            format!(r#"{{"email":{end},"digest":{mailed},"digest_open":1795388400}}"#),
        )
        .unwrap();

        let w = Writer::open(&cfg, t0, Zone::Local, crate::testing::events()).unwrap();
        let mut n = Notifier::open(&cfg, Zone::Local, t0).unwrap();
        n.clamp(w.notices_committed()).unwrap();
        assert!(n
            .digest(w.notices_committed(), from_unix_secs(1_795_392_000))
            .unwrap());
        n.flush();
        let mails = sent(&sink);
        assert_eq!(mails.len(), 1);
        assert!(mails[0].contains(" Alarm::Waiting\n"), "{}", mails[0]);
        assert!(!mails[0].contains("Alarm::Mailed"), "{}", mails[0]);
        assert!(!cfg.spool_dir.join(pending::LEGACY_FILE).exists());
    }

    /// Power loss with `Durability = written` can lose committed notices the mailer already
    /// read; new notices written at the same place must not be skipped.
    #[test]
    fn cursors_ahead_of_the_writer_are_moved_back() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, sink) = config_with_sink(dir.path());
        let t = from_unix_secs(1_795_388_400);
        let mut n = Notifier::open(&cfg, Zone::Local, t).unwrap();
        let lost = NoticePos {
            segment: 0,
            offset: 10_000,
        };
        n.emails(lost, t).unwrap_or_default();
        let mut w = Writer::open(&cfg, t, Zone::Local, crate::testing::events()).unwrap();
        let mut n = Notifier::open(&cfg, Zone::Local, t).unwrap();
        n.clamp(w.notices_committed()).unwrap();
        write_notice(&mut w, "Email::New", "Notice::ACTION_EMAIL", t);
        w.commit().unwrap();
        assert_eq!(n.emails(w.notices_committed(), t).unwrap(), 1);
        n.flush();
        assert_eq!(sent(&sink).len(), 1);
    }

    /// A sensor sent ts = 1e15 with Notice::ACTION_EMAIL: formatting its time once panicked the
    /// mailer thread, and again after every restart, as the cursor never moved past it.
    #[test]
    fn a_notice_with_a_time_past_chrono_is_mailed() {
        let dir = tempfile::tempdir().unwrap();
        let (cfg, sink) = config_with_sink(dir.path());
        let t = from_unix_secs(1_795_388_400);
        let mut w = Writer::open(&cfg, t, Zone::Local, crate::testing::events()).unwrap();
        let mut n = Notifier::open(&cfg, Zone::Local, t).unwrap();
        for action in ["Notice::ACTION_EMAIL", "Notice::ACTION_ALARM"] {
            let body =
                format!(r#"{{"ts":1e15,"note":"Far::Future","msg":"m","actions":["{action}"]}}"#);
            let m = Message {
                host: b"s1",
                tag: b"bro_notice",
                body: body.as_bytes(),
                raw: body.as_bytes(),
                origin: None,
            };
            w.write(&m, t).unwrap();
        }
        write_notice(&mut w, "Email::After", "Notice::ACTION_EMAIL", t);
        w.commit().unwrap();
        assert_eq!(n.emails(w.notices_committed(), t).unwrap(), 2);
        assert!(n.digest(w.notices_committed(), t).unwrap());
        n.flush();
        let mails = sent(&sink);
        assert_eq!(mails.len(), 3);
        let far = mails
            .iter()
            .find(|m| m.contains("ALERT: Far::Future"))
            .unwrap();
        assert!(far.contains("\nTime: 1000000000000000.000000\n"), "{far}");
        assert!(mails
            .iter()
            .any(|m| m.contains("> 1000000000000000.000000 Far::Future")));
        assert!(mails.iter().any(|m| m.contains("ALERT: Email::After")));
    }

    #[test]
    fn a_notice_whose_formatting_panics_is_skipped() {
        let at = NoticePos::default();
        assert_eq!(guarded(at, || 7), Some(7));
        assert_eq!(guarded(at, || -> u8 { panic!("formatting bug") }), None);
    }
}
