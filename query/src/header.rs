//! The Zeek TSV header block (`#separator` ... `#types`), read by `estuary-zeektsv`; the query
//! adds when a file was opened, as a time to prune by.

pub use estuary_zeektsv::{Header, HeaderError};

use crate::time::{parse_bound, End, Micros};

/// The file's `#open` time.
pub fn opened(header: &Header) -> Option<Micros> {
    header
        .open
        .as_deref()
        .and_then(|t| parse_bound(t, End::From).ok())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const CONN: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#open\t2026-12-01-14-00-00\n#fields\tts\tuid\tid.orig_h\tid.resp_p\tproto\ttunnel_parents\n#types\ttime\tstring\taddr\tport\tenum\tset[string]\n";

    #[test]
    fn the_open_line_is_a_time() {
        let (h, _) = Header::parse(CONN.as_bytes()).unwrap();
        assert_eq!(
            opened(&h),
            parse_bound("2026-12-01-14-00-00", End::From).ok()
        );
    }
}
