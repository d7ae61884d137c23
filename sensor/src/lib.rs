#![forbid(unsafe_code)]
pub mod proto;
pub mod zeeklog;
