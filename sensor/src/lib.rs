#![forbid(unsafe_code)]
pub mod notice;
pub mod proto;
pub mod uid;
pub mod weird;
pub mod zeeklog;
