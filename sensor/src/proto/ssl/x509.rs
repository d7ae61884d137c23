//! x509.log: the certificates of TLS handshakes, with the columns of Zeek's
//! `base/files/x509/main.zeek`, formatted as Zeek formats them with OpenSSL (names in RFC 2253
//! order, algorithm long names, curve short names, the serial as uppercase hex).

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use x509_parser::prelude::*;
use x509_parser::public_key::{PublicKey, RSAPublicKey};

use crate::flow::Timestamp;
use crate::zeeklog::{Field, FieldType, Record, Value};

/// Which side sent the certificate, and whether it was the first of its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertRole {
    /// The server's own certificate (the first of the server's chain).
    Host,
    /// The client's own certificate.
    Client,
    /// Any other certificate of a chain.
    Chain,
}

/// One x509.log row.
#[derive(Debug, Clone, PartialEq)]
pub struct X509Info {
    pub ts: Timestamp,
    /// SHA-256 of the DER encoding, lowercase hex.
    pub fingerprint: String,
    pub version: u64,
    pub serial: String,
    pub subject: String,
    pub issuer: String,
    pub not_valid_before: i64,
    pub not_valid_after: i64,
    pub key_alg: String,
    pub sig_alg: String,
    pub key_type: Option<&'static str>,
    pub key_length: Option<u64>,
    pub exponent: Option<String>,
    pub curve: Option<&'static str>,
    pub san_dns: Vec<String>,
    pub san_uri: Vec<String>,
    pub san_email: Vec<String>,
    pub san_ip: Vec<IpAddr>,
    /// Present only with a basic-constraints extension: (ca, path length).
    pub basic_constraints: Option<(bool, Option<u32>)>,
    pub role: CertRole,
}

/// The hex SHA-256 of a certificate, as Zeek's fingerprints.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl X509Info {
    /// Parses a DER certificate; `None` if it is not one.
    pub fn parse(ts: Timestamp, der: &[u8], role: CertRole) -> Option<X509Info> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let spki = cert.public_key();
        let key_oid = spki.algorithm.algorithm.to_id_string();
        let (mut key_type, mut key_length, mut exponent, mut curve) = (None, None, None, None);
        // Zeek's `X509::ParseCertificate`: a key that names md5WithRSAEncryption as its
        // algorithm (RDP servers' certificates) is read as an RSA key, its name kept.
        let parsed = if key_oid == "1.2.840.113549.1.1.4" {
            RSAPublicKey::from_der(&spki.subject_public_key.data)
                .map(|(_, rsa)| PublicKey::RSA(rsa))
                .map_err(|_| X509Error::InvalidSPKI)
        } else {
            spki.parsed()
        };
        match parsed {
            Ok(PublicKey::RSA(rsa)) => {
                key_type = Some("rsa");
                key_length = Some(rsa.key_size() as u64);
                exponent = rsa.try_exponent().ok().map(|e| e.to_string());
            }
            Ok(PublicKey::EC(_)) => {
                key_type = Some("ecdsa");
                let params = spki.algorithm.parameters.as_ref();
                let named = params
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                if let Some((name, bits)) = named.as_deref().and_then(curve_name) {
                    curve = Some(name);
                    key_length = Some(bits);
                }
            }
            Ok(PublicKey::DSA(_)) => {
                key_type = Some("dsa");
                // Zeek's KeyLength: the bits of the prime p of the Dss-Parms.
                key_length = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| first_integer_bits(p.data));
            }
            _ => {}
        }
        let mut info = X509Info {
            ts,
            fingerprint: fingerprint(der),
            version: u64::from(cert.version().0) + 1,
            serial: serial_hex(cert.raw_serial()),
            subject: rfc2253(cert.subject()),
            issuer: rfc2253(cert.issuer()),
            not_valid_before: cert.validity().not_before.timestamp(),
            not_valid_after: cert.validity().not_after.timestamp(),
            key_alg: algorithm_name(&key_oid),
            sig_alg: algorithm_name(&cert.signature_algorithm.algorithm.to_id_string()),
            key_type,
            key_length,
            exponent,
            curve,
            san_dns: Vec::new(),
            san_uri: Vec::new(),
            san_email: Vec::new(),
            san_ip: Vec::new(),
            basic_constraints: None,
            role,
        };
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(s) => info.san_dns.push((*s).to_string()),
                    GeneralName::URI(s) => info.san_uri.push((*s).to_string()),
                    GeneralName::RFC822Name(s) => info.san_email.push((*s).to_string()),
                    GeneralName::IPAddress(b) => info.san_ip.extend(ip_from(b)),
                    _ => {}
                }
            }
        }
        if let Ok(Some(bc)) = cert.basic_constraints() {
            info.basic_constraints = Some((bc.value.ca, bc.value.path_len_constraint));
        }
        Some(info)
    }
}

/// The bit length of the first DER INTEGER in `seq` (the content of a SEQUENCE), as
/// OpenSSL's `BN_num_bits` counts it.
fn first_integer_bits(seq: &[u8]) -> Option<u64> {
    let [0x02, len0, rest @ ..] = seq else {
        return None;
    };
    let (len, rest) = match *len0 {
        n if n < 0x80 => (usize::from(n), rest),
        0x81 => (usize::from(*rest.first()?), rest.get(1..)?),
        0x82 => (
            usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?])),
            rest.get(2..)?,
        ),
        _ => return None,
    };
    let value = rest.get(..len)?;
    let start = value.iter().position(|b| *b != 0)?;
    let top = u64::from(8 - value[start].leading_zeros());
    Some((value.len() - start - 1) as u64 * 8 + top)
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

/// The serial as OpenSSL prints an ASN.1 integer: uppercase hex, no leading zero bytes.
fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    raw[start..].iter().map(|b| format!("{b:02X}")).collect()
}

/// A name as OpenSSL's `X509_NAME_print_ex` with `XN_FLAG_RFC2253` prints it (`do_name_ex`):
/// the entries in reverse, flat, so that the attributes of a multi-valued RDN are reversed
/// too; `+` between entries of one RDN, `,` between RDNs; special characters escaped.
fn rfc2253(name: &X509Name<'_>) -> String {
    let entries: Vec<(usize, String)> = name
        .iter()
        .enumerate()
        .flat_map(|(set, rdn)| {
            rdn.iter().map(move |attr| {
                let key = attribute_name(&attr.attr_type().to_id_string());
                (set, format!("{key}={}", escape(&value_text(attr))))
            })
        })
        .collect();
    let mut out = String::new();
    let mut prev = None;
    for (set, entry) in entries.into_iter().rev() {
        match prev {
            Some(p) if p == set => out.push('+'),
            Some(_) => out.push(','),
            None => {}
        }
        out.push_str(&entry);
        prev = Some(set);
    }
    out
}

/// An attribute's characters as `ASN1_STRFLGS_UTF8_CONVERT` reads them: BMPString two bytes
/// and UniversalString four bytes a character (`do_buf`).
fn value_text(attr: &AttributeTypeAndValue<'_>) -> String {
    let data = attr.attr_value().data;
    let wide = |width: usize| -> String {
        data.chunks(width)
            .map(|c| {
                let code = c.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
                char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect()
    };
    match attr.attr_value().tag() {
        x509_parser::asn1_rs::Tag::BmpString => wide(2),
        x509_parser::asn1_rs::Tag::UniversalString => wide(4),
        _ => match attr.as_str() {
            Ok(s) => s.to_string(),
            Err(_) => String::from_utf8_lossy(data).into_owned(),
        },
    }
}

/// RFC 2253 escaping as OpenSSL does it (`ASN1_STRFLGS_ESC_2253 | ESC_CTRL`, not `ESC_MSB`).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// OpenSSL's short names of name attributes.
fn attribute_name(oid: &str) -> String {
    let name = match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.13" => "description",
        "2.5.4.15" => "businessCategory",
        "2.5.4.17" => "postalCode",
        "2.5.4.41" => "name",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "2.5.4.97" => "organizationIdentifier",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "1.2.840.113549.1.9.2" => "unstructuredName",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.3.6.1.4.1.311.60.2.1.1" => "jurisdictionL",
        "1.3.6.1.4.1.311.60.2.1.2" => "jurisdictionST",
        "1.3.6.1.4.1.311.60.2.1.3" => "jurisdictionC",
        other => return other.to_string(),
    };
    name.to_string()
}

/// OpenSSL's long names of key and signature algorithms.
fn algorithm_name(oid: &str) -> String {
    let name = match oid {
        "1.2.840.113549.1.1.1" => "rsaEncryption",
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.3.14.3.2.29" => "sha1WithRSA",
        "1.2.840.10040.4.1" => "dsaEncryption",
        "1.2.840.10040.4.3" => "dsaWithSHA1",
        "2.16.840.1.101.3.4.3.2" => "dsa_with_SHA256",
        "1.2.840.10045.2.1" => "id-ecPublicKey",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "ED25519",
        "1.3.101.113" => "ED448",
        other => return other.to_string(),
    };
    name.to_string()
}

/// OpenSSL's short name of a named curve, with its size in bits.
fn curve_name(oid: &str) -> Option<(&'static str, u64)> {
    Some(match oid {
        "1.2.840.10045.3.1.1" => ("prime192v1", 192),
        "1.3.132.0.33" => ("secp224r1", 224),
        "1.2.840.10045.3.1.7" => ("prime256v1", 256),
        "1.3.132.0.10" => ("secp256k1", 256),
        "1.3.132.0.34" => ("secp384r1", 384),
        "1.3.132.0.35" => ("secp521r1", 521),
        "1.3.36.3.3.2.8.1.1.7" => ("brainpoolP256r1", 256),
        "1.3.36.3.3.2.8.1.1.11" => ("brainpoolP384r1", 384),
        "1.3.36.3.3.2.8.1.1.13" => ("brainpoolP512r1", 512),
        _ => return None,
    })
}

const FIELDS: &[Field] = &[
    Field {
        name: "ts",
        ty: FieldType::Time,
    },
    Field {
        name: "fingerprint",
        ty: FieldType::String,
    },
    Field {
        name: "certificate.version",
        ty: FieldType::Count,
    },
    Field {
        name: "certificate.serial",
        ty: FieldType::String,
    },
    Field {
        name: "certificate.subject",
        ty: FieldType::String,
    },
    Field {
        name: "certificate.issuer",
        ty: FieldType::String,
    },
    Field {
        name: "certificate.not_valid_before",
        ty: FieldType::Time,
    },
    Field {
        name: "certificate.not_valid_after",
        ty: FieldType::Time,
    },
    Field {
        name: "certificate.key_alg",
        ty: FieldType::String,
    },
    Field {
        name: "certificate.sig_alg",
        ty: FieldType::String,
    },
    Field {
        name: "certificate.key_type",
        ty: FieldType::String,
    },
    Field {
        name: "certificate.key_length",
        ty: FieldType::Count,
    },
    Field {
        name: "certificate.exponent",
        ty: FieldType::String,
    },
    Field {
        name: "certificate.curve",
        ty: FieldType::String,
    },
    Field {
        name: "san.dns",
        ty: FieldType::VectorString,
    },
    Field {
        name: "san.uri",
        ty: FieldType::VectorString,
    },
    Field {
        name: "san.email",
        ty: FieldType::VectorString,
    },
    Field {
        name: "san.ip",
        ty: FieldType::VectorAddr,
    },
    Field {
        name: "basic_constraints.ca",
        ty: FieldType::Bool,
    },
    Field {
        name: "basic_constraints.path_len",
        ty: FieldType::Count,
    },
    Field {
        name: "host_cert",
        ty: FieldType::Bool,
    },
    Field {
        name: "client_cert",
        ty: FieldType::Bool,
    },
];

/// A vector column: unset when empty, as Zeek leaves an absent SAN kind.
fn list<T>(items: &[T], value: impl Fn(&T) -> Value) -> Value {
    if items.is_empty() {
        Value::Unset
    } else {
        Value::List(items.iter().map(value).collect())
    }
}

impl Record for X509Info {
    fn path(&self) -> &'static str {
        "x509"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn values(&self) -> Vec<Value> {
        let str_opt = |s: Option<&str>| s.map_or(Value::Unset, |s| Value::Str(s.to_string()));
        vec![
            Value::Time(self.ts),
            Value::Str(self.fingerprint.clone()),
            Value::Count(self.version),
            Value::Str(self.serial.clone()),
            Value::Str(self.subject.clone()),
            Value::Str(self.issuer.clone()),
            Value::Time(Timestamp(self.not_valid_before as f64)),
            Value::Time(Timestamp(self.not_valid_after as f64)),
            Value::Str(self.key_alg.clone()),
            Value::Str(self.sig_alg.clone()),
            str_opt(self.key_type),
            self.key_length.map_or(Value::Unset, Value::Count),
            str_opt(self.exponent.as_deref()),
            str_opt(self.curve),
            list(&self.san_dns, |s| Value::Str(s.clone())),
            list(&self.san_uri, |s| Value::Str(s.clone())),
            list(&self.san_email, |s| Value::Str(s.clone())),
            list(&self.san_ip, |a| Value::Addr(*a)),
            self.basic_constraints
                .map_or(Value::Unset, |(ca, _)| Value::Bool(ca)),
            self.basic_constraints
                .and_then(|(_, len)| len)
                .map_or(Value::Unset, |l| Value::Count(u64::from(l))),
            Value::Bool(self.role == CertRole::Host),
            Value::Bool(self.role == CertRole::Client),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsa_key_length_is_the_bits_of_p() {
        // SEQUENCE content: INTEGER p (0x00 0x80 ... : 1024 bits), then q.
        let mut p = vec![0x02, 0x81, 129, 0x00, 0x80];
        p.extend_from_slice(&[0; 127]);
        p.extend_from_slice(&[0x02, 0x01, 0x05]);
        assert_eq!(first_integer_bits(&p), Some(1024));
        assert_eq!(first_integer_bits(&[0x02, 0x01, 0x05]), Some(3));
        assert_eq!(first_integer_bits(&[0x30, 0x00]), None);
    }

    #[test]
    fn serials_print_as_openssl_integers() {
        assert_eq!(serial_hex(&[0x00, 0x80, 0x01]), "8001");
        assert_eq!(serial_hex(&[0x26]), "26");
        assert_eq!(serial_hex(&[0x01, 0, 0, 0, 0x01]), "0100000001");
        assert_eq!(serial_hex(&[0x00]), "00");
    }

    #[test]
    fn values_are_escaped_as_rfc2253() {
        assert_eq!(escape("a,b+c"), "a\\,b\\+c");
        assert_eq!(escape("x=\r\n"), "x=\\0D\\0A");
        assert_eq!(escape("#1 "), "\\#1\\ ");
        assert_eq!(escape("Montabaur"), "Montabaur");
    }

    /// One RDN of a CN and an L in BMPString (as RDP servers' certificates have them), then
    /// a C: OpenSSL reverses the entries flat, within the RDN too.
    #[test]
    fn names_print_reversed_entry_by_entry_with_bmp_strings() {
        let bmp = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_be_bytes).collect() };
        let attr = |oid: u8, tag: u8, value: &[u8]| -> Vec<u8> {
            let mut a = vec![0x06, 0x03, 0x55, 0x04, oid, tag, value.len() as u8];
            a.extend_from_slice(value);
            let mut seq = vec![0x30, a.len() as u8];
            seq.extend(a);
            seq
        };
        let set = |attrs: Vec<Vec<u8>>| -> Vec<u8> {
            let body: Vec<u8> = attrs.concat();
            let mut s = vec![0x31, body.len() as u8];
            s.extend(body);
            s
        };
        let rdns = [
            set(vec![
                attr(3, 0x1e, &bmp("SERVR")),
                attr(7, 0x1e, &bmp("TURNBKL")),
            ]),
            set(vec![attr(6, 0x13, b"US")]),
        ]
        .concat();
        let mut der = vec![0x30, rdns.len() as u8];
        der.extend(rdns);
        let (_, name) = X509Name::from_der(&der).expect("name");
        assert_eq!(rfc2253(&name), "C=US,L=TURNBKL+CN=SERVR");
    }
}
