//! `estuary config` for a shipper: every option with its effective value, defaults included.

use super::{InputConfig, LongLines, ShipperConfig, StartAt, Transport, WatchMode};
use crate::value::format_duration;
use estuary_wire::{Format, Framing};

impl ShipperConfig {
    /// `(key, value)` pairs in TOML key spelling (`input[0].tag`), in file order.
    pub fn describe(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("source".to_owned(), self.source.display().to_string()),
            ("work_dir".to_owned(), self.work_dir.display().to_string()),
            ("hostname".to_owned(), self.hostname.clone()),
            (
                "stats_interval".to_owned(),
                format_duration(self.stats_interval),
            ),
            (
                "metrics_address".to_owned(),
                self.metrics_address
                    .map_or_else(String::new, |a| a.to_string()),
            ),
        ];
        for (i, input) in self.inputs.iter().enumerate() {
            describe_input(&mut out, &format!("input[{i}]"), input);
        }
        for (i, d) in self.destinations.iter().enumerate() {
            let p = format!("destination[{i}]");
            let mut push = |k: &str, v: String| out.push((format!("{p}.{k}"), v));
            push("name", d.name.clone());
            push("host", d.host.clone());
            push("port", d.port.to_string());
            let (transport, framing, window, tls) = match &d.transport {
                Transport::Udp => ("udp", None, None, None),
                Transport::Tcp { framing, tls: None } => ("tcp", Some(*framing), None, None),
                Transport::Tcp {
                    framing,
                    tls: Some(tls),
                } => ("tls", Some(*framing), None, Some(tls)),
                Transport::Relp { window, tls: None } => ("relp", None, Some(*window), None),
                Transport::Relp {
                    window,
                    tls: Some(tls),
                } => ("relp-tls", None, Some(*window), Some(tls)),
                Transport::Nats(n) => ("nats", None, None, n.tls.as_ref()),
            };
            push("transport", transport.to_owned());
            if let Transport::Nats(n) = &d.transport {
                push("servers", n.servers.join(", "));
                push("stream", n.stream.clone());
                push(
                    "credentials",
                    n.credentials
                        .as_ref()
                        .map(|c| c.display().to_string())
                        .unwrap_or_default(),
                );
            }
            if let Some(framing) = framing {
                push(
                    "framing",
                    match framing {
                        Framing::OctetCounting => "octet-counting",
                        Framing::NewLine => "newline",
                    }
                    .to_owned(),
                );
            }
            if let Some(window) = window {
                push("window", window.to_string());
            }
            if let Some(tls) = tls {
                push("ca_file", tls.ca_file.display().to_string());
                let (cert, key) = match &tls.client_auth {
                    Some(auth) => (
                        auth.cert_file.display().to_string(),
                        auth.key_file.display().to_string(),
                    ),
                    None => (String::new(), String::new()),
                };
                push("cert_file", cert);
                push("key_file", key);
                push(
                    "server_name",
                    tls.server_name.clone().unwrap_or_else(|| d.host.clone()),
                );
            }
            push(
                "format",
                match d.format {
                    Format::Rfc3164 => "rfc3164",
                    Format::Rfc5424 => "rfc5424",
                }
                .to_owned(),
            );
            push(
                "tag_regex",
                d.tag_filter
                    .as_ref()
                    .map(|r| r.as_str().to_owned())
                    .unwrap_or_default(),
            );
            push(
                "facility",
                d.facility.map_or_else(|| "*".to_owned(), |f| f.to_string()),
            );
            push("retry_interval", format_duration(d.retry_interval));
            push("retry_max", format_duration(d.retry_max));
        }
        out
    }
}

fn describe_input(out: &mut Vec<(String, String)>, prefix: &str, input: &InputConfig) {
    let mut push = |k: &str, v: String| out.push((format!("{prefix}.{k}"), v));
    push("path", input.path.display().to_string());
    push("tag", input.tag.clone());
    push("facility", input.facility.to_string());
    push("severity", input.severity.to_string());
    push("state_file", input.state_file.display().to_string());
    let (watch, interval) = match input.watch {
        WatchMode::Inotify { fallback } => ("inotify", fallback),
        WatchMode::Polling { interval } => ("polling", interval),
    };
    push("watch", watch.to_owned());
    push("poll_interval", format_duration(interval));
    push(
        "start_at",
        match input.start_at {
            StartAt::Beginning => "beginning",
            StartAt::End => "end",
        }
        .to_owned(),
    );
    push("max_line_bytes", input.max_line_bytes.to_string());
    push(
        "long_lines",
        match input.long_lines {
            LongLines::Split => "split",
            LongLines::Truncate => "truncate",
        }
        .to_owned(),
    );
    push(
        "partial_line_timeout",
        input
            .partial_line_timeout
            .map_or_else(|| "none".to_owned(), format_duration),
    );
}
