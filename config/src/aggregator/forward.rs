//! Onward forwarding to ELSA or a SIEM: `ForwardTo`, `ForwardTags` and `ForwardFormat` in
//! cluster.cfg, or one `[[forward]]` table per group in TOML (`to`, `tags`, `format`).

use estuary_wire::Format;

use crate::shipper::Body;
use regex::Regex;

/// One group of onward destinations and the tags they receive.
#[derive(Debug, Clone)]
pub struct Forward {
    pub to: Vec<ForwardTarget>,
    /// Tags (`bro_conn`) forwarded; `None` = all.
    pub tags: Option<Regex>,
    /// The syslog header of each message.
    pub format: Format,
    /// `ForwardFormat = json`: rows as Zeek JSON objects.
    pub body: Body,
}

impl Forward {
    pub(crate) const DEFAULT_FORMAT: (Format, Body) = (Format::Rfc3164, Body::Line);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardTarget {
    pub transport: ForwardTransport,
    pub host: String,
    pub port: u16,
}

/// The URL schemes of `ForwardTo`. TLS ones verify the destination against `TLSCAFile` and
/// present the aggregator's own certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardTransport {
    Udp,
    Tcp,
    Tls,
    Relp,
    RelpTls,
}

impl ForwardTransport {
    const SCHEMES: [(&'static str, ForwardTransport, u16); 5] = [
        ("udp", ForwardTransport::Udp, 514),
        ("tcp", ForwardTransport::Tcp, 514),
        ("tls", ForwardTransport::Tls, 6514),
        ("relp", ForwardTransport::Relp, 2514),
        ("relp+tls", ForwardTransport::RelpTls, 2514),
    ];

    pub fn is_tls(self) -> bool {
        matches!(self, ForwardTransport::Tls | ForwardTransport::RelpTls)
    }

    pub fn scheme(self) -> &'static str {
        Self::SCHEMES
            .iter()
            .find(|(_, t, _)| *t == self)
            .map_or("", |(s, _, _)| s)
    }
}

impl std::fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = crate::value::display_host_port(&self.host, self.port);
        write!(f, "{}://{host}", self.transport.scheme())
    }
}

/// `udp://HOST:PORT, relp://HOST` ...: comma- or space-separated; the port defaults per scheme.
pub(crate) fn parse_targets(text: &str) -> Result<Vec<ForwardTarget>, String> {
    let targets = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|t| !t.is_empty())
        .map(parse_target)
        .collect::<Result<Vec<_>, _>>()?;
    if targets.is_empty() {
        return Err("no destination given (udp://, tcp://, tls://, relp:// or relp+tls://)".into());
    }
    Ok(targets)
}

fn parse_target(url: &str) -> Result<ForwardTarget, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!("{url:?} has no scheme (udp://, tcp://, tls://, relp://, relp+tls://)")
    })?;
    let &(_, transport, default_port) = ForwardTransport::SCHEMES
        .iter()
        .find(|(s, _, _)| s.eq_ignore_ascii_case(scheme))
        .ok_or_else(|| format!("{url:?}: unknown scheme {scheme:?}"))?;
    let (host, port) = crate::value::parse_host_port(rest, Some(default_port))
        .map_err(|e| format!("{url:?}: {e}"))?;
    Ok(ForwardTarget {
        transport,
        host,
        port,
    })
}

/// `rfc3164` and `rfc5424` send each line as it is in the log; `json` sends each row as the
/// object Zeek's JSON writer would have written, in an RFC 3164 message (what a syslog
/// receiver parses without being told).
pub(crate) fn parse_format(text: &str) -> Result<(Format, Body), String> {
    match text.to_ascii_lowercase().as_str() {
        "rfc3164" => Ok((Format::Rfc3164, Body::Line)),
        "rfc5424" => Ok((Format::Rfc5424, Body::Line)),
        "json" => Ok((Format::Rfc3164, Body::ZeekJson)),
        _ => Err(format!("expected rfc3164, rfc5424 or json, got {text:?}")),
    }
}

pub(crate) fn parse_tags(text: &str) -> Result<Option<Regex>, String> {
    Regex::new(text).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_with_default_ports() {
        let t = parse_targets("relp://siem.example, udp://10.0.0.9:5514 relp+tls://[::1]:7000")
            .unwrap();
        assert_eq!(t.len(), 3);
        assert_eq!((t[0].transport, t[0].port), (ForwardTransport::Relp, 2514));
        assert_eq!((t[1].host.as_str(), t[1].port), ("10.0.0.9", 5514));
        assert_eq!(t[2].to_string(), "relp+tls://[::1]:7000");
        for bad in ["", "siem:514", "http://x", "tcp://:514", "tcp://x:99999"] {
            assert!(parse_targets(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn both_forms_give_groups_and_errors_name_line_and_key() {
        use std::path::Path;
        let cfg = "LogDir = l\nSpoolDir = s\nListenTCP = 127.0.0.1:1\nForwardTo = relp://siem:2514, udp://elsa\nForwardTags = ^bro_(conn|dns)$\n";
        let c = super::super::cluster_cfg::parse(
            Path::new("/etc/a.cfg"),
            cfg,
            super::super::files::Files::Ignore,
        )
        .unwrap();
        assert_eq!(c.forward.len(), 1);
        assert_eq!(c.forward[0].to.len(), 2);
        assert!(c.forward[0].tags.as_ref().unwrap().is_match("bro_dns"));
        let bad = "LogDir = l\nSpoolDir = s\nListenTCP = 127.0.0.1:1\nForwardFormat = rfc5424\nForwardTo = tls://siem\n";
        let e = super::super::cluster_cfg::parse(
            Path::new("/etc/a.cfg"),
            bad,
            super::super::files::Files::Ignore,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("/etc/a.cfg:5: ForwardTo:") && e.contains("TLSCAFile"),
            "{e}"
        );
        let toml = "log_dir = \"l\"\nspool_dir = \"s\"\nlisten.tcp = \"127.0.0.1:1\"\n[[forward]]\nto = [\"tcp://a:1\"]\n[[forward]]\nto = \"relp://b\"\nformat = \"rfc5424\"\ntags = \"^bro_conn$\"\n[[forward]]\nto = \"tcp://c\"\nformat = \"syslog\"\n";
        let e = super::super::native::parse(
            Path::new("/etc/a.toml"),
            toml,
            super::super::files::Files::Ignore,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("/etc/a.toml:12: format:"), "{e}");
        let ok = toml.rsplit_once("[[forward]]").unwrap().0;
        let c = super::super::native::parse(
            Path::new("/etc/a.toml"),
            ok,
            super::super::files::Files::Ignore,
        )
        .unwrap();
        assert_eq!(c.forward.len(), 2);
        assert_eq!(c.forward[1].format, Format::Rfc5424);
    }

    #[test]
    fn json_sends_zeek_json_rows_in_rfc3164() {
        assert_eq!(parse_format("JSON"), Ok((Format::Rfc3164, Body::ZeekJson)));
        assert_eq!(parse_format("rfc5424"), Ok((Format::Rfc5424, Body::Line)));
        assert!(parse_format("cef").unwrap_err().contains("json"));
    }
}
