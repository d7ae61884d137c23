//! The shipper's TOML form: `[[input]]` tables mirror imfile inputs, `[[destination]]` tables mirror
//! the seed's `Remote::destinations` entries.
//!
//! ```toml
//! work_dir = "/var/spool/estuary"
//! [[input]]
//! path = "/usr/local/bro/logs/current/*.log"
//! tag = "bro_conn:"
//! facility = "local7"
//! severity = "info"
//! [[destination]]
//! host = "10.0.0.5"
//! port = 2514
//! transport = "relp"
//! ```
//!
//! Relative paths are resolved against the configuration file's directory, state files against
//! `work_dir`. `tls` transport defaults to octet-counting framing (RFC 5425), `tcp` to newline.
//! `transport = "nats"` takes `servers` (and `stream`, `credentials`, TLS files) instead of
//! `host` and `port`, and always sends RFC 5424.

use std::path::{Path, PathBuf};
use std::time::Duration;

use estuary_wire::{Facility, Format, Framing, Severity};
use regex::Regex;
use serde::Deserialize;
use toml::{Spanned, Value};

use super::defaults;
use super::tls_files::{Named, TlsFiles};
use super::{
    Body, ClientAuth, DestinationConfig, InputConfig, LongLines, NatsDestination, OnShrink,
    ShipperConfig, StartAt, TlsClient, Transport, WatchMode,
};
use crate::toml_form::{choice, duration, size, TomlFile};
use crate::value;
use crate::ConfigErrors;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShipper {
    work_dir: Option<Spanned<String>>,
    hostname: Option<Spanned<String>>,
    stats_interval: Option<Spanned<Value>>,
    metrics_address: Option<Spanned<String>>,
    #[serde(default)]
    input: Vec<Spanned<RawInput>>,
    #[serde(default)]
    destination: Vec<Spanned<RawDestination>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    path: Spanned<String>,
    tag: Spanned<String>,
    facility: Option<Spanned<String>>,
    severity: Option<Spanned<String>>,
    state_file: Option<Spanned<String>>,
    watch: Option<Spanned<String>>,
    poll_interval: Option<Spanned<Value>>,
    start_at: Option<Spanned<String>>,
    max_line_bytes: Option<Spanned<Value>>,
    long_lines: Option<Spanned<String>>,
    partial_line_timeout: Option<Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    name: Option<String>,
    host: Option<Spanned<String>>,
    servers: Option<Spanned<Vec<String>>>,
    stream: Option<Spanned<String>>,
    credentials: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    transport: Spanned<String>,
    framing: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
    body: Option<Spanned<String>>,
    tag_regex: Option<Spanned<String>>,
    facility: Option<Spanned<String>>,
    retry_interval: Option<Spanned<Value>>,
    retry_max: Option<Spanned<Value>>,
    window: Option<Spanned<i64>>,
    ca_file: Option<Spanned<String>>,
    cert_file: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    server_name: Option<Spanned<String>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TransportKind {
    Udp,
    Tcp,
    Tls,
    Relp,
    RelpTls,
    Nats,
}

const TRANSPORTS: &[(&str, TransportKind)] = &[
    ("udp", TransportKind::Udp),
    ("tcp", TransportKind::Tcp),
    ("tls", TransportKind::Tls),
    ("relp", TransportKind::Relp),
    ("relp-tls", TransportKind::RelpTls),
    ("nats", TransportKind::Nats),
];

pub(crate) fn parse(file: &Path, text: &str) -> Result<ShipperConfig, ConfigErrors> {
    let mut toml = TomlFile::new(file, text);
    let raw: RawShipper = toml.deserialize()?;
    let dir = value::config_dir(file);

    for (key, field) in string_fields(&raw) {
        toml.check(Some(field), key, |s| {
            if s.trim().is_empty() {
                Err("is empty".to_owned())
            } else {
                Ok(())
            }
        });
    }
    let work_dir = value::resolve(
        &dir,
        Path::new(
            raw.work_dir
                .as_ref()
                .map_or(defaults::WORK_DIR, |w| w.get_ref()),
        ),
    );
    let hostname = toml.check(raw.hostname.as_ref(), "hostname", |h| {
        value::check_hostname(h).map(|()| h.clone())
    });
    let stats_interval = toml
        .check(raw.stats_interval.as_ref(), "stats_interval", |v| {
            positive(duration(v)?)
        })
        .unwrap_or(defaults::STATS_INTERVAL);
    let metrics_address = toml
        .check(raw.metrics_address.as_ref(), "metrics_address", |v| {
            value::parse_optional_addr(v)
        })
        .flatten();

    let mut inputs: Vec<(usize, InputConfig)> = Vec::new();
    for raw_input in &raw.input {
        if let Some(config) = input(&mut toml, &dir, &work_dir, raw_input.get_ref()) {
            inputs.push((toml.line(&raw_input.span()), config));
        }
    }
    let states: Vec<_> = inputs
        .iter()
        .map(|(line, i)| (Some(*line), i.state_file.as_path()))
        .collect();
    defaults::check_unique_state_files(file, &states, &mut toml.errors, "state_file");
    let inputs: Vec<InputConfig> = inputs.into_iter().map(|(_, i)| i).collect();

    let mut destinations: Vec<DestinationConfig> = Vec::new();
    let mut tls_files = Vec::new();
    for raw_dest in &raw.destination {
        if let Some(d) = destination(&mut toml, &dir, raw_dest, &mut tls_files) {
            if destinations.iter().any(|other| other.name == d.name) {
                toml.error(
                    &raw_dest.span(),
                    "name",
                    format!("destination name {:?} is used twice", d.name),
                );
            }
            destinations.push(d);
        }
    }
    if raw.input.is_empty() {
        toml.file_error(Some("input"), "no [[input]] is configured");
    }
    if raw.destination.is_empty() {
        toml.file_error(Some("destination"), "no [[destination]] is configured");
    }

    toml.into_result(ShipperConfig {
        source: file.to_path_buf(),
        work_dir,
        hostname: hostname.unwrap_or_else(value::local_hostname),
        inputs,
        destinations,
        stats_interval,
        tls_files,
        metrics_address,
    })
}

/// Path and name fields, which must not be empty (an empty path would name a directory).
fn string_fields(raw: &RawShipper) -> Vec<(&'static str, &Spanned<String>)> {
    let mut fields: Vec<(&'static str, &Spanned<String>)> = Vec::new();
    fields.extend(raw.work_dir.as_ref().map(|f| ("work_dir", f)));
    for input in &raw.input {
        let input = input.get_ref();
        fields.push(("path", &input.path));
        fields.extend(input.state_file.as_ref().map(|f| ("state_file", f)));
    }
    for dest in &raw.destination {
        let dest = dest.get_ref();
        for (key, field) in [
            ("ca_file", &dest.ca_file),
            ("cert_file", &dest.cert_file),
            ("key_file", &dest.key_file),
            ("server_name", &dest.server_name),
        ] {
            fields.extend(field.as_ref().map(|f| (key, f)));
        }
    }
    fields
}

fn positive(d: Duration) -> Result<Duration, String> {
    if d.is_zero() {
        Err("must be greater than zero".into())
    } else {
        Ok(d)
    }
}

fn input(
    toml: &mut TomlFile<'_>,
    dir: &Path,
    work_dir: &Path,
    raw: &RawInput,
) -> Option<InputConfig> {
    let before = toml.errors.0.len();
    let path = value::resolve(dir, Path::new(raw.path.get_ref()));
    toml.check(Some(&raw.path), "path", |_| {
        defaults::check_input_path(&path)
    });
    toml.check(Some(&raw.tag), "tag", |t| defaults::check_tag(t));
    let facility = toml.check(raw.facility.as_ref(), "facility", |f| {
        f.parse::<Facility>().map_err(|e| e.to_string())
    });
    let severity = toml.check(raw.severity.as_ref(), "severity", |s| {
        s.parse::<Severity>().map_err(|e| e.to_string())
    });
    let interval = toml
        .check(raw.poll_interval.as_ref(), "poll_interval", |v| {
            let d = duration(v)?;
            defaults::check_poll_interval(d).map(|()| d)
        })
        .unwrap_or(defaults::POLL_INTERVAL);
    let watch = toml.check(raw.watch.as_ref(), "watch", |w| {
        choice(
            w,
            &[
                ("inotify", WatchMode::Inotify { fallback: interval }),
                ("polling", WatchMode::Polling { interval }),
            ],
        )
    });
    let start_at = toml.check(raw.start_at.as_ref(), "start_at", |s| {
        choice(
            s,
            &[("beginning", StartAt::Beginning), ("end", StartAt::End)],
        )
    });
    let max_line_bytes = toml.check(raw.max_line_bytes.as_ref(), "max_line_bytes", |v| {
        let n = size(v)?;
        defaults::check_max_line_bytes(n).map(|()| n)
    });
    let long_lines = toml.check(raw.long_lines.as_ref(), "long_lines", |l| {
        choice(
            l,
            &[
                ("split", LongLines::Split),
                ("truncate", LongLines::Truncate),
            ],
        )
    });
    let partial_line_timeout = toml.check(
        raw.partial_line_timeout.as_ref(),
        "partial_line_timeout",
        |v| positive(duration(v)?),
    );
    if toml.errors.0.len() > before {
        return None;
    }
    let state_file = defaults::state_file(
        work_dir,
        &path,
        raw.state_file.as_ref().map(|s| s.get_ref().as_str()),
    );
    Some(InputConfig {
        path,
        tag: raw.tag.get_ref().clone(),
        facility: facility.unwrap_or(defaults::FACILITY),
        severity: severity.unwrap_or(defaults::SEVERITY),
        state_file,
        watch: watch.unwrap_or(WatchMode::Inotify { fallback: interval }),
        start_at: start_at.unwrap_or(StartAt::Beginning),
        max_line_bytes: max_line_bytes.unwrap_or(defaults::MAX_LINE_BYTES),
        long_lines: long_lines.unwrap_or(LongLines::Split),
        partial_line_timeout,
        on_shrink: OnShrink::NewContent,
    })
}

fn destination(
    toml: &mut TomlFile<'_>,
    dir: &Path,
    raw: &Spanned<RawDestination>,
    tls_files: &mut Vec<TlsFiles>,
) -> Option<DestinationConfig> {
    let before = toml.errors.0.len();
    let span = raw.span();
    let raw = raw.get_ref();
    let kind = toml.check(Some(&raw.transport), "transport", |t| choice(t, TRANSPORTS));
    if kind == Some(TransportKind::Nats) {
        return nats_destination(toml, dir, raw, before, tls_files);
    }
    let host = match &raw.host {
        Some(host) => toml.check(Some(host), "host", |h| value::parse_host(h)),
        None => {
            toml.error(&span, "host", "is required");
            None
        }
    };
    let port = toml
        .check(raw.port.as_ref(), "port", |p| {
            u16::try_from(*p)
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("invalid port {p} (1-65535)"))
        })
        .unwrap_or(defaults::PORT);
    let format = toml
        .check(raw.format.as_ref(), "format", |f| {
            choice(
                f,
                &[("rfc3164", Format::Rfc3164), ("rfc5424", Format::Rfc5424)],
            )
        })
        .unwrap_or(Format::Rfc3164);
    let body = toml
        .check(raw.body.as_ref(), "body", |b| {
            choice(b, &[("line", Body::Line), ("zeek-json", Body::ZeekJson)])
        })
        .unwrap_or_default();
    let Delivery {
        tag_filter,
        facility,
        retry_interval,
        retry_max,
    } = delivery(toml, raw, &span);

    let kind = kind?;
    let is_tls = matches!(kind, TransportKind::Tls | TransportKind::RelpTls);
    let is_relp = matches!(kind, TransportKind::Relp | TransportKind::RelpTls);
    let is_stream = matches!(kind, TransportKind::Tcp | TransportKind::Tls);
    for (present, key, applies) in [
        (raw.servers.as_ref().map(|s| s.span()), "servers", false),
        (raw.stream.as_ref().map(|s| s.span()), "stream", false),
        (
            raw.credentials.as_ref().map(|s| s.span()),
            "credentials",
            false,
        ),
        (raw.framing.as_ref().map(|s| s.span()), "framing", is_stream),
        (raw.window.as_ref().map(|s| s.span()), "window", is_relp),
        (raw.ca_file.as_ref().map(|s| s.span()), "ca_file", is_tls),
        (
            raw.cert_file.as_ref().map(|s| s.span()),
            "cert_file",
            is_tls,
        ),
        (raw.key_file.as_ref().map(|s| s.span()), "key_file", is_tls),
        (
            raw.server_name.as_ref().map(|s| s.span()),
            "server_name",
            is_tls,
        ),
    ] {
        if let (Some(at), false) = (present, applies) {
            toml.error(
                &at,
                key,
                format!("does not apply to transport {:?}", raw.transport.get_ref()),
            );
        }
    }
    let default_framing = if kind == TransportKind::Tls {
        Framing::OctetCounting
    } else {
        Framing::NewLine
    };
    let framing = toml
        .check(raw.framing.as_ref(), "framing", |f| {
            choice(
                f,
                &[
                    ("octet-counting", Framing::OctetCounting),
                    ("newline", Framing::NewLine),
                ],
            )
        })
        .unwrap_or(default_framing);
    let window = toml
        .check(raw.window.as_ref(), "window", |w| {
            usize::try_from(*w)
                .ok()
                .filter(|w| (1..=defaults::RELP_WINDOW_MAX).contains(w))
                .ok_or_else(|| {
                    format!(
                        "window {w} is out of range (1-{})",
                        defaults::RELP_WINDOW_MAX
                    )
                })
        })
        .unwrap_or(defaults::RELP_WINDOW);
    let tls = if is_tls {
        tls_client(toml, dir, &span, raw, tls_files)
    } else {
        None
    };
    if toml.errors.0.len() > before {
        return None;
    }
    let host = host?;
    let transport = match kind {
        TransportKind::Udp => Transport::Udp,
        TransportKind::Tcp => Transport::Tcp { framing, tls: None },
        TransportKind::Tls => Transport::Tcp {
            framing,
            tls: Some(tls?),
        },
        TransportKind::Relp => Transport::Relp { window, tls: None },
        TransportKind::RelpTls => Transport::Relp {
            window,
            tls: Some(tls?),
        },
        TransportKind::Nats => return None,
    };
    Some(DestinationConfig {
        name: raw
            .name
            .clone()
            .unwrap_or_else(|| value::display_host_port(&host, port)),
        host,
        port,
        transport,
        format,
        body,
        tag_filter,
        facility,
        retry_interval,
        retry_max,
    })
}

/// A `transport = "nats"` destination: `servers` instead of `host` and `port`.
fn nats_destination(
    toml: &mut TomlFile<'_>,
    dir: &Path,
    raw: &RawDestination,
    before: usize,
    tls_files: &mut Vec<TlsFiles>,
) -> Option<DestinationConfig> {
    let span = raw.transport.span();
    let not_for_nats = [
        (raw.host.as_ref().map(|s| s.span()), "host"),
        (raw.port.as_ref().map(|s| s.span()), "port"),
        (raw.framing.as_ref().map(|s| s.span()), "framing"),
        (raw.window.as_ref().map(|s| s.span()), "window"),
        (raw.body.as_ref().map(|s| s.span()), "body"),
    ];
    for (at, key) in not_for_nats {
        if let Some(at) = at {
            toml.error(
                &at,
                key,
                "does not apply to transport \"nats\" (use servers)",
            );
        }
    }
    let servers = match &raw.servers {
        Some(servers) => toml.check(Some(servers), "servers", |list| {
            if list.is_empty() {
                return Err("lists no server".to_owned());
            }
            for url in list {
                let rest = url
                    .strip_prefix("nats://")
                    .or_else(|| url.strip_prefix("tls://"))
                    .ok_or_else(|| format!("{url:?} is not a nats:// or tls:// URL"))?;
                value::parse_host_port(rest, Some(4222)).map_err(|e| format!("{url:?}: {e}"))?;
            }
            Ok(list.clone())
        }),
        None => {
            toml.error(&span, "servers", "is required for transport \"nats\"");
            None
        }
    };
    let stream = toml
        .check(raw.stream.as_ref(), "stream", |s| {
            let ok = !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            ok.then(|| s.clone())
                .ok_or_else(|| format!("{s:?} is not a stream name (A-Z a-z 0-9 _ -)"))
        })
        .unwrap_or_else(|| "ESTUARY".to_owned());
    if let Some(format) = raw.format.as_ref().filter(|f| f.get_ref() != "rfc5424") {
        toml.error(
            &format.span(),
            "format",
            "transport \"nats\" sends rfc5424 (its origin element makes delivery exactly-once)",
        );
    }
    let Delivery {
        tag_filter,
        facility,
        retry_interval,
        retry_max,
    } = delivery(toml, raw, &span);
    let tls = match raw.ca_file.is_some() || raw.cert_file.is_some() {
        true => Some(tls_client(toml, dir, &span, raw, tls_files)?),
        false => None,
    };
    let credentials = raw
        .credentials
        .as_ref()
        .map(|c| value::resolve(dir, Path::new(c.get_ref())));
    if toml.errors.0.len() > before {
        return None;
    }
    let servers = servers?;
    Some(DestinationConfig {
        name: raw.name.clone().unwrap_or_else(|| format!("nats:{stream}")),
        host: servers.first().cloned().unwrap_or_default(),
        port: 0,
        transport: Transport::Nats(NatsDestination {
            servers,
            stream,
            credentials,
            tls,
        }),
        format: Format::Rfc5424,
        body: Body::Line,
        tag_filter,
        facility,
        retry_interval,
        retry_max,
    })
}

/// What every destination has, whatever its transport: which tags it takes, the facility it
/// sends them under, and how it retries.
struct Delivery {
    tag_filter: Option<Regex>,
    facility: Option<Facility>,
    retry_interval: Duration,
    retry_max: Duration,
}

fn delivery(
    toml: &mut TomlFile<'_>,
    raw: &RawDestination,
    span: &std::ops::Range<usize>,
) -> Delivery {
    let tag_filter = toml.check(raw.tag_regex.as_ref(), "tag_regex", |r| {
        Regex::new(r).map_err(|e| e.to_string())
    });
    let facility = toml.check(raw.facility.as_ref(), "facility", |f| {
        f.parse::<Facility>().map_err(|e| e.to_string())
    });
    let retry_interval = toml
        .check(raw.retry_interval.as_ref(), "retry_interval", |v| {
            positive(duration(v)?)
        })
        .unwrap_or(defaults::RETRY_INTERVAL);
    let retry_max = toml
        .check(raw.retry_max.as_ref(), "retry_max", duration)
        .unwrap_or(defaults::RETRY_MAX);
    if retry_max < retry_interval {
        let at = raw.retry_max.as_ref().map_or(span.clone(), |s| s.span());
        toml.error(&at, "retry_max", "must not be shorter than retry_interval");
    }
    Delivery {
        tag_filter,
        facility,
        retry_interval,
        retry_max,
    }
}

fn tls_client(
    toml: &mut TomlFile<'_>,
    dir: &Path,
    span: &std::ops::Range<usize>,
    raw: &RawDestination,
    tls_files: &mut Vec<TlsFiles>,
) -> Option<TlsClient> {
    let path = |s: &Spanned<String>| -> PathBuf { value::resolve(dir, Path::new(s.get_ref())) };
    let Some(ca) = raw.ca_file.as_ref() else {
        toml.error(span, "ca_file", "TLS needs ca_file to verify the server");
        return None;
    };
    let client_auth = match (&raw.cert_file, &raw.key_file) {
        (Some(cert), Some(key)) => Some(ClientAuth {
            cert_file: path(cert),
            key_file: path(key),
        }),
        (None, None) => None,
        (Some(cert), None) => {
            toml.error(&cert.span(), "key_file", "cert_file needs key_file");
            return None;
        }
        (None, Some(key)) => {
            toml.error(&key.span(), "cert_file", "key_file needs cert_file");
            return None;
        }
    };
    let named = |s: &Spanned<String>, key| Named {
        path: path(s),
        line: toml.line(&s.span()),
        key,
    };
    tls_files.push(TlsFiles {
        ca: named(ca, "ca_file"),
        identity: raw
            .cert_file
            .as_ref()
            .zip(raw.key_file.as_ref())
            .map(|(cert, key)| (named(cert, "cert_file"), named(key, "key_file"))),
    });
    Some(TlsClient {
        ca_file: path(ca),
        client_auth,
        server_name: raw.server_name.as_ref().map(|s| s.get_ref().clone()),
    })
}

#[cfg(test)]
mod tests;
