//! Pure HTTP/1.x line parsing: request and status lines, header lines, chunk sizes, and the
//! URI checks behind Zeek's HTTP weirds.

/// A parsed request line. `version` is `None` for an HTTP/0.9 request (no `HTTP/x.y`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLine {
    pub method: String,
    pub uri: Vec<u8>,
    pub version: Option<String>,
    /// Weirds Zeek's `ParseRequest` raises for an accepted line.
    pub weirds: Vec<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestLineError {
    /// Zeek's `bad_HTTP_request`: no method token or no space after it.
    Bad,
    /// Also `bad_HTTP_request`, but after `ParseRequest` took the line for HTTP/0.9 (and set
    /// the request version): its method is shorter than 3 characters or it has no URI.
    BadHttp09,
    /// Zeek's `bad_HTTP_request_with_version`: no method token, but the line ends in
    /// ` HTTP/x.y`.
    BadWithVersion,
}

impl RequestLineError {
    pub fn weird(self) -> &'static str {
        match self {
            RequestLineError::Bad | RequestLineError::BadHttp09 => "bad_HTTP_request",
            RequestLineError::BadWithVersion => "bad_HTTP_request_with_version",
        }
    }
}

/// Methods Zeek knows (`HTTP::http_methods`, with the QUERY method of the safe-method draft its
/// current version adds); others are logged with an `unknown_HTTP_method` weird.
pub const KNOWN_METHODS: &[&str] = &[
    "GET",
    "POST",
    "HEAD",
    "OPTIONS",
    "PUT",
    "DELETE",
    "TRACE",
    "CONNECT",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "POLL",
    "REPORT",
    "SUBSCRIBE",
    "BMOVE",
    "SEARCH",
    "QUERY",
];

pub fn is_known_method(m: &str) -> bool {
    KNOWN_METHODS.contains(&m)
}

/// Zeek's `is_HTTP_token_char`: what a method may consist of.
fn is_token_char(c: u8) -> bool {
    c > 31 && c < 127 && !b" \t()<>@,;:\\\"/[]?={}".contains(&c)
}

/// Zeek's `is_reserved_URI_char`, `is_unreserved_URI_char` and `%`: what a URI may consist of.
fn is_uri_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b":/?#[]@!$&'()*+,;=-_.~%".contains(&c)
}

fn skip_whitespace(s: &[u8], mut at: usize) -> usize {
    while matches!(s.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    at
}

/// Whether `HTTP/` starts at `at`: `Some(false)` as written, `Some(true)` in lower case.
fn http_keyword_at(s: &[u8], at: usize) -> Option<bool> {
    let word = s.get(at..at + 5)?;
    if word == b"HTTP/" {
        Some(false)
    } else {
        word.eq_ignore_ascii_case(b"HTTP/").then_some(true)
    }
}

/// Parses a request line as Zeek's `HTTP_Analyzer::HTTP_RequestLine` and `ParseRequest` do:
/// the method is a token; the URI runs over URI characters and then up to the whitespace
/// before the first `HTTP/` (so `CONNECT host:25 / HTTP/1.0` has the URI `host:25 /`); a line
/// without `HTTP/` is HTTP/0.9, which needs a method of at least 3 characters and a URI.
pub fn parse_request_line(line: &[u8]) -> Result<RequestLine, RequestLineError> {
    let method_len = line
        .iter()
        .position(|c| !is_token_char(*c))
        .unwrap_or(line.len());
    if method_len == 0 {
        let n = line.len();
        let with_version = n >= 9 && line[n - 9..n - 3].eq_ignore_ascii_case(b" HTTP/");
        return Err(if with_version {
            RequestLineError::BadWithVersion
        } else {
            RequestLineError::Bad
        });
    }
    let rest_at = skip_whitespace(line, method_len);
    if rest_at == method_len {
        return Err(RequestLineError::Bad);
    }
    let rest = &line[rest_at..];
    let mut weirds = Vec::new();
    let mut end_of_uri = rest
        .iter()
        .position(|c| !is_uri_char(*c))
        .unwrap_or(rest.len());
    let keyword_first = http_keyword_at(rest, 0);
    if keyword_first == Some(true) {
        weirds.push("lowercase_HTTP_keyword");
    }
    if end_of_uri >= rest.len() && keyword_first.is_some() {
        weirds.push("missing_HTTP_uri");
        end_of_uri = 0;
    }
    let mut at = end_of_uri;
    let mut version_at = None;
    while at < rest.len() {
        end_of_uri = at;
        at = skip_whitespace(rest, at);
        if let Some(lower) = http_keyword_at(rest, at) {
            if lower {
                weirds.push("lowercase_HTTP_keyword");
            }
            version_at = Some(at + 5);
            break;
        }
        at += 1;
    }
    let uri = rest[..end_of_uri].to_vec();
    let version = match version_at {
        // Zeek's HTTP_Version: `D.D`, else its version stays unset, which it writes 0.0.
        Some(v) => Some(match rest.get(v..v + 3) {
            Some([a, b'.', b]) if a.is_ascii_digit() && b.is_ascii_digit() => {
                format!("{}.{}", *a as char, *b as char)
            }
            _ => "0.0".into(),
        }),
        None if method_len < 3 || uri.is_empty() => return Err(RequestLineError::BadHttp09),
        None => None,
    };
    Ok(RequestLine {
        method: String::from_utf8_lossy(&line[..method_len]).into_owned(),
        uri,
        version,
        weirds,
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub version: String,
    pub code: u16,
    pub reason: Vec<u8>,
}

/// Parses a status line as Zeek's `HTTP_ReplyLine` does; `None` if it is not one (no space
/// after the version, or fewer than three characters for the code). The version is the
/// `d.d` that starts it (`0.0` when it does not), the code three digits (0 when they are
/// not), and the reason whatever follows the next space, kept as is; with no space after the
/// code the reason is missing, which `http_reply` reports as `<empty>`.
pub fn parse_status_line(line: &[u8]) -> Option<StatusLine> {
    let rest = line.strip_prefix(b"HTTP/")?;
    let version = match rest {
        [major @ b'0'..=b'9', b'.', minor @ b'0'..=b'9', ..] => {
            format!("{}.{}", *major as char, *minor as char)
        }
        _ => "0.0".to_string(),
    };
    let is_lws = |b: &u8| *b == b' ' || *b == b'\t';
    let skip_lws = |s: &'_ [u8]| -> usize { s.iter().take_while(|b| is_lws(b)).count() };
    let sp = rest.iter().position(is_lws)?;
    let rest = &rest[sp..];
    let rest = &rest[skip_lws(rest)..];
    let code_text = rest.get(..3)?;
    let code = if code_text.iter().all(u8::is_ascii_digit) {
        code_text
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
    } else {
        0
    };
    let after = &rest[3..];
    let reason = match after.iter().position(is_lws) {
        None => b"<empty>".to_vec(),
        Some(p) => {
            let r = &after[p..];
            r[skip_lws(r)..].to_vec()
        }
    };
    Some(StatusLine {
        version,
        code,
        reason,
    })
}

/// Splits `Name: value` into the name as written and the trimmed value.
pub fn parse_header_line(line: &[u8]) -> Option<(String, Vec<u8>)> {
    let colon = line.iter().position(|b| *b == b':')?;
    let name = line[..colon].trim_ascii();
    if name.is_empty() {
        return None;
    }
    let name = String::from_utf8_lossy(name).into_owned();
    Some((name, line[colon + 1..].trim_ascii().to_vec()))
}

/// The size in a chunk-size line (`1a;ext=1`), or `None` if it is not hex.
pub fn parse_chunk_size(line: &[u8]) -> Option<u64> {
    let line = line.trim_ascii();
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    // Zeek keeps chunk sizes in a signed 64-bit number.
    let n = u64::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()?;
    (n <= i64::MAX as u64).then_some(n)
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

/// Zeek's `unescape_URI`: the request URI with `%XX` (and `%uXXXX`) escapes decoded, which is
/// what http.log shows, and the weirds for escapes that are broken.
pub fn unescape_uri(uri: &[u8]) -> (Vec<u8>, Vec<&'static str>) {
    let mut out = Vec::with_capacity(uri.len());
    let mut weirds = Vec::new();
    let mut i = 0;
    while i < uri.len() {
        if uri[i] != b'%' {
            out.push(uri[i]);
            i += 1;
            continue;
        }
        let rest = &uri[i + 1..];
        match rest {
            [] => {
                out.push(b'%');
                weirds.push("illegal_%_at_end_of_URI");
                break;
            }
            [only] => {
                out.extend_from_slice(&[b'%', *only]);
                weirds.push("partial_escape_at_end_of_URI");
                break;
            }
            [b'%', ..] => {
                out.push(b'%');
                weirds.push("double_%_in_URI");
                i += 2;
            }
            [a, b, ..] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => {
                out.push(hex_value(*a) << 4 | hex_value(*b));
                i += 3;
            }
            [b'u', a, b, c, d, ..] if [a, b, c, d].iter().all(|x| x.is_ascii_hexdigit()) => {
                // %uXXXX (ECMAScript escape); a zero high byte is dropped.
                if !(*a == b'0' && *b == b'0') {
                    out.push(hex_value(*a) << 4 | hex_value(*b));
                }
                out.push(hex_value(*c) << 4 | hex_value(*d));
                i += 6;
            }
            [next, ..] => {
                out.extend_from_slice(&[b'%', *next]);
                weirds.push("unescaped_%_in_URI");
                i += 2;
            }
        }
    }
    (out, weirds)
}

/// The user of a `Basic` Authorization value, as Zeek's script takes it: the text before the
/// first `:` of the decoded credentials, or `<problem-decoding> (value)` when there is no `:`
/// (or the base64 is broken). The password is not logged by default, so it is not kept.
pub fn basic_auth_user(value: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine;
    let prefix = value.get(..6)?;
    if !prefix.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let encoded = value[5..].trim_ascii();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap_or_default();
    match decoded.iter().position(|b| *b == b':') {
        Some(colon) => Some(decoded[..colon].to_vec()),
        None => {
            let mut problem = b"<problem-decoding> (".to_vec();
            problem.extend_from_slice(value);
            problem.push(b')');
            Some(problem)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn request_lines() {
        let r = parse_request_line(b"GET /a?b=1 HTTP/1.1").unwrap();
        assert_eq!(
            (r.method.as_str(), &r.uri[..], r.version.as_deref()),
            ("GET", &b"/a?b=1"[..], Some("1.1"))
        );
        let r = parse_request_line(b"CONNECT host:25 / HTTP/1.0").unwrap();
        assert_eq!(r.uri, b"host:25 /");
        let r = parse_request_line(b"GET /zeek.html").unwrap();
        assert_eq!(r.version, None);
        assert!(parse_request_line(b"T /zeek.html").is_err());
        assert!(parse_request_line(b"GET ").is_err());
        assert!(parse_request_line(b"T ").is_err());
        assert!(parse_request_line(b"FOO /x HTTP/1.1").is_ok());
    }

    /// HTTP_Analyzer::ParseRequest: a URI of URI characters only that starts with `HTTP/` is a
    /// missing URI; a line whose URI swallows `HTTP/` is HTTP/0.9; unknown methods are fine.
    #[test]
    fn request_lines_as_zeeks_parse_request() {
        let r = parse_request_line(b"OPTIONS HTTP/1.1").unwrap();
        assert_eq!((&r.uri[..], r.version.as_deref()), (&b""[..], Some("1.1")));
        assert_eq!(r.weirds, ["missing_HTTP_uri"]);
        let r = parse_request_line(b"CCM_POST /HTTP/1.1").unwrap();
        assert_eq!((&r.uri[..], r.version), (&b"/HTTP/1.1"[..], None));
        assert_eq!(
            parse_request_line(b"\x01 / HTTP/1.1"),
            Err(RequestLineError::BadWithVersion)
        );
        let r = parse_request_line(b"GET /a HTTP/x").unwrap();
        assert_eq!(r.version.as_deref(), Some("0.0"));
    }

    #[test]
    fn status_lines() {
        let s = parse_status_line(b"HTTP/1.1 200 OK").unwrap();
        assert_eq!(
            (s.version.as_str(), s.code, &s.reason[..]),
            ("1.1", 200, &b"OK"[..])
        );
        let s = parse_status_line(b"HTTP/1.0 200 Connection established").unwrap();
        assert_eq!(s.reason, b"Connection established");
        assert!(parse_status_line(b"<html>").is_none());
    }

    /// HTTP_ReplyLine: a missing reason is `<empty>`, an empty one stays empty, a code that
    /// is not three digits is 0, and the version is the `d.d` it starts with.
    #[test]
    fn status_lines_as_zeeks_reply_line() {
        let s = parse_status_line(b"HTTP/1.1 204").unwrap();
        assert_eq!((s.code, &s.reason[..]), (204, &b"<empty>"[..]));
        let s = parse_status_line(b"HTTP/1.1 204 ").unwrap();
        assert_eq!((s.code, &s.reason[..]), (204, &b""[..]));
        let s = parse_status_line(b"HTTP/1.1 2x6 odd  reason ").unwrap();
        assert_eq!((s.code, &s.reason[..]), (0, &b"odd  reason "[..]));
        let s = parse_status_line(b"HTTP/1.10 2000 OK").unwrap();
        assert_eq!(
            (s.version.as_str(), s.code, &s.reason[..]),
            ("1.1", 200, &b"OK"[..])
        );
        assert_eq!(parse_status_line(b"HTTP/x 200 OK").unwrap().version, "0.0");
        assert!(parse_status_line(b"HTTP/1.1 20").is_none());
        assert!(parse_status_line(b"HTTP/1.1").is_none());
    }

    #[test]
    fn uri_unescaping() {
        assert_eq!(
            unescape_uri(b"/%"),
            (b"/%".to_vec(), vec!["illegal_%_at_end_of_URI"])
        );
        assert_eq!(
            unescape_uri(b"/%5"),
            (b"/%5".to_vec(), vec!["partial_escape_at_end_of_URI"])
        );
        assert_eq!(
            unescape_uri(b"/%zz"),
            (b"/%zz".to_vec(), vec!["unescaped_%_in_URI"])
        );
        assert_eq!(
            unescape_uri(b"/a%20b?x=%3d"),
            (b"/a b?x==".to_vec(), vec![])
        );
        assert_eq!(
            unescape_uri(b"/%u00AE%u2603"),
            (b"/\xae\x26\x03".to_vec(), vec![])
        );
    }

    #[test]
    fn headers_auth_and_chunks() {
        assert_eq!(
            parse_header_line(b"Host: a.b:80"),
            Some(("Host".into(), b"a.b:80".to_vec()))
        );
        assert_eq!(
            basic_auth_user(b"Basic dXNlcjpwYXNz"),
            Some(b"user".to_vec())
        );
        assert_eq!(
            basic_auth_user(b"Basic bm9jb2xvbg=="),
            Some(b"<problem-decoding> (Basic bm9jb2xvbg==)".to_vec())
        );
        assert_eq!(parse_chunk_size(b"1a;x=y"), Some(26));
        assert_eq!(parse_chunk_size(b"zz"), None);
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_request_line(&line);
            let _ = parse_status_line(&line);
            let _ = parse_header_line(&line);
            let _ = parse_chunk_size(&line);
            let _ = unescape_uri(&line);
            let _ = basic_auth_user(&line);
            let _ = super::super::filename::entity_filename("CONTENT-TYPE", &line);
            let _ = super::super::header_rules::content_range(&line);
            let _ = super::super::header_rules::atoi(&line);
        }
    }
}
