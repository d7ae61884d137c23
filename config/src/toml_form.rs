//! Shared plumbing for the TOML forms: turning toml's byte spans into line numbers and keys, and
//! reading the scalar shapes (durations, sizes, enums) every TOML form uses.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::value;
use crate::{ConfigError, ConfigErrors};

/// A TOML file being validated; collects errors with their lines.
pub(crate) struct TomlFile<'a> {
    pub file: &'a Path,
    text: &'a str,
    pub errors: ConfigErrors,
}

impl<'a> TomlFile<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        TomlFile {
            file,
            text,
            errors: ConfigErrors::default(),
        }
    }

    /// Deserializes the raw form. An unknown key is recorded and its line blanked, and the rest
    /// is read on, so it is reported together with every other error; any other syntax or
    /// shape error (wrong type, bad TOML) ends parsing.
    pub fn deserialize<T: DeserializeOwned>(&mut self) -> Result<T, ConfigErrors> {
        let mut text = self.text.to_owned();
        loop {
            let err = match toml::from_str(&text) {
                Ok(raw) => return Ok(raw),
                Err(err) => err,
            };
            let line = err.span().map(|s| line_of(&text, s.start));
            let key = line.and_then(|l| key_on_line(&text, l));
            self.errors.push(ConfigError::new(
                self.file,
                line,
                key.as_deref(),
                err.message().trim().to_owned(),
            ));
            match (err.message().starts_with("unknown field"), err.span()) {
                // Same length, so every later span still points at the same line.
                (true, Some(span)) => blank_line(&mut text, span.start),
                _ => return Err(std::mem::take(&mut self.errors)),
            }
        }
    }

    pub fn line(&self, span: &Range<usize>) -> usize {
        line_of(self.text, span.start)
    }

    pub fn error(&mut self, span: &Range<usize>, key: &str, message: impl Into<String>) {
        let line = self.line(span);
        self.errors
            .push(ConfigError::new(self.file, Some(line), Some(key), message));
    }

    /// A problem with the whole file (a missing section), not one line.
    pub fn file_error(&mut self, key: Option<&str>, message: impl Into<String>) {
        self.errors
            .push(ConfigError::new(self.file, None, key, message));
    }

    /// Runs `parse` on a present value, recording its error at the value's line.
    pub fn check<T, U>(
        &mut self,
        value: Option<&Spanned<T>>,
        key: &str,
        parse: impl FnOnce(&T) -> Result<U, String>,
    ) -> Option<U> {
        let value = value?;
        match parse(value.get_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(&value.span(), key, e);
                None
            }
        }
    }

    pub fn into_result<T>(self, value: T) -> Result<T, ConfigErrors> {
        self.errors.into_result(value)
    }
}

/// Replaces the line holding byte `at` with spaces.
fn blank_line(text: &mut String, at: usize) {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let blank = " ".repeat(end - start);
    text.replace_range(start..end, &blank);
}

/// Integer seconds or a duration string.
pub(crate) fn duration(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::Integer(secs) => u64::try_from(*secs)
            .map(Duration::from_secs)
            .map_err(|_| format!("negative duration {secs}")),
        toml::Value::String(text) => value::parse_duration(text),
        other => Err(format!(
            "expected a duration such as \"5s\" or 30, got {}",
            other.type_str()
        )),
    }
}

/// Integer bytes or a size string (`"64k"`).
pub(crate) fn size(v: &toml::Value) -> Result<usize, String> {
    match v {
        toml::Value::Integer(n) => usize::try_from(*n).map_err(|_| format!("negative size {n}")),
        toml::Value::String(text) => value::parse_size(text),
        other => Err(format!(
            "expected a size such as 8192 or \"8k\", got {}",
            other.type_str()
        )),
    }
}

/// One of a fixed set of words.
pub(crate) fn choice<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|&(_, v)| v)
        .ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
            format!(
                "unknown value {text:?}, expected one of {}",
                names.join(", ")
            )
        })
}

pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The key a line sets (`tag = ...` gives `tag`), or the table it opens (`[[input]]` gives `input`).
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let content = text.lines().nth(line.checked_sub(1)?)?.trim();
    let key = if content.starts_with('[') {
        content.trim_matches(|c| c == '[' || c == ']')
    } else {
        content.split_once('=')?.0
    };
    let key = key.trim().trim_matches('"');
    (!key.is_empty()).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_keys() {
        let text = "a = 1\n[[input]]\n  tag = \"x\"\n";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 7), 2);
        assert_eq!(line_of(text, 1000), 4);
        assert_eq!(key_on_line(text, 2).as_deref(), Some("input"));
        assert_eq!(key_on_line(text, 3).as_deref(), Some("tag"));
        assert_eq!(key_on_line(text, 9), None);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        name: Spanned<String>,
        count: Option<Spanned<toml::Value>>,
    }

    #[test]
    fn unknown_keys_are_reported_with_every_other_error() {
        let text = "colour = \"réd\"\nname = \"x\"\nshade = 2\ncount = -3\n";
        let mut f = TomlFile::new(Path::new("/c.toml"), text);
        let raw: Raw = f.deserialize().expect("read on past unknown keys");
        assert_eq!(raw.name.get_ref(), "x");
        let count = raw.count.unwrap();
        f.check(Some(&count), "count", size);
        let found: Vec<(Option<usize>, Option<&str>)> = f
            .errors
            .0
            .iter()
            .map(|e| (e.line, e.key.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                (Some(1), Some("colour")),
                (Some(3), Some("shade")),
                (Some(4), Some("count"))
            ]
        );
        // A wrong type still ends parsing, with what was found so far.
        let mut f = TomlFile::new(Path::new("/c.toml"), "shade = 1\n\nname = 3\n");
        let errors = f.deserialize::<Raw>().unwrap_err();
        assert_eq!(errors.0.last().and_then(|e| e.line), Some(3), "{errors}");
    }
}
