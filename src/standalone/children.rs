//! The supervised `estuary` child processes of a standalone run: started with the parent-death
//! signal, restarted with backoff when they die, stopped with SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::prctl;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// First and longest wait before restarting a child that died.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A child that dies sooner than this after its first start failed to start: the run ends.
pub const START_GRACE: Duration = Duration::from_secs(2);

/// What a poll of a child found.
pub enum Exit {
    Running,
    /// Exited with this status (and is not restarted by `poll`).
    Exited(ExitStatus),
}

/// One supervised child.
pub struct Role {
    pub name: &'static str,
    args: Vec<String>,
    child: Option<Child>,
    started: Instant,
    /// Whether it ever ran past [`START_GRACE`].
    pub established: bool,
    backoff: Duration,
    /// When a child that died is started again.
    restart_at: Option<Instant>,
    pub restarts: u32,
}

impl Role {
    pub fn new(name: &'static str, args: Vec<String>) -> Role {
        Role {
            name,
            args,
            child: None,
            started: Instant::now(),
            established: false,
            backoff: BACKOFF_FIRST,
            restart_at: None,
            restarts: 0,
        }
    }

    /// `estuary <subcommand> --config <config>`.
    pub fn daemon(name: &'static str, subcommand: &str, config: &Path) -> Role {
        let args = vec![
            subcommand.to_owned(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        Role::new(name, args)
    }

    /// Running, or waiting out its backoff to run again.
    pub fn is_started(&self) -> bool {
        self.child.is_some() || self.restart_at.is_some()
    }

    pub fn start(&mut self, exe: &Path) -> anyhow::Result<()> {
        tracing::info!(role = self.name, args = ?self.args, "starting");
        let mut command = Command::new(exe);
        // Its own process group: Ctrl-C on the terminal reaches the supervisor alone, which then
        // stops the children in order and lets the last rows through.
        command.args(&self.args).kill_on_drop(true).process_group(0);
        // A supervisor killed by SIGKILL cannot stop its children; the kernel then sends them
        // SIGTERM. One killed between the fork and the prctl would leave the child running, so
        // the child also checks that its parent is still the supervisor. SAFETY: the closure runs
        // between fork and exec and only makes the prctl and getppid system calls, which are
        // async-signal-safe.
        let supervisor = nix::unistd::Pid::this();
        unsafe {
            command.pre_exec(move || {
                prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)?;
                if nix::unistd::getppid() != supervisor {
                    // No allocation between fork and exec: an errno, not a message.
                    return Err(nix::errno::Errno::ESRCH.into());
                }
                Ok(())
            });
        }
        self.child = Some(
            command
                .spawn()
                .with_context(|| format!("start the {}", self.name))?,
        );
        self.started = Instant::now();
        self.restart_at = None;
        Ok(())
    }

    /// Whether it is still running; an exit is reported once.
    pub fn poll(&mut self) -> anyhow::Result<Exit> {
        let Some(child) = self.child.as_mut() else {
            return Ok(Exit::Running);
        };
        if self.started.elapsed() >= START_GRACE {
            self.established = true;
        }
        match child
            .try_wait()
            .with_context(|| format!("poll the {}", self.name))?
        {
            None => Ok(Exit::Running),
            Some(status) => {
                self.child = None;
                Ok(Exit::Exited(status))
            }
        }
    }

    /// Has it started again after the current backoff, which then doubles up to
    /// [`BACKOFF_MAX`]; the supervisor goes on meanwhile (a signal still stops the run).
    pub fn restart_later(&mut self, status: ExitStatus) {
        tracing::error!(role = self.name, %status, backoff = ?self.backoff, "exited unexpectedly; restarting");
        self.restart_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.restarts += 1;
    }

    /// Starts it if its backoff is over.
    pub fn restart_if_due(&mut self, exe: &Path) -> anyhow::Result<()> {
        match self.restart_at {
            Some(at) if at <= Instant::now() => self.start(exe),
            _ => Ok(()),
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        self.restart_at = None;
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        match tokio::time::timeout(grace, child.wait()).await {
            Ok(Ok(status)) => tracing::info!(role = self.name, %status, "stopped"),
            _ => {
                tracing::warn!(role = self.name, ?grace, "did not stop in time; killing");
                let _ = child.kill().await;
            }
        }
    }
}

/// `path` made absolute against the current directory.
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("current directory")?
        .join(path))
}
