//! Scalar values shared by every format: durations, sizes, booleans, host:port, the local host name,
//! and the comment rule of the line-based formats.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `30` (seconds), `500ms`, `5s`, `1m`, `12hr`, `1h 30m`, `30day`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| format!("duration {text:?} is too large"));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!("invalid duration {text:?}: {e} (examples: 30, 500ms, 5s, 1m, 12hr, 30day)")
    })
}

/// A byte count: `8192`, `8k`, `64K`, `1m` (suffixes are powers of 1024).
pub(crate) fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let (digits, factor) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1024),
        Some((i, 'm' | 'M')) => (&text[..i], 1024 * 1024),
        Some((i, 'g' | 'G')) => (&text[..i], 1024 * 1024 * 1024),
        _ => (text, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid size {text:?} (examples: 8192, 8k, 1m)"));
    }
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// zeekctl booleans: `1`/`0`, also `yes`/`no`, `true`/`false`, `on`/`off`.
pub(crate) fn parse_bool(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" | "t" => Ok(true),
        "0" | "no" | "false" | "off" | "f" => Ok(false),
        other => Err(format!("expected 1 or 0, got {other:?}")),
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`. The host comes back without brackets.
pub(crate) fn parse_host_port(
    text: &str,
    default_port: Option<u16>,
) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("missing ']' in {text:?}"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected {after:?} after ']' in {text:?}")),
            },
        }
    } else {
        match text.split_once(':') {
            Some((_, port)) if port.contains(':') => {
                return Err(format!(
                    "{text:?}: write IPv6 addresses in brackets, e.g. [::1]:514"
                ))
            }
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("missing host in {text:?}"));
    }
    if let Some(bad) = host
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%')))
    {
        return Err(format!("invalid character {bad:?} in host {host:?}"));
    }
    let port = match port {
        Some(p) => parse_port(p)?,
        None => default_port.ok_or_else(|| format!("missing port in {text:?}"))?,
    };
    Ok((host.to_owned(), port))
}

/// A bare host: a name, an IPv4 address or an IPv6 address (brackets optional); no port.
pub(crate) fn parse_host(text: &str) -> Result<String, String> {
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    if bare.contains(':') && bare.parse::<std::net::Ipv6Addr>().is_err() {
        return Err(format!(
            "{text:?} is not a host name or address (give the port separately)"
        ));
    }
    match parse_host_port(&format!("[{bare}]"), Some(1)) {
        Ok((host, _)) => Ok(host),
        Err(_) if bare.is_empty() => Err("host is empty".into()),
        Err(e) => Err(e),
    }
}

pub(crate) fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("invalid port {text:?} (1-65535)")),
        Ok(port) => Ok(port),
    }
}

/// `host:port` for display, bracketing IPv6 literals.
pub(crate) fn display_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A human duration for `estuary config` output (`1h 30m`, `500ms`).
pub(crate) fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// `base.join(path)` unless `path` is absolute.
pub(crate) fn resolve(base: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        // `./logs` is `<base>/logs`, not `<base>/./logs`.
        base.join(path)
            .components()
            .filter(|c| *c != std::path::Component::CurDir)
            .collect()
    }
}

/// An `address:port` to listen on; empty turns the listener off.
pub(crate) fn parse_optional_addr(v: &str) -> Result<Option<std::net::SocketAddr>, String> {
    match v.trim() {
        "" => Ok(None),
        v => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{v:?} is not address:port (e.g. 127.0.0.1:9911)")),
    }
}

/// The directory relative paths in `file` are resolved against: absolute and without symlinks,
/// so a path means the same whether the file was named relative, absolute or through a link
/// (the shipper's default state names and the aggregator's messages depend on it).
pub(crate) fn config_dir(file: &Path) -> PathBuf {
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::canonicalize(dir)
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// `path` with its folder resolved through symlinks when that folder exists (the file itself
/// may not exist yet, and a glob's folder may not be a real one).
pub(crate) fn canonical_folder(path: &Path) -> PathBuf {
    match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => std::fs::canonicalize(dir)
            .map(|dir| dir.join(name))
            .unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

/// The line without its comment: `#` starts one at the beginning of a line or after whitespace
/// (`$ModLoad imfile #`), so `#` inside a value (`a#b`) stays.
pub(crate) fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    match (0..bytes.len())
        .find(|&i| bytes[i] == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()))
    {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The machine's host name (kernel first, then /etc/hostname), `localhost` if neither can be read.
pub(crate) fn local_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// A syslog HOSTNAME field: printable ASCII, no spaces (RFC 5424 `PRINTUSASCII`, at most 255).
pub(crate) fn check_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 255 {
        return Err(format!("host name {name:?} must be 1 to 255 characters"));
    }
    if let Some(bad) = name.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("invalid character {bad:?} in host name {name:?}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("12hr"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_duration("30day"), Ok(Duration::from_secs(30 * 86400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999999999999999").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8192"), Ok(8192));
        assert_eq!(parse_size("8k"), Ok(8192));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert!(parse_size("k").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999g").is_err());
    }

    #[test]
    fn host_ports() {
        assert_eq!(parse_host_port("h", Some(514)), Ok(("h".into(), 514)));
        assert_eq!(
            parse_host_port("h:10514", Some(514)),
            Ok(("h".into(), 10514))
        );
        assert_eq!(
            parse_host_port("[::1]:6514", Some(514)),
            Ok(("::1".into(), 6514))
        );
        assert_eq!(parse_host_port("[::1]", Some(514)), Ok(("::1".into(), 514)));
        assert!(parse_host_port("::1:514", Some(514)).is_err());
        assert!(parse_host_port("h:0", Some(514)).is_err());
        assert!(parse_host_port("h:70000", Some(514)).is_err());
        assert!(parse_host_port(":514", Some(514)).is_err());
        assert!(parse_host_port("h", None).is_err());
        assert_eq!(display_host_port("::1", 514), "[::1]:514");
        assert_eq!(parse_host("::1"), Ok("::1".into()));
        assert_eq!(parse_host("[::1]"), Ok("::1".into()));
        assert_eq!(parse_host("logs.example"), Ok("logs.example".into()));
        assert!(parse_host("logs.example:514").is_err());
        assert!(parse_host("").is_err());
        assert!(parse_host("a b").is_err());
    }
}
