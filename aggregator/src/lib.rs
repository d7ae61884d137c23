//! The aggregator: receive syslog from shippers and sensors, merge per tag into
//! `LogDir/current/<log>.log`, rotate and archive zeekctl-style, expire, watch the disk, mail.
#![forbid(unsafe_code)]

pub mod archive;
pub mod clock;
pub mod disk;
pub mod expire;
mod fsutil;
pub mod journal;
pub mod notice;
pub mod route;
pub mod schema;
pub mod writer;
#[doc(hidden)]
pub mod testing;
pub mod mail;
pub mod peers;
pub mod stats;
pub mod ingest;
pub mod pipeline;
pub mod listen;
pub mod cron;
mod service;

pub use service::{run, serve, Bound, Error};
