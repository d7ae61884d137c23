//! SMTP command and reply lines, and the address extraction Zeek's SMTP scripts apply to
//! commands and message headers.

use std::net::IpAddr;
use std::sync::OnceLock;

use regex::bytes::Regex;

/// `VERB arg`: the verb as sent (Zeek upper-cases it in the script) and the argument.
pub fn parse_command(line: &[u8]) -> (String, Vec<u8>) {
    let end = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
    let verb = String::from_utf8_lossy(&line[..end]).to_ascii_uppercase();
    let arg = line.get(end + 1..).unwrap_or_default();
    (verb, arg.to_vec())
}

/// Whether Zeek's SMTP analyzer knows the verb (`SMTP_CMD_WORD`); other lines outside DATA
/// raise no request and expect no reply of their own.
pub fn is_command_verb(verb: &str) -> bool {
    const KNOWN: &[&str] = &[
        "EHLO",
        "HELO",
        "MAIL",
        "RCPT",
        "DATA",
        "BDAT",
        "RSET",
        "SEND",
        "SOML",
        "SAML",
        "VRFY",
        "EXPN",
        "HELP",
        "NOOP",
        "QUIT",
        "TURN",
        "ATRN",
        "ETRN",
        "AUTH",
        "STARTTLS",
        "XCLIENT",
        "XFORWARD",
        "X-EXPS",
        "X-LINK2STATE",
        "XEXCH50",
        "XANATA",
    ];
    KNOWN.contains(&verb)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyLine {
    pub code: u16,
    /// `NNN-`: more lines of the same reply follow.
    pub cont: bool,
    pub msg: Vec<u8>,
}

/// `NNN[ -]text`; `None` unless the line starts with a reply code in 100..=599 (Zeek's SMTP
/// analyzer ignores other lines as violations). The text after the code starts at its first
/// non-blank byte.
pub fn parse_reply(line: &[u8]) -> Option<ReplyLine> {
    let [a, b, c, rest @ ..] = line else {
        return None;
    };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return None;
    }
    let code = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    if !(100..=599).contains(&code) {
        return None;
    }
    let (cont, msg) = match rest {
        [b'-', msg @ ..] => (true, msg),
        msg => (false, msg),
    };
    let start = msg
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(msg.len());
    Some(ReplyLine {
        code,
        cont,
        msg: msg[start..].to_vec(),
    })
}

/// `BDAT <size> [LAST]`: the chunk size and whether it is the last chunk, or why Zeek's
/// `parse_bdat_arg` (src/analyzer/protocol/smtp/BDAT.cc) rejects the argument.
pub fn parse_bdat(arg: &[u8]) -> Result<(u64, bool), &'static str> {
    if arg.is_empty() || arg.len() > 25 {
        return Err("BDAT argument bad length");
    }
    if !arg[0].is_ascii_digit() {
        return Err("BDAT not followed by a valid chunk-size");
    }
    let digits = arg.iter().take_while(|c| c.is_ascii_digit()).count();
    let rest = &arg[digits..];
    if rest.first().is_some_and(|c| *c != b' ') {
        return Err("BDAT chunk-size not valid");
    }
    let size = std::str::from_utf8(&arg[..digits])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or("BDAT chunk-size too large")?;
    if rest.is_empty() {
        return Ok((size, false));
    }
    if rest.len() == 5 && rest.eq_ignore_ascii_case(b" LAST") {
        Ok((size, true))
    } else {
        Err("BDAT chunk-size followed by junk")
    }
}

fn re(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

/// Zeek's `extract_email_addrs_vec`: addresses in `<a@b>`, `TO:a@b` and similar forms.
pub fn extract_email_addrs(s: &[u8]) -> Vec<Vec<u8>> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = re(&RE, r"(?:^|[<,:\t ])[^<,:\t @]+@[^>,;\t ]+(?:[>,;\t ]|$)") else {
        return Vec::new();
    };
    re.find_iter(s)
        .map(|m| {
            m.as_bytes()
                .iter()
                .copied()
                .filter(|b| !matches!(b, b'<' | b'>' | b',' | b':' | b';' | b' ' | b'\t'))
                .collect()
        })
        .collect()
}

/// Zeek's `split_mime_email_addresses`: the comma-separated parts of a To/Cc header that hold an `@`.
pub fn split_mime_addresses(s: &[u8]) -> Vec<Vec<u8>> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = re(&RE, r#"(?:"[^"]*")?[^,]+@[^,]+"#) else {
        return Vec::new();
    };
    re.find_iter(s)
        .map(|m| m.as_bytes().trim_ascii().to_vec())
        .collect()
}

/// Zeek's `extract_ip_addresses`; with `wrapped`, only addresses enclosed in matching
/// brackets, parentheses, braces or spaces count (as for Received headers).
pub fn extract_ips(s: &[u8], wrapped: bool) -> Vec<IpAddr> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let Some(re) = re(
        &RE,
        r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+",
    ) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for m in re.find_iter(s) {
        let Some(ip) = std::str::from_utf8(m.as_bytes())
            .ok()
            .and_then(|t| t.parse().ok())
        else {
            continue;
        };
        if wrapped {
            let before = m.start().checked_sub(1).and_then(|i| s.get(i)).copied();
            let after = s.get(m.end()).copied();
            let ok = matches!(
                (before, after),
                (None, None)
                    | (Some(b'['), Some(b']'))
                    | (Some(b'('), Some(b')'))
                    | (Some(b'{'), Some(b'}'))
                    | (Some(b' '), Some(b' '))
            );
            if !ok {
                continue;
            }
        }
        out.push(ip);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn commands_and_replies() {
        assert_eq!(
            parse_command(b"mail FROM:<a@b> size=1"),
            ("MAIL".into(), b"FROM:<a@b> size=1".to_vec())
        );
        assert_eq!(
            parse_reply(b"250-SIZE 1"),
            Some(ReplyLine {
                code: 250,
                cont: true,
                msg: b"SIZE 1".to_vec()
            })
        );
        assert_eq!(parse_reply(b"hello"), None);
        assert_eq!(parse_bdat(b"86 LAST"), Ok((86, true)));
        assert_eq!(parse_bdat(b"200"), Ok((200, false)));
        assert!(is_command_verb("EHLO"));
        assert!(!is_command_verb("."));
        assert!(!is_command_verb("HELLO,"));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            extract_email_addrs(b"TO:<alice@example.org>"),
            vec![b"alice@example.org".to_vec()]
        );
        assert_eq!(
            extract_email_addrs(b"FROM:<linux-kernel-owner@vger.kernel.org> BODY=8BITMIME"),
            vec![b"linux-kernel-owner@vger.kernel.org".to_vec()]
        );
        assert_eq!(
            split_mime_addresses(b"A <a@x.org>, \"B, C\" <b@y.org>"),
            vec![b"A <a@x.org>".to_vec(), b"\"B, C\" <b@y.org>".to_vec()]
        );
        let ips = extract_ips(b"from x ([23.128.96.19]:56766 \"EHLO", true);
        assert_eq!(ips, vec!["23.128.96.19".parse::<IpAddr>().unwrap()]);
        assert!(extract_ips(b"[IPv6:2607:f8b0::42f]", true).is_empty());
        assert_eq!(extract_ips(b"1.2.3.4", false).len(), 1);
    }

    /// The cases of the doctest suite "bdat command parsing" in Zeek's BDAT.cc.
    #[test]
    fn bdat_arguments_as_zeeks_parse_bdat_arg() {
        assert_eq!(parse_bdat(b"86 last"), Ok((86, true)));
        let err = |arg: &[u8]| parse_bdat(arg).unwrap_err();
        assert_eq!(err(b""), "BDAT argument bad length");
        assert_eq!(
            err(b"184467440737095516150 LAST"),
            "BDAT argument bad length"
        );
        assert_eq!(err(b" 86 LAST"), "BDAT not followed by a valid chunk-size");
        assert_eq!(err(b"-42 LAST"), "BDAT not followed by a valid chunk-size");
        assert_eq!(err(b"86LAST"), "BDAT chunk-size not valid");
        assert_eq!(err(b"86 SCRAMBLE"), "BDAT chunk-size followed by junk");
        assert_eq!(err(b"86 LASTSCRAMBLE"), "BDAT chunk-size followed by junk");
        assert_eq!(err(b"184467440737095516150"), "BDAT chunk-size too large");
        assert_eq!(
            parse_bdat(b"18446744073709551615 LAST"),
            Ok((u64::MAX, true))
        );
    }

    proptest! {
        #[test]
        fn never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_command(&line);
            let _ = parse_reply(&line);
            let _ = parse_bdat(&line);
            let _ = extract_email_addrs(&line);
            let _ = split_mime_addresses(&line);
            let _ = extract_ips(&line, true);
            let _ = extract_ips(&line, false);
        }
    }
}
