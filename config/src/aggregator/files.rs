//! The files a configuration names, read as the daemon will read them, so that `estuary check`
//! finds what would stop it: TLS certificates and keys.

use super::TlsServer;

/// Whether validation reads the files the options name (TLS certificates and keys), as
/// `estuary check` and the daemon do, or takes them as paths only (tests of the syntax).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Files {
    Read,
    #[cfg_attr(not(test), allow(dead_code))]
    Ignore,
}

/// What is wrong with the TLS files, as (option, message).
pub(crate) fn check_tls(tls: &TlsServer) -> Vec<(&'static str, String)> {
    use estuary_wire::tls::{load_certs, load_crls, load_key, server_config, ClientAuth, KeyPair};
    let mut problems = Vec::new();
    if let Err(err) = load_certs(&tls.cert_file) {
        problems.push(("TLSCertFile", err.to_string()));
    }
    if let Err(err) = load_key(&tls.key_file) {
        problems.push(("TLSKeyFile", err.to_string()));
    }
    if let Some(ca) = &tls.ca_file {
        if let Err(err) = load_certs(ca) {
            problems.push(("TLSCAFile", err.to_string()));
        } else if load_key(ca).is_ok() {
            let message = format!(
                "{} holds a private key; a CA file must hold certificates only",
                ca.display()
            );
            problems.push(("TLSCAFile", message));
        }
    }
    if let Some(crl) = &tls.crl_file {
        if let Err(err) = load_crls(crl) {
            problems.push(("TLSCRLFile", err.to_string()));
        }
    }
    if !problems.is_empty() {
        return problems;
    }
    let auth = match &tls.ca_file {
        Some(ca) => ClientAuth::Optional { ca_file: ca },
        None => ClientAuth::Off,
    };
    let pair = KeyPair {
        cert_file: &tls.cert_file,
        key_file: &tls.key_file,
    };
    if let Err(err) = server_config(pair, auth) {
        problems.push(("TLSKeyFile", err.to_string()));
    }
    problems
}
