//! One destination's reader: a thread that tails every file routed to the destination from that
//! destination's own offsets, cuts lines, encodes them and hands batches to the sender through a
//! bounded channel. A full channel blocks the reader: the file is the buffer.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use estuary_config::shipper::{Body, InputConfig, OnShrink};
use estuary_wire::encode::{write_framed, write_message, Header};
use estuary_wire::{Format, Framing, Origin, Pri};
use tokio::sync::mpsc;
use tracing::debug;

use crate::batch::{Batch, Entry};
use crate::body::Bodies;
use crate::events::{self, Events, LinesRead};
use crate::hash::CHECK_BYTES;
use crate::lines::{Cutter, Line, LineKind};
use crate::registry::{FileView, Registry, ROTATE_WAIT};
use crate::shrink;
use crate::state::FileId;
use crate::wake::Wake;

/// Bytes read from a file at once.
const CHUNK: usize = 256 * 1024;
/// Chunks read from one file before the others get a turn.
const CHUNKS_PER_TURN: usize = 4;

pub struct Reader {
    pub dest: usize,
    pub registry: Arc<Registry>,
    pub events: Arc<Events>,
    pub hostname: String,
    pub format: Format,
    pub body: Body,
    /// Stream framing written by the reader; `None` when the sender frames each message itself.
    pub framing: Option<Framing>,
    pub tx: mpsc::Sender<Batch>,
    pub wake: Arc<Wake>,
    pub shutdown: Arc<AtomicBool>,
    /// Longest wait between looks at the files.
    pub poll: Duration,
}

struct Cursor {
    view: FileView,
    /// Where the next read starts: everything before was cut into lines.
    offset: u64,
    /// The bytes just before `offset`, compared on every read to notice a truncation.
    tail: Option<Vec<u8>>,
    cutter: Cutter,
    bodies: Bodies,
    last_growth: Instant,
    end_seen: u64,
}

enum Read {
    /// Lines were cut (or bytes consumed); maybe more to read.
    Progress {
        more: bool,
    },
    /// Nothing new.
    Idle,
    Truncated,
    /// Cut back to `to` (the end of the last whole line left), its first bytes unchanged.
    Retracted {
        to: u64,
    },
}

impl Reader {
    /// Runs until shutdown or until the sender is gone.
    pub fn run(self) {
        let mut generation = u64::MAX;
        let mut cursors: Vec<Cursor> = Vec::new();
        let mut buf = Vec::new();
        let mut batch = Batch::default();
        while !self.shutdown.load(Ordering::Relaxed) {
            if let Some((g, views)) = self.registry.snapshot(self.dest, generation) {
                generation = g;
                cursors = self.sync(cursors, views);
            }
            let mut progressed = false;
            let mut truncated = Vec::new();
            let mut retracted = Vec::new();
            for cursor in cursors.iter_mut() {
                for _ in 0..CHUNKS_PER_TURN {
                    match self.read(cursor, &mut buf, &mut batch) {
                        Read::Progress { more } => {
                            if batch.is_full() && !self.send(&mut batch) {
                                return;
                            }
                            // At the end of the file: an append from now on sets the wake flag,
                            // so waiting below cannot miss it.
                            if !more {
                                break;
                            }
                            progressed = true;
                        }
                        Read::Idle => break,
                        Read::Truncated => {
                            truncated.push((
                                cursor.view.id,
                                cursor.view.file.clone(),
                                cursor.offset,
                                cursor.tail.clone().unwrap_or_default(),
                            ));
                            break;
                        }
                        Read::Retracted { to } => {
                            retracted.push((
                                cursor.view.id,
                                cursor.view.file.clone(),
                                cursor.offset,
                                to,
                            ));
                            break;
                        }
                    }
                }
            }
            if !batch.is_empty() && !self.send(&mut batch) {
                return;
            }
            for (id, file, offset, tail) in truncated {
                self.registry.truncated(id, &file, offset, &tail);
                progressed = true;
            }
            for (id, file, offset, to) in retracted {
                self.registry.retracted(id, &file, self.dest, offset, to);
                progressed = true;
            }
            if !progressed {
                self.wake.wait(self.poll);
            }
        }
    }

    /// Keeps cursors of incarnations still present, adds new ones.
    fn sync(&self, cursors: Vec<Cursor>, views: Vec<FileView>) -> Vec<Cursor> {
        let mut old: HashMap<FileId, Cursor> =
            cursors.into_iter().map(|c| (c.view.id, c)).collect();
        views
            .into_iter()
            .map(|view| match old.remove(&view.id) {
                Some(mut cursor) => {
                    // Moved to a copy shorter than what was read here (copytruncate while the
                    // writer appended): nothing of it is left, and what was read past its end
                    // is destroyed.
                    let moved = !Arc::ptr_eq(&cursor.view.file, &view.file);
                    let len = view.file.metadata().map_or(u64::MAX, |m| m.len());
                    if moved && cursor.offset > len {
                        let input = &self.registry.inputs()[view.input];
                        cursor.offset = len;
                        cursor.end_seen = len;
                        cursor.tail = None;
                        cursor.cutter = Cutter::new(input.max_line_bytes, input.long_lines);
                    }
                    cursor.view = view;
                    cursor
                }
                None => {
                    let input = &self.registry.inputs()[view.input];
                    debug!(path = %view.path.display(), id = %view.id, offset = view.start, "reading");
                    Cursor {
                        offset: view.start,
                        end_seen: view.start,
                        tail: None,
                        cutter: Cutter::new(input.max_line_bytes, input.long_lines),
                        bodies: Bodies::new(self.body),
                        last_growth: Instant::now(),
                        view,
                    }
                }
            })
            .collect()
    }

    fn send(&self, batch: &mut Batch) -> bool {
        let full = std::mem::take(batch);
        self.tx.blocking_send(full).is_ok()
    }

    /// Reads one chunk of a file and cuts it into lines appended to `batch`.
    fn read(&self, cursor: &mut Cursor, buf: &mut Vec<u8>, batch: &mut Batch) -> Read {
        let input = &self.registry.inputs()[cursor.view.input];
        if cursor.tail.is_none() {
            let file: &File = &cursor.view.file;
            let same =
                |span: &crate::hash::Span| span.len == 0 || span.matches(file).unwrap_or(false);
            if !same(&cursor.view.fingerprint) || !same(&cursor.view.check) {
                return self.shrunk(cursor, input);
            }
        }
        let overlap = cursor.offset.min(CHECK_BYTES as u64) as usize;
        let chunk = CHUNK.max(cursor.cutter.min_chunk());
        buf.resize(overlap + chunk, 0);
        let file: &File = &cursor.view.file;
        let n = match read_once(file, buf, cursor.offset - overlap as u64) {
            Ok(n) => n,
            Err(err) => {
                events::file::read_failed(&cursor.view.path, &err);
                return Read::Idle;
            }
        };
        if n < overlap
            || cursor
                .tail
                .as_deref()
                .is_some_and(|tail| tail != &buf[..overlap])
        {
            return self.shrunk(cursor, input);
        }
        let data = &buf[overlap..n];
        let now = Instant::now();
        let end = cursor.offset + data.len() as u64;
        if end > cursor.end_seen {
            cursor.end_seen = end;
            cursor.last_growth = now;
        }
        if data.is_empty() && !cursor.cutter.holds_partial() {
            return Read::Idle;
        }
        let mut encoder = Encoder::new(
            self,
            input,
            (cursor.view.id, &cursor.view.file),
            &mut cursor.bodies,
            batch,
        );
        let mut used = cursor
            .cutter
            .cut(data, cursor.offset, |line| encoder.line(line));
        let idle = now.duration_since(cursor.last_growth);
        let held = used < data.len() || cursor.cutter.holds_partial();
        let flush =
            held && n < buf.len()
                && (input.partial_line_timeout.is_some_and(|t| idle >= t)
                    || cursor.view.gone_since.is_some_and(|since| {
                        since.elapsed() >= ROTATE_WAIT && idle >= ROTATE_WAIT
                    }));
        if flush {
            used += cursor
                .cutter
                .flush(&data[used..], cursor.offset + used as u64, |line| {
                    encoder.line(line)
                });
        }
        let read = encoder.finish();
        if used == 0 {
            return Read::Idle;
        }
        self.events
            .dest(self.dest)
            .lines_read(&cursor.view.path, &read);
        cursor.offset += used as u64;
        let consumed = &buf[..overlap + used];
        let keep = consumed.len().min(CHECK_BYTES);
        let tail = cursor.tail.get_or_insert_with(Vec::new);
        tail.clear();
        tail.extend_from_slice(&consumed[consumed.len() - keep..]);
        self.registry.witness(cursor.view.id, cursor.offset, tail);
        Read::Progress {
            more: n == buf.len(),
        }
    }

    /// The file is not what was read: cut back, when the input expects that and its first bytes
    /// are unchanged, else truncated.
    fn shrunk(&self, cursor: &Cursor, input: &InputConfig) -> Read {
        if input.on_shrink != OnShrink::Retract {
            return Read::Truncated;
        }
        match shrink::retract_to(&cursor.view.file, &cursor.view.fingerprint, cursor.offset) {
            Ok(Some(to)) => Read::Retracted { to },
            Ok(None) => Read::Truncated,
            Err(err) => {
                events::file::read_failed(&cursor.view.path, &err);
                Read::Idle
            }
        }
    }
}

/// One `pread`: a regular file returns less than asked only at its end, so a second call to learn
/// that would be wasted.
fn read_once(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    loop {
        match file.read_at(buf, at) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Encodes lines of one file into a batch.
struct Encoder<'a> {
    format: Format,
    framing: Option<Framing>,
    header: Header<'a>,
    file: FileId,
    source: &'a File,
    bodies: &'a mut Bodies,
    batch: &'a mut Batch,
    read: LinesRead,
}

impl<'a> Encoder<'a> {
    fn new(
        reader: &'a Reader,
        input: &'a InputConfig,
        (file, source): (FileId, &'a File),
        bodies: &'a mut Bodies,
        batch: &'a mut Batch,
    ) -> Self {
        let header = Header {
            pri: Pri {
                facility: input.facility,
                severity: input.severity,
            },
            timestamp: chrono::Local::now().fixed_offset(),
            hostname: &reader.hostname,
            tag: &input.tag,
            origin: None,
        };
        Encoder {
            format: reader.format,
            framing: reader.framing,
            header,
            file,
            source,
            bodies,
            batch,
            read: LinesRead::default(),
        }
    }

    fn line(&mut self, line: Line<'_>) {
        match line.kind {
            LineKind::Whole => {}
            LineKind::Split => self.read.split += 1,
            LineKind::Truncated => self.read.truncated += 1,
            LineKind::Partial => self.read.partial += 1,
        }
        self.read.counts.bytes_read += line.end - line.start;
        let body = match line.bytes {
            [] => None,
            bytes => self.bodies.body(bytes, self.source, line.start),
        };
        let Some(body) = body else {
            self.batch.entries.push(Entry {
                file: self.file,
                end: line.end,
                msg: None,
            });
            return;
        };
        self.read.counts.lines_read += 1;
        self.header.origin = Some(Origin {
            file: self.file.0,
            offset: line.start,
        });
        let buf = &mut self.batch.buf;
        let start = buf.len();
        match self.framing {
            Some(framing) => write_framed(buf, self.format, framing, &self.header, body),
            None => write_message(buf, self.format, &self.header, body),
        }
        self.batch.entries.push(Entry {
            file: self.file,
            end: line.end,
            msg: Some(start..buf.len()),
        });
    }

    fn finish(self) -> LinesRead {
        self.read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use estuary_config::shipper::{LongLines, StartAt, WatchMode};
    use estuary_wire::{Facility, Severity};
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::Path;

    fn input(path: &Path, state_file: &Path) -> InputConfig {
        InputConfig {
            path: path.to_owned(),
            tag: "t:".into(),
            facility: Facility::Local7,
            severity: Severity::Informational,
            state_file: state_file.to_owned(),
            watch: WatchMode::Polling {
                interval: Duration::from_millis(20),
            },
            start_at: StartAt::Beginning,
            max_line_bytes: 8192,
            long_lines: LongLines::Split,
            partial_line_timeout: None,
            on_shrink: OnShrink::Retract,
        }
    }

    fn append(path: &Path, lines: impl Iterator<Item = String>) {
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        for line in lines {
            writeln!(f, "{line}").unwrap();
        }
    }

    /// The last word of every message received until `until` holds, or the deadline passes; each
    /// is acknowledged as a sender would once its destination took it.
    fn receive(
        registry: &Registry,
        rx: &mut mpsc::Receiver<Batch>,
        got: &mut Vec<String>,
        until: impl Fn(&[String]) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !until(got) {
            assert!(Instant::now() < deadline, "timed out; got {got:?}");
            match rx.try_recv() {
                Ok(batch) => {
                    for e in &batch.entries {
                        registry.commit(0, e.file, e.end);
                    }
                    got.extend(batch.entries.iter().filter_map(|e| {
                        let msg = String::from_utf8_lossy(&batch.buf[e.msg.clone()?]);
                        msg.split_whitespace().last().map(str::to_owned)
                    }))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    #[test]
    fn a_file_cut_back_is_read_on_from_its_last_whole_line_not_again_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conn.log");
        std::fs::write(&path, "").unwrap();
        let old: Vec<String> = (0..100).map(|i| format!("padding-old{i:03}")).collect();
        append(&path, old.iter().cloned());
        let events = Arc::new(Events::new(&["d".to_owned()]));
        let registry = Arc::new(Registry::new(
            vec![input(&path, &dir.path().join("state"))],
            vec![vec![0]],
            vec!["d".into()],
            events.clone(),
        ));
        registry.scan();
        let (tx, mut rx) = mpsc::channel(4);
        let shutdown = Arc::new(AtomicBool::new(false));
        let reader = Reader {
            dest: 0,
            registry: registry.clone(),
            events: events.clone(),
            hostname: "h".into(),
            format: Format::Rfc3164,
            body: Body::Line,
            framing: None,
            tx,
            wake: Arc::new(Wake::default()),
            shutdown: shutdown.clone(),
            poll: Duration::from_millis(20),
        };
        let thread = std::thread::spawn(move || reader.run());
        let mut got = Vec::new();
        receive(&registry, &mut rx, &mut got, |g| g.len() >= 100);

        // Cut back to 60 whole lines and 3 bytes of the next, past the fingerprinted first bytes:
        // the last 40 lines were never kept.
        let line = "padding-old000\n".len() as u64;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(60 * line + 3).unwrap();
        let retracted = || events.dest(0).counters().snapshot().bytes_retracted;
        let deadline = Instant::now() + Duration::from_secs(20);
        while retracted() == 0 {
            assert!(Instant::now() < deadline, "the cut was not noticed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(retracted(), 40 * line);
        // The writer goes on after its last whole line.
        file.set_len(60 * line).unwrap();
        let new: Vec<String> = (0..10).map(|i| format!("padding-new{i:03}")).collect();
        append(&path, new.iter().cloned());
        receive(&registry, &mut rx, &mut got, |g| g.len() >= 110);
        shutdown.store(true, Ordering::Relaxed);
        drop(rx);
        thread.join().unwrap();

        let expected: Vec<String> = old.into_iter().chain(new).collect();
        assert_eq!(got, expected, "every line once, none read again");
    }
}
