//! The aggregator: receive syslog from shippers and sensors, merge per tag into
//! `LogDir/current/<log>.log`, rotate and archive zeekctl-style, expire, watch the disk, mail.
#![forbid(unsafe_code)]

pub mod alarms;
pub mod archive;
pub mod clock;
pub mod cron;
pub mod disk;
mod error;
pub mod events;
pub mod expire;
mod holdings;
pub mod ingest;
pub mod journal;
pub mod listen;
pub mod mail;
mod nats_ingest;
mod nats_input;
pub mod peers;
pub mod pending;
pub mod route;
pub mod schema;
mod service;
mod sockets;
pub mod stats;
#[doc(hidden)]
pub mod testing;
pub mod workers;
pub mod writer;

pub use error::Error;
pub use service::{run, serve};
pub use sockets::Bound;
pub use stats::status;
