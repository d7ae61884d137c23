//! Per-connection SSH state: banners, the algorithm negotiation from both KEXINITs, the host
//! key, and Zeek's packet-size heuristic for the authentication outcome once encrypted.

use std::net::IpAddr;

use base64::Engine;
use sha2::{Digest, Sha256};

use super::log::{SshDirection, SshInfo};
use super::parser::{self, KexInit, ProtocolVersion};
use crate::flow::{ConnInfo, Direction, Timestamp};
use crate::proto::{Analyzer, Emit};

/// Longest identification (or pre-banner) line; RFC 4253 allows 255.
const MAX_LINE: usize = 512;
/// Lines a server may send before its identification line.
const MAX_PRE_BANNER_LINES: usize = 64;

#[derive(Default)]
struct DirState {
    buf: Vec<u8>,
    banner: Option<Vec<u8>>,
    pre_banner_lines: usize,
    kexinit: Option<KexInit>,
    /// After NEWKEYS: only sizes are observable.
    encrypted: bool,
    /// A gap or an unparsable stream: this direction is no longer read.
    lost: bool,
}

/// Zeek's SSH analyzer heuristic (`SSH_Analyzer::ProcessEncrypted`), on segment sizes.
#[derive(Debug, Default)]
struct AuthHeuristic {
    saw_encrypted_client_data: bool,
    service_accept_size: usize,
    userauth_failure_size: usize,
    skipped_banner: bool,
}

/// What one encrypted server segment says about authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthEvent {
    Failed,
    Succeeded,
}

impl AuthHeuristic {
    fn segment(&mut self, dir: Direction, len: usize) -> Option<AuthEvent> {
        if dir == Direction::Orig {
            self.saw_encrypted_client_data = true;
            return None;
        }
        if !self.saw_encrypted_client_data {
            return None;
        }
        if self.service_accept_size == 0 {
            self.service_accept_size = len;
            return None;
        }
        let success = len + 16 == self.service_accept_size;
        if self.userauth_failure_size == 0 {
            if success {
                return Some(AuthEvent::Succeeded);
            }
            if !self.skipped_banner && len > self.service_accept_size + 256 {
                self.skipped_banner = true;
                return None;
            }
            self.userauth_failure_size = len;
            return None;
        }
        if len == self.userauth_failure_size {
            return Some(AuthEvent::Failed);
        }
        success.then_some(AuthEvent::Succeeded)
    }
}

pub struct SshAnalyzer {
    conn: ConnInfo,
    info: Option<SshInfo>,
    dirs: [DirState; 2],
    auth: AuthHeuristic,
    /// Compression or SSH 1 hides the sizes the heuristic needs.
    heuristic_off: bool,
    /// A decision was made and logged; Zeek then stops analyzing the connection.
    done: bool,
    /// The TCP connection has no SYN handshake: Zeek's SSH analyzer reads none of it.
    tcp_partial: bool,
    confirmed: bool,
}

fn idx(dir: Direction) -> usize {
    match dir {
        Direction::Orig => 0,
        Direction::Resp => 1,
    }
}

/// Zeek's `Site::private_address_space`, which counts as local by default.
fn is_local(addr: IpAddr) -> bool {
    let v4 = |a: std::net::Ipv4Addr| {
        let [o0, o1, o2, _] = a.octets();
        matches!(o0, 0 | 10 | 127 | 239 | 240..=255)
            || (o0 == 100 && (64..128).contains(&o1))
            || (o0 == 169 && o1 == 254)
            || (o0 == 172 && (16..32).contains(&o1))
            || (o0 == 192 && o1 == 168)
            || (o0 == 192 && o1 == 0 && (o2 == 0 || o2 == 2))
            || (o0 == 198 && (o1 == 18 || o1 == 19))
            || (o0 == 198 && o1 == 51 && o2 == 100)
            || (o0 == 203 && o1 == 0 && o2 == 113)
            || (o0 == 224 && o1 == 0 && o2 == 0)
    };
    match addr {
        IpAddr::V4(a) => v4(a),
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_unspecified()
                || a.is_loopback()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] < 0x200)
                || (s[0] == 0x2001 && s[1] == 0xdb8)
                || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                || (s[0] == 0x100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
                || (s[0] == 0x2002
                    && v4(std::net::Ipv4Addr::new(
                        (s[1] >> 8) as u8,
                        s[1] as u8,
                        (s[2] >> 8) as u8,
                        s[2] as u8,
                    )))
        }
    }
}

fn fingerprint(key: &[u8]) -> String {
    let digest = Sha256::digest(key);
    // Zeek prints the base64 of the first 24 digest bytes (32 characters, no padding).
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&digest[..24]);
    format!("SHA256:{b64}")
}

impl SshAnalyzer {
    pub fn new(conn: ConnInfo) -> Self {
        SshAnalyzer {
            conn,
            info: None,
            dirs: Default::default(),
            auth: AuthHeuristic::default(),
            heuristic_off: false,
            done: false,
            tcp_partial: false,
            confirmed: false,
        }
    }

    fn info(&mut self, ts: Timestamp) -> &mut SshInfo {
        let conn = &self.conn;
        self.info.get_or_insert_with(|| {
            let mut info = SshInfo::new(ts, conn.clone());
            info.direction = match (is_local(conn.id.orig_h), is_local(conn.id.resp_h)) {
                (true, false) => Some(SshDirection::Outbound),
                (false, true) => Some(SshDirection::Inbound),
                _ => None,
            };
            info
        })
    }

    fn banner(&mut self, ts: Timestamp, dir: Direction, line: Vec<u8>, out: &mut dyn Emit) {
        let info = self.info(ts);
        match dir {
            Direction::Orig => info.client = Some(line.clone()),
            Direction::Resp => info.server = Some(line.clone()),
        }
        self.dirs[idx(dir)].banner = Some(line);
        if let (Some(c), Some(s)) = (&self.dirs[0].banner, &self.dirs[1].banner) {
            let addl = format!(
                "{} vs {}",
                String::from_utf8_lossy(s),
                String::from_utf8_lossy(c)
            );
            let version = match parser::protocol_version(c, s) {
                ProtocolVersion::Known(v) => Some(v),
                ProtocolVersion::Unknown => None,
                ProtocolVersion::Mismatch => {
                    out.script_weird(ts, "SSH_version_mismatch", Some(addl));
                    None
                }
                ProtocolVersion::Undetermined => {
                    out.script_weird(ts, "SSH_cannot_determine_version", Some(addl));
                    None
                }
            };
            if version != Some(2) {
                self.heuristic_off = true;
            }
            self.info(ts).version = version;
        }
    }

    fn packet(&mut self, ts: Timestamp, dir: Direction, payload: &[u8]) {
        match payload.first().copied() {
            Some(parser::MSG_KEXINIT) => {
                self.dirs[idx(dir)].kexinit = parser::parse_kexinit(payload);
                self.negotiate(ts);
            }
            Some(t @ (parser::MSG_KEX_31 | parser::MSG_KEX_DH_GEX_REPLY))
                if dir == Direction::Resp =>
            {
                let group_exchange = self
                    .info
                    .as_ref()
                    .and_then(|i| i.kex_alg.as_deref())
                    .is_some_and(|k| k.contains("group-exchange"));
                let reply = if group_exchange {
                    parser::MSG_KEX_DH_GEX_REPLY
                } else {
                    parser::MSG_KEX_31
                };
                if t == reply {
                    if let Some(key) = parser::reply_host_key(payload) {
                        self.info(ts).host_key_fingerprint = Some(fingerprint(key));
                    }
                }
            }
            _ => {}
        }
    }

    fn negotiate(&mut self, ts: Timestamp) {
        let (Some(c), Some(s)) = (self.dirs[0].kexinit.clone(), self.dirs[1].kexinit.clone())
        else {
            return;
        };
        let info = self.info(ts);
        info.kex_alg = Some(parser::negotiate(&c.kex, &s.kex));
        info.host_key_alg = Some(parser::negotiate(&c.host_key, &s.host_key));
        info.cipher_alg = Some(parser::negotiate_both(
            (&c.cipher_c2s, &c.cipher_s2c),
            (&s.cipher_c2s, &s.cipher_s2c),
        ));
        info.mac_alg = Some(parser::negotiate_both(
            (&c.mac_c2s, &c.mac_s2c),
            (&s.mac_c2s, &s.mac_s2c),
        ));
        let compression = parser::negotiate_both(
            (&c.compression_c2s, &c.compression_s2c),
            (&s.compression_c2s, &s.compression_s2c),
        );
        // Zeek's SSH::compression_algorithms: sizes tell nothing about logins then.
        if compression == "zlib" || compression == "zlib@openssh.com" {
            self.heuristic_off = true;
        }
        self.info(ts).compression_alg = Some(compression);
    }

    fn encrypted(&mut self, ts: Timestamp, dir: Direction, len: usize, out: &mut dyn Emit) {
        if self.heuristic_off || self.info.is_none() {
            return;
        }
        match self.auth.segment(dir, len) {
            Some(AuthEvent::Failed) => self.info(ts).auth_attempts += 1,
            Some(AuthEvent::Succeeded) => {
                let info = self.info(ts);
                info.auth_attempts += 1;
                info.auth_success = Some(true);
                self.done = true;
                if let Some(info) = self.info.take() {
                    out.ssh(info);
                }
            }
            None => {}
        }
    }

    /// Reads banners and unencrypted packets from `dir`'s buffer.
    fn parse(&mut self, ts: Timestamp, dir: Direction, out: &mut dyn Emit) {
        loop {
            let d = &mut self.dirs[idx(dir)];
            if d.banner.is_none() {
                let Some(nl) = d.buf.iter().position(|b| *b == b'\n') else {
                    if d.buf.len() > MAX_LINE {
                        d.lost = true;
                    }
                    return;
                };
                let mut line: Vec<u8> = d.buf.drain(..=nl).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.starts_with(b"SSH-") {
                    line.truncate(MAX_LINE);
                    self.banner(ts, dir, line, out);
                } else {
                    d.pre_banner_lines += 1;
                    if d.pre_banner_lines > MAX_PRE_BANNER_LINES {
                        d.lost = true;
                        return;
                    }
                }
                continue;
            }
            let (payload, used) = match parser::next_packet(&d.buf) {
                Ok(Some((p, used))) => (p.to_vec(), used),
                Ok(None) => return,
                Err(_) => {
                    tracing::debug!(uid = %self.conn.uid, "SSH packet length out of range");
                    d.lost = true;
                    return;
                }
            };
            d.buf.drain(..used);
            let newkeys = payload.first() == Some(&parser::MSG_NEWKEYS);
            self.packet(ts, dir, &payload);
            if newkeys {
                // Zeek's SSH analyzer confirms the protocol at NEWKEYS, not at the banners.
                if !self.confirmed {
                    self.confirmed = true;
                    out.confirm_service("ssh");
                }
                let d = &mut self.dirs[idx(dir)];
                d.encrypted = true;
                let rest = std::mem::take(&mut d.buf).len();
                if rest > 0 {
                    self.encrypted(ts, dir, rest, out);
                }
                return;
            }
        }
    }
}

impl Analyzer for SshAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        let d = &mut self.dirs[idx(dir)];
        if self.done || d.lost || self.tcp_partial {
            return;
        }
        if d.encrypted {
            self.encrypted(ts, dir, data.len(), out);
            return;
        }
        d.buf.extend_from_slice(data);
        self.parse(ts, dir, out);
    }

    fn gap(&mut self, _ts: Timestamp, _dir: Direction, _len: u64, _out: &mut dyn Emit) {
        // Zeek's SSH analyzer stops delivering after any gap.
        for d in &mut self.dirs {
            d.lost = true;
            d.buf.clear();
        }
    }

    fn tcp_partial(&mut self, partial: bool) {
        self.tcp_partial = partial;
    }

    fn finish(&mut self, _ts: Timestamp, out: &mut dyn Emit) {
        if let Some(mut info) = self.info.take() {
            if info.auth_attempts > 0 && info.auth_success.is_none() {
                info.auth_success = Some(false);
            }
            out.ssh(info);
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
    fn size_heuristic_counts_failures_then_success() {
        let mut h = AuthHeuristic::default();
        assert_eq!(h.segment(Direction::Resp, 100), None);
        assert_eq!(h.segment(Direction::Orig, 50), None);
        assert_eq!(h.segment(Direction::Resp, 100), None); // service accept
        assert_eq!(h.segment(Direction::Resp, 60), None); // failure size learned
        assert_eq!(h.segment(Direction::Resp, 60), Some(AuthEvent::Failed));
        assert_eq!(h.segment(Direction::Resp, 84), Some(AuthEvent::Succeeded));
    }

    #[test]
    fn local_networks() {
        assert!(is_local("192.168.1.1".parse().unwrap()));
        assert!(is_local("240.1.2.3".parse().unwrap()));
        assert!(!is_local("8.8.8.8".parse().unwrap()));
        assert!(is_local("fe80::1".parse().unwrap()));
        assert!(!is_local("2607:f740:b::f93".parse().unwrap()));
    }

    #[test]
    fn banners_only_are_logged_at_finish() {
        let mut a = SshAnalyzer::new(conn(Transport::Tcp, 22));
        let mut out = Collect::default();
        a.data(
            Timestamp(1.0),
            Direction::Resp,
            b"SSH-2.0-OpenSSH_9.6\r\n",
            &mut out,
        );
        a.data(
            Timestamp(1.1),
            Direction::Orig,
            b"SSH-2.0-PuTTY\r\n",
            &mut out,
        );
        a.finish(Timestamp(2.0), &mut out);
        assert_eq!(
            out.rows(),
            vec!["2\t-\t0\t-\tSSH-2.0-PuTTY\tSSH-2.0-OpenSSH_9.6\t-\t-\t-\t-\t-\t-"]
        );
        assert!(out.services.is_empty(), "confirmed only at NEWKEYS");
    }

    /// `set_version` in ssh/main.zeek: SSH 1 against SSH 2 is a script weird, with no version.
    #[test]
    fn version_mismatch_is_a_script_weird() {
        let mut a = SshAnalyzer::new(conn(Transport::Tcp, 22));
        let mut out = Collect::default();
        a.data(Timestamp(1.0), Direction::Resp, b"SSH-2.0-x\r\n", &mut out);
        a.data(Timestamp(1.1), Direction::Orig, b"SSH-1.5-y\r\n", &mut out);
        assert_eq!(out.script_weirds, vec!["SSH_version_mismatch"]);
        a.finish(Timestamp(2.0), &mut out);
        assert!(out.rows()[0].starts_with("-\t"), "{:?}", out.rows());
    }

    /// `SSH_Analyzer::DeliverStream` returns on `TCP()->IsPartial()`.
    #[test]
    fn partial_connections_are_not_read() {
        let mut a = SshAnalyzer::new(conn(Transport::Tcp, 22));
        let mut out = Collect::default();
        a.tcp_partial(true);
        a.data(Timestamp(1.0), Direction::Resp, b"SSH-2.0-x\r\n", &mut out);
        a.finish(Timestamp(2.0), &mut out);
        assert!(out.records.is_empty());
    }

    /// `proc_newkeys` in ssh-analyzer.pac confirms the protocol.
    #[test]
    fn newkeys_confirms_ssh() {
        let mut a = SshAnalyzer::new(conn(Transport::Tcp, 22));
        let mut out = Collect::default();
        a.data(Timestamp(1.0), Direction::Resp, b"SSH-2.0-x\r\n", &mut out);
        a.data(Timestamp(1.1), Direction::Orig, b"SSH-2.0-y\r\n", &mut out);
        assert!(out.services.is_empty());
        let newkeys = [
            0,
            0,
            0,
            12,
            10,
            parser::MSG_NEWKEYS,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        a.data(Timestamp(1.2), Direction::Resp, &newkeys, &mut out);
        assert_eq!(out.services, vec!["ssh"]);
    }

    proptest! {
        #[test]
        fn arbitrary_streams_never_panic(
            chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..12)
        ) {
            let mut a = SshAnalyzer::new(conn(Transport::Tcp, 22));
            let mut out = Collect::default();
            a.data(Timestamp(0.0), Direction::Orig, b"SSH-2.0-x\r\n", &mut out);
            a.data(Timestamp(0.0), Direction::Resp, b"SSH-2.0-y\r\n", &mut out);
            for (orig, data) in chunks {
                let dir = if orig { Direction::Orig } else { Direction::Resp };
                a.data(Timestamp(1.0), dir, &data, &mut out);
            }
            a.finish(Timestamp(2.0), &mut out);
        }
    }
}
