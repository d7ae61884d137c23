//! `estuary standalone`: the whole pipeline on one host, as zeekctl's standalone mode runs it.
//!
//! The sensor writes Zeek logs into `<dir>/sensor`, a shipper tails every one of them and sends
//! them over RELP on loopback, and an aggregator writes `<dir>/logs/current` and the dated
//! archives. Each runs as its own `estuary` child process from the default configuration
//! (written to `<dir>/etc` on first start and read from there afterwards), so a crash of one is
//! contained and followed by a restart, and the shipper's state files make the restart lossless.
//!
//! Reading a capture (`-r`, or the bundled sample when neither `-r` nor `-i` is given), the run
//! ends by itself once the aggregator holds every row the sensor wrote: a final rotation
//! archives the current logs and delivers the alarm digest, and a summary compares the counts.

mod children;
mod finish;
mod progress;
mod tally;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use estuary_config::standalone::MailSetup;
use tokio::signal::unix::{signal, SignalKind};

use children::{absolute, Exit, Role};
use finish::{MailReport, Summary};
use tally::Tally;

/// The capture read when neither `-r` nor `-i` is given; see `assets/sample/README.md`.
const SAMPLE_PCAP: &[u8] = include_bytes!("../../assets/sample/sample.pcap");

/// After the sensor is done, give up waiting for the aggregator when its row counts have not
/// moved for this long (the summary then shows the difference).
const STALL_LIMIT: Duration = Duration::from_secs(60);
const TICK: Duration = Duration::from_millis(250);
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Run the sensor, a shipper and an aggregator on this host.
#[derive(Debug, clap::Args)]
pub struct StandaloneArgs {
    /// Installation directory: configuration in etc/, sensor logs in sensor/, merged and archived
    /// logs in logs/, state and unsent mail in spool/.
    #[arg(long, default_value = "estuary-standalone")]
    pub dir: PathBuf,
    /// Loopback port the aggregator listens on for RELP (used when etc/ is first written).
    #[arg(long, default_value_t = 2514)]
    pub port: u16,
    /// Read packets from this pcap or pcapng file (default: the bundled sample capture).
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "interface"
    )]
    pub read: Option<PathBuf>,
    /// Capture live from this interface until Ctrl-C.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// Ignore bad checksums (offloaded captures), like `zeek -C`.
    #[arg(short = 'C', long = "ignore-checksums")]
    pub ignore_checksums: bool,
    /// Mail notices and the alarm digest to this address (with --smtp-server; used when etc/ is
    /// first written). Without it, mail is written as .eml files under spool/outbox.
    #[arg(long, value_name = "ADDR", requires = "smtp_server")]
    pub mail_to: Option<String>,
    /// SMTP relay, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT", requires = "mail_to")]
    pub smtp_server: Option<String>,
}

/// The folders of an installation.
struct Layout {
    dir: PathBuf,
    etc: PathBuf,
    sensor: PathBuf,
    outbox: PathBuf,
}

impl Layout {
    fn new(dir: PathBuf) -> Layout {
        Layout {
            etc: dir.join("etc"),
            sensor: dir.join("sensor"),
            outbox: dir.join("spool/outbox"),
            dir,
        }
    }
}

impl StandaloneArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("start the supervisor runtime")?;
        runtime.block_on(self.supervise())
    }

    async fn supervise(self) -> anyhow::Result<ExitCode> {
        let started = Instant::now();
        let since = SystemTime::now();
        let layout = Layout::new(absolute(&self.dir)?);
        let mail = self.install(&layout)?;
        let aggregator_config =
            estuary_config::aggregator::load(&layout.etc.join("aggregate.cfg"))?;
        let ship_toml = layout.etc.join("ship.toml");

        let exe = std::env::current_exe().context("locate the estuary binary")?;
        let mut aggregator =
            Role::daemon("aggregator", "aggregate", &layout.etc.join("aggregate.cfg"));
        let mut shipper = Role::daemon("shipper", "ship", &ship_toml);
        let mut sensor = Role::new("sensor", self.sensor_args(&layout)?);
        let reads_file = self.interface.is_none();

        aggregator.start(&exe)?;
        wait_listening(&mut aggregator, &aggregator_config).await?;
        sensor.start(&exe)?;
        tracing::info!(logs = %layout.dir.join("logs/current").display(), "standalone pipeline running; Ctrl-C stops it");

        let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
        let mut tick = tokio::time::interval(TICK);
        let mut sensor_done = false;
        let mut stall = (finish::Rows::new(), Instant::now());
        let (mut sensor_tally, mut aggregator_tally) = (Tally::default(), Tally::default());
        let progress = progress::Progress::new();
        let mut stopping = false;
        loop {
            let signalled = tokio::select! {
                _ = term.recv() => true,
                _ = interrupt.recv() => true,
                _ = tick.tick() => false,
            };
            if signalled {
                if stopping {
                    break;
                }
                // First signal: no new rows; the sensor's last ones still reach the aggregator.
                tracing::info!("stopping: waiting for the sensor's rows to reach the aggregator (a second signal stops at once)");
                stopping = true;
                if !sensor_done {
                    sensor.stop(STOP_GRACE).await;
                    sensor_done = true;
                }
            }
            // The shipper starts with the first log and restarts on each new one.
            let added = add_new_logs(&layout, &ship_toml)?;
            if (added || !shipper.is_started()) && !finish::sensor_logs(&layout.sensor).is_empty() {
                shipper.stop(STOP_GRACE).await;
                shipper.start(&exe)?;
            }
            for role in [&mut aggregator, &mut shipper, &mut sensor] {
                role.restart_if_due(&exe)?;
            }
            for role in [&mut aggregator, &mut shipper] {
                if let Exit::Exited(status) = role.poll()? {
                    if !role.established {
                        anyhow::bail!("the {} failed to start ({status})", role.name);
                    }
                    role.restart_later(status);
                }
            }
            if !sensor_done {
                if let Exit::Exited(status) = sensor.poll()? {
                    match (
                        status.success() && reads_file,
                        reads_file || !sensor.established,
                    ) {
                        (true, _) => {
                            tracing::info!("the sensor read the whole capture");
                            sensor_done = true;
                        }
                        (false, true) => anyhow::bail!("the sensor failed ({status})"),
                        (false, false) => sensor.restart_later(status),
                    }
                }
            }
            if progress.is_shown() {
                let packets =
                    estuary_site::netstats::Netstats::load(&layout.sensor.join("netstats.json"))
                        .map_or(0, |n| n.received);
                let written = finish::sensor_rows(&layout.sensor, &mut sensor_tally)?
                    .values()
                    .sum();
                let committed = finish::aggregated_rows(
                    &aggregator_config.log_dir,
                    since,
                    &mut aggregator_tally,
                )
                .values()
                .sum();
                progress.update(packets, written, committed);
            }
            if sensor_done {
                let sensor_rows = finish::sensor_rows(&layout.sensor, &mut sensor_tally)?;
                let aggregated = finish::aggregated_rows(
                    &aggregator_config.log_dir,
                    since,
                    &mut aggregator_tally,
                );
                if sensor_rows == aggregated {
                    tracing::info!("every row the sensor wrote is at the aggregator");
                    break;
                }
                if aggregated != stall.0 {
                    stall = (aggregated, Instant::now());
                } else if stall.1.elapsed() > STALL_LIMIT {
                    tracing::error!(
                        ?sensor_rows,
                        ?aggregated,
                        "the aggregator stopped receiving; finishing with what it has"
                    );
                    break;
                }
            }
        }

        progress.finish();
        for role in [&mut sensor, &mut shipper, &mut aggregator] {
            role.stop(STOP_GRACE).await;
        }
        let config = aggregator_config.clone();
        let archived =
            tokio::task::spawn_blocking(move || finish::final_rotation(&config, SystemTime::now()))
                .await
                .context("final rotation")??;
        let summary = self.summary(
            &layout,
            &aggregator_config,
            mail,
            since,
            started,
            &archived,
            [&sensor, &shipper, &aggregator],
        )?;
        print!("{summary}");
        Ok(if summary.counts_match() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }

    /// Creates the folders and, on first start, the configuration and the sample capture.
    fn install(&self, layout: &Layout) -> anyhow::Result<MailSetup> {
        for dir in [
            &layout.etc,
            &layout.sensor,
            &layout.dir.join("logs"),
            &layout.outbox,
        ] {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let mail = match (&self.mail_to, &self.smtp_server) {
            (Some(to), Some(server)) => MailSetup::Smtp {
                to: to.clone(),
                server: server.clone(),
            },
            _ => MailSetup::SendMail(write_outbox_script(layout)?),
        };
        for (name, text) in estuary_config::standalone::default_files(&layout.dir, self.port, &mail)
        {
            let path = layout.etc.join(name);
            if !path.exists() {
                std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
                tracing::info!(config = %path.display(), "wrote default configuration");
            }
        }
        // Refuse to start on a configuration a child would reject (ship.toml has no input until
        // the sensor writes its first log, so it is checked when one is added).
        for name in ["aggregate.cfg", "sensor.toml"] {
            estuary_config::load_any(&layout.etc.join(name))?;
        }
        Ok(mail)
    }

    fn sensor_args(&self, layout: &Layout) -> anyhow::Result<Vec<String>> {
        let mut args = vec!["sensor".to_owned()];
        match (&self.read, &self.interface) {
            (Some(file), _) => args.extend(["--read".to_owned(), file.display().to_string()]),
            (None, Some(iface)) => args.extend(["--interface".to_owned(), iface.clone()]),
            (None, None) => {
                let sample = layout.etc.join("sample.pcap");
                if !sample.exists() {
                    std::fs::write(&sample, SAMPLE_PCAP)
                        .with_context(|| format!("write {}", sample.display()))?;
                }
                tracing::info!(capture = %sample.display(), "no -r or -i: reading the bundled sample capture");
                args.extend(["--read".to_owned(), sample.display().to_string()]);
            }
        }
        args.extend([
            "--logdir".to_owned(),
            layout.sensor.display().to_string(),
            "--config".to_owned(),
            layout.etc.join("sensor.toml").display().to_string(),
        ]);
        if self.ignore_checksums {
            args.push("-C".to_owned());
        }
        Ok(args)
    }

    #[allow(clippy::too_many_arguments)]
    fn summary(
        &self,
        layout: &Layout,
        config: &estuary_config::aggregator::AggregatorConfig,
        mail: MailSetup,
        since: SystemTime,
        started: Instant,
        archived: &[PathBuf],
        roles: [&Role; 3],
    ) -> anyhow::Result<Summary> {
        let (notices, alarms) = finish::notices(&layout.sensor);
        let mail = match mail {
            MailSetup::Smtp { to, server } => MailReport::Smtp {
                server,
                to,
                queued: estuary_aggregator::mail::Queue::open(&config.spool_dir)?
                    .pending()?
                    .len(),
            },
            MailSetup::SendMail(_) => {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&layout.outbox)?
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .filter(|p| {
                        std::fs::metadata(p)
                            .and_then(|m| m.modified())
                            .is_ok_and(|t| t >= since)
                    })
                    .collect();
                files.sort();
                MailReport::Files(files)
            }
        };
        let mut archive_dirs: Vec<PathBuf> = archived
            .iter()
            .chain(finish::archives(&config.log_dir, since).iter())
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        archive_dirs.sort();
        archive_dirs.dedup();
        Ok(Summary {
            sensor: finish::sensor_rows(&layout.sensor, &mut Tally::default())?,
            archived: finish::aggregated_rows(&config.log_dir, since, &mut Tally::default()),
            notices,
            alarms,
            mail,
            archive_dirs,
            current: config.log_dir.join("current"),
            elapsed: started.elapsed(),
            restarts: roles
                .iter()
                .filter(|r| r.restarts > 0)
                .map(|r| (r.name, r.restarts))
                .collect(),
        })
    }
}

/// Appends a ship.toml input for every sensor log no input covers yet; returns whether it did.
/// The new configuration is validated before the shipper is restarted on it.
fn add_new_logs(layout: &Layout, ship_toml: &Path) -> anyhow::Result<bool> {
    let logs = finish::sensor_logs(&layout.sensor);
    if logs.is_empty() {
        return Ok(false);
    }
    let text = std::fs::read_to_string(ship_toml)
        .with_context(|| format!("read {}", ship_toml.display()))?;
    let covered: Vec<PathBuf> = match estuary_config::shipper::load(ship_toml) {
        Ok(c) => c.inputs.into_iter().map(|i| i.path).collect(),
        // No input yet is the only error the default file has.
        Err(_) if !text.contains("\n[[input]]") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let is_covered = |path: &Path| {
        covered.iter().any(|c| {
            c == path
                || glob::Pattern::new(&c.to_string_lossy()).is_ok_and(|p| p.matches_path(path))
        })
    };
    let new: Vec<&String> = logs
        .iter()
        .filter(|name| !is_covered(&layout.sensor.join(format!("{name}.log"))))
        .collect();
    if new.is_empty() {
        return Ok(false);
    }
    let mut text = text;
    for name in &new {
        text.push_str(&estuary_config::standalone::ship_input(
            &layout.sensor,
            name,
        ));
    }
    let tmp = ship_toml.with_extension("new.toml");
    std::fs::write(&tmp, &text).with_context(|| format!("write {}", tmp.display()))?;
    estuary_config::shipper::load(&tmp)?;
    std::fs::rename(&tmp, ship_toml).with_context(|| format!("replace {}", ship_toml.display()))?;
    tracing::info!(logs = ?new, "shipping new sensor logs");
    Ok(true)
}

/// A sendmail stand-in (`-t -oi`, message on stdin) that keeps each mail as an `.eml` file in
/// the outbox, for installations without a mail relay.
fn write_outbox_script(layout: &Layout) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = layout.etc.join("sendmail-to-outbox");
    let script = format!(
        "#!/bin/sh\n# estuary standalone: keeps each mail as an .eml file instead of sending it.\nset -e\ntmp=$(mktemp -p '{outbox}' .mail-XXXXXXXX)\ncat > \"$tmp\"\nmv \"$tmp\" \"{outbox}/${{tmp##*/.}}.eml\"\n",
        outbox = layout.outbox.display()
    );
    std::fs::write(&path, script).with_context(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("make {} executable", path.display()))?;
    Ok(path)
}

/// Waits until the aggregator listens on its RELP address, or fails if it exits first.
async fn wait_listening(
    role: &mut Role,
    config: &estuary_config::aggregator::AggregatorConfig,
) -> anyhow::Result<()> {
    let addr = config
        .listen
        .relp
        .context("the standalone aggregator needs ListenRELP")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Exit::Exited(status) = role.poll()? {
            anyhow::bail!("the aggregator failed to start ({status})");
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            role.established = true;
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("the aggregator did not listen on {addr} within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
