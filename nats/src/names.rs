//! Names on the server: subjects, message ids, consumers and KV keys, all derived from the tag
//! and host a line came from.
//!
//! Tags and hosts are data from the network. A subject token may not hold `.`, `*`, `>` or
//! whitespace and a KV key only `[-/_=.a-zA-Z0-9]`, so both are escaped: every byte outside
//! `[A-Za-z0-9_-]` becomes `=XX` (hex). The escaping is injective, so two hosts never share a
//! subject or key.

use std::fmt::Write;

/// The subject prefix of every stream subject.
pub const PREFIX: &str = "estuary";
/// The replicated KV bucket with the committed high-water marks, one key per tag.
pub const MARKS_BUCKET: &str = "estuary_hwm";
/// The priority group every aggregator pulls in.
pub const GROUP: &str = "aggregators";

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "={b:02X}");
        }
    }
    out
}

/// A tag as one token: rsyslog-style tags end in `:` (`bro_conn:`), which is not part of the
/// name, so `bro_conn:` and `bro_conn` are the same tag.
pub fn tag_token(tag: &str) -> String {
    escape(tag.trim_end_matches(':'))
}

/// `estuary.<tag>.<host>`.
pub fn subject(tag: &str, host: &str) -> String {
    format!("{PREFIX}.{}.{}", tag_token(tag), escape(host))
}

/// `estuary.<tag>.>`: every host's lines of one tag.
pub fn tag_filter(tag: &str) -> String {
    format!("{PREFIX}.{}.>", tag_token(tag))
}

/// The durable consumer that hands one tag to one aggregator at a time.
pub fn consumer(tag: &str) -> String {
    format!("agg-{}", tag_token(tag))
}

/// The KV key of one tag's marks.
pub fn marks_key(tag: &str) -> String {
    format!("tag.{}", tag_token(tag))
}

/// The KV key of the header blocks the tag's hosts last sent.
pub fn headers_key(tag: &str) -> String {
    format!("hdr.{}", tag_token(tag))
}

/// `Nats-Msg-Id` of a batch: the origin identity of its first line and where it ends, unique
/// stream-wide (the server's duplicate window is per stream, not per subject). The end is part
/// of it: a shipper restarted before saving its state may cut the same lines into a longer
/// batch, which must not be taken for the shorter one the server already has.
pub fn message_id(host: &str, tag: &str, file: u64, offset: u64, end: u64) -> String {
    format!(
        "{}:{}:{file:016x}:{offset}:{end}",
        escape(host),
        tag_token(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_dots_stay_one_token_and_distinct() {
        assert_eq!(
            subject("conn", "s1.example.org"),
            "estuary.conn.s1=2Eexample=2Eorg"
        );
        assert_ne!(escape("a.b"), escape("a=2Eb"));
        assert_eq!(tag_filter("dns"), "estuary.dns.>");
        assert_eq!(consumer("x>y"), "agg-x=3Ey");
        assert_eq!(consumer("bro_conn:"), consumer("bro_conn"));
    }

    #[test]
    fn message_ids_name_host_tag_file_and_range() {
        assert_eq!(
            message_id("s1", "conn:", 0xab, 77, 90),
            "s1:conn:00000000000000ab:77:90"
        );
        assert_ne!(
            message_id("s1", "conn", 1, 0, 9),
            message_id("s1", "dns", 1, 0, 9)
        );
        assert_ne!(
            message_id("s1", "conn", 1, 0, 9),
            message_id("s1", "conn", 1, 0, 20)
        );
    }
}
