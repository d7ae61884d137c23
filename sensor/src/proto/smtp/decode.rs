//! How a MIME entity's body lines become the bytes of its file (`MIME_Entity::DecodeDataLine`
//! in Zeek's `analyzer/protocol/mime/MIME.cc`): by its Content-Transfer-Encoding, base64
//! through Zeek's lenient `Base64Converter`, quoted-printable, or as-is with the line ends put
//! back.

use crate::proto::base64_decode;

/// `MIME_Entity::ParseContentEncoding`: the first token of the header, case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferEncoding {
    Identity,
    QuotedPrintable,
    Base64,
}

impl TransferEncoding {
    pub fn parse(value: &[u8]) -> Self {
        let token: Vec<u8> = value
            .trim_ascii_start()
            .iter()
            .take_while(|b| !matches!(b, b' ' | b'\t' | b';' | b'(' | b'"'))
            .map(u8::to_ascii_lowercase)
            .collect();
        match &token[..] {
            b"quoted-printable" => TransferEncoding::QuotedPrintable,
            b"base64" => TransferEncoding::Base64,
            _ => TransferEncoding::Identity,
        }
    }
}

/// One entity's decoder.
#[derive(Debug)]
pub struct Decoder {
    encoding: TransferEncoding,
    /// A part of a multipart body keeps its line ends except the last, which belongs to the
    /// boundary delimiter: each is held back until another line follows.
    in_multipart: bool,
    delayed_crlf: bool,
    group: [u8; 4],
    group_len: usize,
    padding: usize,
    after_padding: bool,
}

impl Decoder {
    pub fn new(encoding: TransferEncoding, in_multipart: bool) -> Self {
        Decoder {
            encoding,
            in_multipart,
            delayed_crlf: false,
            group: [0; 4],
            group_len: 0,
            padding: 0,
            after_padding: false,
        }
    }

    /// The bytes one body line (without its CRLF) contributes.
    pub fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        match self.encoding {
            TransferEncoding::Identity => {
                self.part(line, out);
                if self.in_multipart {
                    self.delayed_crlf = true;
                } else {
                    out.extend_from_slice(b"\r\n");
                }
            }
            TransferEncoding::QuotedPrintable => quoted_printable(line, true, out),
            TransferEncoding::Base64 => self.base64(line, out),
        }
    }

    /// The bytes of a piece of a body line that goes on (Zeek's `trailing_CRLF` false): no line
    /// end follows it, and a quoted-printable piece keeps its blanks.
    pub fn part(&mut self, piece: &[u8], out: &mut Vec<u8>) {
        match self.encoding {
            TransferEncoding::Identity => {
                if std::mem::take(&mut self.delayed_crlf) {
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(piece);
            }
            TransferEncoding::QuotedPrintable => quoted_printable(piece, false, out),
            TransferEncoding::Base64 => self.base64(piece, out),
        }
    }

    /// `FinishDecodeBase64` at the end of the entity: an incomplete group is padded with `=`.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.encoding == TransferEncoding::Base64 && self.group_len != 0 {
            let pad = [b'='; 3];
            let n = 4 - self.group_len;
            self.base64(&pad[..n.min(3)], out);
        }
    }

    /// `Base64Converter::Decode`: characters outside the alphabet are skipped, `=` counts as
    /// padding (value 0), and groups after a padded one are dropped.
    fn base64(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            if b == b'=' {
                self.padding += 1;
            }
            let Some(k) = base64_decode::value(b) else {
                continue;
            };
            self.group[self.group_len] = k;
            self.group_len += 1;
            if self.group_len == 4 {
                self.group_len = 0;
                if self.after_padding {
                    continue;
                }
                let bits = (u32::from(self.group[0] & 0x3f) << 18)
                    | (u32::from(self.group[1] & 0x3f) << 12)
                    | (u32::from(self.group[2] & 0x3f) << 6)
                    | u32::from(self.group[3] & 0x3f);
                let octets = 3usize.saturating_sub(self.padding);
                out.extend_from_slice(&bits.to_be_bytes()[1..1 + octets]);
                if self.padding > 0 {
                    self.after_padding = true;
                }
                self.padding = 0;
            }
        }
    }
}

/// `MIME_Entity::DecodeQuotedPrintable`: trailing blanks dropped, `=XX` decoded, anything else
/// kept, and a CRLF added unless the line ends in a soft break (`=`). A piece of a line that
/// goes on (`ends` false) has neither trimming nor line end.
fn quoted_printable(line: &[u8], ends: bool, out: &mut Vec<u8>) {
    let end = if ends {
        line.iter()
            .rposition(|b| *b != b' ' && *b != b'\t')
            .map_or(0, |i| i + 1)
    } else {
        line.len()
    };
    let mut soft_break = false;
    let mut i = 0;
    while i < end {
        if line[i] == b'=' {
            if i + 1 == end {
                soft_break = true;
            } else {
                let hex = |b: u8| (b as char).to_digit(16);
                if i + 2 < line.len() {
                    if let (Some(a), Some(b)) = (hex(line[i + 1]), hex(line[i + 2])) {
                        out.push((a * 16 + b) as u8);
                        i += 3;
                        continue;
                    }
                }
                out.push(b'=');
            }
        } else {
            out.push(line[i]);
        }
        i += 1;
    }
    if ends && !soft_break {
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(enc: TransferEncoding, multipart: bool, lines: &[&str]) -> Vec<u8> {
        let mut d = Decoder::new(enc, multipart);
        let mut out = Vec::new();
        for l in lines {
            d.line(l.as_bytes(), &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn identity_lines_keep_their_ends_but_a_parts_last() {
        assert_eq!(
            decode(TransferEncoding::Identity, false, &["a", "b"]),
            b"a\r\nb\r\n"
        );
        assert_eq!(
            decode(TransferEncoding::Identity, true, &["a", "", "b"]),
            b"a\r\n\r\nb"
        );
    }

    #[test]
    fn pieces_of_a_line_join_without_line_ends() {
        let mut d = Decoder::new(TransferEncoding::Identity, true);
        let mut out = Vec::new();
        d.line(b"a", &mut out);
        d.part(b"b ", &mut out);
        d.part(b"c", &mut out);
        d.line(b"d", &mut out);
        assert_eq!(out, b"a\r\nb cd");
        let mut d = Decoder::new(TransferEncoding::QuotedPrintable, false);
        let mut out = Vec::new();
        d.part(b"x=41 ", &mut out);
        d.line(b"y ", &mut out);
        assert_eq!(out, b"xA y\r\n");
    }

    #[test]
    fn base64_is_lenient() {
        assert_eq!(
            decode(TransferEncoding::Base64, false, &["aGVs", "bG8=", "QUFB"]),
            b"hello"
        );
        assert_eq!(
            decode(TransferEncoding::Base64, false, &["aG*Vsb", "G8"]),
            b"hello"
        );
    }

    #[test]
    fn quoted_printable_soft_breaks_and_escapes() {
        assert_eq!(
            decode(
                TransferEncoding::QuotedPrintable,
                false,
                &["a=3Db =", "c  ", "=ZZ"]
            ),
            b"a=b c\r\n=ZZ\r\n"
        );
    }

    #[test]
    fn encodings_parse_case_insensitively() {
        assert_eq!(
            TransferEncoding::parse(b" BASE64 "),
            TransferEncoding::Base64
        );
        assert_eq!(
            TransferEncoding::parse(b"Quoted-Printable"),
            TransferEncoding::QuotedPrintable
        );
        assert_eq!(TransferEncoding::parse(b"7bit"), TransferEncoding::Identity);
    }
}
