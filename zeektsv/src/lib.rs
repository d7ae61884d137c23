//! Zeek's TSV logs read back: the header block (`#separator` ... `#types`) that says how to read
//! a file's rows, and a row turned into the object Zeek's JSON writer would have written.
#![forbid(unsafe_code)]

mod header;
mod json;

pub use header::{Header, HeaderError};
pub use json::{write_json, write_json_row};
