//! Writing matched rows: Zeek TSV, `zeek-cut` columns, or Zeek JSON lines.

use crate::header::Header;
use crate::time::{zeek_cut_time, TimeFormat};

/// What the query prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Zeek TSV under one header.
    Tsv,
    /// These columns, as `zeek-cut` prints them.
    Cut {
        fields: Vec<String>,
        time: TimeFormat,
    },
    /// One JSON object per row, as Zeek's JSON writer.
    Json,
    /// Only the number of rows.
    Count,
}

/// How the rows of one file are written.
#[derive(Debug)]
pub enum Renderer {
    /// The file's columns are the output's: the row as it is.
    Raw,
    /// Output column `i` is the file's column `columns[i]` (unset when the file lacks it).
    Tsv {
        columns: Vec<Option<usize>>,
        separator: u8,
        unset: Vec<u8>,
    },
    Cut {
        columns: Vec<Option<usize>>,
        times: Vec<bool>,
        time: TimeFormat,
    },
    Json,
    Count,
}

impl Renderer {
    /// `output` is the TSV header printed (ignored for other formats).
    pub fn new(format: &Format, file: &Header, output: &Header) -> Renderer {
        match format {
            Format::Tsv if file.fields == output.fields && file.separator == output.separator => {
                Renderer::Raw
            }
            Format::Tsv => Renderer::Tsv {
                columns: output.fields.iter().map(|f| file.index(f)).collect(),
                separator: output.separator,
                unset: output.unset_field.clone(),
            },
            Format::Cut { fields, time } => {
                let columns: Vec<Option<usize>> = fields.iter().map(|f| file.index(f)).collect();
                let times = columns
                    .iter()
                    .map(|c| c.is_some_and(|i| file.types[i] == "time"))
                    .collect();
                Renderer::Cut {
                    columns,
                    times,
                    time: *time,
                }
            }
            Format::Json => Renderer::Json,
            Format::Count => Renderer::Count,
        }
    }

    pub fn counts_only(&self) -> bool {
        matches!(self, Renderer::Count)
    }

    /// Appends one row (with its newline) to `out`.
    pub fn render(&self, line: &[u8], fields: &[&[u8]], file: &Header, out: &mut Vec<u8>) {
        match self {
            Renderer::Raw => out.extend_from_slice(line),
            Renderer::Tsv {
                columns,
                separator,
                unset,
            } => {
                for (i, column) in columns.iter().enumerate() {
                    if i > 0 {
                        out.push(*separator);
                    }
                    match column.and_then(|c| fields.get(c)) {
                        Some(value) => out.extend_from_slice(value),
                        None => out.extend_from_slice(unset),
                    }
                }
            }
            Renderer::Cut {
                columns,
                times,
                time,
            } => {
                for (i, (column, is_time)) in columns.iter().zip(times).enumerate() {
                    if i > 0 {
                        out.push(file.separator);
                    }
                    let Some(value) = column.and_then(|c| fields.get(c)) else {
                        continue;
                    };
                    if *is_time && *time != TimeFormat::Raw && *value != file.unset_field.as_slice()
                    {
                        zeek_cut_time(value, *time, out);
                    } else {
                        out.extend_from_slice(value);
                    }
                }
            }
            Renderer::Json => json(fields, file, out),
            Renderer::Count => return,
        }
        out.push(b'\n');
    }
}

/// Zeek's JSON writer: unset fields left out, containers as arrays, numbers and bools bare.
fn json(fields: &[&[u8]], file: &Header, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for ((name, ty), value) in file.fields.iter().zip(&file.types).zip(fields) {
        if *value == file.unset_field.as_slice() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        json_string(name.as_bytes(), out);
        out.push(b':');
        match ty.split_once('[') {
            Some((_, inner)) => {
                let element = inner.trim_end_matches(']');
                out.push(b'[');
                if *value != file.empty_field.as_slice() {
                    let separator = file.set_separator.as_slice();
                    let mut rest: &[u8] = value;
                    let mut first_element = true;
                    loop {
                        let (element_text, next) = match memchr::memmem::find(rest, separator)
                            .filter(|_| !separator.is_empty())
                        {
                            Some(at) => (&rest[..at], Some(&rest[at + separator.len()..])),
                            None => (rest, None),
                        };
                        if !first_element {
                            out.push(b',');
                        }
                        first_element = false;
                        json_scalar(element, element_text, out);
                        match next {
                            Some(n) => rest = n,
                            None => break,
                        }
                    }
                }
                out.push(b']');
            }
            None if ty == "string" && *value == file.empty_field.as_slice() => {
                out.extend_from_slice(b"\"\"")
            }
            None => json_scalar(ty, value, out),
        }
    }
    out.push(b'}');
}

fn json_scalar(ty: &str, value: &[u8], out: &mut Vec<u8>) {
    let number = || {
        std::str::from_utf8(value)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    };
    match ty {
        "count" | "int" | "port" | "double" | "time" | "interval" if number() => {
            out.extend_from_slice(value)
        }
        "bool" if value == b"T" => out.extend_from_slice(b"true"),
        "bool" if value == b"F" => out.extend_from_slice(b"false"),
        _ => json_string(&unescape(value), out),
    }
}

/// Zeek escapes separators and unprintable bytes in TSV as `\xNN`.
fn unescape(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        if let [b'\\', b'x', hi, lo, ..] = value[i..] {
            let hex = [hi, lo];
            if let Some(byte) = std::str::from_utf8(&hex)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(value[i]);
        i += 1;
    }
    out
}

fn json_string(value: &[u8], out: &mut Vec<u8>) {
    let text = String::from_utf8_lossy(value);
    // Serializing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::CONN;

    #[test]
    fn json_rows() {
        let h = Header::parse(CONN.as_bytes()).unwrap().0;
        let line = "1764597600.5\tC\\x09x\t10.1.2.3\t443\ttcp\tCa,Cb";
        let fields: Vec<&[u8]> = line.as_bytes().split(|&b| b == b'\t').collect();
        let mut out = Vec::new();
        Renderer::Json.render(line.as_bytes(), &fields, &h, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["ts"], 1764597600.5);
        assert_eq!(v["uid"], "C\tx");
        assert_eq!(v["id.resp_p"], 443);
        assert_eq!(v["tunnel_parents"], serde_json::json!(["Ca", "Cb"]));
        let unset = "1.0\t-\t10.1.2.3\t443\ttcp\t(empty)";
        let fields: Vec<&[u8]> = unset.as_bytes().split(|&b| b == b'\t').collect();
        out.clear();
        Renderer::Json.render(unset.as_bytes(), &fields, &h, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v.get("uid").is_none());
        assert_eq!(v["tunnel_parents"], serde_json::json!([]));
    }
}
