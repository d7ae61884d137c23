//! Each daemon's `/metrics` (OpenMetrics text, which Prometheus scrapes) and `/status` (JSON,
//! what `estuary status` prints), served on its own address as Zeek's `MetricsPort` is.
//!
//! The values are read from what each daemon already publishes (the aggregator's and the
//! shipper's status files, the sensor's netstats), so they agree with `estuary status`.
#![forbid(unsafe_code)]

mod encode;
mod http;
pub mod sources;

pub use encode::{encode, Sample, Value};
pub use http::serve;

/// One scrape: the samples for `/metrics` and the document for `/status`.
#[derive(Debug, Default)]
pub struct Report {
    pub samples: Vec<Sample>,
    pub status: serde_json::Value,
}
