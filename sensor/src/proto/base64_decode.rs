//! Zeek's `decode_base64` of a whole string (`Base64Converter::Decode` and `Done` in
//! src/Base64.cc), with the `base64_illegal_encoding` weirds it raises on the connection.

/// The value of a character of the base64 alphabet; `=` counts as 0.
pub fn value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// What `decode_base64` gives: no bytes once a character was illegal or a group followed a
/// padded one, and the `addl` of each `base64_illegal_encoding` weird on the way.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Option<Vec<u8>>,
    pub weirds: Vec<String>,
}

#[derive(Default)]
struct Converter {
    group: [u8; 4],
    next: usize,
    padding: usize,
    after_padding: bool,
    errored: usize,
    out: Vec<u8>,
    weirds: Vec<String>,
}

impl Converter {
    /// `Base64Converter::Decode`: only the first error of a string is reported.
    fn decode(&mut self, data: &[u8]) {
        let mut i = 0;
        loop {
            if self.next == 4 {
                if self.after_padding {
                    self.error("extra base64 groups after '=' padding are ignored".into());
                    self.next = 0;
                    continue;
                }
                let bits = self
                    .group
                    .iter()
                    .fold(0u32, |acc, k| (acc << 6) | u32::from(k & 0x3f));
                let octets = 3usize.saturating_sub(self.padding);
                self.out
                    .extend_from_slice(&bits.to_be_bytes()[1..1 + octets]);
                self.after_padding |= self.padding > 0;
                self.next = 0;
                self.padding = 0;
            }
            let Some(&b) = data.get(i) else {
                break;
            };
            if b == b'=' {
                self.padding += 1;
            }
            match value(b) {
                Some(k) => {
                    self.group[self.next] = k;
                    self.next += 1;
                }
                // Zeek prints the character as a signed C char.
                None => self.error(format!(
                    "character {} ignored by Base64 decoding",
                    i32::from(b as i8)
                )),
            }
            i += 1;
        }
    }

    fn error(&mut self, msg: String) {
        self.errored += 1;
        if self.errored == 1 {
            self.weirds.push(msg);
        }
    }
}

/// `decode_base64`: a string with an error decodes to nothing; otherwise an incomplete last
/// group is completed with `=` (`Base64Converter::Done`, with its own weird).
pub fn decode(data: &[u8]) -> Decoded {
    let mut c = Converter::default();
    c.decode(data);
    if c.errored > 0 {
        return Decoded {
            bytes: None,
            weirds: c.weirds,
        };
    }
    if c.next != 0 {
        let missing = 4 - c.next;
        c.weirds.push(format!(
            "incomplete base64 group, padding with {} bits of 0",
            missing * 6
        ));
        c.decode(&b"==="[..missing.min(3)]);
    }
    Decoded {
        bytes: Some(c.out),
        weirds: c.weirds,
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    fn ok(bytes: &[u8]) -> Option<Vec<u8>> {
        Some(bytes.to_vec())
    }

    #[test]
    fn a_clean_string_decodes_without_weirds() {
        let d = decode(b"aGVsbG8=");
        assert_eq!(d.bytes, ok(b"hello"));
        assert!(d.weirds.is_empty());
    }

    /// `Decode`: the first illegal character is reported and the string decodes to nothing.
    #[test]
    fn an_illegal_character_voids_the_string() {
        let d = decode(b"aGVs bG8=\x80");
        assert_eq!(d.bytes, None);
        assert_eq!(d.weirds, ["character 32 ignored by Base64 decoding"]);
        let d = decode(b"\xff");
        assert_eq!(d.weirds, ["character -1 ignored by Base64 decoding"]);
    }

    /// `Decode`: a full group after a padded one is an error too.
    #[test]
    fn groups_after_padding_void_the_string() {
        let d = decode(b"aGk=aGVs");
        assert_eq!(d.bytes, None);
        assert_eq!(
            d.weirds,
            ["extra base64 groups after '=' padding are ignored"]
        );
    }

    /// `Done`: an incomplete last group is padded, reported, and still decoded.
    #[test]
    fn an_incomplete_group_is_padded() {
        let d = decode(b"aGk");
        assert_eq!(d.bytes, ok(b"hi"));
        assert_eq!(
            d.weirds,
            ["incomplete base64 group, padding with 6 bits of 0"]
        );
    }
}
