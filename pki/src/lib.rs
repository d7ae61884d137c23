//! A site certificate authority and the node certificates it signs, so that mutual TLS between
//! sensors, shippers and the aggregator takes two commands (`estuary tls init`, `estuary tls issue
//! NODE`) instead of an openssl session.
//!
//! A site directory holds `ca.pem` and `ca.key`, and `NODE.pem` / `NODE.key` per issued node.
//! Private keys are created with mode 0600 and never overwritten: a key that exists is kept, and
//! the command that would replace it fails instead.

#![forbid(unsafe_code)]

mod files;
mod node;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SanType, SerialNumber,
};

pub use node::NodeName;

/// The CA certificate's file name in a site directory.
pub const CA_CERT: &str = "ca.pem";
/// The CA private key's file name in a site directory.
pub const CA_KEY: &str = "ca.key";
/// The revocation list's file name in a site directory (`TLSCRLFile`).
pub const CRL: &str = "crl.pem";
/// How long a revocation list is declared current; `estuary tls revoke` issues a new one.
const CRL_VALIDITY: Duration = Duration::from_secs(365 * 86_400);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} already exists; remove it first if it is really to be replaced", path.display())]
    Exists { path: PathBuf },
    #[error("{}: {what}", path.display())]
    BadFile { path: PathBuf, what: String },
    #[error("{0:?} is not a node name (a DNS name such as sensor1.example, or an IP address)")]
    BadNodeName(String),
    #[error("the site CA in {} is not valid now (valid {not_before} to {not_after})", path.display())]
    CaNotValid {
        path: PathBuf,
        not_before: String,
        not_after: String,
    },
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// When a certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// From `now` (minus an hour, for hosts whose clocks lag a little) for `days`.
    pub fn days_from(now: SystemTime, days: u32) -> Validity {
        const SLACK: Duration = Duration::from_secs(3600);
        Validity {
            not_before: now.checked_sub(SLACK).unwrap_or(now),
            not_after: now + Duration::from_secs(86_400 * u64::from(days)),
        }
    }

    fn apply(&self, params: &mut CertificateParams) {
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
    }
}

/// The files of one issued identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A site CA loaded from (or just written to) a site directory.
pub struct SiteCa {
    dir: PathBuf,
    /// Rebuilt from the stored certificate's name and key: rcgen signs with a `Certificate`,
    /// and the issuer name and key identifier it writes into leaves come from these two.
    cert: Certificate,
    key: KeyPair,
}

impl SiteCa {
    /// Creates a CA named `name` in `dir` (created if missing). Fails if `dir` already has one.
    pub fn init(dir: &Path, name: &str, validity: Validity) -> Result<SiteCa, PkiError> {
        files::create_dir(dir)?;
        let (cert_file, key_file) = (dir.join(CA_CERT), dir.join(CA_KEY));
        for path in [&cert_file, &key_file] {
            if path.exists() {
                return Err(PkiError::Exists { path: path.clone() });
            }
        }
        let key = KeyPair::generate()?;
        let mut params = ca_params(name);
        validity.apply(&mut params);
        let cert = params.self_signed(&key)?;
        files::write_new(&key_file, key.serialize_pem().as_bytes(), files::PRIVATE)?;
        files::write_new(&cert_file, cert.pem().as_bytes(), files::PUBLIC)?;
        let ca = SiteCa {
            dir: dir.to_owned(),
            cert,
            key,
        };
        ca.write_crl(Vec::new(), validity.not_before)?;
        Ok(ca)
    }

    /// Loads the CA of `dir`, refusing one that is not valid at `now`.
    pub fn load(dir: &Path, now: SystemTime) -> Result<SiteCa, PkiError> {
        let (cert_file, key_file) = (dir.join(CA_CERT), dir.join(CA_KEY));
        let pem = files::read(&cert_file)?;
        let key =
            KeyPair::from_pem(&String::from_utf8_lossy(&files::read(&key_file)?)).map_err(|e| {
                PkiError::BadFile {
                    path: key_file.clone(),
                    what: format!("not a private key: {e}"),
                }
            })?;
        let bad = |what: &str| PkiError::BadFile {
            path: cert_file.clone(),
            what: what.to_owned(),
        };
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(&pem).map_err(|_| bad("no PEM certificate"))?;
        let parsed = pem
            .parse_x509()
            .map_err(|_| bad("not an X.509 certificate"))?;
        if !parsed.is_ca() {
            return Err(bad("not a CA certificate"));
        }
        if parsed.public_key().raw != key.public_key_der().as_slice() {
            return Err(bad(&format!(
                "does not belong to the key in {}",
                key_file.display()
            )));
        }
        let stamp = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(i64::MIN, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        };
        let validity = parsed.validity();
        if !(validity.not_before.timestamp()..=validity.not_after.timestamp()).contains(&stamp(now))
        {
            return Err(PkiError::CaNotValid {
                path: cert_file,
                not_before: validity.not_before.to_string(),
                not_after: validity.not_after.to_string(),
            });
        }
        let name = parsed
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or_else(|| bad("the CA certificate has no common name"))?;
        let cert = ca_params(name).self_signed(&key)?;
        if !same_subject(cert.der(), parsed.subject().as_raw()) {
            return Err(bad("the CA's name is not one this program wrote"));
        }
        Ok(SiteCa {
            dir: dir.to_owned(),
            cert,
            key,
        })
    }

    /// The CA certificate file, which every node trusts.
    pub fn cert_file(&self) -> PathBuf {
        self.dir.join(CA_CERT)
    }

    /// Issues a certificate for `node` (its common name and first subject-alternative name) plus
    /// `extra` names, usable both as TLS server and client, and writes `NODE.pem` and `NODE.key`
    /// next to the CA.
    pub fn issue(
        &self,
        node: &NodeName,
        extra: &[NodeName],
        validity: Validity,
    ) -> Result<Issued, PkiError> {
        let issued = Issued {
            cert_file: self.dir.join(format!("{node}.pem")),
            key_file: self.dir.join(format!("{node}.key")),
        };
        for path in [&issued.cert_file, &issued.key_file] {
            if path.exists() {
                return Err(PkiError::Exists { path: path.clone() });
            }
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, node.as_str());
        params.subject_alt_names = std::iter::once(node)
            .chain(extra)
            .map(NodeName::san)
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        validity.apply(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        files::write_new(
            &issued.key_file,
            key.serialize_pem().as_bytes(),
            files::PRIVATE,
        )?;
        files::write_new(&issued.cert_file, cert.pem().as_bytes(), files::PUBLIC)?;
        Ok(issued)
    }
}

impl SiteCa {
    /// Adds `node`'s certificate to the site's revocation list (`crl.pem`), which peers given it
    /// as `TLSCRLFile` refuse. Returns the list's path.
    pub fn revoke(&self, node: &NodeName, now: SystemTime) -> Result<PathBuf, PkiError> {
        let cert_file = self.dir.join(format!("{node}.pem"));
        let pem = files::read(&cert_file)?;
        let bad = |what: &str| PkiError::BadFile {
            path: cert_file.clone(),
            what: what.to_owned(),
        };
        let (_, pem) =
            x509_parser::pem::parse_x509_pem(&pem).map_err(|_| bad("no PEM certificate"))?;
        let serial = pem
            .parse_x509()
            .map_err(|_| bad("not an X.509 certificate"))?
            .raw_serial()
            .to_vec();
        let mut revoked = self.revoked()?;
        if !revoked
            .iter()
            .any(|r| r.serial_number.as_ref() == serial.as_slice())
        {
            revoked.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: now.into(),
                reason_code: None,
                invalidity_date: None,
            });
        }
        self.write_crl(revoked, now)
    }

    /// The entries of the current `crl.pem` (none when there is none yet).
    fn revoked(&self) -> Result<Vec<RevokedCertParams>, PkiError> {
        let path = self.dir.join(CRL);
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(PkiError::Io { path, source }),
        };
        let bad = || PkiError::BadFile {
            path: path.clone(),
            what: "not a PEM revocation list".into(),
        };
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(|_| bad())?;
        let (_, crl) = x509_parser::parse_x509_crl(&pem.contents).map_err(|_| bad())?;
        Ok(crl
            .iter_revoked_certificates()
            .map(|r| RevokedCertParams {
                serial_number: SerialNumber::from_slice(r.raw_serial()),
                revocation_time: time::OffsetDateTime::from_unix_timestamp(
                    r.revocation_date.timestamp(),
                )
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
                reason_code: None,
                invalidity_date: None,
            })
            .collect())
    }

    fn write_crl(
        &self,
        revoked: Vec<RevokedCertParams>,
        now: SystemTime,
    ) -> Result<PathBuf, PkiError> {
        // Seconds since the epoch: a CRL number that grows with every list this CA issues.
        let number = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs());
        let crl = CertificateRevocationListParams {
            this_update: now.into(),
            next_update: (now + CRL_VALIDITY).into(),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked,
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.cert, &self.key)?;
        let path = self.dir.join(CRL);
        estuary_fsutil::replace(
            &path,
            crl.pem()?.as_bytes(),
            estuary_fsutil::Durability::Durable,
        )
        .map_err(|source| PkiError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn same_subject(der: &[u8], subject: &[u8]) -> bool {
    x509_parser::parse_x509_certificate(der)
        .is_ok_and(|(_, cert)| cert.subject().as_raw() == subject)
}

impl NodeName {
    fn san(&self) -> Result<SanType, PkiError> {
        Ok(match self.ip() {
            Some(ip) => SanType::IpAddress(ip),
            None => SanType::DnsName(
                self.as_str()
                    .try_into()
                    .map_err(|_| PkiError::BadNodeName(self.to_string()))?,
            ),
        })
    }
}

#[cfg(test)]
mod tests;
