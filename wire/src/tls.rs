//! rustls configurations for syslog over TLS (RFC 5425) and RELP over TLS, from PEM files.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// A certificate chain and its private key, both PEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPair<'a> {
    pub cert_file: &'a Path,
    pub key_file: &'a Path,
}

/// Whether the server asks clients for a certificate, and which CA it must chain to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth<'a> {
    /// No client certificates.
    Off,
    /// Verified against the CA when sent; clients without one are let in.
    Optional { ca_file: &'a Path },
    /// Every client must present a certificate chaining to the CA.
    Required { ca_file: &'a Path },
}

/// Each message names the file and includes its cause (a `cause` field, not a `source`, so that
/// an error chain printed with `{:#}` does not say it twice).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },
    #[error("{} contains no PEM certificate", path.display())]
    NoCertificates { path: PathBuf },
    #[error("{} contains no PEM revocation list", path.display())]
    NoCrl { path: PathBuf },
    #[error("{} contains no PEM private key", path.display())]
    NoPrivateKey { path: PathBuf },
    #[error("CA certificate in {} rejected: {cause}", path.display())]
    BadCaCertificate { path: PathBuf, cause: rustls::Error },
    #[error("certificate {} and key {} do not make a usable identity: {cause}", cert.display(), key.display())]
    BadKeyPair {
        cert: PathBuf,
        key: PathBuf,
        cause: rustls::Error,
    },
    #[error("client certificate verifier for CA {}: {cause}", path.display())]
    Verifier {
        path: PathBuf,
        cause: rustls::server::VerifierBuilderError,
    },
    #[error("TLS protocol versions: {0}")]
    Versions(rustls::Error),
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn open(path: &Path) -> Result<BufReader<File>, TlsError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|cause| TlsError::Read {
            path: path.to_owned(),
            cause,
        })
}

/// All certificates in a PEM file, in order.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|cause| TlsError::Read {
            path: path.to_owned(),
            cause,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// All revocation lists in a PEM file.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let crls = rustls_pemfile::crls(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|cause| TlsError::Read {
            path: path.to_owned(),
            cause,
        })?;
    if crls.is_empty() {
        return Err(TlsError::NoCrl {
            path: path.to_owned(),
        });
    }
    Ok(crls)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut open(path)?)
        .map_err(|cause| TlsError::Read {
            path: path.to_owned(),
            cause,
        })?
        .ok_or_else(|| TlsError::NoPrivateKey {
            path: path.to_owned(),
        })
}

fn root_store(ca_file: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca_file)? {
        roots
            .add(cert)
            .map_err(|cause| TlsError::BadCaCertificate {
                path: ca_file.to_owned(),
                cause,
            })?;
    }
    Ok(roots)
}

/// A client configuration trusting only `ca_file`, with a client certificate when given.
pub fn client_config(
    ca_file: &Path,
    identity: Option<KeyPair<'_>>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Versions)?
        .with_root_certificates(root_store(ca_file)?);
    let config = match identity {
        None => builder.with_no_client_auth(),
        Some(pair) => builder
            .with_client_auth_cert(load_certs(pair.cert_file)?, load_key(pair.key_file)?)
            .map_err(|cause| bad_pair(pair, cause))?,
    };
    Ok(Arc::new(config))
}

/// A server configuration presenting `identity`, asking for client certificates per `client_auth`.
pub fn server_config(
    identity: KeyPair<'_>,
    client_auth: ClientAuth<'_>,
) -> Result<Arc<ServerConfig>, TlsError> {
    server_config_revoking(identity, client_auth, None)
}

/// [`server_config`], refusing client certificates listed in the PEM revocation list `crl_file`.
pub fn server_config_revoking(
    identity: KeyPair<'_>,
    client_auth: ClientAuth<'_>,
    crl_file: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Versions)?;
    let builder = match client_auth {
        ClientAuth::Off => builder.with_no_client_auth(),
        ClientAuth::Optional { ca_file } | ClientAuth::Required { ca_file } => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                root_store(ca_file)?.into(),
                provider(),
            );
            let verifier = match client_auth {
                ClientAuth::Optional { .. } => verifier.allow_unauthenticated(),
                _ => verifier,
            };
            let verifier = match crl_file {
                Some(path) => verifier.with_crls(load_crls(path)?),
                None => verifier,
            };
            let verifier = verifier.build().map_err(|cause| TlsError::Verifier {
                path: ca_file.to_owned(),
                cause,
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(
            load_certs(identity.cert_file)?,
            load_key(identity.key_file)?,
        )
        .map_err(|cause| bad_pair(identity, cause))?;
    Ok(Arc::new(config))
}

fn bad_pair(pair: KeyPair<'_>, cause: rustls::Error) -> TlsError {
    TlsError::BadKeyPair {
        cert: pair.cert_file.to_owned(),
        key: pair.key_file.to_owned(),
        cause,
    }
}

/// The name the client checks the server certificate against (a DNS name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, TlsError> {
    ServerName::try_from(host.to_owned()).map_err(|_| TlsError::ServerName(host.to_owned()))
}

/// The subject common names and DNS subject-alternative names of a certificate, for matching
/// a peer against permitted names. Empty when the certificate cannot be parsed.
pub fn peer_cert_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = parsed
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    names
}
