//! The Zeek TSV header block (`#separator` ... `#types`) that says how to read a log's rows.

/// The header of one log file.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub separator: u8,
    pub set_separator: Vec<u8>,
    pub empty_field: Vec<u8>,
    pub unset_field: Vec<u8>,
    pub path: Option<String>,
    /// `#open` as written (`2026-12-01-14-00-00`).
    pub open: Option<String>,
    pub fields: Vec<String>,
    pub types: Vec<String>,
}

/// Why a file's start is not a usable header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("no Zeek header (the first line is not #separator)")]
    Missing,
    #[error("the header ends before #fields and #types")]
    Incomplete,
    #[error("#fields has {fields} names but #types {types} types")]
    Mismatch { fields: usize, types: usize },
    #[error("bad header line {0:?}")]
    BadLine(String),
}

/// What Zeek writes by default: tab-separated, `,` between set elements, `(empty)` and `-`.
impl Default for Header {
    fn default() -> Self {
        Header {
            separator: b'\t',
            set_separator: b",".to_vec(),
            empty_field: b"(empty)".to_vec(),
            unset_field: b"-".to_vec(),
            path: None,
            open: None,
            fields: Vec::new(),
            types: Vec::new(),
        }
    }
}

impl Header {
    /// Reads the header block at the start of `data`; returns it and the offset of the first row.
    pub fn parse(data: &[u8]) -> Result<(Header, usize), HeaderError> {
        let mut lines = data.split_inclusive(|&b| b == b'\n');
        let first = lines.next().ok_or(HeaderError::Missing)?;
        let sep = first
            .strip_prefix(b"#separator ")
            .ok_or(HeaderError::Missing)?;
        let sep = trim_newline(sep);
        let separator = match sep {
            [b'\\', b'x', hex @ ..] => std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok()),
            [b] => Some(*b),
            _ => None,
        }
        .filter(|&b| b != b'\n' && b != 0)
        .ok_or_else(|| HeaderError::BadLine(String::from_utf8_lossy(first).into_owned()))?;
        let mut header = Header {
            separator,
            ..Header::default()
        };
        let mut offset = first.len();
        for line in lines {
            if !line.starts_with(b"#") || !line.ends_with(b"\n") {
                break;
            }
            offset += line.len();
            let text = trim_newline(line);
            let mut parts = text.split(|&b| b == separator);
            let key = parts.next().unwrap_or_default();
            let rest = text.get(key.len() + 1..).unwrap_or_default();
            let strings = || -> Vec<String> {
                rest.split(|&b| b == separator)
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .collect()
            };
            match key {
                b"#set_separator" => header.set_separator = rest.to_vec(),
                b"#empty_field" => header.empty_field = rest.to_vec(),
                b"#unset_field" => header.unset_field = rest.to_vec(),
                b"#path" => header.path = Some(String::from_utf8_lossy(rest).into_owned()),
                b"#open" => header.open = Some(String::from_utf8_lossy(rest).into_owned()),
                b"#fields" => header.fields = strings(),
                b"#types" => {
                    header.types = strings();
                    break;
                }
                _ => {}
            }
        }
        if header.fields.is_empty() || header.types.is_empty() {
            return Err(HeaderError::Incomplete);
        }
        if header.fields.len() != header.types.len() {
            return Err(HeaderError::Mismatch {
                fields: header.fields.len(),
                types: header.types.len(),
            });
        }
        Ok((header, offset))
    }

    pub fn index(&self, field: &str) -> Option<usize> {
        self.fields.iter().position(|f| f == field)
    }

    /// The header lines as Zeek writes them, `#separator` to `#types`.
    pub fn write_block(&self, open: Option<&str>, out: &mut Vec<u8>) {
        let sep = self.separator;
        out.extend_from_slice(format!("#separator \\x{sep:02x}\n").as_bytes());
        let mut line = |key: &[u8], value: &[u8]| {
            out.extend_from_slice(key);
            out.push(sep);
            out.extend_from_slice(value);
            out.push(b'\n');
        };
        line(b"#set_separator", &self.set_separator);
        line(b"#empty_field", &self.empty_field);
        line(b"#unset_field", &self.unset_field);
        if let Some(path) = &self.path {
            line(b"#path", path.as_bytes());
        }
        if let Some(open) = open {
            line(b"#open", open.as_bytes());
        }
        let join = |names: &[String]| names.join(&(sep as char).to_string());
        line(b"#fields", join(&self.fields).as_bytes());
        line(b"#types", join(&self.types).as_bytes());
    }
}

fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONN: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-12-01-14-00-00\n#fields\tts\tuid\tid.orig_h\tid.resp_p\tproto\ttunnel_parents\n#types\ttime\tstring\taddr\tport\tenum\tset[string]\n";

    #[test]
    fn parses_a_zeek_header() {
        let data = format!("{CONN}1.0\tC1\t10.0.0.1\t80\ttcp\t-\n");
        let (h, offset) = Header::parse(data.as_bytes()).unwrap();
        assert_eq!(h.separator, b'\t');
        assert_eq!(h.fields[2], "id.orig_h");
        assert_eq!(h.types[5], "set[string]");
        assert_eq!(h.path.as_deref(), Some("conn"));
        assert_eq!(h.open.as_deref(), Some("2026-12-01-14-00-00"));
        assert_eq!(&data[offset..], "1.0\tC1\t10.0.0.1\t80\ttcp\t-\n");
        let mut block = Vec::new();
        h.write_block(Some("2026-12-01-14-00-00"), &mut block);
        assert_eq!(Header::parse(&block).unwrap().0, h);
    }

    #[test]
    fn rejects_what_is_not_a_header() {
        assert_eq!(Header::parse(b"1.0\tC1\n"), Err(HeaderError::Missing));
        assert_eq!(Header::parse(b""), Err(HeaderError::Missing));
        assert_eq!(
            Header::parse(b"#separator \\x09\n#fields\ta\n"),
            Err(HeaderError::Incomplete)
        );
        assert_eq!(
            Header::parse(b"#separator \\x09\n#fields\ta\tb\n#types\tcount\n"),
            Err(HeaderError::Mismatch {
                fields: 2,
                types: 1
            })
        );
    }
}
