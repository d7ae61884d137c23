//! Defaults and checks both shipper formats share, so a `.conf` and a `.toml` saying the same
//! thing give the same `ShipperConfig`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use estuary_wire::{Facility, Severity};

use crate::{ConfigError, ConfigErrors};

/// Where state files go without `$WorkDirectory` / `work_dir`. Not rsyslog's directory, so both can run
/// side by side during a migration without sharing state files.
pub(crate) const WORK_DIR: &str = "/var/spool/estuary";
/// imfile's defaults (`local0`, `notice`).
pub(crate) const FACILITY: Facility = Facility::Local0;
pub(crate) const SEVERITY: Severity = Severity::Notice;
/// imfile's `PollingInterval` default.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_secs(10);
/// rsyslog's global `maxMessageSize` default.
pub(crate) const MAX_LINE_BYTES: usize = 8 * 1024;
pub(crate) const PORT: u16 = 514;
pub(crate) const STATS_INTERVAL: Duration = Duration::from_secs(60);
pub(crate) const RETRY_INTERVAL: Duration = Duration::from_secs(1);
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(30);
pub(crate) const RELP_WINDOW: usize = estuary_wire::relp::client::DEFAULT_WINDOW;
pub(crate) const RELP_WINDOW_MAX: usize = 65_536;
pub(crate) const MAX_LINE_BYTES_LIMIT: usize = 64 * 1024 * 1024;
/// RFC 3164 TAG field limit (rsyslog's forward template cuts at 32 too).
pub(crate) const TAG_MAX: usize = 32;

/// An input's state file: `name`, else imfile's old naming (`imfile-state:` plus the path with `/`
/// turned into `-`), resolved against `work_dir`.
pub(crate) fn state_file(work_dir: &Path, input: &Path, name: Option<&str>) -> PathBuf {
    let name = name.map_or_else(
        || {
            let input = crate::value::canonical_folder(input);
            format!("imfile-state:{}", input.to_string_lossy().replace('/', "-"))
        },
        str::to_owned,
    );
    crate::value::resolve(work_dir, Path::new(&name))
}

pub(crate) fn check_tag(tag: &str) -> Result<(), String> {
    if tag.is_empty() {
        return Err("tag is empty".into());
    }
    if tag.len() > TAG_MAX {
        return Err(format!(
            "tag {tag:?} is longer than {TAG_MAX} characters (RFC 3164 receivers cut it)"
        ));
    }
    if let Some(bad) = tag.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!("invalid character {bad:?} in tag {tag:?}"));
    }
    Ok(())
}

pub(crate) fn check_input_path(path: &Path) -> Result<(), String> {
    let text = path
        .to_str()
        .ok_or_else(|| format!("path {path:?} is not UTF-8"))?;
    glob::Pattern::new(text).map_err(|e| format!("invalid glob {text:?}: {e}"))?;
    Ok(())
}

pub(crate) fn check_poll_interval(interval: Duration) -> Result<(), String> {
    if interval < Duration::from_millis(10) {
        return Err("polling interval must be at least 10ms".into());
    }
    Ok(())
}

pub(crate) fn check_max_line_bytes(n: usize) -> Result<(), String> {
    if !(128..=MAX_LINE_BYTES_LIMIT).contains(&n) {
        return Err(format!(
            "{n} is out of range (128 to {MAX_LINE_BYTES_LIMIT} bytes)"
        ));
    }
    Ok(())
}

/// Two inputs writing one state file would overwrite each other's offsets.
pub(crate) fn check_unique_state_files(
    file: &Path,
    inputs: &[(Option<usize>, &Path)],
    errors: &mut ConfigErrors,
    key: &str,
) {
    let mut seen: HashMap<&Path, Option<usize>> = HashMap::new();
    for &(line, state) in inputs {
        if let Some(first) = seen.get(state) {
            let at = first.map(|l| format!(" (line {l})")).unwrap_or_default();
            errors.push(ConfigError::new(
                file,
                line,
                Some(key),
                format!(
                    "state file {} is already used by another input{at}",
                    state.display()
                ),
            ));
        } else {
            seen.insert(state, line);
        }
    }
}

/// Gives later duplicates a `#2`, `#3`... suffix so every destination has its own name in statistics.
pub(crate) fn unique_name(taken: &[String], name: String) -> String {
    if !taken.contains(&name) {
        return name;
    }
    (2..)
        .map(|n| format!("{name}#{n}"))
        .find(|candidate| !taken.contains(candidate))
        .unwrap_or(name)
}
