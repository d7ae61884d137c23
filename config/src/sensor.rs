//! The sensor's TOML configuration: which networks are local, the notice policy (which
//! notes get the alarm or e-mail action), and log format and rotation.
//!
//! ```toml
//! [site]
//! local_nets = ["10.0.0.0/8", "2001:db8::/32"]
//! private_address_space_is_local = true   # Zeek's default
//!
//! [notice]
//! alarm = ["Scan::Address_Scan", "Scan::Port_Scan"]
//! email = ["SSH::Password_Guessing"]
//! email_dest = ["soc@example.org"]
//!
//! [log]
//! format = "tsv"          # or "json"
//! rotate_interval = "1h"
//! rotate_size = "512m"
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::cidr::Cidr;
use crate::toml_form::{self, TomlFile};
use crate::ConfigErrors;

/// The notes the sensor raises, printed as Zeek's enum names; the policy may name only these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Note {
    SshPasswordGuessing,
    ScanAddressScan,
    ScanPortScan,
    ScanRandomScan,
}

impl Note {
    pub const ALL: [Note; 4] = [
        Note::SshPasswordGuessing,
        Note::ScanAddressScan,
        Note::ScanPortScan,
        Note::ScanRandomScan,
    ];

    pub fn zeek_name(self) -> &'static str {
        match self {
            Note::SshPasswordGuessing => "SSH::Password_Guessing",
            Note::ScanAddressScan => "Scan::Address_Scan",
            Note::ScanPortScan => "Scan::Port_Scan",
            Note::ScanRandomScan => "Scan::Random_Scan",
        }
    }

    pub fn from_zeek_name(name: &str) -> Option<Note> {
        Note::ALL.into_iter().find(|n| n.zeek_name() == name)
    }
}

/// An action the policy adds to a note (ACTION_LOG is always there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeAction {
    Alarm,
    Email,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Zeek's ASCII writer: header lines, tab-separated values.
    #[default]
    Tsv,
    /// Zeek's JSON writer: one object per line, no header.
    Json,
}

/// A validated sensor configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorConfig {
    /// Networks counted as local besides the private space.
    pub local_nets: Vec<Cidr>,
    pub private_address_space_is_local: bool,
    /// (note, action) pairs.
    pub notice_actions: Vec<(Note, NoticeAction)>,
    pub email_dest: Vec<String>,
    pub log_format: Option<LogFormat>,
    pub rotate_interval: Option<Duration>,
    pub rotate_size: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    site: RawSite,
    #[serde(default)]
    notice: RawNotice,
    #[serde(default)]
    log: RawLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    #[serde(default)]
    local_nets: Vec<Spanned<String>>,
    private_address_space_is_local: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotice {
    #[serde(default)]
    alarm: Vec<Spanned<String>>,
    #[serde(default)]
    email: Vec<Spanned<String>>,
    #[serde(default)]
    email_dest: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<Spanned<String>>,
    rotate_interval: Option<Spanned<toml::Value>>,
    rotate_size: Option<Spanned<toml::Value>>,
}

/// Reads and validates a sensor configuration file.
pub fn load(path: &Path) -> Result<SensorConfig, ConfigErrors> {
    let text = crate::read_text(path)?;
    parse(path, &text)
}

pub fn parse(path: &Path, text: &str) -> Result<SensorConfig, ConfigErrors> {
    let mut f = TomlFile::new(path, text);
    let raw: Raw = f.deserialize()?;
    let mut local_nets = Vec::new();
    for n in &raw.site.local_nets {
        if let Some(net) = f.check(Some(n), "site.local_nets", |s| {
            s.parse::<Cidr>().map_err(|e| e.to_string())
        }) {
            local_nets.push(net);
        }
    }
    let mut notice_actions = Vec::new();
    for (key, list, action) in [
        ("notice.alarm", &raw.notice.alarm, NoticeAction::Alarm),
        ("notice.email", &raw.notice.email, NoticeAction::Email),
    ] {
        for note in list {
            let known = |s: &String| {
                Note::from_zeek_name(s).ok_or_else(|| {
                    let names: Vec<&str> = Note::ALL.iter().map(|n| n.zeek_name()).collect();
                    format!("unknown note {s:?}, expected one of {}", names.join(", "))
                })
            };
            if let Some(n) = f.check(Some(note), key, known) {
                notice_actions.push((n, action));
            }
        }
    }
    let mut email_dest = Vec::new();
    for d in &raw.notice.email_dest {
        let addr = |s: &String| {
            if s.contains('@') && !s.contains(char::is_whitespace) {
                Ok(s.clone())
            } else {
                Err(format!("{s:?} is not an e-mail address"))
            }
        };
        if let Some(a) = f.check(Some(d), "notice.email_dest", addr) {
            email_dest.push(a);
        }
    }
    let log_format = f.check(raw.log.format.as_ref(), "log.format", |s| {
        toml_form::choice(s, &[("tsv", LogFormat::Tsv), ("json", LogFormat::Json)])
    });
    let rotate_interval = f.check(
        raw.log.rotate_interval.as_ref(),
        "log.rotate_interval",
        toml_form::duration,
    );
    let rotate_size = f
        .check(
            raw.log.rotate_size.as_ref(),
            "log.rotate_size",
            toml_form::size,
        )
        .map(|s| s as u64);
    let cfg = SensorConfig {
        local_nets,
        private_address_space_is_local: raw.site.private_address_space_is_local.unwrap_or(true),
        notice_actions,
        email_dest,
        log_format,
        rotate_interval,
        rotate_size,
    };
    f.into_result(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_file() {
        let text = "[site]\nlocal_nets = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n[notice]\nalarm = [\"Scan::Port_Scan\"]\nemail_dest = [\"a@b.c\"]\n[log]\nformat = \"json\"\nrotate_interval = \"1h\"\n";
        let c = parse(Path::new("s.toml"), text).unwrap();
        assert_eq!(c.local_nets.len(), 2);
        assert_eq!(
            c.notice_actions,
            vec![(Note::ScanPortScan, NoticeAction::Alarm)]
        );
        assert_eq!(c.log_format, Some(LogFormat::Json));
        assert_eq!(c.rotate_interval, Some(Duration::from_secs(3600)));
    }

    #[test]
    fn errors_name_line_and_key() {
        let text = "[notice]\nalarm = [\"Nope::X\"]\n[site]\nlocal_nets = [\"10.0.0.0/40\"]\n";
        let e = parse(Path::new("s.toml"), text).unwrap_err();
        assert_eq!(e.0.len(), 2);
        assert_eq!(e.0[0].line, Some(4));
        assert_eq!(e.0[0].key.as_deref(), Some("site.local_nets"));
        assert_eq!(e.0[1].line, Some(2));
        assert_eq!(e.0[1].key.as_deref(), Some("notice.alarm"));
    }
}
