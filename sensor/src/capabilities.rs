//! Which of the capabilities live capture needs this process lacks, so that a failed open can say
//! so instead of leaving the operator with libpcap's "Operation not permitted".

/// `CAP_NET_RAW` opens the packet socket; `CAP_NET_ADMIN` sets promiscuous mode and large buffers.
const CAPTURE: [(u32, &str); 2] = [(13, "CAP_NET_RAW"), (12, "CAP_NET_ADMIN")];

/// The capture capabilities missing from the effective set given as `/proc/self/status` prints
/// it (`CapEff:` in hex); empty when the line is absent or unreadable.
pub fn missing_from(status: &str) -> Vec<&'static str> {
    let effective = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok());
    match effective {
        Some(bits) => CAPTURE
            .iter()
            .filter(|(bit, _)| bits & (1 << bit) == 0)
            .map(|&(_, name)| name)
            .collect(),
        None => Vec::new(),
    }
}

/// A sentence naming what this process lacks for live capture, if anything.
pub fn capture_hint() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let missing = missing_from(&status);
    (!missing.is_empty()).then(|| {
        format!(
            "this process lacks {}; run as root, give the binary \
             `setcap cap_net_raw,cap_net_admin=eip`, or start it with those ambient capabilities",
            missing.join(" and ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::missing_from;

    #[test]
    fn names_each_missing_capability() {
        assert_eq!(
            missing_from("Name:\tx\nCapEff:\t0000000000000000\n"),
            ["CAP_NET_RAW", "CAP_NET_ADMIN"]
        );
        assert_eq!(missing_from("CapEff:\t0000000000001000\n"), ["CAP_NET_RAW"]);
        assert_eq!(
            missing_from("CapEff:\t0000000000002000\n"),
            ["CAP_NET_ADMIN"]
        );
        assert!(missing_from("CapEff:\t000001ffffffffff\n").is_empty());
        assert!(missing_from("no such line").is_empty());
    }
}
