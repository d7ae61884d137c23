//! The checks Zeek's ICMP analyzer makes while it reads the options of IPv6 neighbour
//! discovery messages (`ICMPAnalyzer::RouterSolicit`, `RouterAdvert`, `NeighborSolicit`,
//! `NeighborAdvert`, `Redirect` and `BuildNDOptionsVal` in icmp/ICMP.cc).
//!
//! Zeek reads the options only for an event a script handles; the sensor reports the weirds
//! of that reading as Zeek does with the neighbour discovery events handled.

/// Where the options start after the 8-byte ICMPv6 header of a neighbour discovery message,
/// and the name of the weird when the message ends before that: a reachable time and retrans
/// timer for a router advertisement, a target address for a neighbour solicitation or
/// advertisement, a target and a destination address for a redirect.
fn opt_offset(ty: u8) -> Option<(usize, Option<&'static str>)> {
    Some(match ty {
        133 => (0, None),
        134 => (8, Some("icmp6_ra_bad_opt_offset")),
        135 => (16, Some("icmp6_ns_bad_opt_offset")),
        136 => (16, Some("icmp6_na_bad_opt_offset")),
        137 => (32, Some("icmp6_redirect_bad_opt_offset")),
        _ => return None,
    })
}

/// The captured ICMPv6 message body after its 8-byte header (Zeek's `caplen`), bounded by
/// the length the IP header gives.
fn body(icmp: &[u8], len: usize) -> &[u8] {
    icmp.get(8..len.min(icmp.len())).unwrap_or_default()
}

/// A message too short to hold the fields before its options: Zeek reports it through the
/// packet analyzer's `Weird` without a packet, so the weird names no connection or hosts.
/// Returns the name and `addl` ("<offset> (length <body length>)").
pub fn bad_opt_offset(icmp: &[u8], len: usize) -> Option<(&'static str, String)> {
    let (offset, name) = opt_offset(*icmp.first()?)?;
    let name = name?;
    let caplen = body(icmp, len).len();
    (caplen < offset).then(|| (name, format!("{offset} (length {caplen})")))
}

/// `BuildNDOptionsVal`: the options as type, length (in units of 8 bytes) and data; an option
/// without its type and length, or one of length zero, ends the reading with a weird of the
/// connection.
pub fn options_weird(icmp: &[u8], len: usize) -> Option<&'static str> {
    let (offset, _) = opt_offset(*icmp.first()?)?;
    let mut rest = body(icmp, len).get(offset..)?;
    while !rest.is_empty() {
        let Some(&[_, units]) = rest.get(..2) else {
            return Some("truncated_ICMPv6_ND_options");
        };
        if units == 0 {
            return Some("zero_length_ICMPv6_ND_option");
        }
        rest = rest.get(usize::from(units) * 8..).unwrap_or_default();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{bad_opt_offset, options_weird};

    fn message(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![ty, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(body);
        m
    }

    /// `RouterAdvert`, `NeighborSolicit`, `NeighborAdvert`, `Redirect`: a body shorter than
    /// the fields before the options.
    #[test]
    fn body_shorter_than_the_fixed_fields_is_a_bad_option_offset() {
        let cases = [
            (134, 4, "icmp6_ra_bad_opt_offset", "8 (length 4)"),
            (135, 8, "icmp6_ns_bad_opt_offset", "16 (length 8)"),
            (136, 15, "icmp6_na_bad_opt_offset", "16 (length 15)"),
            (137, 16, "icmp6_redirect_bad_opt_offset", "32 (length 16)"),
        ];
        for (ty, n, name, addl) in cases {
            let m = message(ty, &vec![0; n]);
            assert_eq!(bad_opt_offset(&m, m.len()), Some((name, addl.to_string())));
        }
        let full = message(136, &[0; 16]);
        assert_eq!(bad_opt_offset(&full, full.len()), None);
        // The IP header's length bounds the body, not the captured bytes.
        assert!(bad_opt_offset(&full, full.len() - 1).is_some());
        assert_eq!(bad_opt_offset(&message(133, &[]), 8), None);
        assert_eq!(bad_opt_offset(&message(128, &[]), 8), None);
    }

    /// `BuildNDOptionsVal`: options are read in units of 8 bytes until the body ends.
    #[test]
    fn options_need_a_type_a_length_and_a_nonzero_length() {
        let lladdr = [1, 1, 0, 0x11, 0x22, 0x33, 0x44, 0x55];
        let m = message(133, &lladdr);
        assert_eq!(options_weird(&m, m.len()), None);
        let mut target = vec![0; 16];
        target.extend_from_slice(&lladdr);
        let m = message(136, &target);
        assert_eq!(options_weird(&m, m.len()), None);
        // An option longer than the message ends the reading without a weird.
        let m = message(133, &[1, 2, 0, 0]);
        assert_eq!(options_weird(&m, m.len()), None);
        let m = message(133, &[lladdr.as_slice(), &[1]].concat());
        assert_eq!(
            options_weird(&m, m.len()),
            Some("truncated_ICMPv6_ND_options")
        );
        let m = message(134, &[0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
        assert_eq!(
            options_weird(&m, m.len()),
            Some("zero_length_ICMPv6_ND_option")
        );
        // Too short for its fixed fields: no options read.
        let m = message(134, &[0; 4]);
        assert_eq!(options_weird(&m, m.len()), None);
    }
}
