//! The answer in time order: a k-way merge by `ts` over the files' sorted rows. A file is taken
//! into the merge only when the rows up to its earliest possible `ts` have been written, so the
//! files held at once are those whose times overlap, not the whole archive.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};

use crate::ahead::Results;
use crate::scan::FileResult;
use crate::time::Micros;

/// What the merge wrote and found.
#[derive(Debug, Default)]
pub struct Merged {
    /// Rows written.
    pub rows: u64,
    /// Matching rows in the files searched (all of them without `--limit`).
    pub count: u64,
    /// A file's index and what went wrong with it.
    pub problems: Vec<(usize, String)>,
}

/// Writes the rows of `results` (files in the order of `earliest`, each file's rows by time)
/// merged by time, ties in file then row order; at most `limit` rows, searching no more files
/// once they are written.
pub fn merge(
    results: &mut Results<io::Result<FileResult>>,
    earliest: &[Micros],
    limit: Option<usize>,
    out: &mut impl Write,
) -> io::Result<Merged> {
    let limit = limit.map_or(u64::MAX, |l| l as u64);
    let mut merged = Merged::default();
    let mut held: Vec<Option<FileResult>> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(Micros, usize, usize)>> = BinaryHeap::new();
    while merged.rows < limit {
        // Every file that may hold a row as early as the next one is in the merge first.
        while held.len() < earliest.len()
            && heap
                .peek()
                .is_none_or(|Reverse((ts, _, _))| earliest[held.len()] <= *ts)
        {
            let file = held.len();
            let Some(result) = results.next() else { break };
            held.push(None);
            let found = match result {
                Ok(found) => found,
                Err(e) => {
                    merged.problems.push((file, format!("cannot read: {e}")));
                    continue;
                }
            };
            if found.corrupt > 0 {
                merged.problems.push((
                    file,
                    format!(
                        "{} corrupt rows skipped (wrong number of fields)",
                        found.corrupt
                    ),
                ));
            }
            if let Some(e) = &found.damage {
                merged.problems.push((
                    file,
                    format!("damaged or truncated gzip data ({e}); the rows before the damage were searched"),
                ));
            }
            merged.count += found.count;
            if !found.order.is_empty() {
                heap.push(Reverse((found.row(0).0, file, 0)));
                held[file] = Some(found);
            }
            // Counting holds no rows: stop as soon as the limit is reached.
            if heap.is_empty() && merged.count >= limit {
                return Ok(merged);
            }
        }
        let Some(Reverse((_, file, row))) = heap.pop() else {
            break;
        };
        let Some(found) = held[file].as_ref() else {
            break;
        };
        out.write_all(found.row(row).1)?;
        merged.rows += 1;
        if row + 1 < found.order.len() {
            heap.push(Reverse((found.row(row + 1).0, file, row + 1)));
        } else {
            // Written out: its memory goes back.
            held[file] = None;
        }
    }
    Ok(merged)
}
