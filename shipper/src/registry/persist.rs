//! Writing the incarnations and what each destination has taken to the state files.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::MutexGuard;

use tracing::{info, warn};

use super::{lock, Inner, Registry};
use crate::state::FileState;

impl Registry {
    /// Writes every state file (on a timer and at shutdown).
    pub fn persist_all(&self) {
        let inner = lock(&self.inner);
        let all = self.inputs.iter().map(|i| i.state_file.clone()).collect();
        self.persist_locked(inner, &all);
    }

    /// Brings every state file's durable copy up to date (on a timer and at shutdown).
    pub fn sync_states(&self) {
        self.states.sync_all();
    }

    /// Takes a snapshot under the registry lock, then writes it holding only the persist lock.
    pub(super) fn persist_locked(
        &self,
        inner: MutexGuard<'_, Inner>,
        state_files: &HashSet<PathBuf>,
    ) {
        let mut failing = lock(&self.persist);
        let committed = lock(&self.committed);
        let mut out: BTreeMap<PathBuf, Vec<FileState>> = state_files
            .iter()
            .map(|p| (p.clone(), Vec::new()))
            .collect();
        let mut unsaved = HashSet::new();
        for inc in &inner.files {
            let Some(entries) = out.get_mut(&self.inputs[inc.input].state_file) else {
                continue;
            };
            if !inc.lifecycle.is_saved() {
                unsaved.insert(inc.id);
            }
            entries.push(self.file_state(&committed, inc));
        }
        // Saved entries not opened yet, and finished files, are kept as they were.
        for (state_file, pending) in &inner.candidates {
            if let Some(entries) = out.get_mut(state_file) {
                entries.extend(pending.iter().cloned());
            }
        }
        for (input, tombstone) in &inner.tombstones {
            if let Some(entries) = out.get_mut(&self.inputs[*input].state_file) {
                entries.push(tombstone.clone());
            }
        }
        drop(committed);
        drop(inner);
        for (path, files) in out {
            match self.states.store(&path, files) {
                Err(err) if failing.insert(path.clone()) => {
                    warn!(path = %path.display(), %err, "state not saved; lines may be sent again after a restart");
                }
                Ok(()) if failing.remove(&path) => {
                    info!(path = %path.display(), "state saved again");
                }
                _ => {}
            }
        }
        drop(failing);
        // Shown to readers now. After a failed write too: shipping goes on while the state's disk
        // is full, at the cost of lines sent again after a crash then (said above, once).
        if !unsaved.is_empty() {
            let mut inner = lock(&self.inner);
            for inc in inner
                .files
                .iter_mut()
                .filter(|inc| unsaved.contains(&inc.id))
            {
                inc.lifecycle = inc.lifecycle.saved();
            }
            inner.generation += 1;
        }
    }
}
