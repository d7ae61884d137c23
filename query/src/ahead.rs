//! Files searched on every core ahead of the merge that consumes them in order, never more than a
//! fixed number of finished files waiting: memory is bounded by that window, not by the archive.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Condvar, Mutex};

/// Where the searchers are: the next file to start and the first file not yet consumed.
struct Window {
    next: usize,
    consumed: usize,
}

/// The results of the files, in order.
pub struct Results<'a, T> {
    received: Receiver<(usize, T)>,
    waiting: BTreeMap<usize, T>,
    want: usize,
    count: usize,
    window: &'a (Mutex<Window>, Condvar),
}

impl<T> Results<'_, T> {
    /// The next file's result; `None` after the last.
    pub fn next(&mut self) -> Option<T> {
        if self.want == self.count {
            return None;
        }
        let result = loop {
            if let Some(result) = self.waiting.remove(&self.want) {
                break result;
            }
            // The searchers hold the sender until every file is sent.
            let (i, result) = self.received.recv().ok()?;
            self.waiting.insert(i, result);
        };
        self.want += 1;
        let (lock, moved) = self.window;
        if let Ok(mut window) = lock.lock() {
            window.consumed = self.want;
        }
        moved.notify_all();
        Some(result)
    }
}

/// Runs `search` on files `0..count` on `threads` threads, at most `ahead` files beyond the one
/// `consume` takes next, while `consume` takes the results in order. When `consume` returns
/// (early, with `--limit`), the files not yet started are not searched.
pub fn search_ahead<T: Send, R>(
    count: usize,
    threads: usize,
    ahead: usize,
    search: impl Fn(usize) -> T + Sync,
    consume: impl FnOnce(&mut Results<T>) -> R,
) -> R {
    let window = (
        Mutex::new(Window {
            next: 0,
            consumed: 0,
        }),
        Condvar::new(),
    );
    let stop = AtomicBool::new(false);
    let (sender, received) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            let sender = sender.clone();
            let (window, stop, search) = (&window, &stop, &search);
            scope.spawn(move || loop {
                let (lock, moved) = window;
                let Ok(mut w) = lock.lock() else { return };
                while w.next < count
                    && w.next >= w.consumed + ahead
                    && !stop.load(Ordering::Relaxed)
                {
                    w = match moved.wait(w) {
                        Ok(w) => w,
                        Err(_) => return,
                    };
                }
                if w.next >= count || stop.load(Ordering::Relaxed) {
                    return;
                }
                let i = w.next;
                w.next += 1;
                drop(w);
                if sender.send((i, search(i))).is_err() {
                    return;
                }
            });
        }
        drop(sender);
        let mut results = Results {
            received,
            waiting: BTreeMap::new(),
            want: 0,
            count,
            window: &window,
        };
        let out = consume(&mut results);
        stop.store(true, Ordering::Relaxed);
        // Wake the searchers waiting for room, so that they see the stop.
        let _guard = window.0.lock();
        window.1.notify_all();
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_and_a_stop_starts_no_more() {
        let started = std::sync::atomic::AtomicUsize::new(0);
        let all = search_ahead(
            50,
            3,
            4,
            |i| i * 10,
            |r| std::iter::from_fn(|| r.next()).collect::<Vec<_>>(),
        );
        assert_eq!(all, (0..50).map(|i| i * 10).collect::<Vec<_>>());
        let first = search_ahead(
            1000,
            2,
            4,
            |i| {
                started.fetch_add(1, Ordering::Relaxed);
                i
            },
            |r| r.next(),
        );
        assert_eq!(first, Some(0));
        assert!(started.load(Ordering::Relaxed) <= 1 + 4 + 2);
    }
}
