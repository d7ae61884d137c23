//! One direction of a TCP stream: in-order delivery of payload by relative sequence number,
//! bounded out-of-order buffering, and gaps when an ACK passes data never seen.

use std::collections::BTreeMap;

/// What the reassembler hands to the analyzers, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunk {
    Data(Vec<u8>),
    /// `len` bytes at stream offset `seq` were never seen.
    Gap {
        seq: u64,
        len: u64,
    },
}

/// Out-of-order data exceeded the buffer limit; the stream is skipped from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferFull;

/// Reassembly state of one direction. Sequence numbers are relative: the first payload byte
/// after the SYN is 1.
#[derive(Debug)]
pub struct Reassembler {
    /// Next sequence number to deliver.
    next: u64,
    blocks: BTreeMap<u64, Vec<u8>>,
    buffered: usize,
    max_buffered: usize,
    /// Set when the buffer limit was hit; nothing more is delivered.
    skipping: bool,
}

impl Reassembler {
    pub fn new(max_buffered: usize) -> Self {
        Reassembler {
            next: 1,
            blocks: BTreeMap::new(),
            buffered: 0,
            max_buffered,
            skipping: false,
        }
    }

    pub fn next_seq(&self) -> u64 {
        self.next
    }

    pub fn is_skipping(&self) -> bool {
        self.skipping
    }

    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Drops the buffered out-of-order data and stops delivering (memory pressure).
    pub fn give_up(&mut self) {
        self.blocks.clear();
        self.buffered = 0;
        self.skipping = true;
    }

    /// Whether bytes beyond the delivered point are waiting for a hole to fill.
    pub fn has_pending(&self) -> bool {
        !self.blocks.is_empty()
    }

    /// Adds a segment and appends the chunks now deliverable to `out`.
    pub fn add(&mut self, seq: u64, data: &[u8], out: &mut Vec<Chunk>) -> Result<(), BufferFull> {
        if self.skipping || data.is_empty() {
            return Ok(());
        }
        let end = seq + data.len() as u64;
        if end <= self.next {
            return Ok(()); // retransmission of delivered data
        }
        let (seq, data) = if seq < self.next {
            let cut = (self.next - seq) as usize;
            (self.next, &data[cut..])
        } else {
            (seq, data)
        };
        if seq == self.next {
            out.push(Chunk::Data(data.to_vec()));
            self.next = end;
            self.drain(out);
            return Ok(());
        }
        // Out of order: keep the longest block per start.
        let keep = self.blocks.get(&seq).is_none_or(|b| b.len() < data.len());
        if keep {
            if let Some(old) = self.blocks.insert(seq, data.to_vec()) {
                self.buffered -= old.len();
            }
            self.buffered += data.len();
        }
        if self.buffered > self.max_buffered {
            self.blocks.clear();
            self.buffered = 0;
            self.skipping = true;
            return Err(BufferFull);
        }
        Ok(())
    }

    fn drain(&mut self, out: &mut Vec<Chunk>) {
        while let Some((&seq, _)) = self.blocks.first_key_value() {
            if seq > self.next {
                break;
            }
            let Some((seq, block)) = self.blocks.pop_first() else {
                break;
            };
            self.buffered -= block.len();
            let end = seq + block.len() as u64;
            if end > self.next {
                let cut = (self.next - seq) as usize;
                out.push(Chunk::Data(block[cut..].to_vec()));
                self.next = end;
            }
        }
    }

    /// The peer acknowledged everything below `ack`: deliver buffered data up to it and
    /// report holes as gaps. Returns the total gap length.
    pub fn ack(&mut self, ack: u64, out: &mut Vec<Chunk>) -> u64 {
        if self.skipping || ack <= self.next {
            return 0;
        }
        let mut missed = 0;
        while let Some((&seq, _)) = self.blocks.first_key_value() {
            if seq >= ack {
                break;
            }
            if seq > self.next {
                let len = seq - self.next;
                out.push(Chunk::Gap {
                    seq: self.next,
                    len,
                });
                missed += len;
                self.next = seq;
            }
            self.drain(out);
        }
        if ack > self.next {
            let len = ack - self.next;
            out.push(Chunk::Gap {
                seq: self.next,
                len,
            });
            missed += len;
            self.next = ack;
        }
        missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(out: &[Chunk]) -> Vec<u8> {
        out.iter()
            .flat_map(|c| {
                if let Chunk::Data(d) = c {
                    d.clone()
                } else {
                    vec![]
                }
            })
            .collect()
    }

    #[test]
    fn reorders_and_drops_retransmissions() {
        let mut r = Reassembler::new(1 << 20);
        let mut out = vec![];
        r.add(4, b"def", &mut out).unwrap();
        assert!(out.is_empty());
        r.add(1, b"abc", &mut out).unwrap();
        r.add(1, b"abc", &mut out).unwrap();
        r.add(5, b"efgh", &mut out).unwrap();
        assert_eq!(data(&out), b"abcdefgh");
    }

    #[test]
    fn ack_over_hole_is_a_gap() {
        let mut r = Reassembler::new(1 << 20);
        let mut out = vec![];
        r.add(1, b"ab", &mut out).unwrap();
        r.add(6, b"fg", &mut out).unwrap();
        assert_eq!(r.ack(10, &mut out), 3 + 2);
        assert_eq!(out[1], Chunk::Gap { seq: 3, len: 3 });
        assert_eq!(out[2], Chunk::Data(b"fg".to_vec()));
        assert_eq!(out[3], Chunk::Gap { seq: 8, len: 2 });
    }

    #[test]
    fn bounded() {
        let mut r = Reassembler::new(10);
        let mut out = vec![];
        assert!(r.add(100, &[0; 11], &mut out).is_err());
        assert!(r.is_skipping());
    }
}
