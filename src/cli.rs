//! Subcommands. Each one is a thin call into the crate that owns the job.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::Context;
use clap::{Parser, Subcommand};
use estuary_config::AnyConfig;
use estuary_site::{Daemon, PidFile, PidFileError};

use crate::reload;
use crate::site::{self, SiteCommand};
use crate::stdout::print_out;

#[derive(Debug, Parser)]
#[command(
    name = "estuary",
    version,
    about = "Network security log pipeline: sensor, shipper, aggregator"
)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Write this pid file while running (how `estuary start` follows a sensor); removed at a
    /// clean exit.
    #[arg(long, global = true, hide = true, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tail log files and forward each line as syslog (rsyslog imfile replacement).
    Ship {
        /// Configuration file: rsyslog `.conf` or TOML (shipper), zeekctl `.cfg` or TOML
        /// (aggregator), TOML with `[site]`/`[notice]`/`[log]` (sensor).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the latest statistics of a shipper or aggregator (by its config), or a sensor's netstats.
    Status {
        /// The shipper's or aggregator's configuration file, or a site's node.cfg.
        #[arg(long, short, required_unless_present = "netstats")]
        config: Option<PathBuf>,
        /// With a node.cfg: only these nodes.
        #[arg(value_name = "NODE", requires = "config")]
        nodes: Vec<String>,
        /// A sensor's capture statistics file (`<logdir>/netstats.json`).
        #[arg(long, conflicts_with = "config")]
        netstats: Option<PathBuf>,
    },
    /// Receive syslog, write one merged log per tag, rotate, archive, expire, mail.
    Aggregate {
        /// Configuration file: rsyslog `.conf` or TOML (shipper), zeekctl `.cfg` or TOML
        /// (aggregator), TOML with `[site]`/`[notice]`/`[log]` (sensor).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Periodic duties once, as zeekctl cron: with a node.cfg, restart crashed daemons and mail
    /// crash reports too; with the aggregator's config, expire, check disk, mail, stats.
    Cron {
        /// Configuration file: rsyslog `.conf` or TOML (shipper), zeekctl `.cfg` or TOML
        /// (aggregator), TOML with `[site]`/`[notice]`/`[log]` (sensor).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file; prints every error with file, line and key.
    Check {
        /// Configuration file: rsyslog `.conf` or TOML (shipper), zeekctl `.cfg` or TOML
        /// (aggregator), TOML with `[site]`/`[notice]`/`[log]` (sensor).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print every option of a configuration file with its effective value.
    Config {
        /// Configuration file: rsyslog `.conf` or TOML (shipper), zeekctl `.cfg` or TOML
        /// (aggregator), TOML with `[site]`/`[notice]`/`[log]` (sensor).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Sensor, shipper and aggregator on this host, from the embedded default configuration.
    Standalone(crate::standalone::StandaloneArgs),
    /// Capture packets (live or from a file) and write Zeek-compatible logs.
    Sensor(SensorCommand),
    /// Search the log archive: rows of one log by field filters and time.
    Query(estuary_query::cli::QueryArgs),
    /// Create a site CA and node certificates for mutual TLS.
    Tls(crate::tls::TlsArgs),
    /// Forward an aggregator's committed logs onward (ForwardTo) to ELSA or a SIEM.
    Forward {
        /// The aggregator's configuration (zeekctl `.cfg` or TOML) whose ForwardTo is followed.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Start the daemons of the nodes on this host that are not running (node.cfg).
    Start(crate::site::SiteArgs),
    /// Stop the daemons of the nodes on this host, letting each save or commit what it took.
    Stop(crate::site::SiteArgs),
    /// Stop, then start.
    Restart(crate::site::SiteArgs),
    /// Free space of every path the site uses on this host (node.cfg).
    Df(crate::site::SiteArgs),
    /// Packets received and dropped by the sensors on this host (node.cfg).
    Netstats(crate::site::SiteArgs),
    /// What a crash report of these nodes would hold: state, end of each daemon's log, host.
    Diag(crate::site::SiteArgs),
    /// Every node of a node.cfg with its role, host and what it runs.
    Nodes(crate::site::SiteArgs),
    /// Runs a daemon and records how it ended (exit status or signal) in FILE, for crash
    /// reports; `estuary start` and `cron` run each daemon under it.
    #[command(hide = true)]
    Waiter {
        #[arg(long, value_name = "FILE")]
        record: PathBuf,
        /// The daemon's command line (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// The NATS JetStream cluster between shippers and several aggregators.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create or check the stream, the marks bucket and one consumer per tag of an aggregator
    /// configuration's `Nats*` options (idempotent); refuses servers older than 2.11.
    Init {
        /// The aggregator's configuration (zeekctl `.cfg` or TOML) with `NatsServers` set.
        #[arg(long, short)]
        config: PathBuf,
    },
}

impl Cli {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Sensor(SensorCommand {
                args,
                metrics_address,
            }) => {
                let _pid = self.pid_file.as_deref().map(PidFile::create).transpose()?;
                if let Some(addr) = metrics_address {
                    let netstats = args
                        .stats_file
                        .clone()
                        .unwrap_or_else(|| args.logdir.join("netstats.json"));
                    estuary_metrics::serve(addr, move || {
                        estuary_metrics::sources::sensor(&netstats)
                    })
                    .with_context(|| format!("serve metrics on {addr}"))?;
                }
                Ok(estuary_sensor::command::run(&args.options()?)?)
            }
            Command::Start(a) => site::run(SiteCommand::Start, &a.config, &a.nodes),
            Command::Stop(a) => site::run(SiteCommand::Stop, &a.config, &a.nodes),
            Command::Restart(a) => site::run(SiteCommand::Restart, &a.config, &a.nodes),
            Command::Df(a) => site::run(SiteCommand::Df, &a.config, &a.nodes),
            Command::Netstats(a) => site::run(SiteCommand::Netstats, &a.config, &a.nodes),
            Command::Diag(a) => site::run(SiteCommand::Diag, &a.config, &a.nodes),
            Command::Nodes(a) => site::run(SiteCommand::Nodes, &a.config, &a.nodes),
            Command::Waiter { record, args } => {
                use std::os::unix::process::ExitStatusExt;
                let exe = std::env::current_exe().context("locate the estuary binary")?;
                let status = estuary_site::ending::run_and_record(&record, &exe, &args)
                    .with_context(|| format!("run estuary {args:?}"))?;
                // As a shell reports it: 128 + the signal for a daemon killed by one.
                let code = status
                    .code()
                    .or_else(|| status.signal().map(|s| 128 + s))
                    .unwrap_or(1);
                Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
            }
            Command::Query(args) => Ok(args.run()?),
            Command::Cluster(ClusterCommand::Init { config }) => {
                let config = estuary_config::aggregator::load(&config)?;
                let nats = config.nats.as_ref().with_context(|| {
                    format!("{}: NatsServers is not set", config.source.display())
                })?;
                print_out(
                    &estuary_nats::site::init(nats)?.to_string(),
                    ExitCode::SUCCESS,
                )
            }
            Command::Standalone(args) => args.run(),
            Command::Tls(args) => args.run(),
            Command::Forward { config } => {
                let config = estuary_config::aggregator::load(&config)?;
                let _pid = daemon_start(Daemon::Forward, &config.spool_dir)?;
                if let Some(addr) = config.forward_metrics_address {
                    // The forwarder is a shipper over current/: its statistics per destination.
                    let c = estuary_forward::shipper_config(&config, &[]);
                    estuary_metrics::serve(addr, move || estuary_metrics::sources::shipper(&c))
                        .with_context(|| format!("serve metrics on {addr}"))?;
                }
                estuary_forward::run(&config)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Ship { config } => {
                let path = config.clone();
                let config = estuary_config::shipper::load(&config)?;
                // SIGHUP is blocked before any other thread starts: they all inherit the mask.
                let reload = reload::watch(move || estuary_config::shipper::load(&path).map(drop))?;
                let _pid = daemon_start(Daemon::Ship, &config.work_dir)?;
                if let Some(addr) = config.metrics_address {
                    let c = config.clone();
                    estuary_metrics::serve(addr, move || estuary_metrics::sources::shipper(&c))
                        .with_context(|| format!("serve metrics on {addr}"))?;
                }
                estuary_shipper::run(config)?;
                reload.finish()?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Status {
                config: Some(config),
                nodes,
                ..
            } if site::is_node_cfg(&config) => site::run(SiteCommand::Status, &config, &nodes),
            Command::Status {
                config, netstats, ..
            } => {
                let (text, running) = status(config, netstats)?;
                let code = if running {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                };
                print_out(&text, code)
            }
            Command::Aggregate { config } => {
                let path = config.clone();
                let config = estuary_config::aggregator::load(&config)?;
                let reload =
                    reload::watch(move || estuary_config::aggregator::load(&path).map(drop))?;
                let _pid = daemon_start(Daemon::Aggregate, &config.spool_dir)?;
                if let Some(addr) = config.metrics_address {
                    let c = config.clone();
                    estuary_metrics::serve(addr, move || estuary_metrics::sources::aggregator(&c))
                        .with_context(|| format!("serve metrics on {addr}"))?;
                }
                estuary_aggregator::run(config)?;
                reload.finish()?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Cron { config } if site::is_node_cfg(&config) => {
                site::run(SiteCommand::Cron, &config, &[])
            }
            Command::Cron { config } => {
                let config = estuary_config::aggregator::load(&config)?;
                // With NATS the daemon holding the notice tag mails the findings.
                let mail = config.nats.is_none();
                let report = estuary_aggregator::cron::run(
                    &config,
                    estuary_aggregator::clock::Zone::Local,
                    std::time::SystemTime::now(),
                    mail,
                )?;
                print_out(&report.to_string(), ExitCode::SUCCESS)
            }
            Command::Check { config } => match estuary_config::load_any(&config) {
                Ok(_) => print_out(&format!("{}: OK\n", config.display()), ExitCode::SUCCESS),
                Err(errors) => print_out(&format!("{errors}\n"), ExitCode::FAILURE),
            },
            Command::Config { config } => {
                let options = estuary_config::load_any(&config)?.describe();
                let text: String = options
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}\n"))
                    .collect();
                print_out(&text, ExitCode::SUCCESS)
            }
        }
    }
}

/// The daemon's pid file, once written; removed when the last holder drops it.
type PidGuard = Arc<Mutex<Option<PidFile>>>;

/// Writes the daemon's pid file (removed again at a clean exit; left behind, it marks a crash).
/// A daemon already running on this spool is refused. A spool that does not exist yet is
/// created by the daemon once it has bound its sockets, so the file is written when it appears.
fn daemon_start(daemon: Daemon, spool: &Path) -> anyhow::Result<PidGuard> {
    let guard = PidGuard::default();
    let path = daemon.pid_path(spool);
    if spool.is_dir() {
        *guard.lock().unwrap_or_else(|p| p.into_inner()) = write_pid_file(&path)?;
        return Ok(guard);
    }
    let (late, spool) = (Arc::clone(&guard), spool.to_path_buf());
    std::thread::Builder::new()
        .name("pid-file".into())
        .spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while !spool.is_dir() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            if let Ok(pid) = write_pid_file(&path) {
                *late.lock().unwrap_or_else(|p| p.into_inner()) = pid;
            }
        })
        .context("start the pid file thread")?;
    Ok(guard)
}

/// A live twin is an error; a pid file that cannot be written (a full disk) is only logged:
/// losing `estuary status` for a while is better than not shipping.
fn write_pid_file(path: &Path) -> anyhow::Result<Option<PidFile>> {
    match PidFile::create(path) {
        Ok(pid) => Ok(Some(pid)),
        Err(e @ PidFileError::Running { .. }) => Err(e.into()),
        Err(e) => {
            tracing::warn!("{:#}", anyhow::Error::from(e));
            Ok(None)
        }
    }
}

/// The latest statistics and whether the daemon runs: a sensor's netstats file, or what the
/// running shipper or aggregator of `config` last wrote. A daemon that is not running is
/// reported as crashed or stopped, never by its last snapshot.
fn status(config: Option<PathBuf>, netstats: Option<PathBuf>) -> anyhow::Result<(String, bool)> {
    if let Some(netstats) = netstats {
        let stats = estuary_site::netstats::Netstats::load(&netstats)?;
        let name = netstats.display().to_string();
        return Ok((stats.report(&name, SystemTime::now()), true));
    }
    let config = config.context("--config or --netstats is required")?;
    Ok(match estuary_config::load_any(&config)? {
        AnyConfig::Shipper(c) => match not_running(Daemon::Ship, &c.work_dir)? {
            Some(text) => (text, false),
            None => (estuary_shipper::status(&c)?, true),
        },
        AnyConfig::Aggregator(c) => match not_running(Daemon::Aggregate, &c.spool_dir)? {
            Some(text) => (text, false),
            None => {
                let mut text = estuary_aggregator::status(&c)
                    .with_context(|| format!("read the status in {}", c.spool_dir.display()))?;
                if !c.forward.is_empty() {
                    let forwarder = match not_running(Daemon::Forward, &c.spool_dir)? {
                        Some(text) => text,
                        None => estuary_forward::status(&c).unwrap_or_else(|e| format!("{e}\n")),
                    };
                    text.push_str(&forwarder);
                }
                (text, true)
            }
        },
        AnyConfig::Sensor(_) => {
            anyhow::bail!(
                "a sensor's statistics are in <logdir>/netstats.json: use --netstats FILE"
            )
        }
        AnyConfig::Site(_) => anyhow::bail!("{} is a node.cfg", config.display()),
    })
}

/// `shipper: crashed (pid 12 is gone)` when the daemon is not running, `None` when it is.
fn not_running(daemon: Daemon, spool: &Path) -> anyhow::Result<Option<String>> {
    let state = estuary_site::pidfile::state(&daemon.pid_path(spool))?;
    Ok((!state.is_running())
        .then(|| format!("{}: {}\n", daemon.name(), state.describe(SystemTime::now()))))
}

pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// `estuary sensor`: the sensor's own options, and where its metrics are served.
#[derive(Debug, clap::Args)]
pub struct SensorCommand {
    #[command(flatten)]
    pub args: crate::sensor_args::SensorArgs,
    /// Serve /metrics and /status on this address:port (off unless given).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_address: Option<std::net::SocketAddr>,
}
