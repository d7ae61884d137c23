//! `estuary standalone`: the whole pipeline on one host, as zeekctl's standalone mode runs it.
//!
//! The sensor writes Zeek logs into `<dir>/sensor`, a shipper tails them and sends them over RELP
//! on loopback, and an aggregator writes `<dir>/logs/current` and the dated archives. Each runs
//! as its own `estuary` child process from the embedded default configuration (written to
//! `<dir>/etc` on first start and read from there afterwards), so a crash of one is contained,
//! logged and followed by a restart, and the shipper's state files make the restart lossless.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use nix::sys::prctl;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, SignalKind};

/// Run the sensor, a shipper and an aggregator on this host.
#[derive(Debug, clap::Args)]
pub struct StandaloneArgs {
    /// Installation directory: configuration in etc/, sensor logs in sensor/, merged and archived
    /// logs in logs/, state in spool/.
    #[arg(long, default_value = "estuary-standalone")]
    pub dir: PathBuf,
    /// Loopback port the aggregator listens on for RELP (used when etc/ is first written).
    #[arg(long, default_value_t = 2514)]
    pub port: u16,
    /// Read packets from this pcap or pcapng file.
    #[arg(
        short = 'r',
        long = "read",
        value_name = "FILE",
        conflicts_with = "interface"
    )]
    pub read: Option<PathBuf>,
    /// Capture live from this interface.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// Ignore bad checksums (offloaded captures), like `zeek -C`.
    #[arg(short = 'C', long = "ignore-checksums")]
    pub ignore_checksums: bool,
}

/// One supervised child: how to start it, and whether it is expected to finish by itself.
struct Role {
    name: &'static str,
    args: Vec<String>,
    /// A sensor reading a file ends when the file does; the others run until stopped.
    finishes: bool,
    child: Option<Child>,
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
        let dir = absolute(&self.dir)?;
        let etc = dir.join("etc");
        for sub in ["etc", "sensor", "logs", "spool"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("create {}", dir.join(sub).display()))?;
        }
        for (name, text) in estuary_config::standalone::default_files(&dir, self.port) {
            let path = etc.join(name);
            if !path.exists() {
                std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
                tracing::info!(config = %path.display(), "wrote default configuration");
            }
            // Refuse to start on a configuration the children would reject.
            estuary_config::load_any(&path)?;
        }

        let mut roles = vec![
            daemon("aggregator", "aggregate", &etc.join("aggregate.cfg")),
            daemon("shipper", "ship", &etc.join("ship.toml")),
        ];
        if let Some(sensor) = self.sensor_args(&dir) {
            roles.push(Role {
                name: "sensor",
                finishes: self.read.is_some(),
                args: sensor,
                child: None,
            });
        } else {
            tracing::warn!(
                "no --read FILE or --interface IFACE: running shipper and aggregator only"
            );
        }

        let exe = std::env::current_exe().context("locate the estuary binary")?;
        for r in &mut roles {
            r.child = Some(start(&exe, r)?);
        }
        tracing::info!(logs = %dir.join("logs/current").display(), "standalone pipeline running; Ctrl-C stops it");

        let mut term = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = interrupt.recv() => break,
                _ = tick.tick() => {
                    for r in &mut roles {
                        restart_if_exited(&exe, r).await?;
                    }
                }
            }
        }
        stop_all(&mut roles).await;
        Ok(ExitCode::SUCCESS)
    }

    fn sensor_args(&self, dir: &Path) -> Option<Vec<String>> {
        let mut args = vec!["sensor".to_owned()];
        match (&self.read, &self.interface) {
            (Some(file), _) => args.extend(["--read".to_owned(), file.display().to_string()]),
            (None, Some(iface)) => args.extend(["--interface".to_owned(), iface.clone()]),
            (None, None) => return None,
        }
        args.extend([
            "--logdir".to_owned(),
            dir.join("sensor").display().to_string(),
        ]);
        if self.ignore_checksums {
            args.push("-C".to_owned());
        }
        Some(args)
    }
}

/// A daemon role started as `estuary <subcommand> --config <config>`.
fn daemon(name: &'static str, subcommand: &str, config: &Path) -> Role {
    let args = [subcommand, "--config"].map(str::to_owned);
    Role {
        name,
        args: args
            .into_iter()
            .chain([config.display().to_string()])
            .collect(),
        finishes: false,
        child: None,
    }
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("current directory")?
        .join(path))
}

fn start(exe: &Path, role: &Role) -> anyhow::Result<Child> {
    tracing::info!(role = role.name, args = ?role.args, "starting");
    let mut command = Command::new(exe);
    command.args(&role.args).kill_on_drop(true);
    // A supervisor killed by SIGKILL cannot stop its children; the kernel then sends them SIGTERM.
    // SAFETY: the closure runs between fork and exec and only makes the prctl system call, which
    // is async-signal-safe.
    unsafe {
        command.pre_exec(|| prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from));
    }
    command
        .spawn()
        .with_context(|| format!("start the {}", role.name))
}

async fn restart_if_exited(exe: &Path, role: &mut Role) -> anyhow::Result<()> {
    let Some(child) = role.child.as_mut() else {
        return Ok(());
    };
    let Some(status) = child
        .try_wait()
        .with_context(|| format!("poll the {}", role.name))?
    else {
        return Ok(());
    };
    if role.finishes && status.success() {
        tracing::info!(role = role.name, "finished");
        role.child = None;
        return Ok(());
    }
    tracing::error!(role = role.name, %status, "exited unexpectedly; restarting in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
    role.child = Some(start(exe, role)?);
    Ok(())
}

/// SIGTERM to every child, in reverse start order (sensor and shipper before the aggregator, so
/// what was read gets delivered), then SIGKILL for any that do not exit within 10 s.
async fn stop_all(roles: &mut [Role]) {
    for r in roles.iter_mut().rev() {
        let Some(mut child) = r.child.take() else {
            continue;
        };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(Ok(status)) => tracing::info!(role = r.name, %status, "stopped"),
            _ => {
                tracing::warn!(role = r.name, "did not stop within 10 s; killing");
                let _ = child.kill().await;
            }
        }
    }
}
