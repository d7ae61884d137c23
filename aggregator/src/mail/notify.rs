//! Turns committed notices into mails: Notice::ACTION_EMAIL at once (MailAlarms = 1), the
//! ACTION_ALARM digest at each digest interval. Two cursors into the pending-notices file say
//! what has been queued; a mail is queued under an id derived from its position (or interval)
//! before its cursor moves, so a crash in between re-queues the same file, never a second mail.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::SystemTime;

use chrono::{DateTime, Local};
use estuary_config::aggregator::{AggregatorConfig, MailConfig};
use serde::{Deserialize, Serialize};

use super::{send, Mail, Queue};
use crate::clock::{from_unix_secs, unix_secs};
use crate::fsutil::write_atomic;
use crate::notice::NoticeEvent;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cursors {
    email: u64,
    digest: u64,
    /// Start of the current digest interval (epoch seconds).
    digest_open: u64,
}

pub struct Notifier {
    cfg: MailConfig,
    queue: Queue,
    notices: PathBuf,
    state_path: PathBuf,
    cursors: Cursors,
}

impl Notifier {
    pub fn open(config: &AggregatorConfig, now: SystemTime) -> io::Result<Self> {
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
            queue,
            notices: config.spool_dir.join(crate::writer::NOTICES_FILE),
            state_path,
            cursors,
        })
    }

    fn save(&self) -> io::Result<()> {
        let json = serde_json::to_vec(&self.cursors).map_err(io::Error::other)?;
        write_atomic(&self.state_path, &json)
    }

    /// Notices between `from` and `to` in the pending file, with their offsets.
    fn read(&self, from: u64, to: u64) -> io::Result<Vec<(u64, NoticeEvent)>> {
        if to <= from {
            return Ok(Vec::new());
        }
        let mut file = File::open(&self.notices)?;
        file.seek(SeekFrom::Start(from))?;
        let mut buf = Vec::new();
        file.take(to - from).read_to_end(&mut buf)?;
        let mut out = Vec::new();
        let mut offset = from;
        for line in buf.split_inclusive(|b| *b == b'\n') {
            match serde_json::from_slice(line) {
                Ok(event) => out.push((offset, event)),
                Err(err) => tracing::warn!(offset, %err, "unreadable pending notice skipped"),
            }
            offset += line.len() as u64;
        }
        Ok(out)
    }

    /// Queues one mail per new Notice::ACTION_EMAIL notice committed up to `committed`.
    pub fn emails(&mut self, committed: u64, now: SystemTime) -> io::Result<usize> {
        if committed < self.cursors.email {
            // The pending file was started over.
            self.cursors = Cursors {
                digest_open: self.cursors.digest_open,
                ..Cursors::default()
            };
        }
        if committed == self.cursors.email {
            return Ok(0);
        }
        let mut queued = 0;
        if self.cfg.mail_alarms {
            for (offset, event) in self.read(self.cursors.email, committed)? {
                if !event.email {
                    continue;
                }
                let mail = Mail {
                    subject: format!("{} {}: {}", self.cfg.alarm_prefix, event.note, event.msg),
                    to: self.cfg.alarms_to.clone(),
                    body: event.email_body(),
                };
                self.queue
                    .push(&self.cfg, &format!("notice-{offset}"), &mail, now)?;
                queued += 1;
            }
        }
        self.cursors.email = committed;
        self.save()?;
        Ok(queued)
    }

    /// Closes the digest interval at `now`: queues `Alarm summary from HH:MM:SS-HH:MM:SS` with
    /// every alarm committed since the last digest; nothing when there was none.
    pub fn digest(&mut self, committed: u64, now: SystemTime) -> io::Result<bool> {
        let alarms: Vec<NoticeEvent> = self
            .read(self.cursors.digest.min(committed), committed)?
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| e.alarm)
            .collect();
        let open: DateTime<Local> = from_unix_secs(self.cursors.digest_open).into();
        let close: DateTime<Local> = now.into();
        let queued = !alarms.is_empty();
        if queued {
            let mail = Mail {
                subject: format!(
                    "Alarm summary from {}-{}",
                    open.format("%H:%M:%S"),
                    close.format("%H:%M:%S")
                ),
                to: self.cfg.alarms_to.clone(),
                body: alarms.iter().map(NoticeEvent::pretty_alarm).collect(),
            };
            let id = format!("digest-{}-{}", self.cursors.digest_open, unix_secs(now));
            self.queue.push(&self.cfg, &id, &mail, now)?;
        }
        self.cursors.digest = committed;
        self.cursors.digest_open = unix_secs(now);
        self.save()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::from_unix_secs;
    use crate::writer::{Message, Writer};
    use estuary_config::aggregator::MailTransport;

    #[test]
    fn digest_and_email_are_queued_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = crate::testing::config(&dir.path().join("logs"), &dir.path().join("spool"));
        let sink = dir.path().join("sent");
        std::fs::create_dir_all(&sink).unwrap();
        let script = dir.path().join("sendmail");
        std::fs::write(
            &script,
            format!("#!/bin/sh\ncat > {}/$$.eml\n", sink.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        cfg.mail.transport = MailTransport::SendMail(script);
        let t0 = from_unix_secs(1_795_388_400);
        let mut w = Writer::open(&cfg).unwrap();
        let mut n = Notifier::open(&cfg, t0).unwrap();
        for (note, action) in [
            ("A::One", "Notice::ACTION_ALARM"),
            ("B::Two", "Notice::ACTION_EMAIL"),
            ("C::Three", "Notice::ACTION_LOG"),
        ] {
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
                t0,
            )
            .unwrap();
        }
        w.commit().unwrap();
        assert_eq!(n.emails(w.notices_committed(), t0).unwrap(), 1);
        assert_eq!(n.emails(w.notices_committed(), t0).unwrap(), 0);
        let t1 = from_unix_secs(1_795_392_000);
        assert!(n.digest(w.notices_committed(), t1).unwrap());
        // Restart: nothing new to queue.
        let mut n = Notifier::open(&cfg, t1).unwrap();
        assert_eq!(n.emails(w.notices_committed(), t1).unwrap(), 0);
        assert!(!n.digest(w.notices_committed(), t1).unwrap());
        assert_eq!(n.flush(), 2);
        assert_eq!(n.flush(), 0);
        let mails: Vec<String> = std::fs::read_dir(&sink)
            .unwrap()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect();
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
}
