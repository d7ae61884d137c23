//! Per-connection TLS state, as Zeek's SSL analyzer keeps it: the record layer of each
//! direction (`ssl-protocol.pac`), clear or encrypted per direction (`ssl-dtls-protocol.pac`),
//! the handshake facts ssl.log keeps (`tls-handshake-analyzer.pac` and
//! `scripts/base/protocols/ssl/main.zeek`), and `established` at the first ciphertext record
//! once both directions are encrypted (`ssl-dtls-analyzer.pac`).

use tls_parser::TlsCipherKx;

use super::log::SslInfo;
use super::names;
use super::parser::{self, ContentType};
use super::x509::{self, CertRole, X509Info};
use crate::flow::{ConnInfo, Direction, Timestamp};
use crate::proto::{Analyzer, Emit};

/// Bytes of handshake messages buffered per direction while a message is incomplete.
const MAX_HANDSHAKE_BUFFER: usize = 256 * 1024;
/// Zeek's `SSL::max_ssl_history_length`.
const MAX_HISTORY: usize = 100;

#[derive(Default)]
struct DirState {
    records: Vec<u8>,
    handshake: Vec<u8>,
    /// After ChangeCipherSpec (or TLS 1.3 application data): records are ciphertext.
    encrypted: bool,
}

/// Which record layer carries the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    Tls,
    Dtls,
}

pub struct SslAnalyzer {
    conn: ConnInfo,
    flavor: Flavor,
    info: Option<SslInfo>,
    dirs: [DirState; 2],
    kx: Option<TlsCipherKx>,
    client_session_id: Option<Vec<u8>>,
    /// The client offered a session ticket without a session id.
    ticket_resumption: bool,
    client_key_exchange_seen: bool,
    client_psk_seen: bool,
    /// The version the handshake settled on; the first one seen sticks (`set_version`).
    chosen_version: Option<u16>,
    /// The record-layer version of the first TLS record (`record_layer_version_`).
    record_layer: Option<u16>,
    server_cert: Option<Vec<u8>>,
    /// A ClientHello came from the responder (`check_flipped`): client and server swap.
    flipped: bool,
    flip_weird_raised: bool,
    established: bool,
    confirmed: bool,
    dtls: dtls::DtlsState,
    /// The TCP connection has no SYN handshake: Zeek's SSL analyzer reads none of it.
    tcp_partial: bool,
    /// Nothing more is analyzed: a content gap, a protocol violation, or the row was
    /// written at `established` (Zeek then disables the analyzer).
    stopped: bool,
}

/// The record-layer version of SSLv2.
const SSLV2: u16 = 0x0002;

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::Orig => 0,
        Direction::Resp => 1,
    }
}

/// The versions Zeek's record layer and hellos accept (`version_ok`).
fn version_ok(v: u16) -> bool {
    matches!(
        v,
        0x0002 | 0x0300 | 0x0301 | 0x0302 | 0x0303 | 0xfeff | 0xfefd
    )
}

/// A version below TLS 1.3: application data in the clear is not yet ciphertext.
fn pre_tls13(v: Option<u16>) -> bool {
    matches!(v, Some(0x0002 | 0x0300 | 0x0301 | 0x0302 | 0x0303))
}

impl SslAnalyzer {
    pub fn new(conn: ConnInfo) -> Self {
        Self::with_flavor(conn, Flavor::Tls)
    }

    pub fn new_dtls(conn: ConnInfo) -> Self {
        Self::with_flavor(conn, Flavor::Dtls)
    }

    fn with_flavor(conn: ConnInfo, flavor: Flavor) -> Self {
        SslAnalyzer {
            conn,
            flavor,
            info: None,
            dirs: Default::default(),
            kx: None,
            client_session_id: None,
            ticket_resumption: false,
            client_key_exchange_seen: false,
            client_psk_seen: false,
            chosen_version: None,
            record_layer: None,
            server_cert: None,
            flipped: false,
            flip_weird_raised: false,
            established: false,
            confirmed: false,
            dtls: dtls::DtlsState::default(),
            tcp_partial: false,
            stopped: false,
        }
    }

    fn info(&mut self, ts: Timestamp) -> &mut SslInfo {
        let conn = &self.conn;
        self.info
            .get_or_insert_with(|| SslInfo::new(ts, conn.clone()))
    }

    fn letter(&mut self, ts: Timestamp, client: bool, upper: char, out: &mut dyn Emit) {
        let c = if client {
            upper
        } else {
            upper.to_ascii_lowercase()
        };
        let info = self.info(ts);
        if info.ssl_history.len() >= MAX_HISTORY {
            return;
        }
        info.ssl_history.push(c);
        if info.ssl_history.len() == MAX_HISTORY {
            out.weird(
                ts,
                "SSL_max_ssl_history_length_reached",
                Some(MAX_HISTORY.to_string()),
            );
        }
    }

    /// A protocol violation: the script writes the row now and the analyzer is disabled.
    fn violation(&mut self, reason: &str, out: &mut dyn Emit) {
        tracing::debug!(uid = %self.conn.uid, reason, "SSL analyzer violation");
        self.stopped = true;
        self.write_row(out);
        out.violation(self.service());
    }

    fn write_row(&mut self, out: &mut dyn Emit) {
        if let Some(info) = self.info.take() {
            out.record(Box::new(info));
        }
    }

    fn service(&self) -> &'static str {
        match self.flavor {
            Flavor::Tls => "ssl",
            Flavor::Dtls => "dtls",
        }
    }

    fn confirm(&mut self, out: &mut dyn Emit) {
        if !self.confirmed {
            self.confirmed = true;
            out.confirm_service(self.service());
        }
    }

    fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// Checks a TLS record header the way `determine_ssl_record_layer` does; false (after a
    /// violation) if the stream is not, or no longer, TLS.
    fn record_layer_ok(&mut self, hdr: &[u8], out: &mut dyn Emit) -> bool {
        let version = u16::from_be_bytes([hdr[1], hdr[2]]);
        let tls_version = matches!(version, 0x0300..=0x0303);
        if self.record_layer.is_some() {
            if !tls_version {
                self.violation("Invalid version late in TLS connection", out);
                return false;
            }
            return true;
        }
        if !tls_version {
            self.violation("Invalid version in TLS connection", out);
            return false;
        }
        if !(20..=30).contains(&hdr[0]) {
            self.violation("Invalid type in TLS connection", out);
            return false;
        }
        self.record_layer = Some(version);
        true
    }

    /// One record's content. `clear` is false for records the record layer already knows to
    /// be ciphertext (DTLS epochs above 0).
    fn record(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        kind: ContentType,
        payload: &[u8],
        out: &mut dyn Emit,
    ) {
        let d = idx(dir);
        // TLS 1.3 sends no usable ChangeCipherSpec: its first application data record is
        // taken as the switch to ciphertext (`determine_state`).
        if !self.dirs[d].encrypted
            && kind == ContentType::ApplicationData
            && self.flavor == Flavor::Tls
            && !pre_tls13(self.chosen_version)
        {
            self.dirs[d].encrypted = true;
        }
        if self.dirs[d].encrypted {
            self.ciphertext(out);
            return;
        }
        self.plaintext(ts, dir, kind, payload, out);
    }

    fn ciphertext(&mut self, out: &mut dyn Emit) {
        if self.dirs.iter().all(|d| d.encrypted) && !self.established {
            self.established = true;
            if let Some(info) = self.info.as_mut() {
                info.established = true;
            }
            self.stopped = true;
            self.write_row(out);
        }
    }

    fn plaintext(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        kind: ContentType,
        payload: &[u8],
        out: &mut dyn Emit,
    ) {
        let orig = dir == Direction::Orig;
        if kind == ContentType::ApplicationData
            && !self.established
            && self.info.as_ref().is_some_and(|i| i.version.is_some())
        {
            out.script_weird(ts, "ssl_early_application_data", None);
        }
        match kind {
            ContentType::Handshake if self.flavor == Flavor::Tls => {
                let d = &mut self.dirs[idx(dir)];
                if d.handshake.len() + payload.len() > MAX_HANDSHAKE_BUFFER {
                    self.violation("handshake message too large", out);
                    return;
                }
                d.handshake.extend_from_slice(payload);
                while let Some((t, len)) = parser::next_handshake(&self.dirs[idx(dir)].handshake) {
                    let msg: Vec<u8> = self.dirs[idx(dir)].handshake.drain(..len).collect();
                    self.handshake(ts, dir, t, &msg, out);
                    if self.stopped {
                        return;
                    }
                }
            }
            ContentType::ChangeCipherSpec => {
                // One event per byte: the record holds an array of one-byte messages.
                for _ in 0..payload.len().max(1) {
                    self.letter(ts, orig, 'I', out);
                    if orig && self.ticket_resumption && !self.client_key_exchange_seen {
                        self.info(ts).resumed = true;
                    }
                }
                self.dirs[idx(dir)].encrypted = true;
            }
            ContentType::Alert => {
                for alert in payload.chunks_exact(2) {
                    self.letter(ts, orig, 'L', out);
                    self.info(ts).last_alert = Some(names::alert_name(u16::from(alert[1])));
                }
                if !payload.len().is_multiple_of(2) {
                    self.violation("truncated alert", out);
                }
            }
            ContentType::Heartbeat => self.letter(ts, orig, 'B', out),
            ContentType::Other(_) => self.violation("unknown SSL record type", out),
            ContentType::Handshake | ContentType::ApplicationData => {}
        }
    }

    /// `check_flipped`: a hello from the side that should not send it flips the roles.
    fn check_flipped(&mut self, ts: Timestamp, desired_orig: bool, orig: bool, out: &mut dyn Emit) {
        if self.flipped {
            if desired_orig == orig {
                self.flipped = false;
                self.info(ts).ssl_history.push('^');
                if !self.flip_weird_raised {
                    self.flip_weird_raised = true;
                    out.weird(ts, "SSL_unclear_connection_direction", None);
                }
            }
        } else if desired_orig != orig {
            self.flipped = true;
            self.info(ts).ssl_history.push('^');
        }
    }

    fn handshake(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        kind: u8,
        msg: &[u8],
        out: &mut dyn Emit,
    ) {
        let orig = dir == Direction::Orig;
        match kind {
            1 => self.check_flipped(ts, true, orig, out),
            0 | 2 => self.check_flipped(ts, false, orig, out),
            _ => {}
        }
        let client = orig ^ self.flipped;
        let facts = parser::handshake_facts(msg, self.kx);
        // Extension events come first, then the hello itself, then the message's letter.
        if facts.empty_ocsp_response {
            out.weird(ts, "SSL_zero_length_stapled_OCSP_message", None);
        }
        for name_type in &facts.unknown_name_types {
            out.weird(
                ts,
                "ssl_ext_unknown_server_name_type",
                Some(name_type.to_string()),
            );
        }
        if client {
            self.client_extensions(ts, &facts, out);
        } else {
            self.server_extensions(ts, &facts);
        }
        match (kind, client) {
            (1, true) => {
                match facts.client_version {
                    Some(v) if version_ok(v) => self.confirm(out),
                    Some(_) => {
                        self.violation("unsupported client SSL version", out);
                        return;
                    }
                    None => {}
                }
                self.client_hello(ts, &facts);
            }
            (2, false) => {
                if facts.version.is_some_and(|v| !version_ok(v)) {
                    self.violation("unsupported server SSL version", out);
                    return;
                }
                self.server_hello(ts, &facts);
            }
            (16, true) => self.client_key_exchange_seen = true,
            _ => {}
        }
        let letter = match kind {
            2 if facts.hello_retry => 'J',
            _ => names::handshake_letter(kind),
        };
        self.letter(ts, client, letter, out);
        if let Some(g) = facts.curve {
            self.info(ts).curve = Some(names::curve_name(g));
        }
        if let Some(certs) = facts.certificates {
            self.certificates(ts, client, certs, out);
        }
    }

    fn client_extensions(
        &mut self,
        ts: Timestamp,
        facts: &parser::HandshakeFacts,
        out: &mut dyn Emit,
    ) {
        if let Some(names) = &facts.server_names {
            if let Some(first) = names.first() {
                self.info(ts).server_name = Some(first.clone());
            }
            if names.len() > 1 {
                let list: Vec<String> = names
                    .iter()
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect();
                out.script_weird(
                    ts,
                    "SSL_many_server_names",
                    Some(format!("[{}]", list.join(", "))),
                );
            }
        }
        self.client_psk_seen |= facts.psk;
        if facts.session_ticket {
            self.ticket_resumption = true;
        }
    }

    fn server_extensions(&mut self, ts: Timestamp, facts: &parser::HandshakeFacts) {
        if let Some(v) = facts.selected_version {
            if self.chosen_version.is_none() {
                self.chosen_version = Some(v);
            }
            let info = self.info(ts);
            info.version_num = Some(v);
            info.version = Some(names::version_name(v));
        }
        if let Some(p) = &facts.alpn {
            self.info(ts).next_protocol = Some(p.clone());
        }
        if facts.psk && self.client_psk_seen {
            self.info(ts).resumed = true;
        }
    }

    fn client_hello(&mut self, ts: Timestamp, facts: &parser::HandshakeFacts) {
        // Zeek ignores empty and all-zero session ids; a ticket counts only without one.
        let id = facts
            .session_id
            .clone()
            .filter(|id| id.len() <= 32 && id.iter().any(|b| *b != 0));
        if id.is_some() {
            self.client_session_id = id;
            self.ticket_resumption = false;
        }
        self.info(ts);
    }

    fn server_hello(&mut self, ts: Timestamp, facts: &parser::HandshakeFacts) {
        let Some(outer) = facts.version else {
            self.info(ts);
            return;
        };
        if self.chosen_version.is_none() {
            self.chosen_version = Some(outer);
        }
        let info = self.info(ts);
        let v = *info.version_num.get_or_insert(outer);
        info.version = Some(names::version_name(v));
        if let Some(c) = facts.cipher {
            info.cipher = Some(names::cipher_name(c));
            self.kx = parser::cipher_kx(c).or(self.kx);
        }
        let tls13 = v / 0xff == 0x7f || v == 0x0304;
        let same_session = !tls13
            && facts.session_id.as_ref().is_some_and(|s| s.len() <= 32)
            && self.client_session_id.is_some()
            && padded(&facts.session_id) == padded(&self.client_session_id);
        if same_session {
            self.info(ts).resumed = true;
        }
    }

    fn certificates(
        &mut self,
        ts: Timestamp,
        client: bool,
        certs: Vec<Vec<u8>>,
        out: &mut dyn Emit,
    ) {
        let fps: Vec<String> = certs.iter().map(|c| x509::fingerprint(c)).collect();
        for (i, der) in certs.iter().enumerate() {
            let role = match (i, client) {
                (0, false) => CertRole::Host,
                (0, true) => CertRole::Client,
                _ => CertRole::Chain,
            };
            if let Some(cert) = X509Info::parse(ts, der, role) {
                out.x509(cert);
            }
        }
        let info = self.info(ts);
        let (mine, other) = if client {
            (&mut info.client_cert_chain_fps, &mut info.cert_chain_fps)
        } else {
            (&mut info.cert_chain_fps, &mut info.client_cert_chain_fps)
        };
        *mine = Some(fps);
        other.get_or_insert_with(Vec::new);
        if !client {
            self.server_cert = certs.into_iter().next();
        }
        let sni = self.info.as_ref().and_then(|i| i.server_name.clone());
        if let (Some(cert), Some(sni)) = (&self.server_cert, sni) {
            let matches = parser::hostname_matches(cert, &sni);
            self.info(ts).sni_matches_cert = matches;
        }
    }

    /// The SSLv2-format ClientHello old clients open with: no handshake layer, so the script
    /// adds its letter itself.
    fn sslv2_client_hello(&mut self, ts: Timestamp, version: u16, out: &mut dyn Emit) {
        if matches!(version, SSLV2 | 0x0300..=0x0303) {
            self.confirm(out);
        } else {
            self.violation("Invalid version in SSL client hello", out);
            return;
        }
        self.letter(ts, true, 'C', out);
    }
}

/// Session ids as the events carry them: 32 bytes, zero-padded.
fn padded(id: &Option<Vec<u8>>) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Some(id) = id {
        if let Some(dst) = out.get_mut(..id.len()) {
            dst.copy_from_slice(id);
        }
    }
    out
}

impl Analyzer for SslAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        if self.stopped || self.tcp_partial {
            return;
        }
        if self.flavor == Flavor::Dtls {
            dtls::datagram(self, ts, dir, data, out);
            return;
        }
        self.dirs[idx(dir)].records.extend_from_slice(data);
        while !self.stopped {
            let buf = std::mem::take(&mut self.dirs[idx(dir)].records);
            let used = if self.record_layer == Some(SSLV2) {
                self.v2_record(ts, dir, &buf, out)
            } else {
                self.tls_record(ts, dir, &buf, out)
            };
            match used {
                Some(n) => self.dirs[idx(dir)].records = buf.get(n..).unwrap_or_default().to_vec(),
                None => {
                    self.dirs[idx(dir)].records = buf;
                    return;
                }
            }
        }
    }

    fn gap(&mut self, _ts: Timestamp, _dir: Direction, _len: u64, _out: &mut dyn Emit) {
        // After a content gap in either direction Zeek's SSL analyzer parses nothing more.
        self.stopped = true;
        for d in &mut self.dirs {
            d.records.clear();
            d.handshake.clear();
        }
    }

    fn finish(&mut self, _ts: Timestamp, out: &mut dyn Emit) {
        self.write_row(out);
    }

    fn tcp_partial(&mut self, partial: bool) {
        self.tcp_partial = partial;
    }
}

mod dtls;
mod records;
#[cfg(test)]
mod tests;
