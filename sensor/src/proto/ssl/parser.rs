//! TLS record framing, handshake-message reassembly and the names ssl.log uses. Handshake
//! message bodies are decoded with `tls-parser`.

use tls_parser::{
    parse_tls_message_handshake, parse_tls_server_hello_extensions, TlsCipherKx, TlsCipherSuite,
    TlsExtension, TlsMessage, TlsMessageHandshake,
};

pub const RECORD_HEADER_LEN: usize = 5;
/// Largest record payload accepted (2^14 plus the expansion TLS allows).
pub const MAX_RECORD_LEN: usize = 16384 + 2048;

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
    fn from_u8(t: u8) -> Self {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// The header announces more than [`MAX_RECORD_LEN`] bytes: this is not TLS (or is broken).
    TooLong,
}

/// One TLS record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawRecord<'a> {
    pub kind: ContentType,
    pub payload: &'a [u8],
    /// Bytes the record takes in the stream, header included.
    pub len: usize,
}

/// The next complete record in `buf`; `Ok(None)` if it is incomplete.
pub fn next_record(buf: &[u8]) -> Result<Option<RawRecord<'_>>, RecordError> {
    let Some(hdr) = buf.get(..RECORD_HEADER_LEN) else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes([hdr[3], hdr[4]]));
    if len > MAX_RECORD_LEN {
        return Err(RecordError::TooLong);
    }
    Ok(buf
        .get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len)
        .map(|payload| RawRecord {
            kind: ContentType::from_u8(hdr[0]),
            payload,
            len: RECORD_HEADER_LEN + len,
        }))
}

/// An SSLv2-format ClientHello at the start of a client stream (old clients send one to
/// negotiate TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sslv2Hello {
    /// The hello takes this many bytes.
    Complete(usize),
    Incomplete,
}

pub fn sslv2_client_hello(buf: &[u8]) -> Option<Sslv2Hello> {
    match buf {
        [hi, lo, 1, major, ..] if hi & 0x80 != 0 && *major <= 3 => {
            let len = usize::from(hi & 0x7f) << 8 | usize::from(*lo);
            Some(if buf.len() >= 2 + len {
                Sslv2Hello::Complete(2 + len)
            } else {
                Sslv2Hello::Incomplete
            })
        }
        [hi, ..] if hi & 0x80 != 0 && buf.len() < 4 => Some(Sslv2Hello::Incomplete),
        _ => None,
    }
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
    pub server_name: Option<Vec<u8>>,
    pub session_id: Option<Vec<u8>>,
    /// ServerHello: the version field, replaced by a single `supported_versions` entry.
    pub version: Option<u16>,
    pub cipher: Option<u16>,
    pub curve: Option<u16>,
    pub alpn: Option<Vec<u8>>,
    pub psk: bool,
    pub certificates: Option<Vec<Vec<u8>>>,
    /// ClientHello: more than one server name (Zeek's `SSL_many_server_names`).
    pub many_server_names: bool,
    /// ClientHello: a non-empty SessionTicket extension (a ticket offered for resumption).
    pub session_ticket: bool,
    /// ServerHello: the random is the HelloRetryRequest marker.
    pub hello_retry: bool,
}

/// The ServerHello random of a TLS 1.3 HelloRetryRequest (RFC 8446 section 4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
];

/// Decodes a whole handshake message. `kx` is the negotiated key exchange (needed to read a
/// ServerKeyExchange). Messages tls-parser cannot decode give no facts.
pub fn handshake_facts(msg: &[u8], kx: Option<TlsCipherKx>) -> HandshakeFacts {
    let mut facts = HandshakeFacts::default();
    let Ok((_, TlsMessage::Handshake(hs))) = parse_tls_message_handshake(msg) else {
        return facts;
    };
    match hs {
        TlsMessageHandshake::ClientHello(ch) => {
            facts.session_id = ch.session_id.map(<[u8]>::to_vec);
            let exts = ch
                .ext
                .and_then(|e| tls_parser::parse_tls_client_hello_extensions(e).ok())
                .map(|(_, e)| e)
                .unwrap_or_default();
            for ext in exts {
                match ext {
                    TlsExtension::SNI(names) => {
                        let hosts: Vec<&[u8]> = names
                            .iter()
                            .filter(|(t, _)| t.0 == 0)
                            .map(|(_, n)| *n)
                            .collect();
                        facts.many_server_names = hosts.len() > 1;
                        facts.server_name = hosts.first().map(|n| n.to_vec());
                    }
                    TlsExtension::SessionTicket(ticket) => {
                        facts.session_ticket = !ticket.is_empty()
                    }
                    _ => {}
                }
            }
        }
        TlsMessageHandshake::ServerHello(sh) => {
            facts.hello_retry = sh.random == HRR_RANDOM;
            facts.version = Some(sh.version.0);
            facts.cipher = Some(sh.cipher.0);
            facts.session_id = sh.session_id.map(<[u8]>::to_vec);
            server_extensions(sh.ext, &mut facts);
        }
        TlsMessageHandshake::ServerHelloV13Draft18(sh) => {
            facts.version = Some(sh.version.0);
            facts.cipher = Some(sh.cipher.0);
            server_extensions(sh.ext, &mut facts);
        }
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
    facts
}

fn server_extensions(ext: Option<&[u8]>, facts: &mut HandshakeFacts) {
    let exts = ext
        .and_then(|e| parse_tls_server_hello_extensions(e).ok())
        .map(|(_, e)| e)
        .unwrap_or_default();
    for ext in exts {
        match ext {
            TlsExtension::SupportedVersions(v) if v.len() == 1 => facts.version = Some(v[0].0),
            TlsExtension::KeyShare(ks) | TlsExtension::KeyShareOld(ks) => {
                if let [hi, lo, ..] = ks {
                    facts.curve = Some(u16::from_be_bytes([*hi, *lo]));
                }
            }
            TlsExtension::ALPN(protos) => facts.alpn = protos.first().map(|p| p.to_vec()),
            TlsExtension::PreSharedKey(_) => facts.psk = true,
            _ => {}
        }
    }
}

pub fn cipher_kx(cipher: u16) -> Option<TlsCipherKx> {
    TlsCipherSuite::from_id(cipher).map(|c| c.kx)
}

/// Zeek's `SSL::cipher_desc` name; unknown suites print as `unknown-<n>`.
pub fn cipher_name(cipher: u16) -> String {
    match TlsCipherSuite::from_id(cipher) {
        Some(c) => c.name.to_string(),
        None => format!("unknown-{cipher}"),
    }
}

/// Zeek's `SSL::version_strings`.
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv10".into(),
        0x0302 => "TLSv11".into(),
        0x0303 => "TLSv12".into(),
        0x0304 => "TLSv13".into(),
        0xfeff => "DTLSv10".into(),
        0xfefd => "DTLSv12".into(),
        0xfefc => "DTLSv13".into(),
        0x7f00..=0x7fff => format!("TLSv13-draft{}", v & 0xff),
        _ => format!("unknown-{v}"),
    }
}

/// Zeek's `SSL::ec_curves` (TLS named groups).
pub fn curve_name(g: u16) -> String {
    let name = match g {
        1 => "sect163k1",
        2 => "sect163r1",
        3 => "sect163r2",
        4 => "sect193r1",
        5 => "sect193r2",
        6 => "sect233k1",
        7 => "sect233r1",
        8 => "sect239k1",
        9 => "sect283k1",
        10 => "sect283r1",
        11 => "sect409k1",
        12 => "sect409r1",
        13 => "sect571k1",
        14 => "sect571r1",
        15 => "secp160k1",
        16 => "secp160r1",
        17 => "secp160r2",
        18 => "secp192k1",
        19 => "secp192r1",
        20 => "secp224k1",
        21 => "secp224r1",
        22 => "secp256k1",
        23 => "secp256r1",
        24 => "secp384r1",
        25 => "secp521r1",
        26 => "brainpoolP256r1",
        27 => "brainpoolP384r1",
        28 => "brainpoolP512r1",
        29 => "x25519",
        30 => "x448",
        31 => "brainpoolP256r1tls13",
        32 => "brainpoolP384r1tls13",
        33 => "brainpoolP512r1tls13",
        256 => "ffdhe2048",
        257 => "ffdhe3072",
        258 => "ffdhe4096",
        259 => "ffdhe6144",
        260 => "ffdhe8192",
        512 => "MLKEM512",
        513 => "MLKEM768",
        514 => "MLKEM1024",
        4587 => "SecP256r1MLKEM768",
        4588 => "X25519MLKEM768",
        4589 => "SecP384r1MLKEM1024",
        25497 => "X25519Kyber768Draft00",
        25498 => "SecP256r1Kyber768Draft00",
        0xff01 => "arbitrary_explicit_prime_curves",
        0xff02 => "arbitrary_explicit_char2_curves",
        _ => return format!("unknown-{g}"),
    };
    name.to_string()
}

/// Alert description names as Zeek logs them (`SSL::alert_descriptions`).
pub fn alert_name(d: u8) -> String {
    let name = match d {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        121 => "ech_required",
        _ => return format!("unknown-{d}"),
    };
    name.to_string()
}

/// The `ssl_history` letter of a handshake message type (upper case; servers' are lowered).
pub fn handshake_letter(t: u8) -> char {
    match t {
        0 => 'H',
        1 => 'C',
        2 => 'S',
        3 => 'V',
        4 => 'T',
        5 => 'E',
        6 => 'J',
        8 => 'O',
        11 => 'X',
        12 => 'K',
        13 => 'R',
        14 => 'N',
        15 => 'Y',
        16 => 'G',
        20 => 'F',
        21 => 'W',
        22 => 'U',
        23 => 'A',
        24 => 'P',
        254 => 'M',
        _ => 'Z',
    }
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
    fn names() {
        assert_eq!(version_name(0x0303), "TLSv12");
        assert_eq!(version_name(0x7f17), "TLSv13-draft23");
        assert_eq!(cipher_name(0xc014), "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA");
        assert_eq!(cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
        assert_eq!(curve_name(29), "x25519");
        assert_eq!(alert_name(40), "handshake_failure");
        assert_eq!(handshake_letter(1), 'C');
    }

    #[test]
    fn records_and_handshakes() {
        let rec = [22, 3, 1, 0, 4, 1, 0, 0, 0, 99];
        let r = next_record(&rec).unwrap().unwrap();
        assert_eq!(
            (r.kind, r.payload.len(), r.len),
            (ContentType::Handshake, 4, 9)
        );
        assert_eq!(next_record(&rec[..7]), Ok(None));
        assert_eq!(
            next_record(&[22, 3, 1, 0xff, 0xff]),
            Err(RecordError::TooLong)
        );
        assert_eq!(next_handshake(&[1, 0, 0, 2, 9]), None);
        assert_eq!(next_handshake(&[1, 0, 0, 1, 9]), Some((1, 5)));
    }

    proptest! {
        #[test]
        fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..400), kx in 0u8..3) {
            let _ = next_record(&data);
            let _ = next_handshake(&data);
            let _ = sslv2_client_hello(&data);
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
