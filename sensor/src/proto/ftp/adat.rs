//! Zeek's `FTP_ADAT_Analyzer` (ftp/FTP.cc): after `AUTH GSSAPI` and a 334 reply, the base64
//! tokens of the ADAT exchange are decoded (for GSI, TLS records) until the exchange ends.

use super::parser::{reply_code, skip_ws};
use crate::flow::Timestamp;
use crate::proto::base64_decode;
use crate::proto::Emit;

/// One ADAT exchange; ends when a method below returns `true` (`Parent()->Remove()`).
pub struct Adat {
    first_token: bool,
}

/// `util::get_word`: the first word of a line, after any blanks, and the rest.
fn first_word(line: &[u8]) -> (&[u8], &[u8]) {
    let line = skip_ws(line);
    let end = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    line.split_at(end)
}

/// `strncmp(cmd, keyword, cmd_len) == 0`: the word is a prefix of the keyword.
fn is_prefix_of(word: &[u8], keyword: &[u8]) -> bool {
    keyword.starts_with(word)
}

/// `decode_base64` on the connection: its weirds carry no analyzer as source.
fn decode(ts: Timestamp, encoded: &[u8], out: &mut dyn Emit) -> Option<Vec<u8>> {
    let d = base64_decode::decode(encoded);
    for addl in d.weirds {
        out.script_weird(ts, "base64_illegal_encoding", Some(addl));
    }
    d.bytes
}

impl Adat {
    pub fn new() -> Self {
        Adat { first_token: true }
    }

    /// A client line: an `ADAT` token (the first must decode to what looks like a TLS
    /// handshake record), or a reissued `AUTH` that resets the exchange.
    pub fn request(&mut self, ts: Timestamp, line: &[u8], out: &mut dyn Emit) -> bool {
        let (cmd, rest) = first_word(line);
        if is_prefix_of(cmd, b"ADAT") {
            let decoded = decode(ts, skip_ws(rest), out);
            let first = std::mem::replace(&mut self.first_token, false);
            if first {
                if decoded.is_none() {
                    out.weird_from(ts, "ftp_adat_bad_first_token_encoding", None, "FTP_ADAT");
                }
                return !decoded.as_deref().is_some_and(looks_like_tls_record);
            }
            false
        } else {
            is_prefix_of(cmd, b"AUTH")
        }
    }

    /// A server line: 232/234 and the refusals end the exchange; 334, 335 and 235 may carry
    /// an `ADAT=` token (235 ends it after that).
    pub fn reply(&mut self, ts: Timestamp, line: &[u8], out: &mut dyn Emit) -> bool {
        let code = reply_code(line);
        match code {
            232 | 234 | 421 | 431 | 500 | 501 | 503 | 535 | 631 | 632 | 633 => true,
            235 | 334 | 335 => {
                let mut rest = line.get(3..).unwrap_or_default();
                if let [b'-', tail @ ..] = rest {
                    rest = tail;
                }
                if let Some(token) = skip_ws(rest).strip_prefix(b"ADAT=") {
                    decode(ts, token, out);
                }
                code == 235
            }
            _ => false,
        }
    }
}

/// The first byte is a handshake record's content type and the record length (bytes 3-4)
/// matches the rest.
fn looks_like_tls_record(msg: &[u8]) -> bool {
    match msg {
        [0x16, _, _, hi, lo, rest @ ..] => {
            rest.len() == usize::from(u16::from_be_bytes([*hi, *lo]))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::Adat;
    use crate::flow::Timestamp;
    use crate::proto::testkit::WeirdLog;

    const TS: Timestamp = Timestamp(1.0);

    /// The first token of a GSI exchange is a TLS handshake record: "FgMBAAEB" decodes to
    /// 16 03 01 00 01 and its one byte, "FgMBAAE=" lacks the byte.
    #[test]
    fn first_token_must_decode_to_a_tls_handshake_record() {
        let mut out = WeirdLog::default();
        assert!(!Adat::new().request(TS, b"ADAT FgMBAAEB", &mut out));
        assert!(Adat::new().request(TS, b"ADAT FgMBAAE=", &mut out));
        assert!(out.0.is_empty());
        let mut adat = Adat::new();
        assert!(!adat.request(TS, b"ADAT FgMBAAEB", &mut out));
        // Later tokens are only decoded.
        assert!(!adat.request(TS, b"ADAT FgMB", &mut out));
        assert!(!adat.request(TS, b"USER x", &mut out));
        assert!(adat.request(TS, b"AUTH GSSAPI", &mut out));
        assert!(out.0.is_empty());
    }

    /// `FTP_ADAT_Analyzer::DeliverStream`: a first token that is not base64 (a blank in it).
    #[test]
    fn bad_first_token_encoding() {
        let mut out = WeirdLog::default();
        assert!(Adat::new().request(TS, b"ADAT FgMB AAEB", &mut out));
        let addl = "character 32 ignored by Base64 decoding".to_string();
        assert_eq!(
            out.0,
            [
                ("base64_illegal_encoding".to_string(), Some(addl), "-"),
                (
                    "ftp_adat_bad_first_token_encoding".to_string(),
                    None,
                    "FTP_ADAT"
                ),
            ]
        );
    }

    #[test]
    fn replies_end_or_continue_the_exchange() {
        let mut out = WeirdLog::default();
        let mut adat = Adat::new();
        assert!(!adat.reply(
            TS,
            b"334 Using authentication type; ADAT must follow.",
            &mut out
        ));
        assert!(!adat.reply(TS, b"335 ADAT=FgMBAAEB", &mut out));
        assert!(adat.reply(TS, b"235 ADAT=FgMBAAEB", &mut out));
        assert!(adat.reply(TS, b"632 FgMBAAEB", &mut out));
        assert!(!adat.reply(TS, b"335-ADAT=Fg MB", &mut out));
        assert_eq!(out.0.len(), 1);
    }
}
