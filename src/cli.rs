//! Subcommands. Each one is a thin call into the crate that owns the job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use estuary_config::AnyConfig;

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tail log files and forward each line as syslog (rsyslog imfile replacement).
    Ship {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the latest statistics of a shipper or aggregator (by its config), or a sensor's netstats.
    Status {
        #[arg(long, short, required_unless_present = "netstats")]
        config: Option<PathBuf>,
        /// A sensor's capture statistics file (`<logdir>/netstats.json`).
        #[arg(long, conflicts_with = "config")]
        netstats: Option<PathBuf>,
    },
    /// Receive syslog, write one merged log per tag, rotate, archive, expire, mail.
    Aggregate {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// The aggregator's periodic duties once (as zeekctl cron): expire, check disk, mail, stats.
    Cron {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a configuration file; prints every error with file, line and key.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print every option of a configuration file with its effective value.
    Config {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Sensor, shipper and aggregator on this host, from the embedded default configuration.
    Standalone(crate::standalone::StandaloneArgs),
    /// Capture packets (live or from a file) and write Zeek-compatible logs.
    Sensor(estuary_sensor::cli::SensorArgs),
    /// The NATS JetStream cluster between shippers and several aggregators.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Create or check the stream, the marks bucket and one consumer per tag of an aggregator
    /// configuration's `Nats*` options (idempotent); refuses servers older than 2.11.
    Init {
        #[arg(long, short)]
        config: PathBuf,
    },
}

impl Cli {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Sensor(args) => Ok(args.run()?),
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
            Command::Ship { config } => {
                let config = estuary_config::shipper::load(&config)?;
                estuary_shipper::run(config)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Status { config, netstats } => {
                print_out(&status(config, netstats)?, ExitCode::SUCCESS)
            }
            Command::Aggregate { config } => {
                let config = estuary_config::aggregator::load(&config)?;
                estuary_aggregator::run(config)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Cron { config } => {
                let config = estuary_config::aggregator::load(&config)?;
                let report = estuary_aggregator::cron::run(&config, std::time::SystemTime::now())?;
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

/// The latest statistics: a sensor's netstats file as it is, or what the shipper or aggregator of
/// `config` last wrote.
fn status(config: Option<PathBuf>, netstats: Option<PathBuf>) -> anyhow::Result<String> {
    if let Some(netstats) = netstats {
        return std::fs::read_to_string(&netstats)
            .with_context(|| format!("read {}", netstats.display()));
    }
    let config = config.context("--config or --netstats is required")?;
    Ok(match estuary_config::load_any(&config)? {
        AnyConfig::Shipper(c) => estuary_shipper::status(&c)?,
        AnyConfig::Aggregator(c) => estuary_aggregator::status(&c)
            .with_context(|| format!("read the status in {}", c.spool_dir.display()))?,
        AnyConfig::Sensor(_) => {
            anyhow::bail!(
                "a sensor's statistics are in <logdir>/netstats.json: use --netstats FILE"
            )
        }
    })
}

/// Writes a report to stdout; a closed pipe (`estuary config | head`) is not an error.
fn print_out(text: &str, code: ExitCode) -> anyhow::Result<ExitCode> {
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(code),
    }
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
