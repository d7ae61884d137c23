//! Reports written to standard output.

use std::process::ExitCode;

/// Writes a report to stdout; a closed pipe (`estuary config | head`) is not an error.
pub fn print_out(text: &str, code: ExitCode) -> anyhow::Result<ExitCode> {
    match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(code),
    }
}
