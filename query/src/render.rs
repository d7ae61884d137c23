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
            Renderer::Json => estuary_zeektsv::write_json(fields, file, out),
            Renderer::Count => return,
        }
        out.push(b'\n');
    }
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
