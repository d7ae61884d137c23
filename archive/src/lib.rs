//! Log archives written as a sequence of independent gzip members, so that they are compressed on
//! every core and read back on every core, while `zcat` and any other gzip reader still see one
//! ordinary `.log.gz` file.
//!
//! Each member holds whole lines (about [`CHUNK`] bytes of log) and carries its own length in an
//! extra-field subfield, as BGZF does, so a reader finds every member by hopping from header to
//! header without decompressing. Archives without that subfield (zeekctl's, zeek-archiver's) read
//! as one member.
#![forbid(unsafe_code)]

mod encode;
mod member;
mod read;
mod split;
mod write;

pub use read::{decoder, file_members, members, RangeReader};
pub use write::{compress, Level, Summary};

/// Log bytes per member. Large enough that the header and the dictionary restart cost little
/// ratio, small enough that an hour of logs spreads over every core.
pub const CHUNK: usize = 1 << 20;
