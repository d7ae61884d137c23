//! Cutting the input into chunks of whole lines, read straight into the chunk's buffer.

use std::io::{self, Read};

use crate::CHUNK;

/// The input, and the start of a line read past the end of the last chunk.
pub struct Splitter<R> {
    input: R,
    carry: Vec<u8>,
    eof: bool,
}

impl<R: Read> Splitter<R> {
    pub fn new(input: R) -> Splitter<R> {
        Splitter {
            input,
            carry: Vec::new(),
            eof: false,
        }
    }

    /// Replaces `chunk` with about [`CHUNK`] bytes of whole lines (more when one line is longer;
    /// the input's last line may lack its newline). False, with `chunk` empty, at the end.
    pub fn fill(&mut self, chunk: &mut Vec<u8>) -> io::Result<bool> {
        chunk.clear();
        chunk.append(&mut self.carry);
        let mut searched = 0;
        loop {
            if !self.eof && chunk.len() < CHUNK {
                let want = (CHUNK - chunk.len()) as u64;
                let got = (&mut self.input).take(want).read_to_end(chunk)?;
                self.eof = (got as u64) < want;
            }
            if self.eof {
                return Ok(!chunk.is_empty());
            }
            if let Some(at) = memchr::memrchr(b'\n', &chunk[searched..]) {
                let end = searched + at + 1;
                self.carry.extend_from_slice(&chunk[end..]);
                chunk.truncate(end);
                return Ok(true);
            }
            // One line longer than the chunk so far: read on to its end.
            searched = chunk.len();
            let want = CHUNK as u64;
            let got = (&mut self.input).take(want).read_to_end(chunk)?;
            self.eof = (got as u64) < want;
            if self.eof {
                return Ok(true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(data: &[u8]) -> Vec<Vec<u8>> {
        let mut splitter = Splitter::new(data);
        let mut out = Vec::new();
        let mut chunk = Vec::new();
        while splitter.fill(&mut chunk).unwrap() {
            out.push(chunk.clone());
        }
        out
    }

    #[test]
    fn chunks_are_whole_lines_of_about_chunk_bytes() {
        let line = b"1700000000.000000\tCabc\t10.0.0.1\n";
        let data: Vec<u8> = line
            .iter()
            .copied()
            .cycle()
            .take(line.len() * 100_000)
            .collect();
        let parts = chunks(&data);
        assert!(parts.len() >= 3);
        assert!(parts.iter().all(|p| p.ends_with(b"\n") && p.len() <= CHUNK));
        assert_eq!(parts.concat(), data);
        assert!(chunks(b"").is_empty());
        assert_eq!(chunks(b"no newline"), vec![b"no newline".to_vec()]);
    }

    #[test]
    fn a_line_longer_than_a_chunk_stays_whole() {
        let mut data = vec![b'x'; CHUNK * 5 / 2];
        data.push(b'\n');
        let short = b"short line\n";
        data.extend(short.iter().cycle().take(short.len() * (CHUNK / 4)));
        let parts = chunks(&data);
        assert!(parts[0].len() > CHUNK * 5 / 2 && parts.len() >= 2);
        assert!(parts.iter().all(|p| p.ends_with(b"\n")));
        assert_eq!(parts.concat(), data);
    }
}
