//! The syslog parser on arbitrary bytes: never panics, and the body is a suffix of the input
//! (minus one trailing LF).
#![no_main]

use estuary_wire::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = parse(data) {
        let trimmed = data.strip_suffix(b"\n").unwrap_or(data);
        assert!(trimmed.ends_with(message.body));
        let _ = message.resolve_timestamp(chrono::Local::now());
    }
});
