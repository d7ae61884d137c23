//! 802.11 A-MSDUs, as Zeek's `IEEE802_11Analyzer::AnalyzePacket` splits them: subframes of
//! a 14-byte header (two addresses and a length) and an LLC/SNAP packet, each padded to a
//! multiple of four bytes except the last.

/// The LLC/SNAP header of an encapsulated Ethernet protocol.
const SNAP: [u8; 6] = [0xaa, 0xaa, 0x03, 0, 0, 0];

/// One subframe's packet: its EtherType and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subframe<'a> {
    pub ethertype: u16,
    pub payload: &'a [u8],
}

/// The subframes up to the first bad one, and the weirds Zeek raises for that one.
pub fn subframes(mut b: &[u8]) -> (Vec<Subframe<'_>>, Vec<&'static str>) {
    let mut out = Vec::new();
    while !b.is_empty() {
        if b.len() < 14 {
            return (out, vec!["truncated_802_11_amsdu_header"]);
        }
        let len = usize::from(u16::from_be_bytes([b[12], b[13]]));
        let Some(packet) = b.get(14..14 + len) else {
            return (out, vec!["truncated_802_11_amsdu_packet"]);
        };
        match inner(packet) {
            Ok(sub) => out.push(sub),
            Err(mut weirds) => {
                weirds.push("invalid_802_11_amsdu_inner_packet");
                return (out, weirds);
            }
        }
        b = &b[14 + len..];
        let pad = len % 4;
        if b.len() >= pad {
            b = &b[pad..];
        }
    }
    (out, Vec::new())
}

/// `IEEE802_11Analyzer::HandleInnerPacket`: only SNAP-encapsulated Ethernet protocols.
fn inner(packet: &[u8]) -> Result<Subframe<'_>, Vec<&'static str>> {
    if packet.len() < 8 {
        return Err(vec!["truncated_802_11_llc_header"]);
    }
    if packet[..6] != SNAP {
        return Err(Vec::new());
    }
    Ok(Subframe {
        ethertype: u16::from_be_bytes([packet[6], packet[7]]),
        payload: &packet[8..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subframe(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut s = vec![0u8; 12];
        s.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        s.extend_from_slice(&SNAP);
        s.extend_from_slice(&ethertype.to_be_bytes());
        s.extend_from_slice(payload);
        s
    }

    #[test]
    fn padded_subframes_then_the_weird_of_a_bad_one() {
        let mut b = subframe(0x0800, b"abcde");
        b.extend_from_slice(&[0; 1]);
        b.extend(subframe(0x86dd, b"xyz"));
        let (subs, weirds) = subframes(&b);
        assert_eq!(subs.len(), 2);
        assert_eq!(
            (subs[0].ethertype, subs[0].payload),
            (0x0800, &b"abcde"[..])
        );
        assert_eq!((subs[1].ethertype, subs[1].payload), (0x86dd, &b"xyz"[..]));
        assert!(weirds.is_empty());

        let mut short = b.clone();
        short.extend_from_slice(&[0; 5]);
        assert_eq!(subframes(&short).1, ["truncated_802_11_amsdu_header"]);
        let mut long = subframe(0x0800, b"abcd");
        long.truncate(long.len() - 1);
        assert_eq!(subframes(&long).1, ["truncated_802_11_amsdu_packet"]);
        let mut not_snap = subframe(0x0800, b"abcd");
        not_snap[14] = 0x42;
        assert_eq!(
            subframes(&not_snap),
            (Vec::new(), vec!["invalid_802_11_amsdu_inner_packet"])
        );
        let mut llc = vec![0u8; 12];
        llc.extend_from_slice(&[0, 2, 0xaa, 0xaa]);
        assert_eq!(
            subframes(&llc).1,
            [
                "truncated_802_11_llc_header",
                "invalid_802_11_amsdu_inner_packet"
            ]
        );
    }
}
