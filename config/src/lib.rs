//! Every configuration format estuary reads, and its validation. Nothing else parses config.
//!
//! Each format is parsed into a raw form and then validated into the typed config that a component
//! takes; components never see unvalidated input.
#![forbid(unsafe_code)]

pub mod aggregator;
mod error;
pub mod shipper;

pub use error::{ConfigError, ConfigErrors};
