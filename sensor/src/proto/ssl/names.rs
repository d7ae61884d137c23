//! The names ssl.log writes for numbers on the wire: Zeek's `SSL::version_strings`,
//! `SSL::cipher_desc`, `SSL::ec_curves`, `SSL::alert_descriptions` (consts.zeek) and the
//! letters of `ssl_history` (main.zeek).

use tls_parser::TlsCipherSuite;

/// Zeek's `SSL::cipher_desc` names of the SSLv2 cipher kinds.
pub fn v2_cipher_name(kind: u32) -> String {
    let name = match kind {
        0x010080 => "SSLv20_CK_RC4_128_WITH_MD5",
        0x020080 => "SSLv20_CK_RC4_128_EXPORT40_WITH_MD5",
        0x030080 => "SSLv20_CK_RC2_128_CBC_WITH_MD5",
        0x040080 => "SSLv20_CK_RC2_128_CBC_EXPORT40_WITH_MD5",
        0x050080 => "SSLv20_CK_IDEA_128_CBC_WITH_MD5",
        0x060040 => "SSLv20_CK_DES_64_CBC_WITH_MD5",
        0x0700C0 => "SSLv20_CK_DES_192_EDE3_CBC_WITH_MD5",
        _ => return u16::try_from(kind).map_or_else(|_| format!("unknown-{kind}"), cipher_name),
    };
    name.to_string()
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
pub fn alert_name(d: u16) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(version_name(0x0303), "TLSv12");
        assert_eq!(version_name(0x7f17), "TLSv13-draft23");
        assert_eq!(cipher_name(0xc014), "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA");
        assert_eq!(cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
        assert_eq!(v2_cipher_name(0x010080), "SSLv20_CK_RC4_128_WITH_MD5");
        assert_eq!(curve_name(29), "x25519");
        assert_eq!(alert_name(40), "handshake_failure");
        assert_eq!(handshake_letter(1), 'C');
    }
}
