//! Parallel compression: the input is cut into chunks of whole lines, every chunk becomes one gzip
//! member on a worker thread, and the members are written in input order.
//!
//! The calling thread only reads and writes; the workers never wait for it while there is input,
//! because a fixed set of buffers circulates (read into, compressed, written, read into again):
//! the next chunks are already queued when a worker finishes one, and memory stays bounded
//! without an allocation per chunk.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use crate::encode::Encoder;
use crate::split::Splitter;
use crate::CHUNK;

/// A gzip compression level, 1 (fastest) to 9 (smallest), as `gzip -1` ... `gzip -9`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level(u32);

impl Level {
    pub fn new(level: u32) -> Option<Level> {
        (1..=9).contains(&level).then_some(Level(level))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for Level {
    /// gzip's own default, `gzip -6`.
    fn default() -> Self {
        Level(6)
    }
}

/// What [`compress`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub members: u64,
}

/// One chunk on its way: its place in the output, the log bytes and the member made of them.
struct Job {
    seq: u64,
    log: Vec<u8>,
    member: Vec<u8>,
}

/// Compresses `input` into `output` as independent gzip members, on as many worker threads as
/// rayon's pool has (`RAYON_NUM_THREADS` sets it). `name` goes into the first member's header as
/// the original file name.
pub fn compress(
    input: impl Read,
    mut output: impl Write,
    level: Level,
    name: Option<&str>,
) -> io::Result<Summary> {
    let threads = rayon::current_num_threads().max(1);
    // Two chunks per worker keep it busy while its last member waits to be written.
    let slots = threads * 2 + 1;
    let (work_tx, work_rx) = mpsc::channel::<Job>();
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<io::Result<Job>>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            scope.spawn(move || worker(work_rx, done_tx, level, name));
        }
        drop(done_tx);
        let summary = order(input, &mut output, slots, work_tx, &done_rx)?;
        output.flush()?;
        Ok(summary)
    })
}

/// The calling thread's loop: reads chunks into free buffers, hands them to the workers, and
/// writes finished members in input order. Returns when every member is written; on an error, the
/// work queue closes when `work` is dropped and the workers end.
fn order(
    input: impl Read,
    output: &mut impl Write,
    slots: usize,
    work: Sender<Job>,
    done: &Receiver<io::Result<Job>>,
) -> io::Result<Summary> {
    let mut splitter = Splitter::new(input);
    let mut free: Vec<Job> = (0..slots)
        .map(|_| Job {
            seq: 0,
            log: Vec::with_capacity(CHUNK + CHUNK / 8),
            member: Vec::new(),
        })
        .collect();
    let mut finished: BTreeMap<u64, Job> = BTreeMap::new();
    let mut summary = Summary::default();
    let (mut sent, mut next) = (0u64, 0u64);
    let mut input_done = false;
    loop {
        while let Some(job) = finished.remove(&next) {
            output.write_all(&job.member)?;
            summary.bytes_in += job.log.len() as u64;
            summary.bytes_out += job.member.len() as u64;
            summary.members += 1;
            next += 1;
            free.push(job);
        }
        if !input_done {
            if let Some(mut job) = free.pop() {
                let more = splitter.fill(&mut job.log)?;
                // An empty input still becomes one (empty) member: a valid gzip file.
                if more || sent == 0 {
                    job.seq = sent;
                    sent += 1;
                    work.send(job)
                        .map_err(|_| io::Error::other("the compression workers stopped"))?;
                } else {
                    free.push(job);
                }
                input_done = !more;
                continue;
            }
        }
        if next == sent {
            return Ok(summary);
        }
        let job = done
            .recv()
            .map_err(|_| io::Error::other("the compression workers stopped"))??;
        finished.insert(job.seq, job);
    }
}

fn worker(
    work: &Mutex<Receiver<Job>>,
    done: Sender<io::Result<Job>>,
    level: Level,
    name: Option<&str>,
) {
    let mut encoder = Encoder::new(level);
    loop {
        // A poisoned lock means another worker panicked; this one stops too.
        let job = match work.lock().map(|rx| rx.recv()) {
            Ok(Ok(job)) => job,
            _ => return,
        };
        let mut job = job;
        let name = name.filter(|_| job.seq == 0);
        let result = encoder
            .member(&job.log, name, &mut job.member)
            .map(|()| job);
        if done.send(result).is_err() {
            return;
        }
    }
}
