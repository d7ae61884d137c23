//! Every configuration format estuary reads, and its validation. Nothing else parses config.
//!
//! Each format is parsed into a raw form and then validated into the typed config that a component
//! takes; components never see unvalidated input.
#![forbid(unsafe_code)]

use std::path::Path;

pub mod aggregator;
mod error;
pub mod shipper;
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

fn read_text(path: &Path) -> Result<String, ConfigErrors> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(path, None, None, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ConfigError::new(path, Some(line), None, "not valid UTF-8").into()
    })
}
