//! SIGHUP for `ship` and `aggregate`, as logrotate's `postrotate` and operators send it: the
//! configuration file is read again. A valid one is applied by a clean stop (the shipper saves
//! its offsets, the aggregator commits what it took) and an exec of the same command in the same
//! process, so the pid stays and no line is lost or sent twice; an invalid one is refused with
//! its errors logged, and the daemon runs on with the configuration it has.

use std::os::unix::process::CommandExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::unistd::Pid;

/// Whether a valid new configuration is waiting to be applied.
pub struct Reload {
    requested: Arc<AtomicBool>,
}

/// Blocks SIGHUP (before the daemon's threads start, so they all inherit the mask) and waits for
/// it on a thread of its own, checking the new configuration with `validate`.
pub fn watch(
    validate: impl Fn() -> Result<(), estuary_config::ConfigErrors> + Send + 'static,
) -> anyhow::Result<Reload> {
    let mut hangup = SigSet::empty();
    hangup.add(Signal::SIGHUP);
    hangup.thread_block().context("block SIGHUP")?;
    let requested = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&requested);
    std::thread::Builder::new()
        .name("reload".into())
        .spawn(move || loop {
            if let Err(err) = hangup.wait() {
                tracing::error!(%err, "cannot wait for SIGHUP; reload is off");
                return;
            }
            match validate() {
                Ok(()) => {
                    tracing::info!("SIGHUP: the configuration is valid; restarting on it");
                    // systemd waits for READY=1 again, which the new image sends once it works.
                    let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Reloading]);
                    flag.store(true, Ordering::SeqCst);
                    // The daemon's own SIGTERM handling stops it cleanly.
                    let _ = kill(Pid::from_raw(std::process::id() as i32), Signal::SIGTERM);
                    return;
                }
                Err(errors) => tracing::error!(
                    %errors,
                    "SIGHUP: the new configuration is refused; running on the old one"
                ),
            }
        })
        .context("start the reload thread")?;
    Ok(Reload { requested })
}

impl Reload {
    /// Called once the daemon has stopped: execs the same command when a reload asked for it,
    /// else returns. The pid file is left in place for the new image, which takes it over.
    pub fn finish(self) -> anyhow::Result<()> {
        if !self.requested.load(Ordering::SeqCst) {
            return Ok(());
        }
        let exe = std::env::current_exe().context("locate the estuary binary")?;
        let err = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .exec();
        Err(err).context("restart on the new configuration")
    }
}
