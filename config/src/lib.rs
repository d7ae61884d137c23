//! Every configuration format estuary reads, and its validation. Nothing else parses config.
//!
//! Each format is parsed into a raw form and then validated into the typed config that a component
//! takes; components never see unvalidated input.
#![forbid(unsafe_code)]

use std::path::Path;

pub mod aggregator;
pub mod cidr;
mod error;
#[cfg(test)]
mod fuzz;
pub mod node_cfg;
pub mod sensor;
pub mod shipper;
pub mod standalone;
#[cfg(test)]
mod test_util;
mod toml_form;
mod value;

pub use error::{ConfigError, ConfigErrors};

/// Configuration formats, told apart by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// rsyslog legacy directives (shipper).
    Conf,
    /// broctl/zeekctl `key = value` (aggregator).
    Cfg,
    /// estuary's TOML form (either).
    Toml,
}

impl Kind {
    fn of(path: &Path) -> Option<Kind> {
        match path.extension()?.to_str()? {
            "conf" => Some(Kind::Conf),
            "cfg" => Some(Kind::Cfg),
            "toml" => Some(Kind::Toml),
            _ => None,
        }
    }
}

/// Any component's configuration, as `estuary check` and `estuary config` read it.
#[derive(Debug, Clone)]
pub enum AnyConfig {
    Shipper(shipper::ShipperConfig),
    Aggregator(Box<aggregator::AggregatorConfig>),
    Sensor(sensor::SensorConfig),
    /// A node.cfg and the cluster options beside it.
    Site(Box<node_cfg::SiteConfig>),
}

impl AnyConfig {
    /// Every option with its effective value.
    pub fn describe(&self) -> Vec<(String, String)> {
        match self {
            AnyConfig::Shipper(c) => c.describe(),
            AnyConfig::Aggregator(c) => c.describe(),
            AnyConfig::Sensor(c) => describe_sensor(c),
            AnyConfig::Site(c) => c.describe(),
        }
    }
}

fn describe_sensor(c: &sensor::SensorConfig) -> Vec<(String, String)> {
    let notes = |action: sensor::NoticeAction| -> String {
        let names: Vec<&str> = c
            .notice_actions
            .iter()
            .filter(|(_, a)| *a == action)
            .map(|(n, _)| n.zeek_name())
            .collect();
        names.join(", ")
    };
    let nets: Vec<String> = c.local_nets.iter().map(ToString::to_string).collect();
    // Unset in the file, the sensor writes TSV and does not rotate.
    let off = || "off".to_owned();
    [
        ("site.local_nets", nets.join(", ")),
        (
            "site.private_address_space_is_local",
            c.private_address_space_is_local.to_string(),
        ),
        ("notice.alarm", notes(sensor::NoticeAction::Alarm)),
        ("notice.email", notes(sensor::NoticeAction::Email)),
        ("notice.email_dest", c.email_dest.join(", ")),
        (
            "log.format",
            match c.log_format.unwrap_or(sensor::LogFormat::Tsv) {
                sensor::LogFormat::Tsv => "tsv".to_owned(),
                sensor::LogFormat::Json => "json".to_owned(),
            },
        ),
        (
            "log.rotate_interval",
            c.rotate_interval.map_or_else(off, value::format_duration),
        ),
        (
            "log.rotate_size",
            c.rotate_size.map_or_else(off, |n| n.to_string()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Loads a file of any kind: `*.conf` is a shipper, `*.cfg` a node.cfg when it starts with a
/// `[node]` header, else an aggregator; a `*.toml` file is a
/// shipper when it has `[[input]]` or `[[destination]]` tables, a sensor when it has `[site]`,
/// `[notice]` or `[log]`, else an aggregator.
pub fn load_any(path: &Path) -> Result<AnyConfig, ConfigErrors> {
    match Kind::of(path) {
        Some(Kind::Conf) => shipper::load(path).map(AnyConfig::Shipper),
        Some(Kind::Cfg) => {
            if node_cfg::looks_like_node_cfg(&read_text(path)?) {
                node_cfg::load(path).map(|c| AnyConfig::Site(Box::new(c)))
            } else {
                aggregator::load(path).map(|c| AnyConfig::Aggregator(Box::new(c)))
            }
        }
        Some(Kind::Toml) => {
            let text = read_text(path)?;
            // A file that does not parse is reported by the aggregator loader, with its line.
            let table = text.parse::<toml::Table>().ok();
            let has = |key: &str| table.as_ref().is_some_and(|t| t.contains_key(key));
            if has("input") || has("destination") {
                shipper::load(path).map(AnyConfig::Shipper)
            } else if has("site") || has("notice") || has("log") {
                sensor::load(path).map(AnyConfig::Sensor)
            } else {
                aggregator::load(path).map(|c| AnyConfig::Aggregator(Box::new(c)))
            }
        }
        None => Err(ConfigError::new(
            path,
            None,
            None,
            "unknown configuration type: expected .conf (rsyslog shipper), .cfg (zeekctl aggregator) or .toml",
        )
        .into()),
    }
}

/// The file as text, without a UTF-8 byte order mark (editors on some systems add one).
pub(crate) fn read_text(path: &Path) -> Result<String, ConfigErrors> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(path, None, None, format!("cannot read: {e}")))?;
    let bytes = match bytes.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ConfigError::new(path, Some(line), None, "not valid UTF-8").into()
    })
}
