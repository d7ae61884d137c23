//! Groups read from the cluster: written and committed here first, then committed to the tag's
//! marks in the cluster by compare-and-set. Until the writer learns whether that landed, the
//! group is prepared: the journal keeps the files and marks as they were before it, and nothing
//! else is written (so the group stays the tail of every file it touched). A group whose
//! compare-and-set did not land is cut away again, also after a crash: another aggregator
//! writes those lines when the stream delivers them again.

use std::fs;
use std::io;

use crate::journal::{FileState, Prepared, Record};
use crate::route::FileKey;

use super::Writer;

/// A tag's compare-and-set that a group waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepare {
    pub tag: String,
    /// The aggregator that commits it (`NatsName`).
    pub holder: String,
    /// The marks' revision the compare-and-set is made against.
    pub revision: u64,
}

impl Prepare {
    fn is(&self, p: &Prepared) -> bool {
        self.tag == p.tag && self.holder == p.holder && self.revision == p.revision
    }
}

impl From<&Prepared> for Prepare {
    fn from(p: &Prepared) -> Self {
        Prepare {
            tag: p.tag.clone(),
            holder: p.holder.clone(),
            revision: p.revision,
        }
    }
}

impl Writer {
    /// Whether a prepared group waits for its settlement.
    pub fn is_unsettled(&self) -> bool {
        self.state.unsettled.is_some()
    }

    /// The prepared group the writer waits on, if any.
    pub fn unsettled(&self) -> Option<Prepare> {
        self.state.unsettled.as_ref().map(Prepare::from)
    }

    /// [`Writer::commit`] for a group read from the cluster: afterwards the writer is
    /// unsettled until [`Writer::settle`] (unless the group held nothing new).
    pub fn commit_prepared(&mut self, prepare: &Prepare) -> io::Result<()> {
        let files: Vec<(FileKey, Option<FileState>)> = self
            .files
            .map
            .iter()
            .filter(|(_, log)| !log.buf.is_empty() || log.written != log.committed)
            .map(|(key, _)| (key.clone(), self.state.files.get(key).copied()))
            .collect();
        let marks: Vec<_> = self
            .pending_marks
            .iter()
            .map(|(host, file, _)| (host.to_owned(), file, self.state.marks.mark(host, file)))
            .collect();
        if files.is_empty() && marks.is_empty() {
            return self.commit();
        }
        let prepared = Prepared {
            tag: prepare.tag.clone(),
            holder: prepare.holder.clone(),
            revision: prepare.revision,
            files,
            marks,
        };
        let mut records = prepared.records();
        records.append(&mut self.pending_records);
        self.pending_records = records;
        self.commit()?;
        self.state.unsettled = Some(prepared);
        Ok(())
    }

    /// Keeps the prepared group (`landed`) or cuts it away. A settlement for another group
    /// (a late or repeated one) changes nothing.
    pub fn settle(&mut self, settled: &Prepare, landed: bool) -> io::Result<()> {
        let Some(prepared) = self.state.unsettled.as_ref().filter(|p| settled.is(p)) else {
            return Ok(());
        };
        let mut group = vec![Record::Settled];
        if !landed {
            for (key, before) in &prepared.files {
                group.push(match before {
                    Some(file) => Record::Committed {
                        key: key.clone(),
                        file: *file,
                    },
                    None => Record::Removed(key.clone()),
                });
            }
            for (host, file, before) in &prepared.marks {
                group.push(match before {
                    Some(mark) => Record::Mark {
                        host: host.clone(),
                        file: *file,
                        mark: *mark,
                    },
                    None => Record::Unmark {
                        host: host.clone(),
                        file: *file,
                    },
                });
            }
        }
        // The journal first: a crash before the files are cut leaves them longer than it
        // says, and a start cuts them back to it.
        self.journal.commit(&group, self.sync())?;
        let prepared = self.state.unsettled.take().expect("matched above");
        if landed {
            return Ok(());
        }
        tracing::warn!(tag = %prepared.tag, files = prepared.files.len(),
            "the cluster did not take this aggregator's commit; its lines are cut away");
        for (host, file, before) in prepared.marks {
            match before {
                Some(mark) => self.state.marks.set(&host, file, mark),
                None => self.state.marks.remove(&host, file),
            }
        }
        for (key, before) in prepared.files {
            self.cut(key, before)?;
        }
        Ok(())
    }

    fn cut(&mut self, key: FileKey, before: Option<FileState>) -> io::Result<()> {
        let Some(before) = before else {
            self.state.files.remove(&key);
            if let Some(log) = self.files.map.remove(&key) {
                fs::remove_file(&log.path)?;
            }
            return Ok(());
        };
        self.state.files.insert(key.clone(), before);
        let has_header = self.state.schemas.contains_key(&key);
        if let Some(log) = self.files.map.get_mut(&key) {
            log.committed = before.len;
            log.has_header = has_header;
            log.rollback()?;
        }
        Ok(())
    }

    /// The committed length of the notices segment, short of a prepared group's notices
    /// (the mailer must not read what may be cut away).
    pub(super) fn settled_notices(&self, committed: u64) -> u64 {
        let before = self.state.unsettled.as_ref().and_then(|p| {
            p.files
                .iter()
                .find(|(key, _)| key.is_notices())
                .map(|(_, before)| before.map_or(0, |f| f.len))
        });
        before.map_or(committed, |b| b.min(committed))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::super::tests::{msg, read, setup, T0};
    use super::*;
    use crate::clock::{from_unix_secs, Zone};
    use crate::writer::Outcome;
    use estuary_config::aggregator::AggregatorConfig;

    fn open(cfg: &AggregatorConfig) -> Writer {
        Writer::open(cfg, now(), Zone::Local, crate::testing::events()).unwrap()
    }

    fn now() -> SystemTime {
        from_unix_secs(T0)
    }

    fn prepare(revision: u64) -> Prepare {
        Prepare {
            tag: "bro_conn".into(),
            holder: "agg1".into(),
            revision,
        }
    }

    fn write(w: &mut Writer, tag: &str, line: &str, origin: (u64, u64)) -> Outcome {
        w.write(&msg("nats:bro_conn", tag, line, Some(origin)), now())
            .unwrap()
    }

    /// Lines 0 and 1 committed, then lines 2 and 3 (and a first dns line, in a new file) in a
    /// group prepared against revision 9.
    fn two_committed_two_prepared(cfg: &AggregatorConfig) -> Writer {
        let mut w = open(cfg);
        write(&mut w, "bro_conn", "line0", (7, 0));
        write(&mut w, "bro_conn", "line1", (7, 10));
        w.commit().unwrap();
        write(&mut w, "bro_conn", "line2", (7, 20));
        write(&mut w, "bro_conn", "line3", (7, 30));
        write(&mut w, "bro_dns", "dns0", (8, 0));
        w.commit_prepared(&prepare(9)).unwrap();
        assert_eq!(w.unsettled(), Some(prepare(9)));
        w
    }

    #[test]
    fn a_group_whose_commit_did_not_land_is_cut_with_its_marks() {
        let (_d, cfg) = setup();
        let mut w = two_committed_two_prepared(&cfg);
        // A settlement of another group changes nothing.
        w.settle(&prepare(8), false).unwrap();
        assert_eq!(w.unsettled(), Some(prepare(9)));
        assert_eq!(read(&cfg, "conn.log"), "line0\nline1\nline2\nline3\n");

        w.settle(&prepare(9), false).unwrap();
        assert_eq!(w.unsettled(), None);
        assert_eq!(read(&cfg, "conn.log"), "line0\nline1\n");
        assert!(!cfg.log_dir.join("current/dns.log").exists());
        // Delivered again, the cut lines are new; what stayed is still a replay.
        assert_eq!(
            write(&mut w, "bro_conn", "dup", (7, 10)),
            Outcome::Duplicate
        );
        assert_eq!(
            write(&mut w, "bro_conn", "line2", (7, 20)),
            Outcome::Written
        );
        assert_eq!(write(&mut w, "bro_dns", "dns0", (8, 0)), Outcome::Written);
        w.commit().unwrap();
        drop(w);
        let mut w = open(&cfg);
        assert_eq!(read(&cfg, "conn.log"), "line0\nline1\nline2\n");
        assert_eq!(read(&cfg, "dns.log"), "dns0\n");
        assert_eq!(
            write(&mut w, "bro_conn", "line3", (7, 30)),
            Outcome::Written
        );
    }

    #[test]
    fn a_group_whose_commit_landed_is_kept() {
        let (_d, cfg) = setup();
        let mut w = two_committed_two_prepared(&cfg);
        w.settle(&prepare(9), true).unwrap();
        assert_eq!(w.unsettled(), None);
        assert_eq!(
            write(&mut w, "bro_conn", "dup", (7, 30)),
            Outcome::Duplicate
        );
        drop(w);
        let w = open(&cfg);
        assert_eq!(w.unsettled(), None);
        assert_eq!(read(&cfg, "conn.log"), "line0\nline1\nline2\nline3\n");
        assert_eq!(read(&cfg, "dns.log"), "dns0\n");
    }

    /// Killed between its commit and the cluster's answer, the writer comes back waiting for
    /// the answer, and settles either way as if it had not stopped.
    #[test]
    fn a_prepared_group_outlives_a_crash() {
        for landed in [true, false] {
            let (_d, mut cfg) = setup();
            cfg.nats = Some(crate::testing::nats_input(&["bro_conn"]));
            drop(two_committed_two_prepared(&cfg));
            let mut w = open(&cfg);
            assert_eq!(w.unsettled(), Some(prepare(9)), "landed {landed}");
            w.settle(&prepare(9), landed).unwrap();
            drop(w);
            let mut w = open(&cfg);
            assert_eq!(w.unsettled(), None);
            let (conn, dns, again) = match landed {
                true => ("line0\nline1\nline2\nline3\n", "dns0\n", Outcome::Duplicate),
                false => ("line0\nline1\n", "", Outcome::Written),
            };
            assert_eq!(read(&cfg, "conn.log"), conn, "landed {landed}");
            assert_eq!(read(&cfg, "dns.log"), dns, "landed {landed}");
            assert_eq!(write(&mut w, "bro_conn", "line2", (7, 20)), again);
        }
    }

    /// Cut after the journal took the settlement, before the files were: the start cuts them.
    #[test]
    fn a_crash_between_settling_and_cutting_cuts_at_the_start() {
        let (_d, mut cfg) = setup();
        cfg.nats = Some(crate::testing::nats_input(&["bro_conn"]));
        let mut w = two_committed_two_prepared(&cfg);
        let conn = FileKey::parse("conn.log").unwrap();
        let prepared = w.state.unsettled.clone().unwrap();
        let (_, conn_before) = prepared.files.iter().find(|(k, _)| *k == conn).unwrap();
        let group = [
            Record::Settled,
            Record::Committed {
                key: conn,
                file: conn_before.unwrap(),
            },
            Record::Removed(FileKey::parse("dns.log").unwrap()),
        ];
        w.journal.commit(&group, false).unwrap();
        drop(w);
        let w = open(&cfg);
        assert_eq!(w.unsettled(), None);
        assert_eq!(read(&cfg, "conn.log"), "line0\nline1\n");
        assert!(!cfg.log_dir.join("current/dns.log").exists());
    }

    #[test]
    fn a_group_of_a_tag_no_longer_read_is_kept_at_the_start() {
        let (_d, cfg) = setup();
        drop(two_committed_two_prepared(&cfg));
        let w = open(&cfg);
        assert_eq!(w.unsettled(), None);
        assert_eq!(read(&cfg, "conn.log"), "line0\nline1\nline2\nline3\n");
    }

    #[test]
    fn the_mailer_reads_no_notice_of_an_unsettled_group() {
        let (_d, cfg) = setup();
        let mut w = open(&cfg);
        let notice = r#"{"ts":1.5,"note":"Scan::Port_Scan","msg":"scan","actions":["Notice::ACTION_ALARM"]}"#;
        w.write(
            &msg("nats:bro_notice", "bro_notice", notice, Some((3, 0))),
            now(),
        )
        .unwrap();
        w.commit().unwrap();
        let first = w.notices_committed();
        w.write(
            &msg("nats:bro_notice", "bro_notice", notice, Some((3, 90))),
            now(),
        )
        .unwrap();
        w.commit_prepared(&prepare(4)).unwrap();
        assert_eq!(w.notices_committed(), first);
        w.settle(&prepare(4), true).unwrap();
        assert!(w.notices_committed().offset > first.offset);
    }

    /// A group of nothing but replays prepares nothing: there is nothing to cut.
    #[test]
    fn a_group_of_replays_prepares_nothing() {
        let (_d, cfg) = setup();
        let mut w = open(&cfg);
        write(&mut w, "bro_conn", "line0", (7, 0));
        w.commit().unwrap();
        write(&mut w, "bro_conn", "line0", (7, 0));
        w.commit_prepared(&prepare(2)).unwrap();
        assert_eq!(w.unsettled(), None);
    }
}
