//! Detections that span connections, fed by finished log records: address and port scans
//! (the `ncsa/bro-simple-scan` logic and thresholds) and SSH password guessing (Zeek's
//! `detect-bruteforcing`, fed by ssh.log rows with `auth_success=F`).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use crate::conn::LocalNets;
use crate::conn_log::ConnRecord;
use crate::flow::Timestamp;
use crate::notice_log::{Note, Notice};
use crate::proto::ssh::LoginOutcome;

/// Remote scanners: unique (host, port) attempts before a notice.
pub const SCAN_THRESHOLD: usize = 25;
/// Local scanners.
pub const LOCAL_SCAN_THRESHOLD: usize = 250;
/// Attempts are forgotten after this long without activity from the scanner.
pub const SCAN_TIMEOUT: f64 = 15.0 * 60.0;
/// A reported scanner is ignored this long.
pub const SCAN_IGNORE: f64 = 3600.0;
/// SSH: failed logins per client within one epoch.
pub const PASSWORD_GUESSES_LIMIT: u64 = 30;
pub const GUESSING_TIMEOUT: f64 = 30.0 * 60.0;

const MAX_SCANNERS: usize = 100_000;
const MAX_ATTEMPTS: usize = 1_000;

#[derive(Debug)]
struct Scanner {
    last: f64,
    first: f64,
    attempts: HashSet<(IpAddr, u16)>,
}

/// Scan detection over conn.log rows.
#[derive(Debug, Default)]
pub struct ScanDetector {
    local: LocalNets,
    scanners: HashMap<IpAddr, Scanner>,
    ignored: HashMap<IpAddr, f64>,
}

impl ScanDetector {
    pub fn new(local: LocalNets) -> Self {
        ScanDetector {
            local,
            scanners: HashMap::new(),
            ignored: HashMap::new(),
        }
    }

    /// Looks at a conn.log row; returns a notice when a scanner crosses the threshold.
    pub fn conn(&mut self, conn: &ConnRecord) -> Option<Notice> {
        // Only failed attempts: a lone SYN (maybe with a zero window), or SYN then RST.
        if !matches!(conn.history.as_str(), "S" | "SW" | "Sr" | "SWr") {
            return None;
        }
        let (scanner, victim, port, ts) = (conn.orig_h, conn.resp_h, conn.resp_p, conn.ts.0);
        if let Some(&until) = self.ignored.get(&scanner) {
            if ts < until {
                return None;
            }
            self.ignored.remove(&scanner);
        }
        if self.scanners.len() >= MAX_SCANNERS && !self.scanners.contains_key(&scanner) {
            self.scanners.retain(|_, s| ts - s.last <= SCAN_TIMEOUT);
            if self.scanners.len() >= MAX_SCANNERS {
                return None;
            }
        }
        let s = self.scanners.entry(scanner).or_insert(Scanner {
            last: ts,
            first: ts,
            attempts: HashSet::new(),
        });
        if ts - s.last > SCAN_TIMEOUT {
            s.attempts.clear();
            s.first = ts;
        }
        s.last = s.last.max(ts);
        s.first = s.first.min(ts);
        if s.attempts.len() < MAX_ATTEMPTS {
            s.attempts.insert((victim, port));
        }
        let local = self.local.contains(scanner);
        let threshold = if local {
            LOCAL_SCAN_THRESHOLD
        } else {
            SCAN_THRESHOLD
        };
        if s.attempts.len() < threshold {
            return None;
        }
        let hosts: HashSet<IpAddr> = s.attempts.iter().map(|(h, _)| *h).collect();
        let ports: HashSet<u16> = s.attempts.iter().map(|(_, p)| *p).collect();
        let span = (s.last - s.first).max(0.0);
        let dur = format!("{}m{}s", (span / 60.0) as u64, (span % 60.0) as u64);
        let n = s.attempts.len();
        let (note, msg) = if ports.len() == 1 || (hosts.len() > 1 && ports.len() <= 5) {
            let p = ports.iter().min().copied().unwrap_or(port);
            (
                Note::ScanAddressScan,
                format!(
                    "{scanner} scanned at least {} unique hosts on port {p}/tcp in {dur}",
                    hosts.len()
                ),
            )
        } else if hosts.len() == 1 || hosts.len() <= 5 {
            (
                Note::ScanPortScan,
                format!(
                    "{scanner} scanned at least {} unique ports of host {victim} in {dur}",
                    ports.len()
                ),
            )
        } else {
            (
                Note::ScanRandomScan,
                format!(
                    "{scanner} scanned at least {} hosts on {} ports in {dur}",
                    hosts.len(),
                    ports.len()
                ),
            )
        };
        self.scanners.remove(&scanner);
        self.ignored.insert(scanner, ts + SCAN_IGNORE);
        let mut notice = Notice::new(Timestamp(ts), note, msg);
        notice.src = Some(scanner);
        notice.n = Some(n as u64);
        notice.sub = Some(if local { "local" } else { "remote" }.to_string());
        notice.identifier = Some(scanner.to_string());
        Some(notice)
    }
}

#[derive(Debug)]
struct Guesser {
    epoch_start: f64,
    failures: u64,
    servers: Vec<IpAddr>,
}

/// SSH password guessing over ssh.log rows.
#[derive(Debug, Default)]
pub struct SshGuessing {
    guessers: HashMap<IpAddr, Guesser>,
}

impl SshGuessing {
    /// Counts a failed login; returns a notice when a client crosses the limit.
    pub fn login(&mut self, login: LoginOutcome) -> Option<Notice> {
        if login.success != Some(false) {
            return None;
        }
        let (client, server, ts) = (login.client, login.server, login.ts.0);
        if self.guessers.len() >= MAX_SCANNERS && !self.guessers.contains_key(&client) {
            self.guessers
                .retain(|_, g| ts - g.epoch_start < GUESSING_TIMEOUT);
        }
        let g = self.guessers.entry(client).or_insert(Guesser {
            epoch_start: ts,
            failures: 0,
            servers: Vec::new(),
        });
        if ts - g.epoch_start >= GUESSING_TIMEOUT {
            *g = Guesser {
                epoch_start: ts,
                failures: 0,
                servers: Vec::new(),
            };
        }
        g.failures += 1;
        if g.servers.len() < 5 {
            g.servers.push(server);
        }
        if g.failures != PASSWORD_GUESSES_LIMIT {
            return None;
        }
        let sampled: Vec<String> = g.servers.iter().map(IpAddr::to_string).collect();
        let mut notice = Notice::new(
            Timestamp(ts),
            Note::SshPasswordGuessing,
            format!(
                "{client} appears to be guessing SSH passwords (seen in {} connections).",
                g.failures
            ),
        );
        notice.sub = Some(format!("Sampled servers:  {}", sampled.join(", ")));
        notice.src = Some(client);
        notice.identifier = Some(client.to_string());
        Some(notice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: f64, client: &str, ok: Option<bool>) -> LoginOutcome {
        LoginOutcome {
            ts: Timestamp(ts),
            client: client.parse().expect("addr"),
            server: "10.0.0.22".parse().expect("addr"),
            success: ok,
        }
    }

    #[test]
    fn thirty_failed_logins_in_an_epoch_is_guessing() {
        let mut d = SshGuessing::default();
        for i in 0..29 {
            assert!(d
                .login(row(f64::from(i), "192.0.2.9", Some(false)))
                .is_none());
            assert!(
                d.login(row(f64::from(i), "192.0.2.9", None)).is_none(),
                "unknown outcome does not count"
            );
            assert!(d
                .login(row(f64::from(i), "192.0.2.9", Some(true)))
                .is_none());
        }
        let n = d
            .login(row(29.0, "192.0.2.9", Some(false)))
            .expect("notice at 30");
        assert_eq!(n.note, Note::SshPasswordGuessing);
        assert_eq!(
            n.msg,
            "192.0.2.9 appears to be guessing SSH passwords (seen in 30 connections)."
        );
        assert_eq!(
            n.sub.as_deref(),
            Some("Sampled servers:  10.0.0.22, 10.0.0.22, 10.0.0.22, 10.0.0.22, 10.0.0.22")
        );
        assert!(
            d.login(row(30.0, "192.0.2.9", Some(false))).is_none(),
            "once per epoch"
        );
    }

    #[test]
    fn failures_spread_over_epochs_do_not_add_up() {
        let mut d = SshGuessing::default();
        for i in 0..40 {
            // One failure every two minutes: at most 15 within any 30-minute epoch.
            assert!(d
                .login(row(f64::from(i) * 120.0, "192.0.2.10", Some(false)))
                .is_none());
        }
    }
}
