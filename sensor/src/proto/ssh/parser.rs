//! SSH identification lines and the unencrypted binary packets of the key exchange
//! (RFC 4253): KEXINIT name-lists, the host key in the KEX reply, NEWKEYS.

/// Largest unencrypted packet accepted (RFC 4253 requires 35000 at least).
pub const MAX_PACKET_LEN: usize = 256 * 1024;
/// Name-lists are cut at this many entries.
const MAX_NAMES: usize = 64;

pub const MSG_KEXINIT: u8 = 20;
pub const MSG_NEWKEYS: u8 = 21;
/// KEXDH_REPLY, KEX_ECDH_REPLY and hybrid replies; KEX_DH_GEX_GROUP under group exchange.
pub const MSG_KEX_31: u8 = 31;
pub const MSG_KEX_DH_GEX_REPLY: u8 = 33;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    /// The length field is beyond [`MAX_PACKET_LEN`] or smaller than its own padding byte.
    BadLength,
}

/// The next binary packet's payload and its total length in the stream; `Ok(None)` if incomplete.
pub fn next_packet(buf: &[u8]) -> Result<Option<(&[u8], usize)>, PacketError> {
    let Some(hdr) = buf.get(..5) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]) as usize;
    let padding = usize::from(hdr[4]);
    if len > MAX_PACKET_LEN || len < padding + 1 {
        return Err(PacketError::BadLength);
    }
    Ok(buf
        .get(5..4 + len - padding)
        .filter(|_| buf.len() >= 4 + len)
        .map(|payload| (payload, 4 + len)))
}

/// The algorithm lists of a KEXINIT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KexInit {
    pub kex: Vec<String>,
    pub host_key: Vec<String>,
    pub cipher_c2s: Vec<String>,
    pub cipher_s2c: Vec<String>,
    pub mac_c2s: Vec<String>,
    pub mac_s2c: Vec<String>,
    pub compression_c2s: Vec<String>,
    pub compression_s2c: Vec<String>,
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.buf.get(..n)?, self.buf.get(n..)?);
        self.buf = tail;
        Some(head)
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        self.take(len)
    }

    fn name_list(&mut self) -> Option<Vec<String>> {
        let s = self.string()?;
        Some(
            s.split(|b| *b == b',')
                .filter(|n| !n.is_empty())
                .take(MAX_NAMES)
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .collect(),
        )
    }
}

/// Parses a KEXINIT payload (message type byte included).
pub fn parse_kexinit(payload: &[u8]) -> Option<KexInit> {
    let mut r = Reader { buf: payload };
    if r.take(1)? != [MSG_KEXINIT] {
        return None;
    }
    r.take(16)?;
    Some(KexInit {
        kex: r.name_list()?,
        host_key: r.name_list()?,
        cipher_c2s: r.name_list()?,
        cipher_s2c: r.name_list()?,
        mac_c2s: r.name_list()?,
        mac_s2c: r.name_list()?,
        compression_c2s: r.name_list()?,
        compression_s2c: r.name_list()?,
    })
}

/// The server host key blob (K_S), the first string of a KEX reply.
pub fn reply_host_key(payload: &[u8]) -> Option<&[u8]> {
    let mut r = Reader { buf: payload };
    r.take(1)?;
    r.string()
}

/// What Zeek logs when the two lists share no algorithm.
pub const NEGOTIATION_FAILED: &str = "Algorithm negotiation failed";

/// Zeek's `find_alg`: the first client algorithm the server also offers (RFC 4253 section 7.1).
pub fn negotiate(client: &[String], server: &[String]) -> String {
    client
        .iter()
        .find(|c| server.contains(c))
        .cloned()
        .unwrap_or_else(|| NEGOTIATION_FAILED.to_string())
}

/// Zeek's `find_bidirectional_alg`: one name, or both directions spelled out.
pub fn negotiate_both(client: (&[String], &[String]), server: (&[String], &[String])) -> String {
    let c2s = negotiate(client.0, server.0);
    let s2c = negotiate(client.1, server.1);
    if c2s == s2c {
        c2s
    } else {
        format!("To server: {c2s}, to client: {s2c}")
    }
}

/// What `set_version` in Zeek's `ssh/main.zeek` makes of the two identification strings:
/// the version, or the weird it raises instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolVersion {
    Known(u64),
    /// The strings name no common version and no weird (a major version other than 1 or 2).
    Unknown,
    /// `SSH_version_mismatch`: SSH 1 against SSH 2 without a 1.99 side.
    Mismatch,
    /// `SSH_cannot_determine_version`: a string of at most four bytes.
    Undetermined,
}

/// Zeek reads the major version at byte 4 (`SSH-1...`) and a `1.99` from bytes 6 and 7.
pub fn protocol_version(client: &[u8], server: &[u8]) -> ProtocolVersion {
    if client.len() <= 4 || server.len() <= 4 {
        return ProtocolVersion::Undetermined;
    }
    let is_199 = |v: &[u8]| v.len() > 7 && v[6] == b'9' && v[7] == b'9';
    match (client[4], server[4]) {
        (b'1', b'2') if is_199(client) => ProtocolVersion::Known(2),
        (b'2', b'1') if is_199(server) => ProtocolVersion::Known(2),
        (b'1', b'2') | (b'2', b'1') => ProtocolVersion::Mismatch,
        (b'1', b'1') if is_199(server) && is_199(client) => ProtocolVersion::Known(2),
        (b'1', b'1') => ProtocolVersion::Known(1),
        (b'2', b'2') => ProtocolVersion::Known(2),
        _ => ProtocolVersion::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name_list(names: &str) -> Vec<u8> {
        let mut v = (names.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(names.as_bytes());
        v
    }

    #[test]
    fn kexinit_and_negotiation() {
        let mut p = vec![MSG_KEXINIT];
        p.extend_from_slice(&[0; 16]);
        for l in [
            "curve25519-sha256,dh",
            "ssh-ed25519",
            "aes128-ctr",
            "aes128-ctr",
            "hmac-sha2-256",
            "hmac-sha2-256",
            "none",
            "none",
            "",
            "",
        ] {
            p.extend_from_slice(&name_list(l));
        }
        let k = parse_kexinit(&p).unwrap();
        assert_eq!(k.kex, vec!["curve25519-sha256", "dh"]);
        let server = vec!["dh".to_string(), "curve25519-sha256".to_string()];
        assert_eq!(negotiate(&k.kex, &server), "curve25519-sha256");
        let a = vec!["x".to_string()];
        let b = vec!["y".to_string()];
        assert_eq!(
            negotiate_both((&a, &b), (&a, &b)),
            "To server: x, to client: y"
        );
        assert_eq!(negotiate(&a, &b), NEGOTIATION_FAILED);
    }

    #[test]
    fn packets() {
        // length 12, padding 4: type + 6 payload bytes + 4 padding
        let mut pkt = vec![0, 0, 0, 12, 4, 21, 1, 2, 3, 4, 5, 6];
        pkt.extend_from_slice(&[0; 4]);
        let (payload, used) = next_packet(&pkt).unwrap().unwrap();
        assert_eq!((payload, used), (&[21, 1, 2, 3, 4, 5, 6][..], 16));
        assert_eq!(next_packet(&pkt[..10]), Ok(None));
        assert_eq!(
            next_packet(&[0xff, 0, 0, 0, 0]),
            Err(PacketError::BadLength)
        );
        assert_eq!(next_packet(&[0, 0, 0, 2, 9]), Err(PacketError::BadLength));
    }

    #[test]
    fn versions() {
        use ProtocolVersion::*;
        assert_eq!(protocol_version(b"SSH-2.0-a", b"SSH-1.99-b"), Known(2));
        assert_eq!(protocol_version(b"SSH-1.5-a", b"SSH-1.5-b"), Known(1));
        assert_eq!(protocol_version(b"SSH-1.99-a", b"SSH-1.5-b"), Known(1));
        assert_eq!(protocol_version(b"SSH-1.99-a", b"SSH-1.99-b"), Known(2));
        assert_eq!(protocol_version(b"SSH-1.5-a", b"SSH-2.0-b"), Mismatch);
        assert_eq!(protocol_version(b"SSH-3.0-a", b"SSH-2.0-b"), Unknown);
        assert_eq!(protocol_version(b"SSH-", b"SSH-2.0-b"), Undetermined);
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = next_packet(&data);
            let _ = parse_kexinit(&data);
            let mut k = vec![MSG_KEXINIT];
            k.extend_from_slice(&data);
            let _ = parse_kexinit(&k);
            let _ = reply_host_key(&data);
            let _ = protocol_version(&data, &data);
        }
    }
}
