//! The site as one system, as zeekctl runs it: what each node of a node.cfg runs, which daemons
//! are running, stopped or crashed (pid files in the spool), the control commands, crash
//! reports, and the reports built from the daemons' statistics.
#![forbid(unsafe_code)]

pub mod control;
pub mod ending;
pub mod netstats;
pub mod pidfile;
pub mod plan;
pub mod remote;

pub use pidfile::{Daemon, DaemonState, PidFile, PidFileError};
