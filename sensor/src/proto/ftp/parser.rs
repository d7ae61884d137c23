//! FTP command and reply lines, PASV/EPSV/PORT/EPRT addresses, and the path helpers Zeek's
//! FTP scripts use to build `ftp://` URLs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use regex::Regex;

/// `CMD arg`: the command upper-cased, the argument after the whitespace.
pub fn parse_command(line: &[u8]) -> Option<(String, Vec<u8>)> {
    let line = skip_ws(line);
    let end = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    if end == 0 {
        return None;
    }
    let cmd = String::from_utf8_lossy(&line[..end]).to_ascii_uppercase();
    Some((cmd, skip_ws(&line[end..]).to_vec()))
}

/// Zeek's `is_ftp_cmd`: the first word of a line has at least 3 characters, all printable.
pub fn is_ftp_cmd(line: &[u8]) -> bool {
    parse_command(line)
        .is_some_and(|(cmd, _)| cmd.len() >= 3 && cmd.bytes().all(|b| b.is_ascii_graphic()))
}

/// The bytes after leading blanks and tabs.
pub(super) fn skip_ws(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| *c != b' ' && *c != b'\t')
        .unwrap_or(b.len());
    &b[start..]
}

/// A reply line as Zeek's FTP analyzer reports it: lines inside a multi-line reply carry code 0
/// and their whole text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub code: u16,
    pub msg: Vec<u8>,
    /// More lines of this reply follow.
    pub cont: bool,
}

pub fn reply_code(line: &[u8]) -> u16 {
    match line {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => 0,
    }
}

/// Parses a reply line given the code of the multi-line reply in progress (if any); returns the
/// line and the multi-line state after it, or `None` for a line that is not a reply.
pub fn parse_reply(line: &[u8], continuing: Option<u16>) -> Option<(ReplyLine, Option<u16>)> {
    let code = reply_code(line);
    let rest = |from: usize| skip_ws(line.get(from..).unwrap_or_default()).to_vec();
    if let Some(pending) = continuing {
        if code == pending && line.get(3) == Some(&b' ') {
            let end = ReplyLine {
                code,
                msg: rest(3),
                cont: false,
            };
            return Some((end, None));
        }
        let middle = ReplyLine {
            code: 0,
            msg: line.to_vec(),
            cont: true,
        };
        return Some((middle, continuing));
    }
    if code < 100 {
        return None;
    }
    match line.get(3) {
        Some(b'-') => Some((
            ReplyLine {
                code,
                msg: rest(4),
                cont: true,
            },
            Some(code),
        )),
        Some(b' ') | None => Some((
            ReplyLine {
                code,
                msg: rest(3),
                cont: false,
            },
            None,
        )),
        Some(_) => None,
    }
}

/// Zeek's `extract_count(msg, F)`: the last number in the text.
pub fn last_count(msg: &[u8]) -> Option<u64> {
    let text = String::from_utf8_lossy(msg);
    text.split(|c: char| !c.is_ascii_digit())
        .rfind(|s| !s.is_empty())
        .map(|n| n.parse().unwrap_or(u64::MAX))
}

/// `h1,h2,h3,h4,p1,p2` (PORT argument, or inside a 227 reply).
pub fn parse_port_tuple(text: &[u8]) -> Option<(IpAddr, u16)> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| {
            Regex::new(r"(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)").ok()
        })
        .as_ref()?;
    let text = String::from_utf8_lossy(text);
    let caps = re.captures(&text)?;
    let n = |i: usize| caps.get(i).and_then(|m| m.as_str().parse::<u8>().ok());
    let addr = Ipv4Addr::new(n(1)?, n(2)?, n(3)?, n(4)?);
    Some((IpAddr::V4(addr), u16::from(n(5)?) << 8 | u16::from(n(6)?)))
}

/// EPRT `|proto|addr|port|`.
pub fn parse_eprt(arg: &[u8]) -> Option<(IpAddr, u16)> {
    let text = String::from_utf8_lossy(arg);
    let delim = text.chars().next()?;
    let parts: Vec<&str> = text.split(delim).collect();
    let addr = parts.get(2)?.parse().ok()?;
    let port = parts.get(3)?.parse().ok()?;
    Some((addr, port))
}

/// A 229 reply `(|||port|)`: the port (the address is the server's).
pub fn parse_epsv(msg: &[u8]) -> Option<(IpAddr, u16)> {
    let text = String::from_utf8_lossy(msg);
    let open = text.find('(')?;
    let close = text[open..].find(')')? + open;
    let inner = &text[open + 1..close];
    let delim = inner.chars().next()?;
    let parts: Vec<&str> = inner.split(delim).collect();
    let port = parts.get(3)?.parse().ok()?;
    let addr = parts
        .get(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    Some((addr, port))
}

fn is_absolute(path: &[u8]) -> bool {
    match path {
        [b'/', ..] => true,
        [d, b':', b'\\' | b'/', ..] => d.is_ascii_alphabetic(),
        _ => false,
    }
}

/// Zeek's `build_path`: `file` itself when absolute, else `dir/file`.
pub fn build_path(dir: &str, file: &[u8]) -> String {
    let file = String::from_utf8_lossy(file);
    if is_absolute(file.as_bytes()) {
        file.into_owned()
    } else {
        format!("{dir}/{file}")
    }
}

/// Zeek's `compress_path`: drops `dir/..` pairs, `//` and `/./`, and a trailing `/`.
pub fn compress_path(path: &str) -> String {
    static CDUP: OnceLock<Option<Regex>> = OnceLock::new();
    static MULTI: OnceLock<Option<Regex>> = OnceLock::new();
    let (Some(cdup), Some(multi)) = (
        CDUP.get_or_init(|| Regex::new(r"((/)*([^/]|\\/)+)?((/)+\.\.(/)*)").ok())
            .as_ref(),
        MULTI
            .get_or_init(|| Regex::new(r"(/\.?){2,}").ok())
            .as_ref(),
    ) else {
        return path.to_string();
    };
    let mut dir = path.to_string();
    // Each round removes one `..`; the bound keeps hostile input cheap.
    for _ in 0..256 {
        let Some(m) = cdup.find(&dir) else { break };
        let matched = m.as_str();
        if matched == "../.." {
            return dir;
        }
        let replacement = if matched.starts_with('/') { "/" } else { "" };
        dir = format!("{}{}{}", &dir[..m.start()], replacement, &dir[m.end()..]);
    }
    let mut dir = multi.replace_all(&dir, "/").into_owned();
    if dir.len() > 1 && dir.ends_with('/') {
        dir.pop();
    }
    dir
}

/// Zeek's `extract_path`: the first absolute path in a (PWD) reply.
pub fn extract_path(msg: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(msg);
    let bytes = text.as_bytes();
    let start = (0..bytes.len()).find(|&i| is_absolute(&bytes[i..]))?;
    let mut end = start + 1;
    while end < bytes.len() {
        match bytes[end] {
            b'"' => break,
            b' ' if bytes[end - 1] != b'\\' => break,
            _ => end += 1,
        }
    }
    Some(text[start..end].to_string())
}

/// Zeek's `addr_to_uri`: IPv6 addresses in brackets.
pub fn addr_to_uri(a: IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commands_and_replies() {
        assert_eq!(
            parse_command(b"retr  a b"),
            Some(("RETR".into(), b"a b".to_vec()))
        );
        assert_eq!(parse_command(b"   "), None);
        let (first, state) = parse_reply(b"230-Welcome", None).unwrap();
        assert_eq!(
            (first.code, &first.msg[..], first.cont, state),
            (230, &b"Welcome"[..], true, Some(230))
        );
        let (mid, state) = parse_reply(b"230-more", state).unwrap();
        assert_eq!(
            (mid.code, &mid.msg[..], mid.cont),
            (0, &b"230-more"[..], true)
        );
        let (end, state) = parse_reply(b"230  done", state).unwrap();
        assert_eq!(
            (end.code, &end.msg[..], end.cont, state),
            (230, &b"done"[..], false, None)
        );
        assert_eq!(parse_reply(b" more text", None), None);
        assert_eq!(parse_reply(b"220x", None), None);
        assert_eq!(
            last_count(b"Opening BINARY mode for 720962-99999-2015.gz (39695 bytes)"),
            Some(39695)
        );
    }

    #[test]
    fn data_channels() {
        let (a, p) = parse_port_tuple(b"Entering Passive Mode (164,107,123,6,183,231)").unwrap();
        assert_eq!((a.to_string(), p), ("164.107.123.6".into(), 47079));
        assert_eq!(
            parse_eprt(b"|1|132.235.1.2|6275|"),
            Some(("132.235.1.2".parse().unwrap(), 6275))
        );
        assert_eq!(
            parse_epsv(b"Entering Extended Passive Mode (|||6446|)").map(|x| x.1),
            Some(6446)
        );
    }

    #[test]
    fn paths() {
        assert_eq!(compress_path(&build_path(".", b"pub/data")), "./pub/data");
        assert_eq!(compress_path("./pub/data/../x"), "./pub/x");
        assert_eq!(compress_path("/a//b/./c/"), "/a/b/c");
        assert_eq!(build_path("./x", b"/abs"), "/abs");
        assert_eq!(
            extract_path(b"\"/pub/incoming\" is current directory").as_deref(),
            Some("/pub/incoming")
        );
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_command(&line);
            let _ = parse_reply(&line, None);
            let _ = parse_reply(&line, Some(230));
            let _ = last_count(&line);
            let _ = parse_port_tuple(&line);
            let _ = parse_eprt(&line);
            let _ = parse_epsv(&line);
            let _ = extract_path(&line);
            let s = String::from_utf8_lossy(&line);
            let _ = compress_path(&build_path(".", s.as_bytes()));
        }
    }
}
