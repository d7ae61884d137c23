//! A tag's committed high-water marks, the value of its key in the replicated KV bucket.
//!
//! The key's revision is the fence: a commit is a compare-and-set against the revision the
//! committer last saw, so of two aggregators that both believe they hold a tag, only one commit
//! lands and the other learns it was deposed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marks {
    /// The aggregator that wrote this value and how many commits it made since it claimed the
    /// tag: together they make every written value unique, so a commit whose answer was lost
    /// can be recognised when the key is read back.
    pub holder: String,
    pub commit: u64,
    /// Holder -> the revision its last landed commit was made against. Carried by every later
    /// value, so a holder that wrote a group and lost track of its compare-and-set (killed,
    /// deposed) learns from any later value whether that one landed.
    #[serde(default)]
    pub landed: BTreeMap<String, u64>,
    /// host -> file id -> (offset just past the last committed line, unix time of that commit).
    pub files: BTreeMap<String, BTreeMap<u64, (u64, u64)>>,
}

impl Marks {
    pub fn decode(value: &[u8]) -> Result<Marks, Error> {
        if value.is_empty() {
            return Ok(Marks::default());
        }
        serde_json::from_slice(value).map_err(|e| Error::Malformed(format!("marks: {e}")))
    }

    pub fn encode(&self) -> Vec<u8> {
        // A map of strings and integers always serializes.
        serde_json::to_vec(self).expect("marks serialize")
    }

    /// Offset just past the last committed line of (host, file); 0 when nothing is.
    pub fn end(&self, host: &str, file: u64) -> u64 {
        self.files
            .get(host)
            .and_then(|f| f.get(&file))
            .map_or(0, |(end, _)| *end)
    }

    /// Whether `holder`'s compare-and-set against `revision` is in this value's history.
    pub fn landed(&self, holder: &str, revision: u64) -> bool {
        self.landed.get(holder).is_some_and(|&r| r >= revision)
    }

    pub fn advance(&mut self, host: &str, file: u64, end: u64, now: u64) {
        let entry = self
            .files
            .entry(host.to_owned())
            .or_default()
            .entry(file)
            .or_insert((0, now));
        if end > entry.0 {
            *entry = (end, now);
        }
    }

    /// Forgets files not committed to since `cutoff` (unix time): their lines have left the
    /// stream, so nothing can replay them.
    pub fn prune(&mut self, cutoff: u64) {
        for files in self.files.values_mut() {
            files.retain(|_, (_, at)| *at >= cutoff);
        }
        self.files.retain(|_, files| !files.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_only_move_forward_and_round_trip() {
        let mut m = Marks::default();
        m.advance("s1", 7, 100, 10);
        m.advance("s1", 7, 50, 11);
        assert_eq!(m.end("s1", 7), 100);
        assert_eq!(m.end("s1", 8), 0);
        assert_eq!(Marks::decode(&m.encode()).unwrap(), m);
        assert_eq!(Marks::decode(b"").unwrap(), Marks::default());
        assert!(Marks::decode(b"{").is_err());
    }

    #[test]
    fn prune_drops_files_idle_past_the_cutoff() {
        let mut m = Marks::default();
        m.advance("s1", 1, 10, 100);
        m.advance("s2", 2, 10, 200);
        m.prune(150);
        assert_eq!(m.end("s1", 1), 0);
        assert_eq!(m.end("s2", 2), 10);
        assert!(!m.files.contains_key("s1"));
    }
}
