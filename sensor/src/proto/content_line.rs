//! Zeek's `ContentLine_Analyzer` with the settings HTTP gives it (`CR_LF_as_EOL` =
//! `CR_as_EOL | LF_as_EOL`, NULs not flagged): CR LF, a lone LF or a lone CR ends a line. A
//! direction's bytes go through one [`LineEnds`], in line and plain delivery alike, so that an
//! LF right after a line's CR is dropped wherever it comes.

use super::lines::Line;

/// What a byte read in line delivery does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Byte {
    /// An LF right after a CR that ended a line: it belongs to that line's end.
    Swallowed,
    /// The byte ends the line (it is not part of it).
    End,
    Data,
}

/// The state `ContentLine_Analyzer::DoDeliver` and `DoDeliverOnce` keep between bytes.
#[derive(Debug, Default)]
pub(crate) struct LineEnds {
    /// `last_char == '\r'`: the last byte was a CR that ended a line.
    after_cr: bool,
    /// `line_terminated_with_single_CR` is due.
    single_cr: bool,
}

impl LineEnds {
    /// `DoDeliver`'s CRLF compression, checked before plain delivery: an LF right after a
    /// line's CR is dropped.
    pub fn swallows(&mut self, b: u8) -> bool {
        let swallowed = self.after_cr && b == b'\n';
        if swallowed {
            self.after_cr = false;
        }
        swallowed
    }

    /// Plain delivery took bytes: it clears `last_char`.
    pub fn plain(&mut self) {
        self.after_cr = false;
    }

    /// `DoDeliverOnce` for one byte: a CR ends the line at once (the LF that may follow is
    /// then swallowed); a byte kept in a line right after such a CR is the weird. A CR
    /// right after a CR ends an empty line without it.
    pub fn byte(&mut self, b: u8) -> Byte {
        let after_cr = std::mem::take(&mut self.after_cr);
        match b {
            b'\n' if after_cr => Byte::Swallowed,
            b'\r' => {
                self.after_cr = true;
                Byte::End
            }
            b'\n' => Byte::End,
            _ => {
                self.single_cr |= after_cr;
                Byte::Data
            }
        }
    }

    /// Whether `line_terminated_with_single_CR` became due since the last call.
    pub fn take_single_cr(&mut self) -> bool {
        std::mem::take(&mut self.single_cr)
    }
}

/// A direction's stream as the HTTP analyzer reads it: lines through [`LineEnds`], the open
/// line kept as it grows, and raw bytes for bodies.
#[derive(Debug, Default)]
pub(crate) struct ContentLines {
    buf: Vec<u8>,
    /// Bytes before `pos` are consumed.
    pos: usize,
    /// The open line (`buf`/`offset` of `ContentLine_Analyzer`).
    line: Vec<u8>,
    ends: LineEnds,
}

impl ContentLines {
    pub fn extend(&mut self, data: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes not yet read.
    pub fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The next line without its end, or `max` bytes of it when it grows that long; `None`
    /// when the bytes so far leave it open.
    pub fn line(&mut self, max: usize) -> Option<Line> {
        loop {
            if self.line.len() >= max {
                let text = std::mem::take(&mut self.line);
                self.ends.plain();
                return Some(Line {
                    text,
                    overflow: true,
                });
            }
            let &b = self.buf.get(self.pos)?;
            self.pos += 1;
            match self.ends.byte(b) {
                Byte::Swallowed => {}
                Byte::End => {
                    // The look-ahead for an LF within the bytes at hand.
                    if b == b'\r' && self.buf.get(self.pos) == Some(&b'\n') {
                        self.ends.swallows(b'\n');
                        self.pos += 1;
                    }
                    return Some(Line {
                        text: std::mem::take(&mut self.line),
                        overflow: false,
                    });
                }
                Byte::Data => {
                    self.line.push(b);
                    // Up to the next CR or LF every byte is data and changes no state.
                    let rest = &self.buf[self.pos..];
                    let rest = &rest[..rest.len().min(max.saturating_sub(self.line.len()))];
                    let run = rest
                        .iter()
                        .position(|&c| c == b'\r' || c == b'\n')
                        .unwrap_or(rest.len());
                    self.line.extend_from_slice(&rest[..run]);
                    self.pos += run;
                }
            }
        }
    }

    /// Up to `n` bytes of plain delivery (after an LF that ends the last line).
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        self.swallow_lf();
        let avail = self.available();
        let out = avail[..n.min(avail.len())].to_vec();
        if !out.is_empty() {
            self.ends.plain();
        }
        self.pos += out.len();
        out
    }

    /// Everything left, in plain delivery.
    pub fn take_all(&mut self) -> Vec<u8> {
        self.take(usize::MAX)
    }

    /// Hands up to `n` bytes, with the direction's [`LineEnds`], to a body's reader, which
    /// returns how many it took.
    pub fn read(&mut self, n: usize, f: impl FnOnce(&[u8], &mut LineEnds) -> usize) -> usize {
        let avail = &self.buf[self.pos..];
        let used = f(&avail[..n.min(avail.len())], &mut self.ends);
        self.pos += used;
        used
    }

    /// Drops an LF that ends the last line (`DoDeliver`), before plain delivery.
    pub fn swallow_lf(&mut self) {
        if let Some(&b) = self.buf.get(self.pos) {
            if self.ends.swallows(b) {
                self.pos += 1;
            }
        }
    }

    pub fn ends(&mut self) -> &mut LineEnds {
        &mut self.ends
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
        self.line.clear();
    }
}

#[cfg(test)]
mod tests;
