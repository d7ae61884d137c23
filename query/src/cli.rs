//! `estuary query`'s command line.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::{parse_bound, run, End, Filters, Format, Query, QueryError, TimeFormat};

/// Search an archived log (and with --current the current files) for rows matching filters.
///
/// Filters: field=value, field!=value, field~regex, field<N, field<=N, field>N, field>=N; typed by
/// the log's #types (addresses match CIDRs, sets and vectors match on any element, `-` is unset and
/// `(empty)` empty). Filters are ANDed; each --or starts another group, and a row matches when
/// every filter of some group does.
#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// The aggregator's configuration (cluster.cfg or .toml); its LogDir is searched.
    #[arg(
        short,
        long,
        required_unless_present = "logdir",
        conflicts_with = "logdir"
    )]
    config: Option<PathBuf>,
    /// The log folder (zeekctl's LogDir: dated archive folders and current/).
    #[arg(long)]
    logdir: Option<PathBuf>,
    /// The log to search: conn, dns, http, ...
    log: String,
    /// Filters, all of which a row must match.
    #[arg(value_name = "FILTER")]
    filters: Vec<String>,
    #[command(flatten)]
    or: OrGroups,
    /// Rows from this time on: ISO 8601 (local time without an offset), Unix seconds, or an
    /// archive name (its open time).
    #[arg(long)]
    from: Option<String>,
    /// Rows before this time (as --from; an archive name stands for its close time).
    #[arg(long)]
    to: Option<String>,
    /// Print these columns as zeek-cut does.
    #[arg(long, value_delimiter = ',', value_name = "FIELD,...", conflicts_with_all = ["json", "count"])]
    cut: Option<Vec<String>>,
    /// With --cut: time columns in local time, like zeek-cut -d.
    #[arg(short = 'd', requires = "cut", conflicts_with = "utc")]
    local: bool,
    /// With --cut: time columns in UTC, like zeek-cut -u.
    #[arg(short = 'u', requires = "cut")]
    utc: bool,
    /// One Zeek JSON object per row.
    #[arg(long, conflicts_with = "count")]
    json: bool,
    /// Print only the number of matching rows.
    #[arg(long)]
    count: bool,
    /// At most this many rows (the earliest).
    #[arg(long)]
    limit: Option<usize>,
    /// Also search current/: the files being written and those waiting to be archived.
    #[arg(long)]
    current: bool,
}

/// `--or FILTER...`, each occurrence one group. clap's derive cannot keep occurrences apart, so
/// this one argument is declared by hand.
#[derive(Debug, Default)]
struct OrGroups(Vec<Vec<String>>);

const OR: &str = "or";

impl clap::FromArgMatches for OrGroups {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let groups = matches
            .get_occurrences::<String>(OR)
            .map(|groups| groups.map(|g| g.cloned().collect()).collect())
            .unwrap_or_default();
        Ok(OrGroups(groups))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for OrGroups {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.arg(
            clap::Arg::new(OR)
                .long(OR)
                .value_name("FILTER")
                .num_args(1..)
                .action(clap::ArgAction::Append)
                .help("Another group of filters (a row matching all of them matches too)"),
        )
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] estuary_config::ConfigErrors),
    #[error("--{option}: {message}")]
    Time {
        option: &'static str,
        message: String,
    },
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Filter(#[from] crate::FilterError),
}

impl QueryArgs {
    /// Runs the search; exits 2 (as grep) when some file could not be searched, or only in part,
    /// after printing what was found.
    pub fn run(self) -> Result<ExitCode, CliError> {
        let query = self.query()?;
        let stdout = io::stdout();
        let mut out = stdout.lock();
        let outcome = match run(&query, &mut out) {
            Err(QueryError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                return Ok(ExitCode::SUCCESS)
            }
            other => other?,
        };
        let _ = out.flush();
        let mut stderr = io::stderr().lock();
        for problem in &outcome.problems {
            let _ = writeln!(stderr, "estuary query: {problem}");
        }
        Ok(if outcome.problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        })
    }

    fn query(self) -> Result<Query, CliError> {
        let log_dir = match (self.logdir, self.config) {
            (Some(dir), _) => dir,
            (None, Some(config)) => estuary_config::aggregator::load(&config)?.log_dir,
            // clap requires one of them.
            (None, None) => PathBuf::from("."),
        };
        let bound = |option, text: Option<String>, end| {
            text.map(|t| parse_bound(&t, end))
                .transpose()
                .map_err(|message| CliError::Time { option, message })
        };
        let from = bound("from", self.from, End::From)?;
        let to = bound("to", self.to, End::To)?;
        let mut groups = vec![self.filters];
        groups.extend(self.or.0);
        let format = match (self.cut, self.json, self.count) {
            (Some(fields), _, _) => Format::Cut {
                fields,
                time: match (self.local, self.utc) {
                    (true, _) => TimeFormat::Local,
                    (_, true) => TimeFormat::Utc,
                    _ => TimeFormat::Raw,
                },
            },
            (None, true, _) => Format::Json,
            (None, false, true) => Format::Count,
            (None, false, false) => Format::Tsv,
        };
        Ok(Query {
            log_dir,
            log: self.log.trim_end_matches(".log").to_owned(),
            filters: Filters::parse(&groups)?,
            from,
            to,
            format,
            limit: self.limit,
            current: self.current,
        })
    }
}
