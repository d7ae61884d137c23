//! Compresses standard input to standard output as estuary archives are written, for the
//! benchmark beside `gzip` and `pigz`: `compress [LEVEL] < log > log.gz` (threads:
//! `RAYON_NUM_THREADS`).

use std::io::{self, BufWriter};

fn main() -> io::Result<()> {
    let level = std::env::args()
        .nth(1)
        .and_then(|l| l.trim_start_matches('-').parse().ok())
        .and_then(estuary_archive::Level::new)
        .unwrap_or_default();
    let out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let summary = estuary_archive::compress(io::stdin().lock(), out, level, None)?;
    eprintln!(
        "{} bytes in, {} bytes out, {} members",
        summary.bytes_in, summary.bytes_out, summary.members
    );
    Ok(())
}
