//! Running a sensor: one capture thread (libpcap, live or file), the node split, worker
//! threads split by the symmetric flow hash, one shared set of log files, and capture
//! statistics for `estuary status`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

mod idle;
mod netstats;

use crate::conn::{LocalNets, TrackerConfig};
use crate::decode::Linktype;
use crate::dispatch::Dispatcher;
use crate::engine::Engine;
use crate::flow::Timestamp;
use crate::notice_log::NoticePolicy;
use crate::output::Output;
use crate::savefile::Damage;
use crate::sink::{RecordSink, SharedSink};
use crate::split::{combine_filters, flow_hash, NodeSplit};
use crate::weird::Weird;
use crate::zeeklog::{Clock, LogError, LogFormat, LogSet, Rotation, SystemClock};
use idle::IdleClock;
pub use netstats::WorkerStats;
use netstats::{write_stats, CaptureCounters, StatsWriter, WorkerCounters};

/// Where packets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A pcap or pcapng file, read as fast as possible.
    File(PathBuf),
    /// A live interface.
    Live {
        iface: String,
        snaplen: i32,
        promisc: bool,
    },
}

/// Application analysis on or off (off: conn.log, weird.log and notices only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Analysis {
    #[default]
    Full,
    ConnOnly,
}

/// Everything a sensor run needs.
#[derive(Debug, Clone)]
pub struct SensorOptions {
    pub source: Source,
    pub filter: Option<String>,
    pub logdir: PathBuf,
    pub format: LogFormat,
    pub rotation: Rotation,
    pub ignore_checksums: bool,
    pub split: NodeSplit,
    /// Worker threads (`lb_procs`).
    pub workers: usize,
    pub analysis: Analysis,
    pub local_nets: LocalNets,
    pub notice_policy: NoticePolicy,
    /// Where capture statistics go (default: `<logdir>/netstats.json`).
    pub stats_file: Option<PathBuf>,
    pub max_conns: usize,
}

impl SensorOptions {
    pub fn new(source: Source, logdir: PathBuf) -> Self {
        SensorOptions {
            source,
            filter: None,
            logdir,
            format: LogFormat::Tsv,
            rotation: Rotation::default(),
            ignore_checksums: false,
            split: NodeSplit::single(),
            workers: 1,
            analysis: Analysis::Full,
            local_nets: LocalNets::zeek_private(),
            notice_policy: NoticePolicy::default(),
            stats_file: None,
            max_conns: 1_000_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    #[error("{context}: {source}")]
    Pcap {
        context: String,
        #[source]
        source: pcap::Error,
    },
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a worker thread panicked")]
    Worker,
    /// The capture file is damaged; everything before the damage was analyzed and logged.
    #[error("{}: {}", path.display(), damage_text(damage, *packets))]
    Damaged {
        path: PathBuf,
        damage: Option<Damage>,
        /// Packets read before the damage (after the BPF filter).
        packets: u64,
        #[source]
        source: pcap::Error,
    },
}

fn damage_text(damage: &Option<Damage>, packets: u64) -> String {
    match damage {
        Some(d) => format!("damaged capture file: {d}"),
        None => format!("damaged capture file after packet {packets}"),
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Packets the capture delivered (after the BPF filter).
    pub received: u64,
    pub dropped_kernel: u64,
    pub dropped_interface: u64,
    /// Packets handed to this node's workers (after the node split).
    pub analyzed: u64,
    pub per_worker: Vec<WorkerStats>,
    pub records: u64,
}

/// What the reader hands a worker.
enum Work {
    Packet(OwnedPacket),
    /// Live capture has been idle: move packet time to this value so timers fire.
    Idle(f64),
}

struct OwnedPacket {
    ts: f64,
    wire_len: usize,
    data: Vec<u8>,
}

const BATCH: usize = 256;
const FLUSH_EVERY: Duration = Duration::from_millis(500);
const STATS_EVERY: Duration = Duration::from_secs(5);
const IDLE_WAIT: Duration = Duration::from_millis(5);

enum Capture {
    Offline(pcap::Capture<pcap::Offline>),
    Live(pcap::Capture<pcap::Active>),
}

impl Capture {
    fn open(opts: &SensorOptions) -> Result<Capture, SensorError> {
        let filter = combine_filters(opts.filter.as_deref(), opts.split.bpf().as_deref());
        let mut cap = match &opts.source {
            Source::File(path) => {
                pcap::Capture::from_file_with_precision(path, pcap::Precision::Micro)
                    .map(Capture::Offline)
                    .map_err(|source| SensorError::Pcap {
                        context: format!("opening {}", path.display()),
                        source,
                    })?
            }
            Source::Live {
                iface,
                snaplen,
                promisc,
            } => {
                let denied = |what: &str, source: pcap::Error| {
                    let text = source.to_string().to_lowercase();
                    let hint = (text.contains("not permitted") || text.contains("permission"))
                        .then(crate::capabilities::capture_hint)
                        .flatten();
                    SensorError::Pcap {
                        context: match hint {
                            Some(hint) => format!("{what} {iface} ({hint})"),
                            None => format!("{what} {iface}"),
                        },
                        source,
                    }
                };
                let inactive = pcap::Capture::from_device(iface.as_str())
                    .map_err(|source| denied("interface", source))?;
                let active = inactive
                    .promisc(*promisc)
                    .snaplen(*snaplen)
                    .timeout(100)
                    .immediate_mode(true)
                    .buffer_size(64 << 20)
                    .open()
                    .and_then(|c| c.setnonblock())
                    .map_err(|source| denied("opening interface", source))?;
                Capture::Live(active)
            }
        };
        if let Some(f) = filter {
            let r = match &mut cap {
                Capture::Offline(c) => c.filter(&f, true),
                Capture::Live(c) => c.filter(&f, true),
            };
            r.map_err(|source| SensorError::Pcap {
                context: format!("BPF filter {f:?}"),
                source,
            })?;
            tracing::info!(filter = %f, "BPF filter applied");
        }
        Ok(cap)
    }

    fn linktype(&self) -> Linktype {
        match self {
            Capture::Offline(c) => Linktype(c.get_datalink().0),
            Capture::Live(c) => Linktype(c.get_datalink().0),
        }
    }

    fn next(&mut self) -> Result<pcap::Packet<'_>, pcap::Error> {
        match self {
            Capture::Offline(c) => c.next_packet(),
            Capture::Live(c) => c.next_packet(),
        }
    }

    fn stats(&mut self) -> Option<pcap::Stat> {
        match self {
            Capture::Offline(_) => None,
            Capture::Live(c) => c.stats().ok(),
        }
    }
}

fn packet_time(h: &pcap::PacketHeader) -> f64 {
    h.ts.tv_sec as f64 + h.ts.tv_usec as f64 / 1e6
}

/// The `peer` column of weird.log: a single sensor, named as Zeek's standalone node is.
const PEER: &str = "zeek";

fn tracker_config(opts: &SensorOptions) -> TrackerConfig {
    TrackerConfig {
        ignore_checksums: opts.ignore_checksums,
        local_nets: opts.local_nets.clone(),
        max_conns: opts.max_conns,
        peer: PEER.to_string(),
        ..TrackerConfig::default()
    }
}

fn submit_all(sink: &SharedSink, engine: &mut Engine) -> Result<(), LogError> {
    let records = engine.take_records();
    if records.is_empty() {
        return Ok(());
    }
    let mut p = sink.lock();
    for r in records {
        p.submit(r)?;
    }
    Ok(())
}

/// Runs the sensor until the input ends or `stop` is set. Logs are complete (with `#close`)
/// when this returns.
pub fn run(opts: &SensorOptions, stop: &AtomicBool) -> Result<Summary, SensorError> {
    run_with_clock(opts, stop, Arc::new(SystemClock))
}

pub fn run_with_clock(
    opts: &SensorOptions,
    stop: &AtomicBool,
    clock: Arc<dyn Clock>,
) -> Result<Summary, SensorError> {
    let logs = LogSet::new(&opts.logdir, opts.format, opts.rotation, clock).map_err(|source| {
        SensorError::Io {
            path: opts.logdir.clone(),
            source,
        }
    })?;
    let sink = SharedSink::new(RecordSink::new(
        logs,
        opts.notice_policy.clone(),
        opts.local_nets.clone(),
    ));
    let dispatcher = Arc::new(match opts.analysis {
        Analysis::Full => Dispatcher::all(),
        Analysis::ConnOnly => Dispatcher::none(),
    });
    let cap = Capture::open(opts)?;
    let linktype = cap.linktype();
    tracing::info!(source = ?opts.source, linktype = linktype.0, workers = opts.workers, "capture started");
    // systemd's Type=notify: the capture is open.
    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]);
    let nworkers = opts.workers.max(1);
    let counters: Arc<Vec<WorkerCounters>> =
        Arc::new((0..nworkers).map(|_| WorkerCounters::default()).collect());
    let stats_path = opts
        .stats_file
        .clone()
        .unwrap_or_else(|| opts.logdir.join("netstats.json"));
    let mut reader = Reader {
        opts,
        cap,
        linktype,
        sink,
        counters,
        live: Arc::default(),
        stats_path,
        summary: Summary::default(),
        last_ts: 0.0,
        damage: None,
    };
    if nworkers == 1 {
        let in_place = InPlace {
            engine: Engine::new(tracker_config(opts), Arc::clone(&dispatcher)),
            linktype,
            sink: reader.sink.clone(),
            counters: Arc::clone(&reader.counters),
        };
        reader.read(stop, in_place)?;
    } else {
        let workers = Workers::spawn(
            nworkers,
            opts,
            &dispatcher,
            &reader.sink,
            linktype,
            &reader.counters,
        )?;
        reader.read(stop, workers)?;
    }
    let damaged = match (reader.damage.take(), &opts.source) {
        (Some(source), Source::File(path)) => Some(reader.damaged(path, source)?),
        _ => None,
    };
    reader.write_stats()?;
    let mut summary = reader.summary;
    let sink = reader.sink.into_inner().ok_or(SensorError::Worker)?;
    summary.records = sink.stats.records;
    sink.close()?;
    match damaged {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// The capture thread's side of a run.
struct Reader<'a> {
    opts: &'a SensorOptions,
    cap: Capture,
    linktype: Linktype,
    sink: SharedSink,
    counters: Arc<Vec<WorkerCounters>>,
    /// What the stats writer thread reads while the capture runs.
    live: Arc<CaptureCounters>,
    stats_path: PathBuf,
    summary: Summary,
    /// The last packet's time.
    last_ts: f64,
    /// What libpcap reported when a capture file ended in damage.
    damage: Option<pcap::Error>,
}

impl Reader<'_> {
    /// Reads packets until the input ends or `stop` is set, hands the ones this node keeps to
    /// `analyzers`, and flushes the logs and writes the stats file along the way.
    fn read(
        &mut self,
        stop: &AtomicBool,
        mut analyzers: impl Analyzers,
    ) -> Result<(), SensorError> {
        let split = &self.opts.split;
        let _writer = StatsWriter::spawn(
            self.stats_path.clone(),
            self.opts,
            STATS_EVERY,
            Arc::clone(&self.live),
            Arc::clone(&self.counters),
        );
        let mut last_stats = Instant::now();
        let mut last_flush = Instant::now();
        let mut idle = IdleClock::new();
        let mut polls: u64 = 0;
        let offline = matches!(self.cap, Capture::Offline(_));
        loop {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            match self.cap.next() {
                Ok(p) => {
                    self.summary.received += 1;
                    self.live
                        .received
                        .store(self.summary.received, Ordering::Relaxed);
                    let hash = (split.count > 1).then(|| flow_hash(self.linktype, p.data));
                    if hash.is_some_and(|h| !split.keeps(h)) {
                        continue;
                    }
                    self.summary.analyzed += 1;
                    self.live
                        .analyzed
                        .store(self.summary.analyzed, Ordering::Relaxed);
                    let ts = packet_time(p.header);
                    idle.packet(ts);
                    self.last_ts = ts;
                    analyzers.packet(Kept {
                        ts,
                        data: p.data,
                        wire_len: p.header.len as usize,
                        hash,
                    })?;
                }
                // Non-blocking live capture with nothing to read: wait a moment, so a stop
                // request is seen promptly without spinning.
                Err(pcap::Error::TimeoutExpired) => {
                    analyzers.idle(idle.idle_time())?;
                    thread::sleep(IDLE_WAIT);
                }
                Err(pcap::Error::NoMorePackets) => break,
                // A damaged file ends the input as its end would: what came before is logged.
                Err(e) if offline => {
                    self.damage = Some(e);
                    break;
                }
                Err(e) => {
                    return Err(SensorError::Pcap {
                        context: "reading packets".into(),
                        source: e,
                    })
                }
            }
            // Reading the clock per packet is measurable; every 1024 packets is often enough.
            polls += 1;
            if polls.is_multiple_of(1024) && last_flush.elapsed() >= FLUSH_EVERY {
                self.sink.lock().flush()?;
                last_flush = Instant::now();
                if last_stats.elapsed() >= STATS_EVERY {
                    analyzers.publish();
                    self.publish_drops();
                    last_stats = Instant::now();
                }
            }
        }
        analyzers.finish()
    }

    /// Logs the weird for a capture file that ended in damage; returns the error to end with.
    fn damaged(&mut self, path: &Path, source: pcap::Error) -> Result<SensorError, SensorError> {
        let damage = crate::savefile::locate(path).unwrap_or_else(|e| {
            tracing::warn!(path = %path.display(), error = %e, "cannot locate the damage");
            None
        });
        let packets = self.summary.received;
        let addl = match &damage {
            Some(d) => format!("{d}; {source}"),
            None => format!("after packet {packets}; {source}"),
        };
        let weird = Weird::flow(
            Timestamp(self.last_ts),
            None,
            crate::savefile::WEIRD,
            Some(addl),
            None,
            PEER,
        );
        self.sink.lock().submit(Output::Log(Box::new(weird)))?;
        Ok(SensorError::Damaged {
            path: path.to_path_buf(),
            damage,
            packets,
            source,
        })
    }

    fn publish_drops(&mut self) {
        if let Some(s) = self.cap.stats() {
            let live = &self.live;
            live.dropped_kernel
                .store(u64::from(s.dropped), Ordering::Relaxed);
            live.dropped_interface
                .store(u64::from(s.if_dropped), Ordering::Relaxed);
        }
    }

    fn write_stats(&mut self) -> Result<(), SensorError> {
        update_stats(&mut self.cap, &mut self.summary, &self.counters);
        write_stats(&self.stats_path, self.opts, &self.summary)
    }
}

/// A packet this node keeps, as the capture loop hands it on.
struct Kept<'a> {
    ts: f64,
    data: &'a [u8],
    wire_len: usize,
    /// The flow hash, if the node split needed it.
    hash: Option<u64>,
}

/// Where the capture loop hands the packets this node keeps.
trait Analyzers {
    fn packet(&mut self, p: Kept<'_>) -> Result<(), SensorError>;

    /// The capture had nothing to read; `advance_to` is the packet time to move to, once due.
    fn idle(&mut self, advance_to: Option<f64>) -> Result<(), SensorError>;

    /// Updates the counters kept on the capture thread, before a stats write.
    fn publish(&self);

    /// The input has ended: analyze what is left and wait until it is logged.
    fn finish(self) -> Result<(), SensorError>;
}

/// One worker: packets are analyzed on the capture thread.
struct InPlace {
    engine: Engine,
    linktype: Linktype,
    sink: SharedSink,
    counters: Arc<Vec<WorkerCounters>>,
}

impl Analyzers for InPlace {
    fn packet(&mut self, p: Kept<'_>) -> Result<(), SensorError> {
        self.engine.packet(p.ts, self.linktype, p.data, p.wire_len);
        Ok(submit_all(&self.sink, &mut self.engine)?)
    }

    fn idle(&mut self, advance_to: Option<f64>) -> Result<(), SensorError> {
        if let Some(t) = advance_to {
            self.engine.advance(t);
            submit_all(&self.sink, &mut self.engine)?;
        }
        Ok(())
    }

    fn publish(&self) {
        self.counters[0].publish(&self.engine);
    }

    fn finish(mut self) -> Result<(), SensorError> {
        self.engine.finish();
        self.counters[0].publish(&self.engine);
        Ok(submit_all(&self.sink, &mut self.engine)?)
    }
}

/// Worker threads, each fed batches of the flows the flow hash gives it.
struct Workers {
    linktype: Linktype,
    /// The node split's count: workers divide what is left of the hash after the node split.
    nodes: u64,
    senders: Vec<SyncSender<Vec<Work>>>,
    batches: Vec<Vec<Work>>,
    handles: Vec<thread::JoinHandle<Result<(), LogError>>>,
}

impl Workers {
    fn spawn(
        n: usize,
        opts: &SensorOptions,
        dispatcher: &Arc<Dispatcher>,
        sink: &SharedSink,
        linktype: Linktype,
        counters: &Arc<Vec<WorkerCounters>>,
    ) -> Result<Workers, SensorError> {
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = sync_channel::<Vec<Work>>(64);
            senders.push(tx);
            let engine = Engine::new(tracker_config(opts), Arc::clone(dispatcher));
            let sink = sink.clone();
            let counters = Arc::clone(counters);
            handles.push(
                thread::Builder::new()
                    .name(format!("sensor-worker-{i}"))
                    .spawn(move || worker(i, engine, rx, sink, linktype, counters))
                    .map_err(|source| SensorError::Io {
                        path: PathBuf::from("worker thread"),
                        source,
                    })?,
            );
        }
        Ok(Workers {
            linktype,
            nodes: u64::from(opts.split.count.max(1)),
            senders,
            batches: (0..n).map(|_| Vec::with_capacity(BATCH)).collect(),
            handles,
        })
    }

    fn send(&self, w: usize, batch: Vec<Work>) -> Result<(), SensorError> {
        self.senders[w].send(batch).map_err(|_| SensorError::Worker)
    }
}

impl Analyzers for Workers {
    fn packet(&mut self, p: Kept<'_>) -> Result<(), SensorError> {
        let hash = p.hash.unwrap_or_else(|| flow_hash(self.linktype, p.data));
        let w = (hash / self.nodes % self.batches.len() as u64) as usize;
        self.batches[w].push(Work::Packet(OwnedPacket {
            ts: p.ts,
            wire_len: p.wire_len,
            data: p.data.to_vec(),
        }));
        if self.batches[w].len() >= BATCH {
            let full = std::mem::replace(&mut self.batches[w], Vec::with_capacity(BATCH));
            self.send(w, full)?;
        }
        Ok(())
    }

    fn idle(&mut self, advance_to: Option<f64>) -> Result<(), SensorError> {
        for w in 0..self.batches.len() {
            if let Some(t) = advance_to {
                self.batches[w].push(Work::Idle(t));
            }
            if !self.batches[w].is_empty() {
                let batch = std::mem::take(&mut self.batches[w]);
                self.send(w, batch)?;
            }
        }
        Ok(())
    }

    /// Workers publish their own counters.
    fn publish(&self) {}

    fn finish(mut self) -> Result<(), SensorError> {
        for w in 0..self.batches.len() {
            let batch = std::mem::take(&mut self.batches[w]);
            if !batch.is_empty() {
                self.send(w, batch)?;
            }
        }
        drop(self.senders);
        for h in self.handles {
            match h.join() {
                Ok(r) => r?,
                Err(_) => return Err(SensorError::Worker),
            }
        }
        Ok(())
    }
}

fn worker(
    index: usize,
    mut engine: Engine,
    rx: Receiver<Vec<Work>>,
    sink: SharedSink,
    linktype: Linktype,
    counters: Arc<Vec<WorkerCounters>>,
) -> Result<(), LogError> {
    for batch in rx {
        for work in &batch {
            match work {
                Work::Packet(p) => {
                    engine.packet(p.ts, linktype, &p.data, p.wire_len);
                }
                Work::Idle(t) => engine.advance(*t),
            }
        }
        submit_all(&sink, &mut engine)?;
        counters[index].publish(&engine);
    }
    engine.finish();
    counters[index].publish(&engine);
    submit_all(&sink, &mut engine)
}

fn update_stats(cap: &mut Capture, summary: &mut Summary, counters: &[WorkerCounters]) {
    if let Some(s) = cap.stats() {
        summary.dropped_kernel = u64::from(s.dropped);
        summary.dropped_interface = u64::from(s.if_dropped);
    }
    summary.per_worker = counters.iter().map(WorkerCounters::load).collect();
}
