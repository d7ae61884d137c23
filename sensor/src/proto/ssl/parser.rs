//! TLS record framing, handshake-message reassembly and the names ssl.log uses. Handshake
//! message bodies are decoded with `tls-parser`.

use tls_parser::{
    parse_tls_message_handshake, TlsCipherKx, TlsCipherSuite, TlsMessage, TlsMessageHandshake,
};

pub const RECORD_HEADER_LEN: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    ChangeCipherSpec,
    Alert,
    Handshake,
    ApplicationData,
    Heartbeat,
    Other(u8),
}

impl ContentType {
    pub fn from_u8(t: u8) -> Self {
        match t {
            20 => ContentType::ChangeCipherSpec,
            21 => ContentType::Alert,
            22 => ContentType::Handshake,
            23 => ContentType::ApplicationData,
            24 => ContentType::Heartbeat,
            t => ContentType::Other(t),
        }
    }
}

/// One TLS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub kind: ContentType,
    pub payload: &'a [u8],
    /// Bytes the record takes in the stream, header included.
    pub len: usize,
}

/// The next complete record in `buf`; `None` if it is incomplete.
pub fn next_record(buf: &[u8]) -> Option<RawRecord<'_>> {
    let hdr = buf.get(..RECORD_HEADER_LEN)?;
    let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
    buf.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len)
        .map(|payload| RawRecord {
            kind: ContentType::from_u8(hdr[0]),
            payload,
            len: RECORD_HEADER_LEN + len,
        })
}

/// A first record in SSLv2 format (high bit of the first byte set), as
/// `determine_ssl_record_layer` sorts them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sslv2Record {
    /// A client's SSLv2 ClientHello of `len` bytes offering `version`.
    ClientHello {
        len: usize,
        version: u16,
    },
    /// A server's SSLv2 ServerHello of `len` bytes: the connection stays SSLv2.
    ServerHello {
        len: usize,
        hello: Option<V2ServerHello>,
    },
    Incomplete,
    /// The high bit is set but this is neither: not SSL.
    NotSsl,
}

/// What an SSLv2 ServerHello carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2ServerHello {
    pub version: u16,
    pub cipher: Option<u32>,
    pub certificate: Vec<u8>,
}

/// The SSLv2 record at the start of `buf`, or `None` for a TLS record.
pub fn sslv2_record(buf: &[u8], from_client: bool) -> Option<Sslv2Record> {
    let first = *buf.first()?;
    if first & 0x80 == 0 {
        return None;
    }
    let Some(hdr) = buf.get(..5) else {
        return Some(Sslv2Record::Incomplete);
    };
    let len = 2 + (usize::from(hdr[0] & 0x7f) << 8 | usize::from(hdr[1]));
    if len < 5 {
        return Some(Sslv2Record::NotSsl);
    }
    let whole = buf.len() >= len;
    match (hdr[2], from_client) {
        (1, true) if !whole => Some(Sslv2Record::Incomplete),
        (1, true) => Some(Sslv2Record::ClientHello {
            len,
            version: u16::from_be_bytes([hdr[3], hdr[4]]),
        }),
        (4, false) if hdr[4] < 2 && !whole => Some(Sslv2Record::Incomplete),
        (4, false) if hdr[4] < 2 => Some(Sslv2Record::ServerHello {
            len,
            hello: v2_server_hello(&buf[5..len]),
        }),
        _ => Some(Sslv2Record::NotSsl),
    }
}

/// The body of an SSLv2 ServerHello after the record header (which holds the session-id-hit
/// and certificate-type bytes).
fn v2_server_hello(body: &[u8]) -> Option<V2ServerHello> {
    let be16 = |at: usize| {
        body.get(at..at + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    let (cert_len, ciph_len) = (be16(2)?, be16(4)?);
    let certificate = body.get(8..8 + cert_len)?.to_vec();
    let ciphers = body.get(8 + cert_len..8 + cert_len + ciph_len)?;
    Some(V2ServerHello {
        version: u16::try_from(be16(0)?).ok()?,
        cipher: ciphers
            .get(..3)
            .map(|c| u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2])),
        certificate,
    })
}

/// The next complete handshake message (type and whole message including its 4-byte header).
pub fn next_handshake(buf: &[u8]) -> Option<(u8, usize)> {
    let hdr = buf.get(..4)?;
    let len = usize::from(hdr[1]) << 16 | usize::from(hdr[2]) << 8 | usize::from(hdr[3]);
    (buf.len() >= 4 + len).then_some((hdr[0], 4 + len))
}

/// What one handshake message tells ssl.log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeFacts {
    /// ClientHello: the offered version.
    pub client_version: Option<u16>,
    /// ClientHello: the host names of a server_name extension.
    pub server_names: Option<Vec<Vec<u8>>>,
    /// Server name entries of another type than host_name.
    pub unknown_name_types: Vec<u8>,
    pub session_id: Option<Vec<u8>>,
    /// ServerHello: the version field.
    pub version: Option<u16>,
    /// ServerHello: the single version of a supported_versions extension.
    pub selected_version: Option<u16>,
    pub cipher: Option<u16>,
    pub curve: Option<u16>,
    pub alpn: Option<Vec<u8>>,
    /// A pre_shared_key extension.
    pub psk: bool,
    pub certificates: Option<Vec<Vec<u8>>>,
    /// ClientHello: a non-empty SessionTicket extension (a ticket offered for resumption).
    pub session_ticket: bool,
    /// ServerHello: the random is the HelloRetryRequest marker.
    pub hello_retry: bool,
    /// CertificateStatus: the stapled response is empty.
    pub empty_ocsp_response: bool,
}

/// The ServerHello random of a TLS 1.3 HelloRetryRequest (RFC 8446 section 4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SESSION_TICKET: u16 = 35;
const EXT_KEY_SHARE_OLD: u16 = 40;
const EXT_PRE_SHARED_KEY: u16 = 41;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_KEY_SHARE: u16 = 51;

/// Decodes a whole handshake message (4-byte header included). `kx` is the negotiated key
/// exchange (needed to read a ServerKeyExchange). Hellos are read as Zeek's
/// `tls-handshake-protocol.pac` reads them; other messages with tls-parser. Messages that do
/// not decode give no facts.
pub fn handshake_facts(msg: &[u8], kx: Option<TlsCipherKx>) -> HandshakeFacts {
    let mut facts = HandshakeFacts::default();
    let body = msg.get(4..).unwrap_or_default();
    match msg.first() {
        Some(1) => {
            let _ = client_hello(body, &mut facts);
        }
        Some(2) => {
            let _ = server_hello(body, &mut facts);
        }
        // CertificateStatus: status type, a 3-byte length, then the response up to the end.
        Some(22) => facts.empty_ocsp_response = body.len() == 4,
        _ => other_message(msg, kx, &mut facts),
    }
    facts
}

/// A bounded reader over a message body.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// The extensions after a hello's fixed fields: a length, then extensions up to the end
    /// of the message (Zeek does not hold them to the length).
    fn extensions(&mut self) -> Vec<(u16, &'a [u8])> {
        if self.u16().is_none() {
            return Vec::new();
        }
        extensions(Some(self.0))
    }
}

fn client_hello(body: &[u8], facts: &mut HandshakeFacts) -> Option<()> {
    let mut r = Reader(body);
    let version = r.u16()?;
    facts.client_version = Some(version);
    r.take(32)?;
    let sid_len = r.u8()?;
    facts.session_id = Some(r.take(usize::from(sid_len))?.to_vec());
    if matches!(version, 0xfeff | 0xfefd) {
        let cookie_len = r.u8()?;
        r.take(usize::from(cookie_len))?;
    }
    let suites = r.u16()?;
    r.take(usize::from(suites))?;
    let methods = r.u8()?;
    r.take(usize::from(methods))?;
    for (kind, data) in r.extensions() {
        client_extension(kind, data, facts);
    }
    Some(())
}

fn server_hello(body: &[u8], facts: &mut HandshakeFacts) -> Option<()> {
    let mut r = Reader(body);
    let version = r.u16()?;
    facts.version = Some(version);
    let random = r.take(32)?;
    facts.hello_retry = random == HRR_RANDOM;
    // TLS 1.3 (and its drafts) dropped the session id and compression fields.
    let tls13 = version >> 8 == 0x7f || version == 0x0304;
    if !tls13 {
        let sid_len = r.u8()?;
        facts.session_id = Some(r.take(usize::from(sid_len))?.to_vec());
    }
    facts.cipher = Some(r.u16()?);
    if !tls13 {
        r.u8()?;
    }
    for (kind, data) in r.extensions() {
        server_extension(kind, data, facts);
    }
    Some(())
}

fn other_message(msg: &[u8], kx: Option<TlsCipherKx>, facts: &mut HandshakeFacts) {
    let Ok((_, TlsMessage::Handshake(hs))) = parse_tls_message_handshake(msg) else {
        return;
    };
    match hs {
        TlsMessageHandshake::Certificate(c) => {
            facts.certificates = Some(c.cert_chain.iter().map(|c| c.data.to_vec()).collect());
        }
        TlsMessageHandshake::ServerKeyExchange(ske) => {
            if matches!(kx, Some(TlsCipherKx::Ecdhe | TlsCipherKx::Ecdh)) {
                // ECParameters: curve_type 3 (named_curve), then the group.
                if let [3, hi, lo, ..] = ske.parameters {
                    facts.curve = Some(u16::from_be_bytes([*hi, *lo]));
                }
            }
        }
        _ => {}
    }
}

/// The (type, data) pairs of an extension block, up to the first truncated one.
fn extensions(block: Option<&[u8]>) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut rest = block.unwrap_or_default();
    while let [t0, t1, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let Some(data) = tail.get(..len) else {
            break;
        };
        out.push((u16::from_be_bytes([*t0, *t1]), data));
        rest = &tail[len..];
    }
    out
}

fn client_extension(kind: u16, data: &[u8], facts: &mut HandshakeFacts) {
    match kind {
        EXT_SERVER_NAME => {
            let mut names = Vec::new();
            let mut list = data.get(2..).unwrap_or_default();
            while let [name_type, tail @ ..] = list {
                if *name_type != 0 {
                    // Zeek reads the rest of the list as this entry's data.
                    facts.unknown_name_types.push(*name_type);
                    break;
                }
                let [l0, l1, tail @ ..] = tail else { break };
                let len = usize::from(u16::from_be_bytes([*l0, *l1]));
                let Some(name) = tail.get(..len) else { break };
                names.push(name.to_vec());
                list = &tail[len..];
            }
            facts.server_names = Some(names);
        }
        EXT_SESSION_TICKET => facts.session_ticket |= !data.is_empty(),
        EXT_PRE_SHARED_KEY => facts.psk = true,
        _ => {}
    }
}

fn server_extension(kind: u16, data: &[u8], facts: &mut HandshakeFacts) {
    match kind {
        EXT_SUPPORTED_VERSIONS => {
            if let [hi, lo, ..] = data {
                facts.selected_version = Some(u16::from_be_bytes([*hi, *lo]));
            }
        }
        // A HelloRetryRequest names only the group; a ServerHello starts its entry with it.
        EXT_KEY_SHARE | EXT_KEY_SHARE_OLD => {
            if let [hi, lo, ..] = data {
                facts.curve = Some(u16::from_be_bytes([*hi, *lo]));
            }
        }
        EXT_ALPN => {
            if let [_, _, len, tail @ ..] = data {
                facts.alpn = tail.get(..usize::from(*len)).map(<[u8]>::to_vec);
            }
        }
        EXT_PRE_SHARED_KEY => facts.psk = true,
        _ => {}
    }
}

pub fn cipher_kx(cipher: u16) -> Option<TlsCipherKx> {
    TlsCipherSuite::from_id(cipher).map(|c| c.kx)
}

/// Whether `name` (an SNI) is covered by one of a certificate's names (CN and DNS SANs),
/// with `*.` wildcards matching one label, as Zeek's `x509_check_cert_hostname` does.
pub fn hostname_matches(cert_der: &[u8], name: &[u8]) -> Option<bool> {
    use x509_parser::prelude::*;
    let (_, cert) = X509Certificate::from_der(cert_der).ok()?;
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_string))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for gn in &san.value.general_names {
            if let GeneralName::DNSName(d) = gn {
                names.push((*d).to_string());
            }
        }
    }
    let host = String::from_utf8_lossy(name).to_ascii_lowercase();
    Some(names.iter().any(|n| {
        let n = n.to_ascii_lowercase();
        match n.strip_prefix("*.") {
            Some(suffix) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
            None => n == host,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records_and_handshakes() {
        let rec = [22, 3, 1, 0, 4, 1, 0, 0, 0, 99];
        let r = next_record(&rec).expect("whole record");
        assert_eq!(
            (r.kind, r.payload.len(), r.len),
            (ContentType::Handshake, 4, 9)
        );
        assert_eq!(next_record(&rec[..7]), None);
        assert_eq!(next_handshake(&[1, 0, 0, 2, 9]), None);
        assert_eq!(next_handshake(&[1, 0, 0, 1, 9]), Some((1, 5)));
    }

    #[test]
    fn sslv2_records_are_sorted_like_zeek() {
        // A 2-byte header of length 9, then type 1 (client hello) and version 3.1.
        let hello = [0x80, 9, 1, 3, 1, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            sslv2_record(&hello, true),
            Some(Sslv2Record::ClientHello {
                len: 11,
                version: 0x0301
            })
        );
        assert_eq!(
            sslv2_record(&hello[..8], true),
            Some(Sslv2Record::Incomplete)
        );
        assert_eq!(sslv2_record(&hello, false), Some(Sslv2Record::NotSsl));
        assert_eq!(sslv2_record(&[22, 3, 1], true), None);
        // Server hello: hit 0, cert type 1, version 2, one 3-byte cipher, a 1-byte cert.
        let server = [0x80, 15, 4, 0, 1, 0, 2, 0, 1, 0, 3, 0, 0, 0xaa, 1, 0, 0x80];
        let Some(Sslv2Record::ServerHello { len, hello }) = sslv2_record(&server, false) else {
            panic!("server hello expected");
        };
        assert_eq!(len, 17);
        let hello = hello.expect("parsed");
        assert_eq!(
            (hello.version, hello.cipher, hello.certificate),
            (2, Some(0x010080), vec![0xaa])
        );
    }

    fn hello_with(kind: u8, body: &[u8], exts: &[u8]) -> Vec<u8> {
        let mut b = body.to_vec();
        b.extend_from_slice(&u16::try_from(exts.len()).expect("short").to_be_bytes());
        b.extend_from_slice(exts);
        let len = u32::try_from(b.len()).expect("short").to_be_bytes();
        let mut msg = vec![kind, len[1], len[2], len[3]];
        msg.extend_from_slice(&b);
        msg
    }

    fn client_body(session: &[u8]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(u8::try_from(session.len()).expect("short"));
        b.extend_from_slice(session);
        b.extend_from_slice(&[0, 2, 0xc0, 0x2f, 1, 0]);
        b
    }

    #[test]
    fn client_hello_server_names_follow_zeeks_parser() {
        // Two host names, then an entry of type 5 that swallows the rest of the list.
        let sni = [
            0, 0, 0, 19, 0, 17, 0, 0, 3, b'a', b'.', b'b', 0, 0, 3, b'c', b'.', b'd', 5, 0, 1,
            b'x', 0,
        ];
        let msg = hello_with(1, &client_body(&[]), &sni);
        let facts = handshake_facts(&msg, None);
        assert_eq!(facts.client_version, Some(0x0303));
        assert_eq!(
            facts.server_names,
            Some(vec![b"a.b".to_vec(), b"c.d".to_vec()])
        );
        assert_eq!(facts.unknown_name_types, vec![5]);
    }

    #[test]
    fn dtls_client_hello_cookie_is_skipped() {
        let mut body = client_body(&[1, 2]);
        body[0] = 0xfe;
        body[1] = 0xfd;
        // The cookie sits between the session id and the cipher suites.
        body.splice(37..37, [3, 9, 9, 9]);
        let ticket = [0, 35, 0, 2, 1, 2];
        let msg = hello_with(1, &body, &ticket);
        let facts = handshake_facts(&msg, None);
        assert_eq!(facts.client_version, Some(0xfefd));
        assert_eq!(facts.session_id, Some(vec![1, 2]));
        assert!(facts.session_ticket);
    }

    #[test]
    fn empty_stapled_ocsp_response() {
        assert!(handshake_facts(&[22, 0, 0, 4, 1, 0, 0, 0], None).empty_ocsp_response);
        assert!(!handshake_facts(&[22, 0, 0, 5, 1, 0, 0, 1, 9], None).empty_ocsp_response);
    }

    #[test]
    fn server_hello_extensions() {
        let mut body = vec![3, 3];
        body.extend_from_slice(&HRR_RANDOM);
        body.extend_from_slice(&[0, 0x13, 0x01, 0]);
        let exts = [
            0, 43, 0, 2, 0x7f, 0x17, // supported_versions: draft 23
            0, 51, 0, 2, 0, 29, // key_share of a HelloRetryRequest: x25519
            0, 16, 0, 5, 0, 3, 2, b'h', b'2', // ALPN
        ];
        let facts = handshake_facts(&hello_with(2, &body, &exts), None);
        assert!(facts.hello_retry);
        assert_eq!(facts.version, Some(0x0303));
        assert_eq!(facts.selected_version, Some(0x7f17));
        assert_eq!(facts.curve, Some(29));
        assert_eq!(facts.alpn, Some(b"h2".to_vec()));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..400), kx in 0u8..3) {
            let _ = next_record(&data);
            let _ = next_handshake(&data);
            let _ = sslv2_record(&data, true);
            let _ = sslv2_record(&data, false);
            let kx = [None, Some(TlsCipherKx::Ecdhe), Some(TlsCipherKx::Dhe)][usize::from(kx)];
            let _ = handshake_facts(&data, kx);
            let mut with_type = vec![1, 0, 1, 0];
            with_type.extend_from_slice(&data);
            let _ = handshake_facts(&with_type, kx);
                        with_type[0] = 2;
            let _ = handshake_facts(&with_type, kx);
            let _ = hostname_matches(&data, b"a.b");
        }
    }
}
