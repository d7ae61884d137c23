use std::io::{Read, Write};
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let (mut log_bytes, mut seconds, mut mode) = (0u64, 0f64, "compress");
    for path in std::env::args().skip(1) {
        let data = std::fs::read(&path)?;
        let start = Instant::now();
        if path.ends_with(".gz") {
            mode = "decompress";
            let mut out = Vec::with_capacity(data.len() * 8);
            flate2::read::MultiGzDecoder::new(&data[..]).read_to_end(&mut out)?;
            log_bytes += out.len() as u64;
        } else {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            gz.write_all(&data)?;
            gz.finish()?;
            log_bytes += data.len() as u64;
        }
        seconds += start.elapsed().as_secs_f64();
    }
    let backend = if cfg!(feature = "zlib-rs") { "zlib-rs" } else { "miniz_oxide (default)" };
    println!(
        "{backend} {mode}: {:.0} MB of log in {seconds:.2} s = {:.1} MB/s",
        log_bytes as f64 / 1e6,
        log_bytes as f64 / 1e6 / seconds
    );
    Ok(())
}
