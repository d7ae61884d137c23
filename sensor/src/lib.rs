//! The sensor: packets in, Zeek-compatible logs out.
#![forbid(unsafe_code)]
mod capabilities;
pub mod command;
pub mod config;
pub mod conn;
pub mod conn_log;
pub mod decode;
pub mod detect;
pub mod dispatch;
pub mod engine;
pub mod file_magic;
pub mod files_log;
pub mod flow;
pub mod notice_log;
pub mod output;
pub mod proto;
pub mod run;
pub mod savefile;
pub mod sink;
pub mod split;
pub mod tunnel_log;
pub mod uid;
pub mod weird;
pub mod zeeklog;
