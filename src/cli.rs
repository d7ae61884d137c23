//! Subcommands. Each one is a thin call into the crate that owns the job.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Print the latest statistics a running shipper wrote to its work directory.
    Status {
        #[arg(long, short)]
        config: PathBuf,
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
}

impl Cli {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        match self.command {
            Command::Sensor(args) => Ok(args.run()?),
            Command::Standalone(args) => args.run(),
            Command::Ship { config } => {
                let config = estuary_config::shipper::load(&config)?;
                estuary_shipper::run(config)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Status { config } => {
                let config = estuary_config::shipper::load(&config)?;
                print!("{}", estuary_shipper::status(&config)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Aggregate { config } => {
                let config = estuary_config::aggregator::load(&config)?;
                estuary_aggregator::run(config)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Cron { config } => {
                let config = estuary_config::aggregator::load(&config)?;
                let report = estuary_aggregator::cron::run(&config, std::time::SystemTime::now())?;
                let mut text = format!(
                    "expired {} files, {} folders; {} mails sent\n",
                    report.expired_files, report.expired_dirs, report.mails_sent
                );
                for line in &report.findings {
                    text.push_str(line);
                    text.push('\n');
                }
                if let Ok(status) = estuary_aggregator::stats::read_status(&config.spool_dir) {
                    for (peer, c) in &status.peers {
                        text.push_str(&format!(
                            "peer {peer} received={} accepted={} refused={} malformed={} duplicates={} bytes={}\n",
                            c.received, c.accepted, c.refused, c.malformed, c.duplicates, c.bytes
                        ));
                    }
                }
                match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                    _ => Ok(ExitCode::SUCCESS),
                }
            }
            Command::Check { config } => {
                let (report, code) = match estuary_config::load_any(&config) {
                    Ok(_) => (format!("{}: OK\n", config.display()), ExitCode::SUCCESS),
                    Err(errors) => (format!("{errors}\n"), ExitCode::FAILURE),
                };
                match std::io::Write::write_all(&mut std::io::stdout().lock(), report.as_bytes()) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                    _ => Ok(code),
                }
            }
            Command::Config { config } => {
                let options = estuary_config::load_any(&config)?.describe();
                let text: String = options
                    .iter()
                    .map(|(k, v)| format!("{k} = {v}\n"))
                    .collect();
                match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                    _ => Ok(ExitCode::SUCCESS),
                }
            }
        }
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
