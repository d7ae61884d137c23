//! The commit journal in SpoolDir: what part of each current file is committed, the exactly-once
//! high-water marks, and the header schemas, all in one append-only file.
//!
//! The writer appends data to the log files first and a journal group after it; a group counts
//! only once its closing `C` line is in the journal. On startup every current file is cut back to
//! its committed length, so a `kill -9` between the data write and the journal write leaves
//! neither the uncommitted lines (the sender had no acknowledgement and sends them again) nor
//! stale marks (which would drop lines that were never kept).
//!
//! Records, one per line, are the [`Record`] enum, written and read only here; a group ends with
//! `C <seq>`.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use estuary_fsutil::{replace, Durability};

use crate::route::FileKey;

const FILE_NAME: &str = "commit.journal";
/// Rewrite the journal as a snapshot once it grows past this.
const COMPACT_AT: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileState {
    pub len: u64,
    pub open: u64,
}

/// Everything the journal knows, as of the last complete group.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct State {
    pub files: BTreeMap<FileKey, FileState>,
    pub marks: Marks,
    pub schemas: BTreeMap<FileKey, Vec<u8>>,
    /// Sending host -> log -> the file its lines go to (a schema variant).
    pub assignments: BTreeMap<String, BTreeMap<String, String>>,
    /// The pending-notices segment the writer appends to; lower ones belong to the mailer.
    pub notices_segment: u64,
    /// False when no journal existed: files found on disk are then taken as they are.
    pub existed: bool,
    /// The last group, when it waits to learn whether its commit to the cluster's marks landed.
    pub unsettled: Option<Prepared>,
}

/// A group written for a tag read from the cluster, before its compare-and-set of the tag's
/// marks: it is kept if that landed and cut away otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub tag: String,
    /// The aggregator that commits it (`NatsName`), and the marks' revision compared against.
    pub holder: String,
    pub revision: u64,
    /// The files the group wrote to, as they were before it (`None`: it created the file).
    pub files: Vec<(FileKey, Option<FileState>)>,
    /// The marks it moved, as they were before it.
    pub marks: Vec<(String, u64, Option<Mark>)>,
}

/// One shipper file's high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    /// Offset of the last line kept.
    pub offset: u64,
    /// When a line of this file last arrived (epoch seconds), for pruning.
    pub updated: u64,
}

/// High-water marks: sender -> shipper file id -> mark.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Marks(HashMap<Box<str>, HashMap<u64, Mark>>);

impl Marks {
    pub fn get(&self, host: &str, file: u64) -> Option<u64> {
        self.mark(host, file).map(|m| m.offset)
    }

    pub fn mark(&self, host: &str, file: u64) -> Option<Mark> {
        self.0.get(host).and_then(|m| m.get(&file)).copied()
    }

    pub fn remove(&mut self, host: &str, file: u64) {
        if let Some(files) = self.0.get_mut(host) {
            files.remove(&file);
            if files.is_empty() {
                self.0.remove(host);
            }
        }
    }

    pub fn set(&mut self, host: &str, file: u64, mark: Mark) {
        match self.0.get_mut(host) {
            Some(m) => {
                m.insert(file, mark);
            }
            None => {
                self.0.insert(host.into(), HashMap::from([(file, mark)]));
            }
        }
    }

    /// How many files of `host` have a mark.
    pub fn files_of(&self, host: &str) -> usize {
        self.0.get(host).map_or(0, HashMap::len)
    }

    /// Forgets the least recently updated mark of `host`.
    pub fn forget_oldest(&mut self, host: &str) {
        let Some(files) = self.0.get_mut(host) else {
            return;
        };
        if let Some(oldest) = files.iter().min_by_key(|(_, m)| m.updated).map(|(f, _)| *f) {
            files.remove(&oldest);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64, Mark)> {
        self.0
            .iter()
            .flat_map(|(h, m)| m.iter().map(move |(f, mark)| (&**h, *f, *mark)))
    }

    /// Forgets the marks last updated before `cutoff` (epoch seconds); returns how many.
    pub fn prune(&mut self, cutoff: u64) -> usize {
        let mut dropped = 0;
        self.0.retain(|_, files| {
            let before = files.len();
            files.retain(|_, mark| mark.updated >= cutoff);
            dropped += before - files.len();
            !files.is_empty()
        });
        dropped
    }

    /// Moves every mark forward by the time since the latest one was updated (up to `now`),
    /// so that the time the aggregator was down does not count as silence; returns the shift.
    /// The latest arrival is the last sign of life the journal has: the shift can exceed the
    /// downtime by an idle spell before it, which only keeps marks longer.
    pub fn discount_downtime(&mut self, now: u64) -> u64 {
        let Some(latest) = self.iter().map(|(_, _, mark)| mark.updated).max() else {
            return 0;
        };
        let offline = now.saturating_sub(latest);
        self.discount(offline);
        offline
    }

    /// Moves every mark forward by `secs` that must not count as silence.
    pub fn discount(&mut self, secs: u64) {
        for mark in self.0.values_mut().flat_map(HashMap::values_mut) {
            mark.updated = mark.updated.saturating_add(secs);
        }
    }

    pub fn len(&self) -> usize {
        self.0.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// `L <file> <len> <open>`: the file is committed up to `len` bytes.
    Committed { key: FileKey, file: FileState },
    /// `D <file>`: rotated away (or a notices segment handed to the mailer).
    Removed(FileKey),
    /// `M <host> <file-id> <offset> <updated>`: a shipper file's high-water mark.
    Mark { host: String, file: u64, mark: Mark },
    /// `S <file> <hex header>`: the header schema of a file.
    Schema { key: FileKey, schema: Vec<u8> },
    /// `A <host> <log> <target>`: which file a sensor's lines of `log` go to (a schema variant).
    Assign {
        host: String,
        log: String,
        target: String,
    },
    /// `N <segment>`: the active pending-notices segment.
    NoticesSegment(u64),
    /// `U <host> <file-id>`: a mark forgotten (a settled group that had set it was cut).
    Unmark { host: String, file: u64 },
    /// `P <tag> <revision> <hex holder>`: this group waits for its tag's compare-and-set.
    Prepared {
        tag: String,
        holder: String,
        revision: u64,
    },
    /// `PF <file> <len> <open>` or `PF <file> -`: a file before the prepared group.
    PreparedFile {
        key: FileKey,
        before: Option<FileState>,
    },
    /// `PM <host> <file-id> <offset> <updated>` or `PM <host> <file-id> -`: a mark before it.
    PreparedMark {
        host: String,
        file: u64,
        before: Option<Mark>,
    },
    /// `K`: the prepared group is settled (kept, or cut by the records beside this one).
    Settled,
}

impl Record {
    fn write(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = match self {
            Record::Committed { key, file } => writeln!(out, "L {key} {} {}", file.len, file.open),
            Record::Removed(key) => writeln!(out, "D {key}"),
            Record::Mark { host, file, mark } => {
                writeln!(out, "M {host} {file} {} {}", mark.offset, mark.updated)
            }
            Record::Schema { key, schema } => writeln!(out, "S {key} {}", hex(schema)),
            Record::Assign { host, log, target } => writeln!(out, "A {host} {log} {target}"),
            Record::NoticesSegment(n) => writeln!(out, "N {n}"),
            Record::Unmark { host, file } => writeln!(out, "U {host} {file}"),
            Record::Prepared {
                tag,
                holder,
                revision,
            } => writeln!(out, "P {tag} {revision} {}", hex(holder.as_bytes())),
            Record::PreparedFile { key, before } => match before {
                Some(f) => writeln!(out, "PF {key} {} {}", f.len, f.open),
                None => writeln!(out, "PF {key} -"),
            },
            Record::PreparedMark { host, file, before } => match before {
                Some(m) => writeln!(out, "PM {host} {file} {} {}", m.offset, m.updated),
                None => writeln!(out, "PM {host} {file} -"),
            },
            Record::Settled => writeln!(out, "K"),
        };
    }

    /// `loaded_at` stands in for the update time of marks written before marks had one.
    fn parse(line: &str, loaded_at: u64) -> Option<Record> {
        let f: Vec<&str> = line.split(' ').collect();
        Some(match f.as_slice() {
            ["L", key, len, open] => Record::Committed {
                key: FileKey::parse(key)?,
                file: FileState {
                    len: len.parse().ok()?,
                    open: open.parse().ok()?,
                },
            },
            ["D", key] => Record::Removed(FileKey::parse(key)?),
            ["M", host, file, offset, updated @ ..] if updated.len() <= 1 => Record::Mark {
                host: (*host).to_owned(),
                file: file.parse().ok()?,
                mark: Mark {
                    offset: offset.parse().ok()?,
                    updated: match updated.first() {
                        Some(t) => t.parse().ok()?,
                        None => loaded_at,
                    },
                },
            },
            ["S", key, header] => Record::Schema {
                key: FileKey::parse(key)?,
                schema: unhex(header)?,
            },
            ["A", host, log, target] => Record::Assign {
                host: (*host).to_owned(),
                log: (*log).to_owned(),
                target: (*target).to_owned(),
            },
            ["N", segment] => Record::NoticesSegment(segment.parse().ok()?),
            ["U", host, file] => Record::Unmark {
                host: (*host).to_owned(),
                file: file.parse().ok()?,
            },
            ["P", tag, revision, holder] => Record::Prepared {
                tag: (*tag).to_owned(),
                holder: String::from_utf8(unhex(holder)?).ok()?,
                revision: revision.parse().ok()?,
            },
            ["PF", key, "-"] => Record::PreparedFile {
                key: FileKey::parse(key)?,
                before: None,
            },
            ["PF", key, len, open] => Record::PreparedFile {
                key: FileKey::parse(key)?,
                before: Some(FileState {
                    len: len.parse().ok()?,
                    open: open.parse().ok()?,
                }),
            },
            ["PM", host, file, "-"] => Record::PreparedMark {
                host: (*host).to_owned(),
                file: file.parse().ok()?,
                before: None,
            },
            ["PM", host, file, offset, updated] => Record::PreparedMark {
                host: (*host).to_owned(),
                file: file.parse().ok()?,
                before: Some(Mark {
                    offset: offset.parse().ok()?,
                    updated: updated.parse().ok()?,
                }),
            },
            ["K"] => Record::Settled,
            _ => return None,
        })
    }
}

impl State {
    fn apply(&mut self, record: Record) {
        match record {
            Record::Committed { key, file } => {
                self.files.insert(key, file);
            }
            Record::Removed(key) => {
                self.files.remove(&key);
            }
            Record::Mark { host, file, mark } => self.marks.set(&host, file, mark),
            Record::Schema { key, schema } => {
                self.schemas.insert(key, schema);
            }
            Record::Assign { host, log, target } => {
                self.assignments
                    .entry(host)
                    .or_default()
                    .insert(log, target);
            }
            Record::NoticesSegment(n) => self.notices_segment = n,
            Record::Unmark { host, file } => self.marks.remove(&host, file),
            Record::Prepared {
                tag,
                holder,
                revision,
            } => {
                self.unsettled = Some(Prepared {
                    tag,
                    holder,
                    revision,
                    files: Vec::new(),
                    marks: Vec::new(),
                })
            }
            Record::PreparedFile { key, before } => {
                if let Some(p) = &mut self.unsettled {
                    p.files.push((key, before));
                }
            }
            Record::PreparedMark { host, file, before } => {
                if let Some(p) = &mut self.unsettled {
                    p.marks.push((host, file, before));
                }
            }
            Record::Settled => self.unsettled = None,
        }
    }

    /// The records that rebuild this state.
    fn snapshot(&self) -> Vec<Record> {
        let files = self.files.iter().map(|(key, file)| Record::Committed {
            key: key.clone(),
            file: *file,
        });
        let marks = self.marks.iter().map(|(host, file, mark)| Record::Mark {
            host: host.to_owned(),
            file,
            mark,
        });
        let schemas = self.schemas.iter().map(|(key, schema)| Record::Schema {
            key: key.clone(),
            schema: schema.clone(),
        });
        let assignments = self.assignments.iter().flat_map(|(host, logs)| {
            logs.iter().map(move |(log, target)| Record::Assign {
                host: host.clone(),
                log: log.clone(),
                target: target.clone(),
            })
        });
        files
            .chain(marks)
            .chain(schemas)
            .chain(assignments)
            .chain([Record::NoticesSegment(self.notices_segment)])
            .chain(self.unsettled.iter().flat_map(Prepared::records))
            .collect()
    }
}

impl Prepared {
    /// The records that open a prepared group and restore this.
    pub fn records(&self) -> Vec<Record> {
        let head = Record::Prepared {
            tag: self.tag.clone(),
            holder: self.holder.clone(),
            revision: self.revision,
        };
        let files = self.files.iter().map(|(key, before)| Record::PreparedFile {
            key: key.clone(),
            before: *before,
        });
        let marks = self
            .marks
            .iter()
            .map(|(host, file, before)| Record::PreparedMark {
                host: host.clone(),
                file: *file,
                before: *before,
            });
        std::iter::once(head).chain(files).chain(marks).collect()
    }
}

pub struct Journal {
    path: PathBuf,
    file: File,
    size: u64,
    seq: u64,
    /// A failed group could not be cut off: the next one would merge with it on replay, so
    /// nothing is committed until the cut (or a compaction) succeeds.
    torn: bool,
}

impl Journal {
    /// `now` (epoch seconds) stands in for the arrival time of marks written before marks had
    /// one.
    pub fn open(spool_dir: &Path, now: u64) -> io::Result<(Self, State)> {
        fs::create_dir_all(spool_dir)?;
        let path = spool_dir.join(FILE_NAME);
        let loaded_at = now;
        let (state, seq) = match File::open(&path) {
            Ok(file) => replay(BufReader::new(file), loaded_at)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => (State::default(), 0),
            Err(err) => return Err(err),
        };
        let mut journal = Self {
            file: OpenOptions::new().create(true).append(true).open(&path)?,
            path,
            size: 0,
            seq,
            torn: false,
        };
        // Start from a clean snapshot: drops any partial group at the end.
        journal.compact(&state)?;
        Ok((journal, state))
    }

    /// Appends one group and closes it with `C`. `sync` makes it durable against power loss.
    pub fn commit(&mut self, records: &[Record], sync: bool) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut group = Vec::new();
        for record in records {
            record.write(&mut group);
        }
        if self.torn {
            self.file.set_len(self.size).map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("cutting a failed group off the journal: {err}"),
                )
            })?;
            self.torn = false;
        }
        self.seq += 1;
        writeln!(group, "C {}", self.seq)?;
        let written = self.file.write_all(&group).and_then(|()| match sync {
            true => self.file.sync_data(),
            false => Ok(()),
        });
        if let Err(err) = written {
            // A partial group would merge with the next one on replay: cut it off.
            if let Err(cut) = self.file.set_len(self.size) {
                tracing::error!(%cut, "cannot cut a failed group off the journal; no commit until it can");
                self.torn = true;
            }
            return Err(err);
        }
        self.size += group.len() as u64;
        Ok(())
    }

    pub fn wants_compaction(&self) -> bool {
        self.size > COMPACT_AT
    }

    pub fn compact(&mut self, state: &State) -> io::Result<()> {
        let mut snap = Vec::new();
        for record in state.snapshot() {
            record.write(&mut snap);
        }
        self.seq += 1;
        writeln!(snap, "C {}", self.seq)?;
        replace(&self.path, &snap, Durability::Durable)?;
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        self.size = snap.len() as u64;
        self.torn = false;
        Ok(())
    }
}

/// `loaded_at` stands in for the update time of marks written before marks had one.
fn replay(reader: impl BufRead, loaded_at: u64) -> io::Result<(State, u64)> {
    let mut state = State {
        existed: true,
        ..State::default()
    };
    let mut group: Vec<String> = Vec::new();
    let mut seq = 0;
    for line in reader.split(b'\n') {
        let line = line?;
        let Ok(line) = String::from_utf8(line) else {
            break;
        };
        if let Some(n) = line.strip_prefix("C ") {
            for line in group.drain(..) {
                match Record::parse(&line, loaded_at) {
                    Some(record) => state.apply(record),
                    None => tracing::warn!(record = line, "unknown journal record ignored"),
                }
            }
            seq = n.trim().parse().unwrap_or(seq);
        } else {
            group.push(line);
        }
    }
    if !group.is_empty() {
        tracing::info!(
            records = group.len(),
            "journal ends in an uncommitted group; ignored"
        );
    }
    Ok((state, seq))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Vec<Record> {
        text.lines().map(|l| Record::parse(l, 0).unwrap()).collect()
    }

    #[test]
    fn records_read_back_as_written() {
        let text = "L conn.log 10 5\nD s1/dns.log\nM h 1 7 9\nS conn.log 2309\nA h conn conn-1a2b3c4d\nN 3\n\
            U h 1\nP bro_conn 42 6167\nPF conn.log 10 5\nPF dns.log -\nPM h 1 7 9\nPM h 2 -\nK\n";
        let mut out = Vec::new();
        for record in records(text) {
            record.write(&mut out);
        }
        assert_eq!(String::from_utf8(out).unwrap(), text);
        for bad in [
            "L ../x.log 1 2",
            "S conn.log 2",
            "M h x 1",
            "Q",
            "N",
            "P t x 61",
            "PF c.log 1",
        ] {
            assert_eq!(Record::parse(bad, 0), None, "{bad}");
        }
    }

    #[test]
    fn partial_group_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let now = crate::clock::unix_secs(std::time::SystemTime::now());
        let (j, state) = Journal::open(dir.path(), now).unwrap();
        assert!(state.files.is_empty());
        drop(j);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        // A group with a mark from before marks had a time.
        f.write_all(b"L conn.log 10 5\nM h 1 7\nS conn.log 2309\nC 2\n")
            .unwrap();
        // A crash in the middle of the next group.
        f.write_all(b"L conn.log 99 5\nM h 1 9\n").unwrap();
        let (_, state) = Journal::open(dir.path(), now).unwrap();
        assert_eq!(state.files["conn.log"], FileState { len: 10, open: 5 });
        assert_eq!(state.marks.get("h", 1), Some(7));
        // A mark written before marks had a time counts as updated when the journal was read.
        assert_eq!(state.marks.iter().next().unwrap().2.updated, now);
        assert_eq!(state.schemas["conn.log"], b"#\t".to_vec());
        assert!(state.existed);
    }

    /// A group failed half-written and could not be cut off either: the next group must not
    /// be appended to its rest, or replay would take both as one.
    #[test]
    fn no_group_follows_a_failed_one_left_in_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (mut j, _) = Journal::open(dir.path(), 0).unwrap();
        j.commit(&records("L conn.log 10 5\n"), false).unwrap();
        // The failing write left part of its group; cutting it off fails as well.
        let mut append = OpenOptions::new().append(true).open(&path).unwrap();
        append.write_all(b"L conn.log 99 5\n").unwrap();
        j.file = File::open(&path).unwrap();
        assert!(j
            .commit(&records("L conn.log 99 5\nM h 1 9\n"), false)
            .is_err());
        j.file = append;
        j.commit(&records("M h 1 7\n"), false).unwrap();
        let (_, state) = Journal::open(dir.path(), 0).unwrap();
        assert_eq!(state.files["conn.log"], FileState { len: 10, open: 5 });
        assert_eq!(state.marks.get("h", 1), Some(7));
    }
}
