//! rsyslog legacy configuration (`*.conf`): the `$ModLoad imfile` / `$InputFile*` directives and
//! `facility.priority action` selector lines that Bro/Zeek sites used to ship their logs.
//!
//! Differences from rsyslogd, all deliberate:
//! - A block of `$InputFile*` directives becomes an input once it has a name and a tag, even without
//!   `$InputRunFileMonitor` (the seed configuration has none); setting a directive a second time in a
//!   complete block starts the next block. Facility and severity start at imfile's defaults in each block.
//! - `$InputFilePollInterval` (also accepted as `$InputFilePollingInterval`) applies to every input
//!   wherever it appears; files are watched with inotify and polled at that interval as a fallback.
//! - TLS (`$ActionSendStreamDriverMode 1`) always verifies the server certificate against
//!   `$DefaultNetstreamDriverCAFile` and its name (`$ActionSendStreamDriverPermittedPeer`, else the
//!   host); rsyslog's default `anon` mode is refused. Framing stays newline unless `@@(o)` asks for
//!   octet counting.
//! - Selector priorities are checked against the inputs: a filter that would drop part of an input's
//!   lines, or match no input, is an error rather than a silent loss.
//! - Anything estuary does not implement is an error naming the line, never ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use estuary_wire::{Facility, Severity};

mod action;
mod selector;

use super::defaults;
use super::{
    DestinationConfig, InputConfig, LongLines, OnShrink, ShipperConfig, StartAt, WatchMode,
};
use crate::value;
use crate::{ConfigError, ConfigErrors};
use action::StreamDriver;
use selector::{facility_filter, parse_facility, parse_selector, parse_severity, Selector};

pub(crate) fn parse(file: &Path, text: &str) -> Result<ShipperConfig, ConfigErrors> {
    let mut parser = Parser::new(file);
    for (index, raw) in text.lines().enumerate() {
        parser.line(index + 1, raw);
    }
    parser.finish()
}

/// `$InputFile*` values collected for the input being described.
#[derive(Default)]
struct Block {
    name: Option<(usize, String)>,
    tag: Option<(usize, String)>,
    state_file: Option<(usize, String)>,
    severity: Option<(usize, Severity)>,
    facility: Option<(usize, Facility)>,
    trim_line_over: Option<(usize, usize)>,
}

impl Block {
    fn is_complete(&self) -> bool {
        self.name.is_some() && self.tag.is_some()
    }

    /// The line of the first directive in the block; `None` for an empty block.
    fn first_line(&self) -> Option<usize> {
        [
            self.name.as_ref().map(|v| v.0),
            self.tag.as_ref().map(|v| v.0),
            self.state_file.as_ref().map(|v| v.0),
            self.severity.as_ref().map(|v| v.0),
            self.facility.as_ref().map(|v| v.0),
            self.trim_line_over.as_ref().map(|v| v.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }
}

struct PendingInput {
    line: usize,
    path: String,
    tag: String,
    state_file: Option<String>,
    severity: Severity,
    facility: Facility,
    trim_line_over: Option<usize>,
}

struct PendingAction {
    line: usize,
    key: String,
    selector: Selector,
    destination: DestinationConfig,
}

#[derive(Default)]
struct Modules {
    imfile: bool,
}

struct Parser<'a> {
    file: &'a Path,
    errors: ConfigErrors,
    modules: Modules,
    work_dir: Option<PathBuf>,
    hostname: Option<String>,
    poll_interval: Option<Duration>,
    max_message_size: Option<usize>,
    block: Block,
    inputs: Vec<PendingInput>,
    actions: Vec<PendingAction>,
    /// Selector lines seen, including ones with errors (so "no destination" is not reported twice).
    selector_lines: usize,
    netstream_driver: Option<String>,
    /// The TLS files, each with the line naming it.
    ca_file: Option<(usize, PathBuf)>,
    cert_file: Option<(usize, PathBuf)>,
    key_file: Option<(usize, PathBuf)>,
    stream: StreamDriver,
}

impl<'a> Parser<'a> {
    fn new(file: &'a Path) -> Self {
        Parser {
            file,
            errors: ConfigErrors::default(),
            modules: Modules::default(),
            work_dir: None,
            hostname: None,
            poll_interval: None,
            max_message_size: None,
            block: Block::default(),
            inputs: Vec::new(),
            actions: Vec::new(),
            selector_lines: 0,
            netstream_driver: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            stream: StreamDriver::default(),
        }
    }

    fn error(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(self.file, Some(line), Some(key), message));
    }

    fn line(&mut self, line: usize, raw: &str) {
        let text = value::strip_comment(raw).trim();
        if text.is_empty() {
            return;
        }
        if text.starts_with('$') {
            let mut words = text.split_whitespace();
            let directive = words.next().unwrap_or(text);
            let args: Vec<&str> = words.collect();
            self.directive(line, directive, &args);
        } else {
            self.selector_line(line, text);
        }
    }

    /// The one argument a directive takes; reports a missing or extra one.
    fn single<'t>(&mut self, line: usize, directive: &str, args: &[&'t str]) -> Option<&'t str> {
        match args {
            [one] => Some(one),
            [] => {
                self.error(line, directive, "missing value");
                None
            }
            [_, extra, ..] => {
                self.error(line, directive, format!("unexpected extra value {extra:?}"));
                None
            }
        }
    }

    fn directive(&mut self, line: usize, directive: &str, args: &[&str]) {
        let name = directive.trim_start_matches('$').to_ascii_lowercase();
        if (name.starts_with("inputfile") || name == "inputrunfilemonitor") && !self.modules.imfile
        {
            self.error(line, directive, "imfile directive before `$ModLoad imfile`");
            return;
        }
        match name.as_str() {
            "modload" => {
                if let Some(module) = self.single(line, directive, args) {
                    self.mod_load(line, directive, module);
                }
            }
            "workdirectory" => {
                if let Some(dir) = self.single(line, directive, args) {
                    self.work_dir = Some(PathBuf::from(dir));
                }
            }
            "localhostname" => {
                if let Some(host) = self.single(line, directive, args) {
                    match value::check_hostname(host) {
                        Ok(()) => self.hostname = Some(host.to_owned()),
                        Err(e) => self.error(line, directive, e),
                    }
                }
            }
            "maxmessagesize" => {
                if let Some(size) = self.single(line, directive, args) {
                    match value::parse_size(size)
                        .and_then(|n| defaults::check_max_line_bytes(n).map(|()| n))
                    {
                        Ok(n) => self.max_message_size = Some(n),
                        Err(e) => self.error(line, directive, e),
                    }
                }
            }
            "inputfilename" => {
                if let Some(v) = self.single(line, directive, args) {
                    self.start_block_if_set(line, directive, |b| b.name.is_some());
                    self.block.name = Some((line, v.to_owned()));
                }
            }
            "inputfiletag" => {
                if let Some(v) = self.single(line, directive, args) {
                    if let Err(e) = defaults::check_tag(v) {
                        self.error(line, directive, e);
                    }
                    self.start_block_if_set(line, directive, |b| b.tag.is_some());
                    self.block.tag = Some((line, v.to_owned()));
                }
            }
            "inputfilestatefile" => {
                if let Some(v) = self.single(line, directive, args) {
                    self.start_block_if_set(line, directive, |b| b.state_file.is_some());
                    self.block.state_file = Some((line, v.to_owned()));
                }
            }
            "inputfileseverity" => {
                if let Some(v) = self.single(line, directive, args) {
                    match parse_severity(v) {
                        Ok(s) => {
                            self.start_block_if_set(line, directive, |b| b.severity.is_some());
                            self.block.severity = Some((line, s));
                        }
                        Err(e) => self.error(line, directive, e),
                    }
                }
            }
            "inputfilefacility" => {
                if let Some(v) = self.single(line, directive, args) {
                    match parse_facility(v) {
                        Ok(f) => {
                            self.start_block_if_set(line, directive, |b| b.facility.is_some());
                            self.block.facility = Some((line, f));
                        }
                        Err(e) => self.error(line, directive, e),
                    }
                }
            }
            "inputfiletrimlineoverbytes" => {
                if let Some(v) = self.single(line, directive, args) {
                    match value::parse_size(v) {
                        Ok(0) => self.block.trim_line_over = None,
                        Ok(n) => match defaults::check_max_line_bytes(n) {
                            Ok(()) => {
                                self.start_block_if_set(line, directive, |b| {
                                    b.trim_line_over.is_some()
                                });
                                self.block.trim_line_over = Some((line, n));
                            }
                            Err(e) => self.error(line, directive, e),
                        },
                        Err(e) => self.error(line, directive, e),
                    }
                }
            }
            "inputfilereadmode" => {
                if let Some(v) = self.single(line, directive, args) {
                    if v != "0" {
                        self.error(
                            line,
                            directive,
                            format!("read mode {v} (multi-line messages) is not supported; only 0"),
                        );
                    }
                }
            }
            // estuary saves state after the aggregator has the lines, not every n lines read.
            "inputfilepersiststateinterval" => {
                if let Some(v) = self.single(line, directive, args) {
                    if v.parse::<u64>().is_err() {
                        self.error(
                            line,
                            directive,
                            format!("expected a number of lines, got {v:?}"),
                        );
                    }
                }
            }
            "inputfilepollinterval" | "inputfilepollinginterval" => {
                if let Some(v) = self.single(line, directive, args) {
                    match value::parse_duration(v)
                        .and_then(|d| defaults::check_poll_interval(d).map(|()| d))
                    {
                        Ok(d) => self.poll_interval = Some(d),
                        Err(e) => self.error(line, directive, e),
                    }
                }
            }
            "inputrunfilemonitor" => {
                if !args.is_empty() {
                    self.error(line, directive, "takes no value");
                }
                if self.block.is_complete() {
                    self.finish_block();
                } else {
                    let missing = if self.block.name.is_none() {
                        "$InputFileName"
                    } else {
                        "$InputFileTag"
                    };
                    self.error(
                        line,
                        directive,
                        format!("no {missing} given for this file monitor"),
                    );
                    self.block = Block::default();
                }
            }
            "resetconfigvariables" => {
                if self.block.is_complete() {
                    self.error(
                        line,
                        directive,
                        "discards a complete file monitor; add $InputRunFileMonitor before it",
                    );
                }
                self.block = Block::default();
            }
            "defaultnetstreamdriver" => {
                if let Some(v) = self.single(line, directive, args) {
                    match v.to_ascii_lowercase().as_str() {
                        "gtls" | "ossl" => self.netstream_driver = Some(v.to_owned()),
                        "ptcp" => self.netstream_driver = None,
                        _ => self.error(
                            line,
                            directive,
                            format!("unknown stream driver {v:?} (gtls, ossl or ptcp)"),
                        ),
                    }
                }
            }
            "defaultnetstreamdrivercafile" => {
                if let Some(v) = self.single(line, directive, args) {
                    self.ca_file = Some((line, PathBuf::from(v)));
                }
            }
            "defaultnetstreamdrivercertfile" => {
                if let Some(v) = self.single(line, directive, args) {
                    self.cert_file = Some((line, PathBuf::from(v)));
                }
            }
            "defaultnetstreamdriverkeyfile" => {
                if let Some(v) = self.single(line, directive, args) {
                    self.key_file = Some((line, PathBuf::from(v)));
                }
            }
            "actionsendstreamdrivermode" => {
                if let Some(v) = self.single(line, directive, args) {
                    match v {
                        "0" => self.stream.tls = false,
                        "1" => self.stream.tls = true,
                        _ => self.error(line, directive, format!("expected 0 or 1, got {v:?}")),
                    }
                }
            }
            "actionsendstreamdriverauthmode" => {
                if let Some(v) = self.single(line, directive, args) {
                    match v.to_ascii_lowercase().as_str() {
                        "x509/name" => {}
                        "anon" => self.error(
                            line,
                            directive,
                            "anon (no server verification) is not supported; use x509/name",
                        ),
                        _ => self.error(
                            line,
                            directive,
                            format!("auth mode {v:?} is not supported; use x509/name"),
                        ),
                    }
                }
            }
            "actionsendstreamdriverpermittedpeer" => {
                if let Some(v) = self.single(line, directive, args) {
                    if v.contains('*') || v.contains(',') {
                        self.error(
                            line,
                            directive,
                            "one exact peer name only (no wildcards or lists)",
                        );
                    } else {
                        self.stream.permitted_peer = Some(v.to_owned());
                    }
                }
            }
            _ => self.error(
                line,
                directive,
                "directive is not supported by estuary ship",
            ),
        }
    }

    fn mod_load(&mut self, line: usize, directive: &str, module: &str) {
        match module.trim_end_matches(".so") {
            "imfile" => self.modules.imfile = true,
            // Built into rsyslogd, or needed for RELP/TLS; `:omrelp:` works without loading it first.
            "omrelp" | "omfwd" | "lmnsd_gtls" | "lmnsd_ossl" | "lmnsd_ptcp" => {}
            other => self.error(
                line,
                directive,
                format!("module {other:?} is not supported (estuary ship reads files with imfile and sends with omfwd/omrelp)"),
            ),
        }
    }

    /// A directive already set in a complete block begins the next file's block.
    fn start_block_if_set(
        &mut self,
        line: usize,
        directive: &str,
        is_set: impl Fn(&Block) -> bool,
    ) {
        if !is_set(&self.block) {
            return;
        }
        if self.block.is_complete() {
            self.finish_block();
        } else {
            self.error(line, directive, "set twice for the same file monitor");
        }
    }

    fn finish_block(&mut self) {
        let block = std::mem::take(&mut self.block);
        let (Some((line, path)), Some((_, tag))) = (block.name, block.tag) else {
            return;
        };
        self.inputs.push(PendingInput {
            line,
            path,
            tag,
            state_file: block.state_file.map(|v| v.1),
            severity: block.severity.map_or(defaults::SEVERITY, |v| v.1),
            facility: block.facility.map_or(defaults::FACILITY, |v| v.1),
            trim_line_over: block.trim_line_over.map(|v| v.1),
        });
    }

    fn selector_line(&mut self, line: usize, text: &str) {
        self.selector_lines += 1;
        let mut words = text.split_whitespace();
        let (Some(selector_text), Some(action)) = (words.next(), words.next()) else {
            let word = text.split_whitespace().next().unwrap_or(text);
            let message = if text.contains('(') || text.contains('{') {
                "RainerScript statements are not supported in .conf files; use the TOML form"
            } else {
                "not a directive ($...) or a selector line (facility.priority action)"
            };
            self.error(line, word, message);
            return;
        };
        if let Some(extra) = words.next() {
            self.error(
                line,
                action,
                format!("unexpected {extra:?} after the action"),
            );
            return;
        }
        let selector = match parse_selector(selector_text) {
            Ok(s) => s,
            Err(e) => {
                self.error(line, selector_text, e);
                return;
            }
        };
        match self.action(action) {
            Ok(destination) => self.actions.push(PendingAction {
                line,
                key: selector_text.to_owned(),
                selector,
                destination,
            }),
            Err(e) => self.error(line, action, e),
        }
    }

    fn finish(mut self) -> Result<ShipperConfig, ConfigErrors> {
        if self.block.is_complete() {
            self.finish_block();
        } else if let Some(line) = self.block.first_line() {
            let (key, message) = match &self.block.name {
                Some((_, name)) => (
                    "$InputFileTag",
                    format!("missing for $InputFileName {name}"),
                ),
                None => (
                    "$InputFileName",
                    "missing for the $InputFile* directives here".to_owned(),
                ),
            };
            self.error(line, key, message);
        }

        let dir = value::config_dir(self.file);
        let work_dir = value::resolve(
            &dir,
            self.work_dir
                .as_deref()
                .unwrap_or(Path::new(defaults::WORK_DIR)),
        );
        let poll = self.poll_interval.unwrap_or(defaults::POLL_INTERVAL);
        let max_line_bytes = self.max_message_size.unwrap_or(defaults::MAX_LINE_BYTES);

        let mut inputs = Vec::with_capacity(self.inputs.len());
        for pending in &self.inputs {
            let path = value::resolve(&dir, Path::new(&pending.path));
            if let Err(e) = defaults::check_input_path(&path) {
                self.errors.push(ConfigError::new(
                    self.file,
                    Some(pending.line),
                    Some("$InputFileName"),
                    e,
                ));
            }
            let (max_line_bytes, long_lines) = match pending.trim_line_over {
                Some(n) => (n, LongLines::Truncate),
                None => (max_line_bytes, LongLines::Split),
            };
            let state_file = defaults::state_file(&work_dir, &path, pending.state_file.as_deref());
            inputs.push(InputConfig {
                path,
                tag: pending.tag.clone(),
                facility: pending.facility,
                severity: pending.severity,
                state_file,
                watch: WatchMode::Inotify { fallback: poll },
                start_at: StartAt::Beginning,
                max_line_bytes,
                long_lines,
                partial_line_timeout: None,
                on_shrink: OnShrink::NewContent,
            });
        }
        let states: Vec<_> = self
            .inputs
            .iter()
            .zip(&inputs)
            .map(|(p, i)| (Some(p.line), i.state_file.as_path()))
            .collect();
        defaults::check_unique_state_files(
            self.file,
            &states,
            &mut self.errors,
            "$InputFileStateFile",
        );

        if inputs.is_empty() {
            self.errors.push(ConfigError::new(
                self.file,
                None,
                Some("$InputFileName"),
                "no file to monitor is configured",
            ));
        }
        if self.selector_lines == 0 {
            self.errors.push(ConfigError::new(
                self.file,
                None,
                None,
                "no destination is configured (add a selector line such as `*.* @@host:514`)",
            ));
        }

        let mut destinations: Vec<DestinationConfig> = Vec::with_capacity(self.actions.len());
        for action in std::mem::take(&mut self.actions) {
            match facility_filter(&action.selector, &inputs) {
                Ok(facility) => {
                    let taken: Vec<String> = destinations.iter().map(|d| d.name.clone()).collect();
                    let name = defaults::unique_name(&taken, action.destination.name.clone());
                    destinations.push(DestinationConfig {
                        name,
                        facility,
                        ..action.destination
                    });
                }
                Err(e) if !inputs.is_empty() => self.error(action.line, &action.key, e),
                Err(_) => {}
            }
        }

        let hostname = self.hostname.take().unwrap_or_else(value::local_hostname);
        let tls_files = self.tls_files(&destinations);
        self.errors.into_result(ShipperConfig {
            source: self.file.to_path_buf(),
            work_dir,
            hostname,
            inputs,
            destinations,
            stats_interval: defaults::STATS_INTERVAL,
            tls_files,
            metrics_address: None,
        })
    }
}

#[cfg(test)]
mod tests;
