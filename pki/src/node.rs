//! Node names: what a certificate is issued for, and the stem of its file names.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::PkiError;

/// A DNS name (letters, digits and hyphens in dot-separated labels) or an IP address. Either is
/// safe as a file name, so `NODE.pem` always lands in the site directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeName(String);

impl NodeName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.0.parse().ok()
    }
}

impl FromStr for NodeName {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<NodeName, PkiError> {
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if s.parse::<IpAddr>().is_ok() || (s.len() <= 253 && s.split('.').all(label_ok)) {
            Ok(NodeName(s.to_owned()))
        } else {
            Err(PkiError::BadNodeName(s.to_owned()))
        }
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
