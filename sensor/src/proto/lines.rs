//! A direction's unconsumed stream bytes, read as CRLF/LF lines or as raw bytes (the job of
//! Zeek's ContentLine analyzer). Lines are capped: a longer run is handed out in pieces.

#[derive(Debug, Default)]
pub(crate) struct StreamBuf {
    buf: Vec<u8>,
    /// Bytes before `pos` are consumed; they are dropped by [`StreamBuf::compact`].
    pos: usize,
}

/// A line and whether it hit the length cap instead of ending in LF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub text: Vec<u8>,
    pub overflow: bool,
}

impl StreamBuf {
    pub fn extend(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    pub fn available(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// The next line without its terminator (LF, or CR LF), or `max` bytes if no LF comes
    /// within them; `None` when an incomplete line shorter than `max` is all that is left.
    pub fn line(&mut self, max: usize) -> Option<Line> {
        let avail = self.available();
        let window = &avail[..avail.len().min(max)];
        match window.iter().position(|b| *b == b'\n') {
            Some(i) => {
                let mut text = avail[..i].to_vec();
                if text.last() == Some(&b'\r') {
                    text.pop();
                }
                self.pos += i + 1;
                Some(Line {
                    text,
                    overflow: false,
                })
            }
            None if avail.len() >= max => {
                let text = window.to_vec();
                self.pos += max;
                Some(Line {
                    text,
                    overflow: true,
                })
            }
            None => None,
        }
    }

    /// Up to `n` raw bytes.
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let avail = self.available();
        let n = n.min(avail.len());
        let out = avail[..n].to_vec();
        self.pos += n;
        out
    }

    /// Everything left, consumed.
    pub fn take_all(&mut self) -> Vec<u8> {
        let out = self.available().to_vec();
        self.clear();
        out
    }

    pub fn clear(&mut self) {
        self.buf.clear();
        self.pos = 0;
    }

    fn compact(&mut self) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_bytes() {
        let mut b = StreamBuf::default();
        b.extend(b"ab\r\ncd\nxyz");
        assert_eq!(b.line(100).map(|l| l.text), Some(b"ab".to_vec()));
        assert_eq!(b.line(100).map(|l| l.text), Some(b"cd".to_vec()));
        assert_eq!(b.line(100), None);
        b.extend(b"\n1234");
        assert_eq!(b.line(100).map(|l| l.text), Some(b"xyz".to_vec()));
        assert_eq!(b.take(2), b"12");
        assert_eq!(b.take_all(), b"34");
        assert!(b.available().is_empty());
    }

    #[test]
    fn overlong_lines_come_in_pieces() {
        let mut b = StreamBuf::default();
        b.extend(&[b'x'; 10]);
        let l = b.line(4).unwrap();
        assert!(l.overflow);
        assert_eq!(l.text.len(), 4);
    }
}
