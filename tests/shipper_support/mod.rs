//! Helpers for the shipper tests: a shipper in a temp dir with a legacy rsyslog config, line
//! writers, and small receivers (TCP and RELP) on 127.0.0.1 that keep every message.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use crate::common::{self, tally, Daemon, Tally};

/// Polls `out` for up to 30 s until it holds `lines` lines; returns its text either way.
pub fn wait_for_file_lines(out: &Path, lines: usize) -> String {
    let mut text = String::new();
    for _ in 0..300 {
        text = std::fs::read_to_string(out).unwrap_or_default();
        if text.lines().count() >= lines {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    text
}

/// The `seq=N` numbers in `text`, sorted.
pub fn received_seqs(text: &str) -> Vec<u64> {
    let re = regex::Regex::new(r"\bseq=(\d+)\b").expect("seq regex");
    let mut got: Vec<u64> = re
        .captures_iter(text)
        .map(|c| c[1].parse().expect("seq number"))
        .collect();
    got.sort();
    got
}

/// A temp dir with an rsyslog receiver's port and the file it writes `<tag> <msg>` lines to,
/// tabs kept.
pub struct RsyslogSink {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub out: PathBuf,
}

impl RsyslogSink {
    pub fn new(port: u16) -> RsyslogSink {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("received.log");
        RsyslogSink { dir, port, out }
    }

    /// `global_extra` adds `global()` parameters, `module` holds the `module()` parameters and
    /// `input_extra` extra `input()` parameters for an `input_type` input on `port`.
    pub fn config(
        &self,
        global_extra: &str,
        module: &str,
        input_type: &str,
        input_extra: &str,
    ) -> String {
        format!(
            "global(parser.escapeControlCharacterTab=\"off\"{global_extra})\n\
             module({module})\n\
             template(name=\"plain\" type=\"string\" string=\"%syslogtag% %msg%\\n\")\n\
             ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{}\" template=\"plain\") }}\n\
             input(type=\"{input_type}\" address=\"127.0.0.1\" port=\"{}\" ruleset=\"out\"{input_extra})\n",
            self.out.display(),
            self.port
        )
    }

    /// Starts rsyslog with `config` and waits until it listens on the (TCP) port.
    pub fn start_tcp(&self, name: &str, config: &str) -> Daemon {
        let rsyslog = common::start_rsyslog(name, self.dir.path(), config);
        common::wait_for_tcp_listen(self.port, Duration::from_secs(30));
        rsyslog
    }
}

/// How long a test waits for lines to arrive: a deadline, not a speed bound, so generous enough
/// for the debug binary reading 2,000 files on a busy 2-core machine.
pub const SHIP_TIMEOUT: Duration = Duration::from_secs(60);

/// A TCP receiver and a shipper (not yet started) tailing `logs/app.log` with tag `app:` into it.
pub fn app_log_to_tcp() -> (Receiver, Shipper) {
    let receiver = Receiver::tcp();
    let shipper = Shipper::new(&[("app.log", "app:")], &receiver.action());
    (receiver, shipper)
}

/// Asserts that `receiver` gets every number in `expected` exactly once and nothing else, also
/// once the shipper has closed the rotated files it had open (a rotated file read again would
/// send its lines when it is finished).
pub fn assert_exactly_once(receiver: &Receiver, expected: std::ops::Range<u64>, shipper: &Shipper) {
    let check = |tally: Tally, when: &str| {
        assert!(
            tally.missing.is_empty() && tally.duplicated.is_empty() && tally.unexpected.is_empty(),
            "{when}: {tally:?}\nshipper log:\n{}",
            shipper.output()
        );
    };
    check(
        receiver.received.wait_all(expected.clone(), SHIP_TIMEOUT),
        "all arrived",
    );
    if shipper.daemon.is_some() {
        // Closed, and still closed after two more looks at the inputs (a finished file found
        // again would be opened by one of them).
        let mut closed_since: Option<std::time::Instant> = None;
        common::wait_for(ROTATED_CLOSE_TIMEOUT, "rotated files to close", || {
            if shipper.rotated_files_open() > 0 {
                closed_since = None;
                return None;
            }
            let since = *closed_since.get_or_insert_with(std::time::Instant::now);
            (since.elapsed() >= CLOSED_FOR).then_some(())
        });
        check(
            receiver.received.tally(expected),
            "after the rotated files closed",
        );
    }
}

/// How long a rotated file may stay open: the shipper keeps it 5 s for late writers.
const ROTATED_CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Two of the shipper's looks at its inputs (once a second in these tests).
const CLOSED_FOR: Duration = Duration::from_millis(2500);

/// A shipper working in its own temporary directory.
pub struct Shipper {
    pub dir: tempfile::TempDir,
    pub logs: PathBuf,
    pub work: PathBuf,
    pub conf: PathBuf,
    pub daemon: Option<Daemon>,
    runs: usize,
}

impl Shipper {
    /// `inputs` are (file name or glob under `logs/`, tag); `action` is the selector's action,
    /// e.g. `@@127.0.0.1:5514`.
    pub fn new(inputs: &[(&str, &str)], action: &str) -> Shipper {
        Shipper::with_directives(inputs, "", action)
    }

    /// Like `new`, with extra directives before each `$InputRunFileMonitor`.
    pub fn with_directives(inputs: &[(&str, &str)], per_input: &str, action: &str) -> Shipper {
        Shipper::with_config("ship.conf", |logs, work| {
            let mut conf = format!(
                "$WorkDirectory {}\n$ModLoad imfile\n$InputFilePollingInterval 1\n",
                work.display()
            );
            for (i, (name, tag)) in inputs.iter().enumerate() {
                conf.push_str(&format!(
                    "$InputFileName {}\n$InputFileTag {tag}\n$InputFileStateFile state-{i}\n\
                     $InputFileSeverity info\n$InputFileFacility local7\n{per_input}$InputRunFileMonitor\n",
                    logs.join(name).display()
                ));
            }
            conf.push_str(&format!("local7.* {action}\n"));
            conf
        })
    }

    /// A TOML configuration: `inputs` are (file name or glob under `logs/`, tag), each with the
    /// extra keys `input_extra`; `destinations` are complete `[[destination]]` tables.
    pub fn toml(inputs: &[(&str, &str)], input_extra: &str, destinations: &[String]) -> Shipper {
        Shipper::with_config("ship.toml", |logs, work| {
            let mut conf = format!(
                "work_dir = \"{}\"\nhostname = \"testhost\"\nstats_interval = \"1m\"\n",
                work.display()
            );
            for (i, (name, tag)) in inputs.iter().enumerate() {
                conf.push_str(&format!(
                    "[[input]]\npath = \"{}\"\ntag = \"{tag}\"\nfacility = \"local7\"\nseverity = \"info\"\n\
                     state_file = \"state-{i}\"\npoll_interval = \"200ms\"\n{input_extra}\n",
                    logs.join(name).display()
                ));
            }
            for d in destinations {
                conf.push_str(d);
                conf.push('\n');
            }
            conf
        })
    }

    /// A TOML configuration tailing `app.log` (tag `app:`, extra input keys `input_extra`) into
    /// `receiver`, the destination named for its transport.
    pub fn app_log_into(receiver: &Receiver, input_extra: &str) -> Shipper {
        let name = if receiver.relp { "relp" } else { "tcp" };
        Shipper::toml(
            &[("app.log", "app:")],
            input_extra,
            &[receiver.destination(name)],
        )
    }

    /// A fresh temp dir with `logs/`, and the config `config(logs, work)` written to `file_name`.
    fn with_config(file_name: &str, config: impl FnOnce(&Path, &Path) -> String) -> Shipper {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("logs");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&logs).expect("logs dir");
        let conf = dir.path().join(file_name);
        std::fs::write(&conf, config(&logs, &work)).expect("write config");
        Shipper {
            dir,
            logs,
            work,
            conf,
            daemon: None,
            runs: 0,
        }
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.logs.join(name)
    }

    /// The configuration file, for a test that edits it between runs.
    pub fn config_path(&self) -> &Path {
        &self.conf
    }

    pub fn start(&mut self) {
        self.start_under(&[]);
    }

    /// Starts the shipper as the last argument of `wrapper` (e.g. `prlimit --nofile=N --`).
    pub fn start_under(&mut self, wrapper: &[&str]) {
        self.runs += 1;
        let name = format!("shipper-{}", self.runs);
        let conf = self.conf.to_string_lossy().into_owned();
        let bin = common::estuary_bin();
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut cmd = std::process::Command::new(program);
                cmd.args(args).arg(bin);
                cmd
            }
            None => std::process::Command::new(bin),
        };
        let log = std::env::var("SHIPPER_TEST_LOG").unwrap_or_else(|_| "info".into());
        cmd.args(["ship", "--config", &conf]).env("RUST_LOG", log);
        self.daemon = Some(Daemon::spawn(&name, cmd, self.dir.path()));
    }

    /// How many rotated or deleted files the running shipper holds open: files under `logs/`
    /// whose name no longer ends in `.log` (every test input does).
    pub fn rotated_files_open(&self) -> usize {
        let pid = self.daemon.as_ref().expect("shipper running").pid();
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            return 0;
        };
        fds.flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok())
            .filter(|target| target.starts_with(&self.logs))
            .filter(|target| !target.to_string_lossy().ends_with(".log"))
            .count()
    }

    pub fn kill9(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill9();
        }
    }

    /// SIGTERM; asserts a clean exit 0.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            let status = d.terminate(Duration::from_secs(15));
            assert!(
                status.is_some_and(|s| s.success()),
                "shipper exit {status:?}:\n{}",
                d.output()
            );
        }
    }

    /// Everything every run of the shipper logged.
    pub fn output(&self) -> String {
        (1..=self.runs)
            .map(|i| {
                std::fs::read_to_string(self.dir.path().join(format!("shipper-{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Appends `seqs` (counting from 0) to `name`, starts, and waits until `receiver` has them.
    pub fn start_and_ship(&mut self, receiver: &Receiver, name: &str, seqs: std::ops::Range<u64>) {
        append(&self.log(name), seqs.clone());
        self.start();
        receiver.received.wait_all(seqs, SHIP_TIMEOUT);
    }

    /// Waits until the state holds the end of every file under `logs/` (everything shipped is
    /// saved), then kill -9.
    pub fn kill9_after_checkpoint(&mut self) {
        common::wait_for(SHIP_TIMEOUT, "every file's offsets saved", || {
            self.all_saved().then_some(())
        });
        self.kill9();
    }

    /// Whether the state files hold, for every file under `logs/` (by device and inode), offsets
    /// at its end for every destination.
    fn all_saved(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let mut saved: std::collections::HashMap<(u64, u64), u64> = Default::default();
        for state in self.state_files() {
            let text = std::fs::read_to_string(&state).unwrap_or_default();
            let Some(last) = text.lines().rev().find(|l| !l.is_empty()) else {
                continue;
            };
            let Ok(json) = serde_json::from_str::<serde_json::Value>(last) else {
                continue;
            };
            for entry in json["files"].as_array().into_iter().flatten() {
                let (Some(dev), Some(ino)) = (entry["dev"].as_u64(), entry["ino"].as_u64()) else {
                    continue;
                };
                let taken = entry["offsets"]
                    .as_object()
                    .and_then(|o| o.values().filter_map(|v| v.as_u64()).min())
                    .unwrap_or(0);
                let at = saved.entry((dev, ino)).or_default();
                *at = (*at).max(taken);
            }
        }
        std::fs::read_dir(&self.logs)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .all(|m| {
                saved
                    .get(&(m.dev(), m.ino()))
                    .is_some_and(|&at| at >= m.len())
            })
    }

    /// Renames `from` to `to` under `logs/` (a rename rotation).
    pub fn rotate(&self, from: &str, to: &str) {
        std::fs::rename(self.log(from), self.log(to)).expect("rotate by rename");
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the running shipper.
    pub fn signal(&self, signal: &str) {
        let pid = self.daemon.as_ref().expect("shipper running").pid();
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// What `estuary status` prints for this shipper's config.
    pub fn status(&self) -> String {
        let conf = self.conf.to_string_lossy().into_owned();
        let out = std::process::Command::new(common::estuary_bin())
            .args(["status", "--config", &conf])
            .output()
            .expect("run estuary status");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Polls `status` for up to 10 s until `ok` accepts it; returns the last one.
    pub fn wait_status(&self, ok: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            last = self.status();
            if ok(&last) {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        last
    }

    pub fn state_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.work)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().contains("state-"))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Appends `seq=N` lines (tab-separated, Zeek-like) for every N in `seqs`, in one write.
pub fn append(path: &Path, seqs: std::ops::Range<u64>) {
    let text: String = seqs.map(line).collect();
    append_bytes(path, text.as_bytes());
}

/// Line `n` as [`append`] writes it (a Zeek-like row carrying `seq=n`).
pub fn line(n: u64) -> String {
    format!("{n:.6}\tseq={n}\tC{n:017}\t10.0.0.1\t443\ttcp\n")
}

pub fn append_bytes(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log for append");
    f.write_all(bytes).expect("append");
}

/// What a receiver got: the raw messages.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<u8>>>);

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().expect("lock").clone()
    }

    fn push(&self, bytes: &[u8]) {
        self.0.lock().expect("lock").extend_from_slice(bytes);
    }

    /// Counts `seq=N` once per message.
    pub fn tally(&self, expected: std::ops::Range<u64>) -> Tally {
        // Each line also carries its number as a C-uid; count `seq=` only.
        let re = regex::Regex::new(r"\bseq=(\d+)\b").expect("regex");
        let mut only_seq = std::collections::BTreeMap::new();
        for caps in re.captures_iter(&self.text()) {
            let n: u64 = caps[1].parse().expect("digits");
            *only_seq.entry(n).or_insert(0u32) += 1;
        }
        tally(&only_seq, expected)
    }

    /// Waits until every number in `expected` arrived (or panics after `timeout`).
    pub fn wait_all(&self, expected: std::ops::Range<u64>, timeout: Duration) -> Tally {
        let end = std::time::Instant::now() + timeout;
        loop {
            let t = self.tally(expected.clone());
            if t.missing.is_empty() || std::time::Instant::now() > end {
                return t;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

/// How a test receiver behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    /// Sleep this long after each read (a slow destination).
    pub read_delay: Option<Duration>,
    /// RELP: after this many messages on a connection, drop it without acknowledging the rest
    /// (those already read are received, unacknowledged)...
    pub reset_after: Option<usize>,
    /// ...on this many connections.
    pub resets: usize,
}

/// A TCP (plain syslog) or RELP receiver on 127.0.0.1 that can be stopped and restarted on the
/// same port.
pub struct Receiver {
    pub port: u16,
    pub received: Received,
    relp: bool,
    behaviour: Behaviour,
    running: Option<(Arc<AtomicBool>, thread::JoinHandle<()>)>,
    /// Messages acknowledged (RELP) or read (TCP).
    pub messages: Arc<AtomicUsize>,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Connections read to their end so far.
    closed: Arc<AtomicUsize>,
}

impl Receiver {
    pub fn tcp() -> Receiver {
        Receiver::start_new(false, Behaviour::default())
    }

    pub fn relp() -> Receiver {
        Receiver::start_new(true, Behaviour::default())
    }

    pub fn start_new(relp: bool, behaviour: Behaviour) -> Receiver {
        let mut r = Receiver {
            port: common::free_tcp_port(),
            received: Received::default(),
            relp,
            behaviour,
            running: None,
            messages: Arc::new(AtomicUsize::new(0)),
            connections: Arc::new(AtomicUsize::new(0)),
            closed: Arc::new(AtomicUsize::new(0)),
        };
        r.start();
        r
    }

    pub fn start(&mut self) {
        assert!(self.running.is_none());
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        };
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let (received, relp, behaviour, messages, stop2) = (
            self.received.clone(),
            self.relp,
            self.behaviour,
            self.messages.clone(),
            stop.clone(),
        );
        let resets = self.connections.clone();
        let closed = self.closed.clone();
        let handle = thread::spawn(move || {
            let mut conns = Vec::new();
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).expect("blocking");
                        stream
                            .set_read_timeout(Some(Duration::from_millis(50)))
                            .expect("timeout");
                        let (received, messages, stop3, closed) = (
                            received.clone(),
                            messages.clone(),
                            stop2.clone(),
                            closed.clone(),
                        );
                        let mut behaviour = behaviour;
                        if resets.fetch_add(1, Ordering::Relaxed) >= behaviour.resets {
                            behaviour.reset_after = None;
                        }
                        let control = stream.try_clone().expect("clone");
                        conns.push(control);
                        thread::spawn(move || {
                            serve(stream, relp, behaviour, received, messages, stop3);
                            closed.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
            for c in conns {
                let _ = c.shutdown(Shutdown::Both);
            }
        });
        self.running = Some((stop, handle));
    }

    /// Waits until every connection accepted so far was read to its end: what a killed sender had
    /// written is then all received.
    pub fn wait_connections_closed(&self) {
        common::wait_for(
            SHIP_TIMEOUT,
            "the receiver to read closed connections",
            || {
                (self.closed.load(Ordering::Relaxed) >= self.connections.load(Ordering::Relaxed))
                    .then_some(())
            },
        );
    }

    /// Closes the listener and every connection (an outage).
    pub fn stop(&mut self) {
        if let Some((stop, handle)) = self.running.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }

    /// A TOML `[[destination]]` table for this receiver, retrying quickly.
    pub fn destination(&self, name: &str) -> String {
        let transport = if self.relp { "relp" } else { "tcp" };
        format!(
            "[[destination]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {}\ntransport = \"{transport}\"\n\
             format = \"rfc5424\"\nretry_interval = \"100ms\"\nretry_max = \"500ms\"\n",
            self.port
        )
    }

    /// `@@127.0.0.1:port` or `:omrelp:127.0.0.1:port;RSYSLOG_SyslogProtocol23Format`.
    pub fn action(&self) -> String {
        if self.relp {
            format!(
                ":omrelp:127.0.0.1:{};RSYSLOG_SyslogProtocol23Format",
                self.port
            )
        } else {
            format!("@@127.0.0.1:{}", self.port)
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn serve(
    mut stream: TcpStream,
    relp: bool,
    behaviour: Behaviour,
    received: Received,
    messages: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut on_conn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        };
        if let Some(d) = behaviour.read_delay {
            thread::sleep(d);
        }
        buf.extend_from_slice(&chunk[..n]);
        if !relp {
            // Whole lines only: another connection's bytes must not land inside a line, and a
            // line cut by a killed sender was never delivered.
            if let Some(end) = buf.iter().rposition(|&b| b == b'\n') {
                let lines: Vec<u8> = buf.drain(..=end).collect();
                received.push(&lines);
                messages.fetch_add(
                    lines.iter().filter(|&&b| b == b'\n').count(),
                    Ordering::Relaxed,
                );
            }
            continue;
        }
        let mut out = Vec::new();
        while let Some((txnr, cmd, data, used)) = relp_frame(&buf) {
            buf.drain(..used);
            match cmd.as_str() {
                "open" => {
                    let body =
                        b"200 OK\nrelp_version=0\nrelp_software=estuary-test\ncommands=syslog";
                    out.extend_from_slice(format!("{txnr} rsp {} ", body.len()).as_bytes());
                    out.extend_from_slice(body);
                    out.push(b'\n');
                }
                "syslog" => {
                    if behaviour.reset_after.is_some_and(|n| on_conn >= n) {
                        // The connection drops mid-window: this frame and the others read with
                        // it reach the receiver, but their acknowledgements are lost, so the
                        // sender must send them again.
                        received.push(&[&data[..], b"\n"].concat());
                        while let Some((_, cmd, data, used)) = relp_frame(&buf) {
                            buf.drain(..used);
                            if cmd == "syslog" {
                                received.push(&[&data[..], b"\n"].concat());
                            }
                        }
                        let _ = stream.write_all(&out);
                        let _ = stream.shutdown(Shutdown::Both);
                        return;
                    }
                    on_conn += 1;
                    let mut msg = data;
                    msg.push(b'\n');
                    received.push(&msg);
                    messages.fetch_add(1, Ordering::Relaxed);
                    out.extend_from_slice(format!("{txnr} rsp 6 200 OK\n").as_bytes());
                }
                "close" => {
                    out.extend_from_slice(format!("{txnr} rsp 0\n").as_bytes());
                    let _ = stream.write_all(&out);
                    return;
                }
                _ => return,
            }
        }
        if stream.write_all(&out).is_err() {
            return;
        }
    }
}

/// One RELP frame at the start of `buf`: (txnr, command, data, bytes used).
fn relp_frame(buf: &[u8]) -> Option<(u64, String, Vec<u8>, usize)> {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let sp1 = buf.iter().position(|&b| b == b' ')?;
    let sp2 = sp1 + 1 + buf[sp1 + 1..].iter().position(|&b| b == b' ')?;
    let txnr: u64 = text(&buf[..sp1]).parse().ok()?;
    let cmd = text(&buf[sp1 + 1..sp2]);
    let len_end = sp2
        + 1
        + buf[sp2 + 1..]
            .iter()
            .position(|&b| b == b' ' || b == b'\n')?;
    let len: usize = text(&buf[sp2 + 1..len_end]).parse().ok()?;
    if len == 0 {
        return Some((txnr, cmd, Vec::new(), len_end + 1));
    }
    let data_start = len_end + 1;
    if buf.len() < data_start + len + 1 {
        return None;
    }
    Some((
        txnr,
        cmd,
        buf[data_start..data_start + len].to_vec(),
        data_start + len + 1,
    ))
}
