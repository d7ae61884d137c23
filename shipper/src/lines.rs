//! Cutting file bytes into lines: at `\n`, holding an unterminated tail, splitting or truncating
//! lines over the maximum length. Pure logic over byte slices; the reader feeds it file chunks.

use estuary_config::shipper::LongLines;

/// Why a line ends where it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Ended by `\n` (not included).
    Whole,
    /// A piece of a line longer than the maximum; the rest follows as further lines.
    Split,
    /// The first `max` bytes of a longer line; the rest was dropped.
    Truncated,
    /// An unterminated last line sent after the idle timeout; its continuation becomes a new line.
    Partial,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line<'a> {
    /// Offset of the first byte in the file.
    pub start: u64,
    /// Offset after the line and its terminator: where reading resumes.
    pub end: u64,
    pub bytes: &'a [u8],
    pub kind: LineKind,
}

#[derive(Debug)]
pub struct Cutter {
    max: usize,
    policy: LongLines,
    /// Truncate mode: the kept head of an over-long line whose end is not yet seen.
    discarding: Option<Discarding>,
}

#[derive(Debug)]
struct Discarding {
    start: u64,
    head: Vec<u8>,
}

impl Cutter {
    pub fn new(max: usize, policy: LongLines) -> Self {
        Cutter {
            max: max.max(1),
            policy,
            discarding: None,
        }
    }

    /// How many bytes a read must offer at least so that `cut` always makes progress.
    pub fn min_chunk(&self) -> usize {
        self.max + 1
    }

    /// Cuts the lines in `chunk` (which starts at file offset `base`) and returns how many bytes
    /// were consumed; the rest is an unterminated line to offer again with more bytes.
    pub fn cut(&mut self, chunk: &[u8], base: u64, mut emit: impl FnMut(Line<'_>)) -> usize {
        let mut pos = 0;
        while pos < chunk.len() {
            let rest = &chunk[pos..];
            if let Some(discarding) = &self.discarding {
                match memchr::memchr(b'\n', rest) {
                    Some(i) => {
                        let end = base + (pos + i + 1) as u64;
                        emit(Line {
                            start: discarding.start,
                            end,
                            bytes: &discarding.head,
                            kind: LineKind::Truncated,
                        });
                        self.discarding = None;
                        pos += i + 1;
                        continue;
                    }
                    None => return chunk.len(),
                }
            }
            let window = &rest[..rest.len().min(self.max + 1)];
            let start = base + pos as u64;
            match memchr::memchr(b'\n', window) {
                Some(i) if i <= self.max => {
                    emit(Line {
                        start,
                        end: start + i as u64 + 1,
                        bytes: &rest[..i],
                        kind: LineKind::Whole,
                    });
                    pos += i + 1;
                }
                _ if rest.len() > self.max => match self.policy {
                    LongLines::Split => {
                        let end = start + self.max as u64;
                        emit(Line {
                            start,
                            end,
                            bytes: &rest[..self.max],
                            kind: LineKind::Split,
                        });
                        pos += self.max;
                    }
                    LongLines::Truncate => {
                        self.discarding = Some(Discarding {
                            start,
                            head: rest[..self.max].to_vec(),
                        });
                        pos += self.max;
                    }
                },
                _ => break,
            }
        }
        pos
    }

    /// Sends what is held at EOF after the idle timeout: the unterminated `rest` (which starts at
    /// `base`), or the head of a truncated line. Returns the bytes consumed (all of `rest`).
    pub fn flush(&mut self, rest: &[u8], base: u64, mut emit: impl FnMut(Line<'_>)) -> usize {
        let end = base + rest.len() as u64;
        if let Some(discarding) = self.discarding.take() {
            emit(Line {
                start: discarding.start,
                end,
                bytes: &discarding.head,
                kind: LineKind::Truncated,
            });
        } else if !rest.is_empty() {
            // `cut` already split anything over the maximum.
            emit(Line {
                start: base,
                end,
                bytes: rest,
                kind: LineKind::Partial,
            });
        }
        rest.len()
    }

    /// Whether bytes are held that `flush` would send.
    pub fn holds_partial(&self) -> bool {
        self.discarding.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cut = (Vec<(u64, u64, Vec<u8>, LineKind)>, usize);

    fn cut_all(cutter: &mut Cutter, chunk: &[u8], base: u64) -> Cut {
        let mut out = Vec::new();
        let used = cutter.cut(chunk, base, |l| {
            out.push((l.start, l.end, l.bytes.to_vec(), l.kind))
        });
        (out, used)
    }

    #[test]
    fn holds_unterminated_tail() {
        let mut c = Cutter::new(100, LongLines::Split);
        let (lines, used) = cut_all(&mut c, b"a\tb\nc\xff\nhalf", 10);
        assert_eq!(
            lines,
            vec![
                (10, 14, b"a\tb".to_vec(), LineKind::Whole),
                (14, 17, b"c\xff".to_vec(), LineKind::Whole)
            ]
        );
        assert_eq!(used, 7);
        let (lines, used) = cut_all(&mut c, b"half line\n", 17);
        assert_eq!(
            lines,
            vec![(17, 27, b"half line".to_vec(), LineKind::Whole)]
        );
        assert_eq!(used, 10);
    }

    #[test]
    fn empty_lines_are_lines() {
        let mut c = Cutter::new(100, LongLines::Split);
        let (lines, used) = cut_all(&mut c, b"\n\nx\n", 0);
        assert_eq!(lines.len(), 3);
        assert_eq!(used, 4);
    }

    #[test]
    fn splits_long_lines() {
        let mut c = Cutter::new(4, LongLines::Split);
        let (lines, used) = cut_all(&mut c, b"abcdefghij\nxy\n", 0);
        let texts: Vec<_> = lines.iter().map(|l| (l.2.clone(), l.3)).collect();
        assert_eq!(
            texts,
            vec![
                (b"abcd".to_vec(), LineKind::Split),
                (b"efgh".to_vec(), LineKind::Split),
                (b"ij".to_vec(), LineKind::Whole),
                (b"xy".to_vec(), LineKind::Whole)
            ]
        );
        assert_eq!(used, 14);
        // A line of exactly the maximum is whole.
        let (lines, _) = cut_all(&mut c, b"abcd\n", 0);
        assert_eq!(lines[0].3, LineKind::Whole);
    }

    #[test]
    fn truncates_long_lines_across_chunks() {
        let mut c = Cutter::new(4, LongLines::Truncate);
        let (lines, used) = cut_all(&mut c, b"ok\nabcdefgh", 0);
        assert_eq!(lines.len(), 1);
        assert_eq!(used, 11);
        let (lines, used) = cut_all(&mut c, b"ijk", 11);
        assert!(lines.is_empty());
        assert_eq!(used, 3);
        let (lines, used) = cut_all(&mut c, b"lm\nnext\n", 14);
        assert_eq!(
            lines,
            vec![
                (3, 17, b"abcd".to_vec(), LineKind::Truncated),
                (17, 22, b"next".to_vec(), LineKind::Whole)
            ]
        );
        assert_eq!(used, 8);
    }

    #[test]
    fn flush_sends_partial() {
        let mut c = Cutter::new(100, LongLines::Split);
        let mut out = Vec::new();
        let used = c.flush(b"tail", 50, |l| out.push((l.start, l.end, l.kind)));
        assert_eq!(used, 4);
        assert_eq!(out, vec![(50, 54, LineKind::Partial)]);
    }
}
