//! `MaxConnectionsPerAddress` and `MaxConnectionsPerCertName`: how many connections one sender
//! may hold at once, so that one cannot take the capacity every other sender needs.

use super::Settings;

/// Connections one sender may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// `MaxConnectionsPerAddress`: from one peer address. Default 256.
    pub per_address: usize,
    /// `MaxConnectionsPerCertName`: under one client certificate name, from any number of
    /// addresses (a certificate with several names counts against each). Default 256.
    pub per_cert_name: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            per_address: 256,
            per_cert_name: 256,
        }
    }
}

/// The connections the aggregator serves at once over all listeners: no sender needs more.
const MAX_CONNECTIONS: usize = 4096;

fn parse_limit(v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(n @ 1..=MAX_CONNECTIONS) => Ok(n),
        _ => Err(format!(
            "expected a number of connections from 1 to {MAX_CONNECTIONS}, got {v:?}"
        )),
    }
}

impl Settings<'_> {
    pub(super) fn connection_limits(&mut self) -> ConnectionLimits {
        let default = ConnectionLimits::default();
        ConnectionLimits {
            per_address: self
                .get("MaxConnectionsPerAddress", parse_limit)
                .unwrap_or(default.per_address),
            per_cert_name: self
                .get("MaxConnectionsPerCertName", parse_limit)
                .unwrap_or(default.per_cert_name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_numbers_of_connections_up_to_the_total() {
        assert_eq!(parse_limit("8"), Ok(8));
        assert_eq!(parse_limit("4096"), Ok(4096));
        for bad in ["0", "4097", "-1", "many", ""] {
            assert!(parse_limit(bad).is_err(), "{bad:?}");
        }
    }
}
