//! Syslog facility and severity (RFC 5424 section 6.2.1) and the PRI value they make.

use std::fmt;
use std::str::FromStr;

macro_rules! named_codes {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $code:literal, $text:literal;)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant = $code,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The numeric code.
            pub fn code(self) -> u8 {
                self as u8
            }

            pub fn from_code(code: u8) -> Option<Self> {
                match code {
                    $($code => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The keyword syslog.conf uses (`local7`, `info`).
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named_codes!(
    /// Syslog facility.
    Facility {
        Kern = 0, "kern"; User = 1, "user"; Mail = 2, "mail"; Daemon = 3, "daemon";
        Auth = 4, "auth"; Syslog = 5, "syslog"; Lpr = 6, "lpr"; News = 7, "news";
        Uucp = 8, "uucp"; Cron = 9, "cron"; Authpriv = 10, "authpriv"; Ftp = 11, "ftp";
        Ntp = 12, "ntp"; Security = 13, "security"; Console = 14, "console"; SolarisCron = 15, "solaris-cron";
        Local0 = 16, "local0"; Local1 = 17, "local1"; Local2 = 18, "local2"; Local3 = 19, "local3";
        Local4 = 20, "local4"; Local5 = 21, "local5"; Local6 = 22, "local6"; Local7 = 23, "local7";
    }
);

named_codes!(
    /// Syslog severity.
    Severity {
        Emergency = 0, "emerg"; Alert = 1, "alert"; Critical = 2, "crit"; Error = 3, "err";
        Warning = 4, "warning"; Notice = 5, "notice"; Informational = 6, "info"; Debug = 7, "debug";
    }
);

/// The name was not a facility or severity keyword.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {name:?}")]
pub struct UnknownName {
    pub kind: &'static str,
    pub name: String,
}

impl FromStr for Facility {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        // rsyslog also accepts these historical aliases.
        let lower = match lower.as_str() {
            "security" => "auth",
            other => other,
        };
        Facility::ALL
            .iter()
            .copied()
            .find(|f| f.name() == lower)
            .ok_or_else(|| UnknownName {
                kind: "facility",
                name: s.to_owned(),
            })
    }
}

impl FromStr for Severity {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        let lower = match lower.as_str() {
            "emergency" | "panic" => "emerg",
            "error" => "err",
            "warn" => "warning",
            "informational" => "info",
            "critical" => "crit",
            other => other,
        };
        Severity::ALL
            .iter()
            .copied()
            .find(|s| s.name() == lower)
            .ok_or_else(|| UnknownName {
                kind: "severity",
                name: s.to_owned(),
            })
    }
}

/// The PRI part of a syslog message: `facility * 8 + severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pri {
    pub facility: Facility,
    pub severity: Severity,
}

impl Pri {
    pub fn value(self) -> u8 {
        self.facility.code() * 8 + self.severity.code()
    }

    pub fn from_value(value: u8) -> Option<Self> {
        Some(Pri {
            facility: Facility::from_code(value / 8)?,
            severity: Severity::from_code(value % 8)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local7_info_is_190() {
        let pri = Pri {
            facility: "local7".parse().unwrap(),
            severity: "info".parse().unwrap(),
        };
        assert_eq!(pri.value(), 190);
        assert_eq!(Pri::from_value(190), Some(pri));
        assert_eq!(Pri::from_value(192), None);
    }
}
