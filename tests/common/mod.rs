//! Shared helpers for the cross-process tests: start the real binary and real peers, wait for
//! outcomes, count lines by sequence number.
#![allow(dead_code)] // each test binary uses a different subset

pub mod line_sink;
pub mod prereq;
pub mod prometheus;
pub mod relp;
pub mod rng;

use std::collections::BTreeMap;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `estuary` binary built for this test run.
pub fn estuary_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_estuary"))
}

/// The repository's test fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    socket.local_addr().expect("local addr").port()
}

/// Polls `check` every 20 ms until it returns `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until a socket is bound to UDP `port` (as `/proc/net/udp` and `udp6` list it).
pub fn wait_for_udp_bound(port: u16, timeout: Duration) {
    let local = format!(":{port:04X} ");
    wait_for(
        timeout,
        &format!("a socket bound to UDP port {port}"),
        || {
            ["/proc/net/udp", "/proc/net/udp6"]
                .iter()
                .filter_map(|table| std::fs::read_to_string(table).ok())
                .any(|text| {
                    text.lines()
                        .filter_map(|l| l.split_whitespace().nth(1))
                        .any(|addr| format!("{addr} ").ends_with(&local))
                })
                .then_some(())
        },
    );
}

/// Waits until something listens on 127.0.0.1:`port` (TCP).
pub fn wait_for_tcp_listen(port: u16, timeout: Duration) {
    wait_for(timeout, &format!("a listener on 127.0.0.1:{port}"), || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    });
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a failing test leaves
/// nothing running.
pub struct Daemon {
    pub name: String,
    child: Option<Child>,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `cmd` with stdout and stderr captured into `<log_dir>/<name>.log`.
    pub fn spawn(name: &str, mut cmd: Command, log_dir: &Path) -> Daemon {
        let stderr_path = log_dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&stderr_path).expect("create daemon log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Daemon {
            name: name.to_owned(),
            child: Some(child),
            stderr_path,
        }
    }

    /// Starts `estuary <args>`.
    pub fn estuary(name: &str, args: &[&str], log_dir: &Path) -> Daemon {
        let mut cmd = Command::new(estuary_bin());
        cmd.args(args).env("RUST_LOG", "info");
        Daemon::spawn(name, cmd, log_dir)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `kill -9`, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait up to `grace` for a clean exit (SIGKILL after). Returns the exit status
    /// if the process exited by itself.
    pub fn terminate(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Waits up to `timeout` for the process to end by itself and returns its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let status = wait_for(timeout, &format!("{} to exit", self.name), || {
            child.try_wait().expect("poll child")
        });
        self.child = None;
        status
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// What the process printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Where the rsyslogd binary is, or `None` when rsyslog is not installed (the test then fails
/// with a message naming the missing package, as CI installs it).
pub fn rsyslogd() -> PathBuf {
    let path = PathBuf::from("/usr/sbin/rsyslogd");
    assert!(
        path.exists(),
        "rsyslogd not found: apt-get install rsyslog rsyslog-relp (see .ci/run)"
    );
    path
}

/// Starts a private rsyslogd in the foreground with `config` (RainerScript or legacy) written to
/// `<dir>/rsyslog.conf`, its own work directory and pid file. Nothing system-wide is touched.
pub fn start_rsyslog(name: &str, dir: &Path, config: &str) -> Daemon {
    let work = dir.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).expect("rsyslog work dir");
    let conf = dir.join(format!("{name}.conf"));
    let full = format!("global(workDirectory=\"{}\")\n{config}", work.display());
    std::fs::write(&conf, full).expect("write rsyslog config");
    let mut cmd = Command::new(rsyslogd());
    cmd.arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.join(format!("{name}.pid")));
    Daemon::spawn(name, cmd, dir)
}

/// The sequence numbers in `text`: every match of `C<17 digits>` (the bench generator's uid form)
/// or of `seq=<digits>`, counted.
pub fn count_sequence_numbers(text: &str) -> BTreeMap<u64, u32> {
    let re = regex::Regex::new(r"(?:\bC(\d{17})\b|\bseq=(\d+)\b)").expect("valid regex");
    let mut counts = BTreeMap::new();
    for caps in re.captures_iter(text) {
        let digits = caps
            .get(1)
            .or_else(|| caps.get(2))
            .expect("one group matched");
        let seq: u64 = digits.as_str().parse().expect("digits");
        *counts.entry(seq).or_insert(0) += 1;
    }
    counts
}

/// Lost and duplicated sequence numbers among `0..expected`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub missing: Vec<u64>,
    pub duplicated: Vec<u64>,
    pub unexpected: Vec<u64>,
}

pub fn tally(counts: &BTreeMap<u64, u32>, expected: std::ops::Range<u64>) -> Tally {
    let mut tally = Tally::default();
    for seq in expected.clone() {
        match counts.get(&seq) {
            None => tally.missing.push(seq),
            Some(&n) if n > 1 => tally.duplicated.push(seq),
            Some(_) => {}
        }
    }
    tally.unexpected = counts
        .keys()
        .copied()
        .filter(|s| !expected.contains(s))
        .collect();
    tally
}

/// A running `estuary aggregate` with its folders and ports (aggregator tests).
pub struct Aggregator {
    pub daemon: Daemon,
    pub dir: PathBuf,
    pub log_dir: PathBuf,
    pub spool_dir: PathBuf,
    pub tcp: u16,
    pub config: PathBuf,
}

impl Aggregator {
    /// Writes `<dir>/aggregator.cfg` (LogDir, SpoolDir, ListenTCP on a free port, no mail, plus
    /// `extra` lines) and starts the aggregator on it; returns once TCP listens.
    pub fn start(dir: &Path, extra: &str) -> Aggregator {
        let log_dir = dir.join("logs");
        let spool_dir = dir.join("spool");
        let tcp = free_tcp_port();
        let config = dir.join("aggregator.cfg");
        let mut text = format!(
            "LogDir = {}\nSpoolDir = {}\nListenTCP = 127.0.0.1:{tcp}\n",
            log_dir.display(),
            spool_dir.display()
        );
        if !extra.contains("SendMail") && !extra.contains("SmtpServer") {
            text.push_str("SendMail =\n");
        }
        text.push_str(extra);
        std::fs::write(&config, text).expect("write aggregator config");
        Self::start_with(dir, log_dir, spool_dir, tcp, config)
    }

    fn start_with(
        dir: &Path,
        log_dir: PathBuf,
        spool_dir: PathBuf,
        tcp: u16,
        config: PathBuf,
    ) -> Aggregator {
        let daemon = Daemon::estuary(
            "aggregator",
            &[
                "aggregate",
                "--config",
                config.to_str().expect("utf-8 path"),
            ],
            dir,
        );
        let mut agg = Aggregator {
            daemon,
            dir: dir.to_path_buf(),
            log_dir,
            spool_dir,
            tcp,
            config,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() {
            assert!(
                agg.daemon.is_running(),
                "aggregator exited:\n{}",
                agg.daemon.output()
            );
            assert!(
                Instant::now() < deadline,
                "aggregator did not listen:\n{}",
                agg.daemon.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        agg
    }

    /// Starts it again on the same configuration (after a kill or a stop).
    pub fn restart(self) -> Aggregator {
        let Aggregator {
            mut daemon,
            dir,
            log_dir,
            spool_dir,
            tcp,
            config,
        } = self;
        daemon.kill9();
        Self::start_with(&dir, log_dir, spool_dir, tcp, config)
    }

    /// What `estuary status -c <its config>` prints.
    pub fn status_text(&self) -> String {
        let out = Command::new(estuary_bin())
            .args(["status", "-c"])
            .arg(&self.config)
            .output()
            .expect("estuary runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `LogDir/current/<name>`, empty when missing.
    pub fn current(&self, name: &str) -> String {
        std::fs::read_to_string(self.log_dir.join("current").join(name)).unwrap_or_default()
    }

    /// Waits until `LogDir/current/<name>` has at least `lines` lines.
    pub fn wait_lines(&self, name: &str, lines: usize, timeout: Duration) -> String {
        wait_for(timeout, &format!("{lines} lines in {name}"), || {
            let text = self.current(name);
            (text.lines().count() >= lines).then_some(text)
        })
    }

    /// The aggregator's `status.json`.
    pub fn status(&self) -> serde_json::Value {
        std::fs::read(self.spool_dir.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// Sends `frames` (already framed) over one TCP connection and closes it.
pub fn send_tcp(port: u16, frames: &[u8]) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(frames).expect("send");
}

/// An RFC 5424 message from `host` with `tag` and `body`, octet-counted.
pub fn octet_frame(host: &str, tag: &str, body: &str) -> Vec<u8> {
    let msg = format!("<190>1 2026-11-22T12:00:00.000000+00:00 {host} {tag} - - - {body}");
    format!("{} {msg}", msg.len()).into_bytes()
}

/// All lines of all files under a running aggregator's LogDir (recursively), decompressing
/// `*.gz`: skips the `.tmp.*` archives being written and tolerates files that move away while
/// being read.
pub fn read_aggregator_logs(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with(".tmp.") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "gz") {
                let Ok(file) = std::fs::File::open(&path) else {
                    continue;
                };
                let mut text = String::new();
                use std::io::Read;
                if flate2::read::MultiGzDecoder::new(file)
                    .read_to_string(&mut text)
                    .is_ok()
                {
                    out.push_str(&text);
                }
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    out
}

/// Waits until the file at `path` has at least `count` lines and returns them.
pub fn wait_for_lines(path: &Path, count: usize, what: &str, timeout: Duration) -> Vec<String> {
    wait_for(timeout, what, || {
        let text = std::fs::read_to_string(path).ok()?;
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        (lines.len() >= count).then_some(lines)
    })
}

/// An rsyslog configuration that writes every message it receives, raw, one per line to `out`.
/// `setup` holds the `global()`/`module()` lines, `input` the `input()` parameters.
pub fn rsyslog_receiver_config(setup: &str, input: &str, out: &Path) -> String {
    format!(
        "{setup}template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         input({input} ruleset=\"out\")\n\
         ruleset(name=\"out\") {{ action(type=\"omfile\" file=\"{}\" template=\"raw\") }}\n",
        out.display()
    )
}

/// An rsyslog configuration that tails `log` with imfile as host `sensor1`, `tag`, local7.info,
/// and forwards every line with `action` (the `action()` parameters). `setup` comes first.
pub fn rsyslog_forwarder_config(setup: &str, log: &Path, tag: &str, action: &str) -> String {
    format!(
        "{setup}global(localHostname=\"sensor1\" parser.escapeControlCharacterTab=\"off\")\n\
         module(load=\"imfile\")\n\
         input(type=\"imfile\" file=\"{}\" tag=\"{tag}\" facility=\"local7\" \
         severity=\"info\" ruleset=\"fwd\")\n\
         ruleset(name=\"fwd\") {{ action({action}) }}\n",
        log.display()
    )
}

/// Reads the next RELP frame into `buf`, failing the test on a bad frame, EOF or after `timeout`.
pub async fn read_relp_frame<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut bytes::BytesMut,
    timeout: Duration,
) -> estuary_wire::relp::Frame {
    use tokio::io::AsyncReadExt;
    use tokio_util::codec::Decoder;
    let read = async {
        loop {
            if let Some(frame) = estuary_wire::relp::RelpCodec::default()
                .decode(buf)
                .expect("valid RELP")
            {
                return frame;
            }
            let n = stream.read_buf(buf).await.expect("read RELP");
            assert!(n > 0, "peer closed the RELP connection");
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .expect("RELP frame in time")
}

pub async fn write_relp_frame<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &estuary_wire::relp::Frame,
) {
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::Encoder;
    let mut out = bytes::BytesMut::new();
    estuary_wire::relp::RelpCodec::default()
        .encode(frame, &mut out)
        .expect("encode RELP");
    stream.write_all(&out).await.expect("write RELP");
}

/// PEM files of a test CA and two leaves it signed, each leaf as (certificate, key).
pub struct TestPki {
    pub ca: PathBuf,
    /// `aggregator`, for `localhost`.
    pub server: (PathBuf, PathBuf),
    /// `sensor1`, for `sensor1.example`.
    pub client: (PathBuf, PathBuf),
}

/// Writes a [`TestPki`] into `dir`.
pub fn test_pki(dir: &Path) -> TestPki {
    test_pki_with_ca(dir, "estuary test CA")
}

/// Writes a [`TestPki`] whose CA is named `ca_name` into `dir` (created if missing). CAs with
/// different names are unrelated: one's leaves fail against the other with `UnknownIssuer`.
pub fn test_pki_with_ca(dir: &Path, ca_name: &str) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa};
    std::fs::create_dir_all(dir).expect("PKI dir");
    let write = |name: &str, contents: &str| {
        let path = dir.join(name);
        std::fs::write(&path, contents).expect("write PEM");
        path
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let leaf = |cn: &str, dns: &str| {
        let mut params = CertificateParams::new(vec![dns.to_owned()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &ca, &ca_key).expect("leaf cert");
        (
            write(&format!("{cn}.crt"), &cert.pem()),
            write(&format!("{cn}.key"), &key.serialize_pem()),
        )
    };
    TestPki {
        ca: write("ca.pem", &ca.pem()),
        server: leaf("aggregator", "localhost"),
        client: leaf("sensor1", "sensor1.example"),
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// `None` where mounting is not allowed (not root).
    pub fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `estuary standalone` installed in `<tmp>/site`, its aggregator on a free loopback port.
pub struct Standalone {
    pub daemon: Daemon,
    pub dir: PathBuf,
    pub port: u16,
}

impl Standalone {
    /// Starts it with `extra` arguments (e.g. `-r FILE`); its output goes to `tmp`.
    pub fn start(tmp: &Path, extra: &[&str]) -> Standalone {
        let dir = tmp.join("site");
        let port = free_tcp_port();
        let (dir_arg, port_arg) = (dir.display().to_string(), port.to_string());
        let mut args = vec!["standalone", "--dir", &dir_arg, "--port", &port_arg];
        args.extend_from_slice(extra);
        let daemon = Daemon::estuary("standalone", &args, tmp);
        Standalone { daemon, dir, port }
    }
}

/// A real SMTP server (aiosmtpd) on 127.0.0.1:`port` keeping each mail as `<inbox>/<ns>.eml`,
/// its first line `X-Rcpt: <recipients>`.
pub fn smtp_server(dir: &Path, port: u16) -> (Daemon, PathBuf) {
    const SERVER: &str = r#"
import os, signal, sys, time
from aiosmtpd.controller import Controller
class Save:
    async def handle_DATA(self, server, session, envelope):
        path = os.path.join(sys.argv[2], "%d.eml" % time.time_ns())
        with open(path + ".tmp", "wb") as f:
            f.write(("X-Rcpt: %s\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 OK"
controller = Controller(Save(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
controller.stop()
"#;
    let inbox = dir.join("inbox");
    std::fs::create_dir_all(&inbox).expect("create inbox");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", SERVER, &port.to_string()]).arg(&inbox);
    let daemon = Daemon::spawn("smtpd", cmd, dir);
    wait_for_tcp_listen(port, Duration::from_secs(15));
    (daemon, inbox)
}

/// The mails an [`smtp_server`] received, oldest first, with LF line ends.
pub fn inbox_mails(inbox: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(inbox)
        .expect("read inbox")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .expect("read mail")
                .replace("\r\n", "\n")
        })
        .collect()
}

/// The packets of a capture file as Wireshark's `capinfos` counts them; `None` without it.
pub fn capinfos_packets(path: &Path) -> Option<u64> {
    let out = Command::new("capinfos")
        .args(["-c", "-M"])
        .arg(path)
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("Number of packets:")?.trim().parse().ok())
}

/// One `nats-server` with JetStream (store in `dir/js`) on a free port of 127.0.0.1, its
/// configuration `extra` added to the listener and store; returns it and its port once it listens.
pub fn start_nats_server(dir: &Path, extra: &str) -> (Daemon, u16) {
    let port = free_tcp_port();
    let config = dir.join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\njetstream {{ store_dir: \"{}\" }}\n{extra}",
            dir.join("js").display()
        ),
    )
    .expect("write nats.conf");
    let mut server = Command::new(estuary_nats::testing::server_binary());
    server.arg("-c").arg(&config).stdout(Stdio::null());
    let daemon = Daemon::spawn("nats-server", server, dir);
    wait_for_tcp_listen(port, Duration::from_secs(15));
    (daemon, port)
}
