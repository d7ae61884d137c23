//! The run's progress on a terminal: packets the sensor read, rows it wrote and rows the
//! aggregator holds. Nothing at all when stderr is not a terminal, so logs and pipes stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress(Option<ProgressBar>);

impl Progress {
    pub fn new() -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new(0);
        // The template is a constant that parses.
        let style = ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} rows at the aggregator ({elapsed})",
        )
        .expect("a valid progress template");
        bar.set_style(style);
        Progress(Some(bar))
    }

    pub fn is_shown(&self) -> bool {
        self.0.is_some()
    }

    pub fn update(&self, packets: u64, written: u64, committed: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(written);
            bar.set_position(committed.min(written));
            bar.set_message(format!("{packets} packets read,"));
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
