//! Per-connection TLS state: record framing per direction, the handshake facts ssl.log keeps,
//! and `established` once both sides switched to encrypted records.

use tls_parser::TlsCipherKx;

use super::log::SslInfo;
use super::parser::{self, ContentType};
use super::x509::{self, CertRole, X509Info};
use crate::flow::{ConnInfo, Direction, Timestamp};
use crate::proto::{Analyzer, Emit};

/// Bytes of handshake messages buffered per direction while a message is incomplete.
const MAX_HANDSHAKE_BUFFER: usize = 256 * 1024;
/// Letters kept in `ssl_history`.
const MAX_HISTORY: usize = 100;

#[derive(Default)]
struct DirState {
    records: Vec<u8>,
    handshake: Vec<u8>,
    /// After ChangeCipherSpec (or a TLS 1.3 ServerHello): handshake records are ciphertext.
    encrypted: bool,
    ccs: bool,
    app_data: bool,
    /// A gap or a broken record: this direction is no longer parsed.
    lost: bool,
}

pub struct SslAnalyzer {
    conn: ConnInfo,
    info: Option<SslInfo>,
    dirs: [DirState; 2],
    kx: Option<TlsCipherKx>,
    client_session_id: Option<Vec<u8>>,
    /// The client offered a session ticket without a session id.
    ticket_resumption: bool,
    client_key_exchange_seen: bool,
    server_version: Option<u16>,
    server_cert: Option<Vec<u8>>,
    /// The row was written (at `established`); the rest of the connection is ignored.
    logged: bool,
    confirmed: bool,
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::Orig => 0,
        Direction::Resp => 1,
    }
}

fn is_tls13(v: u16) -> bool {
    v == 0x0304 || (0x7f00..=0x7fff).contains(&v)
}

impl SslAnalyzer {
    pub fn new(conn: ConnInfo) -> Self {
        SslAnalyzer {
            conn,
            info: None,
            dirs: Default::default(),
            kx: None,
            client_session_id: None,
            ticket_resumption: false,
            client_key_exchange_seen: false,
            server_version: None,
            server_cert: None,
            logged: false,
            confirmed: false,
        }
    }

    fn info(&mut self, ts: Timestamp) -> &mut SslInfo {
        let conn = &self.conn;
        self.info
            .get_or_insert_with(|| SslInfo::new(ts, conn.clone()))
    }

    fn letter(&mut self, ts: Timestamp, dir: Direction, upper: char, out: &mut dyn Emit) {
        let c = match dir {
            Direction::Orig => upper,
            Direction::Resp => upper.to_ascii_lowercase(),
        };
        let info = self.info(ts);
        if info.ssl_history.len() >= MAX_HISTORY {
            return;
        }
        info.ssl_history.push(c);
        if info.ssl_history.len() == MAX_HISTORY {
            out.weird(ts, "SSL_max_ssl_history_length_reached", None);
        }
    }

    fn record(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        kind: ContentType,
        payload: &[u8],
        out: &mut dyn Emit,
    ) {
        match kind {
            ContentType::Handshake => {
                if self.dirs[idx(dir)].encrypted {
                    return;
                }
                let d = &mut self.dirs[idx(dir)];
                if d.handshake.len() + payload.len() > MAX_HANDSHAKE_BUFFER {
                    out.weird(ts, "SSL_handshake_too_large", None);
                    d.lost = true;
                    return;
                }
                d.handshake.extend_from_slice(payload);
                while let Some((t, len)) = parser::next_handshake(&self.dirs[idx(dir)].handshake) {
                    let msg: Vec<u8> = self.dirs[idx(dir)].handshake.drain(..len).collect();
                    self.handshake(ts, dir, t, &msg, out);
                }
            }
            ContentType::ChangeCipherSpec => {
                self.letter(ts, dir, 'I', out);
                if dir == Direction::Orig
                    && self.ticket_resumption
                    && !self.client_key_exchange_seen
                {
                    self.info(ts).resumed = true;
                }
                let d = &mut self.dirs[idx(dir)];
                d.ccs = true;
                d.encrypted = true;
            }
            ContentType::Alert => {
                if !self.dirs[idx(dir)].encrypted {
                    self.letter(ts, dir, 'L', out);
                    if let [_, desc, ..] = payload {
                        self.info(ts).last_alert = Some(parser::alert_name(*desc));
                    }
                }
            }
            ContentType::ApplicationData => self.dirs[idx(dir)].app_data = true,
            ContentType::Heartbeat => self.letter(ts, dir, 'B', out),
            ContentType::Other(_) => {}
        }
        let both = |f: fn(&DirState) -> bool| self.dirs.iter().all(f);
        let tls13 = self.server_version.is_some_and(is_tls13);
        if both(|d| d.ccs) || (tls13 && both(|d| d.app_data)) {
            let info = self.info(ts);
            info.established = true;
            self.logged = true;
            if let Some(info) = self.info.take() {
                out.record(Box::new(info));
            }
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
        let facts = parser::handshake_facts(msg, self.kx);
        let letter = if facts.hello_retry {
            'J'
        } else {
            parser::handshake_letter(kind)
        };
        self.letter(ts, dir, letter, out);
        let kx = self.kx;
        if dir == Direction::Orig && kind == 1 {
            if facts.server_name.is_some() {
                self.info(ts).server_name = facts.server_name.clone();
            }
            if facts.many_server_names {
                out.weird(ts, "SSL_many_server_names", None);
            }
            // Zeek ignores empty and all-zero session ids; a ticket counts only without one.
            let id = facts
                .session_id
                .clone()
                .filter(|id| id.iter().any(|b| *b != 0));
            self.ticket_resumption = facts.session_ticket && id.is_none();
            self.client_session_id = id;
        }
        if dir == Direction::Orig && kind == 16 {
            self.client_key_exchange_seen = true;
        }
        let info = self.info(ts);
        if let Some(v) = facts.version {
            info.version = Some(parser::version_name(v));
            self.server_version = Some(v);
            let tls13 = is_tls13(v);
            if tls13 {
                // Everything after a TLS 1.3 ServerHello is encrypted.
                self.dirs[1].encrypted = true;
            }
            if !self.confirmed {
                self.confirmed = true;
                out.confirm_service("ssl");
            }
            let same_session = !tls13
                && facts.session_id.as_ref().is_some_and(|s| !s.is_empty())
                && facts.session_id == self.client_session_id;
            let info = self.info(ts);
            if same_session || facts.psk {
                info.resumed = true;
            }
        }
        let info = self.info(ts);
        if let Some(c) = facts.cipher {
            info.cipher = Some(parser::cipher_name(c));
            self.kx = parser::cipher_kx(c).or(kx);
        }
        let info = self.info(ts);
        if let Some(g) = facts.curve {
            info.curve = Some(parser::curve_name(g));
        }
        if let Some(p) = facts.alpn {
            info.next_protocol = Some(p);
        }
        if let Some(certs) = facts.certificates {
            let fps: Vec<String> = certs.iter().map(|c| x509::fingerprint(c)).collect();
            for (i, der) in certs.iter().enumerate() {
                let role = match (i, dir) {
                    (0, Direction::Resp) => CertRole::Host,
                    (0, Direction::Orig) => CertRole::Client,
                    _ => CertRole::Chain,
                };
                if let Some(cert) = X509Info::parse(ts, der, role) {
                    out.x509(cert);
                }
            }
            let (mine, other) = match dir {
                Direction::Resp => (&mut info.cert_chain_fps, &mut info.client_cert_chain_fps),
                Direction::Orig => (&mut info.client_cert_chain_fps, &mut info.cert_chain_fps),
            };
            *mine = Some(fps);
            other.get_or_insert_with(Vec::new);
            if dir == Direction::Resp {
                self.server_cert = certs.into_iter().next();
            }
            let sni = self.info.as_ref().and_then(|i| i.server_name.clone());
            if let (Some(cert), Some(sni)) = (&self.server_cert, sni) {
                let matches = parser::hostname_matches(cert, &sni);
                self.info(ts).sni_matches_cert = matches;
            }
        }
    }
}

impl Analyzer for SslAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        if self.logged || self.dirs[idx(dir)].lost {
            return;
        }
        self.dirs[idx(dir)].records.extend_from_slice(data);
        if dir == Direction::Orig && self.info.is_none() {
            match parser::sslv2_client_hello(&self.dirs[0].records) {
                Some(parser::Sslv2Hello::Complete(len)) => {
                    self.dirs[0].records.drain(..len);
                    self.letter(ts, dir, 'C', out);
                }
                Some(parser::Sslv2Hello::Incomplete) => return,
                None => {}
            }
        }
        loop {
            let buf = std::mem::take(&mut self.dirs[idx(dir)].records);
            let (kind, payload, used) = match parser::next_record(&buf) {
                Ok(Some(r)) => (r.kind, r.payload.to_vec(), r.len),
                Ok(None) => {
                    self.dirs[idx(dir)].records = buf;
                    return;
                }
                Err(_) => {
                    out.weird(ts, "SSL_record_too_large", None);
                    self.dirs[idx(dir)].lost = true;
                    return;
                }
            };
            self.dirs[idx(dir)].records = buf[used..].to_vec();
            self.record(ts, dir, kind, &payload, out);
            if self.logged || self.dirs[idx(dir)].lost {
                return;
            }
        }
    }

    fn gap(&mut self, _ts: Timestamp, dir: Direction, _len: u64, _out: &mut dyn Emit) {
        let d = &mut self.dirs[idx(dir)];
        d.lost = true;
        d.records.clear();
        d.handshake.clear();
    }

    fn finish(&mut self, _ts: Timestamp, out: &mut dyn Emit) {
        if let Some(info) = self.info.take() {
            out.record(Box::new(info));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Transport;
    use crate::proto::testkit::{conn, Collect};
    use proptest::prelude::*;

    #[test]
    fn alert_after_client_hello_is_logged_at_finish() {
        let mut a = SslAnalyzer::new(conn(Transport::Tcp, 443));
        let mut out = Collect::default();
        // A ClientHello record too short for tls-parser still counts as a 'C'.
        a.data(
            Timestamp(1.0),
            Direction::Orig,
            &[22, 3, 1, 0, 4, 1, 0, 0, 0],
            &mut out,
        );
        a.data(
            Timestamp(1.1),
            Direction::Resp,
            &[21, 3, 3, 0, 2, 2, 40],
            &mut out,
        );
        a.finish(Timestamp(2.0), &mut out);
        assert_eq!(
            out.rows(),
            vec!["-\t-\t-\t-\tF\thandshake_failure\t-\tF\tCl\t-\t-\t-"]
        );
    }

    proptest! {
        #[test]
        fn arbitrary_streams_never_panic(
            chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..12)
        ) {
            let mut a = SslAnalyzer::new(conn(Transport::Tcp, 443));
            let mut out = Collect::default();
            for (orig, mut data) in chunks {
                if let Some(first) = data.first_mut() { *first = 22; }
                let dir = if orig { Direction::Orig } else { Direction::Resp };
                a.data(Timestamp(1.0), dir, &data, &mut out);
            }
            a.finish(Timestamp(2.0), &mut out);
        }
    }
}
