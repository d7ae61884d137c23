//! Selector actions: `@host` (UDP), `@@host` (TCP, optionally TLS by the stream driver
//! directives) and `:omrelp:host`, with the TLS files they name.

use std::path::PathBuf;

use estuary_wire::{Format, Framing};

use super::Parser;
use crate::shipper::defaults;
use crate::shipper::tls_files::{Named, TlsFiles};
use crate::shipper::{Body, ClientAuth, DestinationConfig, TlsClient, Transport};
use crate::value;

/// `$ActionSendStreamDriver*` settings in force for the following `@@` actions.
/// Only `x509/name` authentication exists, so the auth mode needs no field.
#[derive(Default)]
pub(super) struct StreamDriver {
    pub(super) tls: bool,
    pub(super) permitted_peer: Option<String>,
}

/// omfwd's `(o)` option (octet-counted framing) in front of the host; `(z...)` compression is refused.
fn omfwd_options(rest: &str) -> Result<(Framing, &str), String> {
    let Some(inner) = rest.strip_prefix('(') else {
        return Ok((Framing::NewLine, rest));
    };
    let (options, host) = inner
        .split_once(')')
        .ok_or("missing ')' after omfwd options")?;
    let mut framing = Framing::NewLine;
    for option in options.split(',').map(str::trim) {
        match option {
            "o" => framing = Framing::OctetCounting,
            other => return Err(format!("omfwd option ({other}) is not supported; only (o)")),
        }
    }
    Ok((framing, host))
}

impl Parser<'_> {
    pub(super) fn action(&self, action: &str) -> Result<DestinationConfig, String> {
        let (target, template) = match action.split_once(';') {
            Some((target, template)) => (target, Some(template)),
            None => (action, None),
        };
        let format = match template {
            None | Some("RSYSLOG_TraditionalForwardFormat") => Format::Rfc3164,
            Some("RSYSLOG_SyslogProtocol23Format") => Format::Rfc5424,
            Some(other) => {
                return Err(format!(
                    "template {other:?} is not supported (RSYSLOG_TraditionalForwardFormat or RSYSLOG_SyslogProtocol23Format)"
                ))
            }
        };
        let (transport, host_port) = if let Some(rest) = target.strip_prefix(":omrelp:") {
            if self.stream.tls {
                return Err("$ActionSendStreamDriverMode 1 does not apply to omrelp; use transport = \"relp-tls\" in the TOML form".into());
            }
            (
                Transport::Relp {
                    window: defaults::RELP_WINDOW,
                    tls: None,
                },
                rest,
            )
        } else if let Some(rest) = target.strip_prefix("@@") {
            let (framing, rest) = omfwd_options(rest)?;
            let tls = if self.stream.tls {
                Some(self.tls_client()?)
            } else {
                None
            };
            (Transport::Tcp { framing, tls }, rest)
        } else if let Some(rest) = target.strip_prefix('@') {
            if self.stream.tls {
                return Err("TLS needs TCP: use @@ with $ActionSendStreamDriverMode 1".into());
            }
            let (framing, rest) = omfwd_options(rest)?;
            if framing != Framing::NewLine {
                return Err("(o) octet counting applies to TCP (@@) only".into());
            }
            (Transport::Udp, rest)
        } else {
            return Err("unsupported action; estuary ship forwards with @host (UDP), @@host (TCP) or :omrelp:host:port".into());
        };
        let (host, port) = value::parse_host_port(host_port, Some(defaults::PORT))?;
        let transport = match transport {
            Transport::Tcp {
                framing,
                tls: Some(tls),
            } => Transport::Tcp {
                framing,
                tls: Some(TlsClient {
                    server_name: tls.server_name.or_else(|| Some(host.clone())),
                    ..tls
                }),
            },
            other => other,
        };
        Ok(DestinationConfig {
            name: value::display_host_port(&host, port),
            host,
            port,
            transport,
            format,
            body: Body::Line,
            tag_filter: None,
            facility: None,
            retry_interval: defaults::RETRY_INTERVAL,
            retry_max: defaults::RETRY_MAX,
        })
    }

    fn tls_client(&self) -> Result<TlsClient, String> {
        if self.netstream_driver.is_none() {
            return Err(
                "$ActionSendStreamDriverMode 1 needs `$DefaultNetstreamDriver gtls` first".into(),
            );
        }
        let (_, ca_file) = self
            .ca_file
            .clone()
            .ok_or("TLS needs $DefaultNetstreamDriverCAFile to verify the server")?;
        let client_auth = match (&self.cert_file, &self.key_file) {
            (Some((_, cert_file)), Some((_, key_file))) => Some(ClientAuth {
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(
                    "$DefaultNetstreamDriverCertFile without $DefaultNetstreamDriverKeyFile".into(),
                )
            }
            (None, Some(_)) => {
                return Err(
                    "$DefaultNetstreamDriverKeyFile without $DefaultNetstreamDriverCertFile".into(),
                )
            }
        };
        Ok(TlsClient {
            ca_file,
            client_auth,
            server_name: self.stream.permitted_peer.clone(),
        })
    }

    /// The `$DefaultNetstreamDriver*File` files, when a destination uses TLS.
    pub(super) fn tls_files(&self, destinations: &[DestinationConfig]) -> Vec<TlsFiles> {
        let uses_tls = destinations.iter().any(|d| {
            matches!(
                d.transport,
                Transport::Tcp { tls: Some(_), .. } | Transport::Relp { tls: Some(_), .. }
            )
        });
        let named = |file: &Option<(usize, PathBuf)>, key| {
            file.clone().map(|(line, path)| Named { path, line, key })
        };
        let ca = named(&self.ca_file, "$DefaultNetstreamDriverCAFile").filter(|_| uses_tls);
        ca.map(|ca| TlsFiles {
            ca,
            identity: named(&self.cert_file, "$DefaultNetstreamDriverCertFile")
                .zip(named(&self.key_file, "$DefaultNetstreamDriverKeyFile")),
        })
        .into_iter()
        .collect()
    }
}
