//! `estuary query`: searches one log in a zeekctl-layout archive (and optionally the current
//! files) for rows matching typed field filters within a time range, reading files, and the gzip
//! members of each file, on every core.
#![forbid(unsafe_code)]

mod ahead;
pub mod cli;
mod filter;
mod header;
mod merge;
mod render;
mod scan;
mod source;
mod time;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use rayon::prelude::*;

pub use filter::{Filter, FilterError, Filters, Op};
pub use header::{Header, HeaderError};
pub use render::Format;
pub use source::Source;
pub use time::{parse_bound, End, Micros, TimeFormat};

/// Zeek writes a row when its connection ends, up to its `ts` plus the connection's duration:
/// a file opened this long after `--to` may still hold rows from before it.
pub const LATE_ROWS: Duration = Duration::from_secs(3600);
/// Sensors' clocks may run ahead of the aggregator's, whose clock names the archives.
pub const CLOCK_SKEW: Duration = Duration::from_secs(300);
/// How much of a file's start is read for its header.
const HEADER_BYTES: u64 = 64 * 1024;

/// A search, validated.
#[derive(Debug, Clone)]
pub struct Query {
    pub log_dir: PathBuf,
    pub log: String,
    pub filters: Filters,
    /// Rows with `from <= ts < to`.
    pub from: Option<Micros>,
    pub to: Option<Micros>,
    pub format: Format,
    pub limit: Option<usize>,
    /// Also search `current/`: files being written and rotated files not yet archived.
    pub current: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("cannot read the log folder {}: {source}", path.display())]
    LogDir { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error("{log}.log has no field {field:?}")]
    UnknownField { log: String, field: String },
    #[error("writing the output: {0}")]
    Output(#[source] io::Error),
}

/// A file that could not be searched, or only in part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// What a search did besides printing rows.
#[derive(Debug, Default)]
pub struct Outcome {
    pub rows: u64,
    pub files: usize,
    pub problems: Vec<Problem>,
}

/// Runs `query`, writing its output to `out`.
pub fn run(query: &Query, out: &mut impl Write) -> Result<Outcome, QueryError> {
    let mut outcome = Outcome::default();
    let sources = source::find(&query.log_dir, &query.log, query.current).map_err(|source| {
        QueryError::LogDir {
            path: query.log_dir.clone(),
            source,
        }
    })?;
    let late = LATE_ROWS.as_micros() as Micros;
    let skew = CLOCK_SKEW.as_micros() as Micros;
    let wanted = |open: Option<Micros>, close: Option<Micros>| {
        query
            .to
            .zip(open)
            .is_none_or(|(to, open)| open < to.saturating_add(late))
            && query
                .from
                .zip(close)
                .is_none_or(|(from, close)| close.saturating_add(skew) >= from)
    };
    let sources: Vec<Source> = sources
        .into_iter()
        .filter(|s| wanted(s.span.map(|s| s.0), s.span.map(|s| s.1)))
        .collect();
    let headers: Vec<Result<Header, String>> = sources.par_iter().map(read_header).collect();
    let mut files: Vec<(Source, Header)> = Vec::new();
    for (source, header) in sources.into_iter().zip(headers) {
        match header {
            Ok(h) if source.span.is_none() && !wanted(header::opened(&h), None) => {}
            Ok(h) => files.push((source, h)),
            Err(message) => outcome.problems.push(Problem {
                path: source.path,
                message,
            }),
        }
    }
    outcome.files = files.len();
    // The order the merge needs them in (stable: ties keep the archive's order).
    files.sort_by_key(|(s, h)| earliest_row(s, h));

    let output = output_header(&query.log, files.iter().map(|(_, h)| h));
    let cut_fields = match &query.format {
        Format::Cut { fields, .. } => fields.as_slice(),
        _ => &[],
    };
    if !files.is_empty() {
        for field in query
            .filters
            .fields()
            .chain(cut_fields.iter().map(String::as_str))
        {
            if output.index(field).is_none() {
                return Err(QueryError::UnknownField {
                    log: query.log.clone(),
                    field: field.to_owned(),
                });
            }
        }
    }
    let compiled = files
        .iter()
        .map(|(_, h)| query.filters.compile(h))
        .collect::<Result<Vec<_>, _>>()?;
    let renderers: Vec<render::Renderer> = files
        .iter()
        .map(|(_, h)| render::Renderer::new(&query.format, h, &output))
        .collect();

    let mut buf = io::BufWriter::with_capacity(1 << 20, out);
    let tsv = query.format == Format::Tsv;
    if tsv && !files.is_empty() {
        let open = files
            .iter()
            .filter_map(|(s, h)| s.span.map(|s| s.0).or(header::opened(h)))
            .min()
            .and_then(time::zeek_header_time);
        let mut block = Vec::new();
        output.write_block(open.as_deref(), &mut block);
        buf.write_all(&block).map_err(QueryError::Output)?;
    }
    let threads = rayon::current_num_threads();
    let search = |i: usize| {
        let (source, header) = &files[i];
        let plan = scan::Plan {
            header,
            filters: &compiled[i],
            renderer: &renderers[i],
            ts: header.index("ts"),
            from: query.from,
            to: query.to,
            limit: query.limit,
        };
        scan::file(source, &plan)
    };
    let earliest: Vec<Micros> = files.iter().map(|(s, h)| earliest_row(s, h)).collect();
    let merged = ahead::search_ahead(files.len(), threads, threads + 1, search, |results| {
        merge::merge(results, &earliest, query.limit, &mut buf)
    })
    .map_err(QueryError::Output)?;
    for (i, problem) in merged.problems {
        let path = files[i].0.path.clone();
        outcome.problems.push(Problem {
            path,
            message: problem,
        });
    }
    if query.format == Format::Count {
        let shown = query
            .limit
            .map_or(merged.count, |l| merged.count.min(l as u64));
        outcome.rows = shown;
        writeln!(buf, "{shown}").map_err(QueryError::Output)?;
    } else {
        outcome.rows = merged.rows;
    }
    if tsv {
        let close = files.iter().filter_map(|(s, _)| s.span.map(|s| s.1)).max();
        if let Some(close) = close.and_then(time::zeek_header_time) {
            let line = format!("#close{}{close}\n", output.separator as char);
            buf.write_all(line.as_bytes()).map_err(QueryError::Output)?;
        }
    }
    buf.flush().map_err(QueryError::Output)?;
    Ok(outcome)
}

/// The earliest `ts` a file's rows are assumed to have: its open time less [`LATE_ROWS`] and
/// [`CLOCK_SKEW`] (the same assumption that prunes files by time).
fn earliest_row(source: &Source, header: &Header) -> Micros {
    let margin = (LATE_ROWS + CLOCK_SKEW).as_micros() as Micros;
    source
        .span
        .map(|s| s.0)
        .or(header::opened(header))
        .map_or(Micros::MIN, |open| open.saturating_sub(margin))
}

/// The start of a file, decompressed, parsed as a header.
fn read_header(source: &Source) -> Result<Header, String> {
    let file = File::open(&source.path).map_err(|e| format!("cannot read: {e}"))?;
    let mut start = Vec::new();
    let read = if source.compressed {
        estuary_archive::decoder(file)
            .take(HEADER_BYTES)
            .read_to_end(&mut start)
    } else {
        file.take(HEADER_BYTES).read_to_end(&mut start)
    };
    let parsed = Header::parse(&start).map(|(h, _)| h);
    match (parsed, read) {
        (Ok(h), _) => Ok(h),
        (Err(_), Err(e)) => Err(format!("damaged or truncated gzip data ({e}); skipped")),
        (Err(e), Ok(_)) => Err(format!("{e}; skipped")),
    }
}

/// The header printed: the first file's, with any columns other files add appended.
fn output_header<'a>(log: &str, headers: impl Iterator<Item = &'a Header>) -> Header {
    let mut output: Option<Header> = None;
    for header in headers {
        match &mut output {
            None => output = Some(header.clone()),
            Some(out) => {
                for (field, ty) in header.fields.iter().zip(&header.types) {
                    if out.index(field).is_none() {
                        out.fields.push(field.clone());
                        out.types.push(ty.clone());
                    }
                }
            }
        }
    }
    let mut output = output.unwrap_or_default();
    output.path = Some(log.to_owned());
    output
}
