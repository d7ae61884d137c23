//! The TLS files a shipper configuration names, checked when it is loaded from disk (`estuary
//! check`, `estuary ship`): each must be readable and hold what its key says, a CA file no private
//! key, and a certificate must go with its key. Every problem names the configuration's file, line
//! and key. Parsing alone looks at no file.

use std::path::{Path, PathBuf};

use estuary_wire::tls::{self, KeyPair};

use crate::{ConfigError, ConfigErrors};

/// A file named in the configuration, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Named {
    pub path: PathBuf,
    pub line: usize,
    pub key: &'static str,
}

/// One destination's TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub ca: Named,
    /// The client certificate and its key.
    pub identity: Option<(Named, Named)>,
}

/// Every problem with the files `files` name, as errors in `config_file`.
pub(crate) fn check(config_file: &Path, files: &[TlsFiles]) -> ConfigErrors {
    let mut errors = ConfigErrors::default();
    let mut fail = |named: &Named, message: String| {
        errors.push(ConfigError::new(
            config_file,
            Some(named.line),
            Some(named.key),
            message,
        ));
    };
    for dest in files {
        let ca = &dest.ca.path;
        let mut usable = true;
        if let Err(err) = tls::load_certs(ca) {
            fail(&dest.ca, err.to_string());
            usable = false;
        } else if tls::load_key(ca).is_ok() {
            fail(
                &dest.ca,
                format!(
                    "{} holds a private key; a CA file must hold only certificates",
                    ca.display()
                ),
            );
        }
        let Some((cert, key)) = &dest.identity else {
            continue;
        };
        if let Err(err) = tls::load_certs(&cert.path) {
            fail(cert, err.to_string());
            usable = false;
        }
        if let Err(err) = tls::load_key(&key.path) {
            fail(key, err.to_string());
            usable = false;
        }
        if usable {
            let pair = KeyPair {
                cert_file: &cert.path,
                key_file: &key.path,
            };
            if let Err(err) = tls::client_config(ca, Some(pair)) {
                fail(cert, err.to_string());
            }
        }
    }
    errors
}
