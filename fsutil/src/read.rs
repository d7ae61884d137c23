//! Positioned reads that do not move a file's cursor, so that several readers can share one file.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// `pread` until `buf` is full or the end of the file; returns the bytes read.
pub fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], at + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_up_to_the_end_of_the_file() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"0123456789").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(read_full_at(&file, &mut buf, 4).unwrap(), 6);
        assert_eq!(&buf[..6], b"456789");
        assert_eq!(read_full_at(&file, &mut buf, 0).unwrap(), 8);
        assert_eq!(&buf, b"01234567");
    }
}
