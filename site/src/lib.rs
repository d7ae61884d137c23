//! The site as one system, as zeekctl runs it: which daemons are running, stopped or crashed
//! (pid files in the spool), and the reports built from their statistics.
#![forbid(unsafe_code)]

pub mod netstats;
pub mod pidfile;

pub use pidfile::{Daemon, DaemonState, PidFile};
