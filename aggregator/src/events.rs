//! What happened, reported in one place (as Vector's `internal_events`): every counter the
//! aggregator keeps is updated here and every event worth a log line is traced here. The
//! counters feed `status.json` and StatsLog through [`Events::snapshot`], which a metrics
//! exporter can read the same way.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::clock::unix_secs;
use crate::stats::{Counters, Status};

/// The same complaint about the same peer is logged at most this often.
const COMPLAIN_EVERY: Duration = Duration::from_secs(60);
/// Distinct (peer, complaint) pairs remembered for rate limiting.
const MAX_COMPLAINTS: usize = 10_000;

/// Why input from a peer was not taken. Each reason is counted on its own and logged at most
/// once a minute per peer, so one kind of refusal never hides another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No peer rule matches the address or certificate.
    PeerNotAllowed,
    /// The tag does not pass the peer's tag rule.
    TagNotAllowed,
    /// Every connection slot is taken.
    ConnectionLimit,
    /// The address holds all the connections one address may.
    AddressConnectionLimit,
    /// A client certificate name holds all the connections one name may, over all addresses.
    CertNameConnectionLimit,
    /// The address has all the TLS handshakes in progress one address may.
    HandshakeLimit,
    /// No whole frame arrived in time after connecting.
    FirstFrameTimeout,
    TlsHandshakeFailed,
    TlsHandshakeTimeout,
    /// Not RFC 3164/5424 syslog.
    NotSyslog,
    /// Longer than MaxMessageSize.
    Oversized,
    /// The stream's framing is lost; the connection is closed.
    Framing,
    /// The RELP client broke the protocol; the session is closed.
    RelpProtocol,
    /// A header block still being collected gave way to the bound on them; its lines were
    /// written as data.
    HeaderBlockEvicted,
    /// A header block was not kept as a header: the schemas kept are at their bound.
    SchemaLimit,
    /// A line claimed an offset far past its file's mark; it was written, the mark not moved.
    MarkJump,
    /// A sender has more shipper files than the marks kept per sender; the oldest was forgotten.
    MarkLimit,
}

impl Refusal {
    const ALL: [Refusal; 17] = [
        Refusal::PeerNotAllowed,
        Refusal::TagNotAllowed,
        Refusal::ConnectionLimit,
        Refusal::AddressConnectionLimit,
        Refusal::CertNameConnectionLimit,
        Refusal::HandshakeLimit,
        Refusal::FirstFrameTimeout,
        Refusal::TlsHandshakeFailed,
        Refusal::TlsHandshakeTimeout,
        Refusal::NotSyslog,
        Refusal::Oversized,
        Refusal::Framing,
        Refusal::RelpProtocol,
        Refusal::HeaderBlockEvicted,
        Refusal::SchemaLimit,
        Refusal::MarkJump,
        Refusal::MarkLimit,
    ];

    /// The name in `status.json`, StatsLog and log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::PeerNotAllowed => "peer_not_allowed",
            Refusal::TagNotAllowed => "tag_not_allowed",
            Refusal::ConnectionLimit => "connection_limit",
            Refusal::AddressConnectionLimit => "address_connection_limit",
            Refusal::CertNameConnectionLimit => "cert_name_connection_limit",
            Refusal::HandshakeLimit => "handshake_limit",
            Refusal::FirstFrameTimeout => "first_frame_timeout",
            Refusal::TlsHandshakeFailed => "tls_handshake_failed",
            Refusal::TlsHandshakeTimeout => "tls_handshake_timeout",
            Refusal::NotSyslog => "not_syslog",
            Refusal::Oversized => "oversized",
            Refusal::Framing => "framing",
            Refusal::RelpProtocol => "relp_protocol",
            Refusal::HeaderBlockEvicted => "header_block_evicted",
            Refusal::SchemaLimit => "schema_limit",
            Refusal::MarkJump => "mark_jump",
            Refusal::MarkLimit => "mark_limit",
        }
    }

    /// Bad bytes count as malformed; input that is well-formed but not welcome as refused.
    fn is_malformed(self) -> bool {
        matches!(
            self,
            Refusal::NotSyslog | Refusal::Oversized | Refusal::Framing | Refusal::RelpProtocol
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts kept as atomics, for readers that must not wait (a metrics exporter).
#[derive(Debug, Default)]
struct Totals {
    received: AtomicU64,
    accepted: AtomicU64,
    duplicates: AtomicU64,
    bytes: AtomicU64,
    archived: AtomicU64,
    archive_failures: AtomicU64,
    refusals: [AtomicU64; Refusal::ALL.len()],
}

/// Messages that arrived in one read, reported together.
#[derive(Debug, Default, Clone, Copy)]
pub struct Arrivals {
    messages: u64,
    bytes: u64,
}

impl Arrivals {
    /// One message of `bytes` (0 for one that was not kept, such as an oversized one).
    pub fn add(&mut self, bytes: usize) {
        self.messages += 1;
        self.bytes += bytes as u64;
    }
}

#[derive(Debug)]
pub struct Events {
    started: u64,
    totals: Totals,
    peers: Mutex<BTreeMap<String, Counters>>,
    disk_paused: AtomicBool,
    complaints: Mutex<HashMap<(String, &'static str), Instant>>,
}

impl Events {
    pub fn new(started: SystemTime) -> Self {
        Events {
            started: unix_secs(started),
            totals: Totals::default(),
            peers: Mutex::default(),
            disk_paused: AtomicBool::new(false),
            complaints: Mutex::default(),
        }
    }

    fn add(&self, peer: &str, delta: &Counters) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        match peers.get_mut(peer) {
            Some(c) => c.add(delta),
            None => {
                peers.insert(peer.to_owned(), *delta);
            }
        }
    }

    /// Messages that arrived from `peer` in one read.
    pub fn received(&self, peer: &str, arrivals: Arrivals) {
        let Arrivals { messages, bytes } = arrivals;
        if messages == 0 {
            return;
        }
        self.totals.received.fetch_add(messages, Ordering::Relaxed);
        self.totals.bytes.fetch_add(bytes, Ordering::Relaxed);
        let delta = Counters {
            received: messages,
            bytes,
            ..Counters::default()
        };
        self.add(peer, &delta);
    }

    /// Messages of `peer` committed by the writer, and replays it dropped.
    pub fn committed(&self, peer: &str, accepted: u64, duplicates: u64) {
        self.totals.accepted.fetch_add(accepted, Ordering::Relaxed);
        self.totals
            .duplicates
            .fetch_add(duplicates, Ordering::Relaxed);
        let delta = Counters {
            accepted,
            duplicates,
            ..Counters::default()
        };
        self.add(peer, &delta);
    }

    /// Input from `peer` was not taken.
    pub fn refused(&self, peer: &str, why: Refusal, detail: &dyn fmt::Display) {
        self.totals.refusals[why as usize].fetch_add(1, Ordering::Relaxed);
        let delta = if why.is_malformed() {
            Counters {
                malformed: 1,
                ..Counters::default()
            }
        } else {
            Counters {
                refused: 1,
                ..Counters::default()
            }
        };
        self.add(peer, &delta);
        self.complain(peer, why.as_str(), detail);
    }

    /// A bound on what senders may hold was hit; `source` names what the sender claimed to be.
    /// Claimed names are free to invent, so the log line is limited per reason, not per name.
    pub fn bounded(&self, why: Refusal, source: &str, detail: &dyn fmt::Display) {
        self.totals.refusals[why as usize].fetch_add(1, Ordering::Relaxed);
        self.complain("", why.as_str(), &format_args!("{source}: {detail}"));
    }

    /// A message that is not syslog (RFC 3164/5424); it is kept whole in the catch-all log.
    pub fn unparsed(&self, peer: &str) {
        let delta = Counters {
            malformed: 1,
            ..Counters::default()
        };
        self.add(peer, &delta);
        let detail = "message is not syslog (RFC 3164/5424); kept whole in the catch-all log";
        self.complain(peer, "unparsed", &detail);
    }

    /// A connection ended for a reason that loses nothing by itself (idle, reset, cut short).
    pub fn connection_ended(&self, peer: &str, why: &'static str, detail: &dyn fmt::Display) {
        self.complain(peer, why, detail);
    }

    /// Logs `detail` about `peer` unless the same kind was logged about it within the last
    /// minute (`peer` empty: about anyone).
    fn complain(&self, peer: &str, kind: &'static str, detail: &dyn fmt::Display) {
        let mut seen = self.complaints.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_COMPLAINTS {
            seen.clear();
        }
        let now = Instant::now();
        let key = (peer.to_owned(), kind);
        if seen
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < COMPLAIN_EVERY)
        {
            return;
        }
        seen.insert(key, now);
        tracing::warn!(peer, kind, "{detail}");
    }

    /// Free space fell below the hard floor: the writer stops taking messages.
    pub fn disk_paused(&self, free_percent: f64, floor: f64) {
        self.disk_paused.store(true, Ordering::Relaxed);
        tracing::error!(
            free_percent,
            floor,
            "disk below the hard floor: not reading or acknowledging until space returns"
        );
    }

    pub fn disk_resumed(&self, free_percent: f64) {
        self.disk_paused.store(false, Ordering::Relaxed);
        tracing::warn!(free_percent, "disk space is back; taking messages again");
    }

    pub fn write_failed(&self, err: &dyn std::error::Error) {
        tracing::error!(%err, "cannot write logs; holding messages and retrying");
    }

    /// Stopping while writing failed: these messages were taken and not written. None of them
    /// was acknowledged, so RELP senders send them again; plain TCP and UDP ones are lost.
    pub fn not_written_at_stop(&self, messages: usize) {
        tracing::error!(
            messages,
            "stopping while logs cannot be written: messages not written and not acknowledged"
        );
    }

    pub fn rotation_failed(&self, err: &dyn std::error::Error) {
        tracing::error!(%err, "rotation failed; retrying");
    }

    pub fn accept_failed(&self, listener: &'static str, err: &dyn std::error::Error) {
        tracing::warn!(listener, %err, "accept or receive failed");
    }

    /// The status file or StatsLog could not be written; the counters are intact.
    pub fn statistics_not_written(&self, what: &'static str, err: &dyn std::error::Error) {
        tracing::warn!(what, %err, "cannot write statistics");
    }

    pub fn cron_pass(&self, result: Result<(usize, usize), &dyn std::error::Error>) {
        match result {
            Ok((expired, findings)) => tracing::info!(expired, findings, "cron pass"),
            Err(err) => tracing::warn!(%err, "cron pass failed"),
        }
    }

    pub fn rotated(&self, log: &str, path: &Path) {
        tracing::info!(log, path = %path.display(), "rotated");
    }

    pub fn archived(&self, archive: &Path) {
        self.totals.archived.fetch_add(1, Ordering::Relaxed);
        tracing::info!(archive = %archive.display(), "archived");
    }

    pub fn archive_scan_failed(&self, err: &dyn std::error::Error) {
        tracing::error!(%err, "cannot scan for logs to archive");
    }

    pub fn archive_failed(&self, source: &Path, err: &dyn std::error::Error) {
        self.totals.archive_failures.fetch_add(1, Ordering::Relaxed);
        tracing::error!(source = %source.display(), %err, "archiving failed; kept for the next try");
    }

    /// Everything counted so far.
    pub fn snapshot(&self, now: SystemTime) -> Status {
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let mut total = Counters {
            received: load(&self.totals.received),
            accepted: load(&self.totals.accepted),
            duplicates: load(&self.totals.duplicates),
            bytes: load(&self.totals.bytes),
            ..Counters::default()
        };
        let mut refusals = BTreeMap::new();
        for why in Refusal::ALL {
            let n = load(&self.totals.refusals[why as usize]);
            if n == 0 {
                continue;
            }
            match why.is_malformed() {
                true => total.malformed += n,
                false => total.refused += n,
            }
            refusals.insert(why.as_str().to_owned(), n);
        }
        Status {
            time: unix_secs(now),
            started: self.started,
            pid: std::process::id(),
            peers: self.peers.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            total,
            refusals,
            archived: load(&self.totals.archived),
            archive_failures: load(&self.totals.archive_failures),
            disk_paused: self.disk_paused.load(Ordering::Relaxed),
            nats: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_per_reason_and_per_peer() {
        let events = Events::new(SystemTime::UNIX_EPOCH);
        let mut arrivals = Arrivals::default();
        for _ in 0..3 {
            arrivals.add(10);
        }
        events.received("p", arrivals);
        events.refused("p", Refusal::TagNotAllowed, &"tag");
        events.refused("p", Refusal::NotSyslog, &"garbage");
        events.refused("p", Refusal::NotSyslog, &"garbage");
        events.committed("p", 0, 0);
        let status = events.snapshot(SystemTime::UNIX_EPOCH);
        let p = status.peers["p"];
        assert_eq!((p.received, p.refused, p.malformed), (3, 1, 2));
        assert_eq!(status.refusals["not_syslog"], 2);
        assert_eq!(status.refusals["tag_not_allowed"], 1);
        assert!(!status.refusals.contains_key("oversized"));
        assert_eq!(status.total, p);
    }
}
