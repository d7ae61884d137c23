//! NTP message parsing (RFC 5905 header; control and private modes are recognized but not
//! decoded).

/// Seconds between the NTP era (1900) and the Unix epoch.
const NTP_UNIX_OFFSET: f64 = 2_208_988_800.0;

/// The fields of a standard (mode 1-5) NTP message that ntp.log shows.
#[derive(Debug, Clone, PartialEq)]
pub struct StdMessage {
    pub version: u8,
    pub mode: u8,
    pub stratum: u8,
    /// Seconds (2^poll).
    pub poll: f64,
    /// Seconds (2^precision).
    pub precision: f64,
    pub root_delay: f64,
    pub root_disp: f64,
    /// Raw reference id (an address above stratum 1, a code below).
    pub ref_id: [u8; 4],
    pub ref_time: f64,
    pub org_time: f64,
    pub rec_time: f64,
    pub xmt_time: f64,
    pub num_exts: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Std(StdMessage),
    /// Mode 6 (control) or 7 (private): valid NTP, not logged field by field.
    Other {
        version: u8,
        mode: u8,
    },
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn short(v: u32) -> f64 {
    f64::from(v >> 16) + f64::from(v & 0xffff) / 65536.0
}

fn timestamp(b: &[u8], at: usize) -> Option<f64> {
    let secs = be32(b, at)?;
    let frac = be32(b, at + 4)?;
    if secs == 0 && frac == 0 {
        return Some(0.0);
    }
    Some(f64::from(secs) - NTP_UNIX_OFFSET + f64::from(frac) / 4_294_967_296.0)
}

/// Parses one datagram; `None` if it is not NTP.
pub fn parse(b: &[u8]) -> Option<Message> {
    let first = *b.first()?;
    let version = (first >> 3) & 0x7;
    let mode = first & 0x7;
    if !(1..=4).contains(&version) || mode == 0 {
        return None;
    }
    if mode >= 6 {
        return Some(Message::Other { version, mode });
    }
    if b.len() < 48 {
        return None;
    }
    let stratum = b[1];
    let poll = 2f64.powi(i32::from(b[2] as i8));
    let precision = 2f64.powi(i32::from(b[3] as i8));
    // Extension fields (RFC 7822): 4-byte aligned, at least 16 bytes; a trailing MAC is not one.
    let mut num_exts = 0;
    let mut off = 48;
    while b.len() - off > 24 {
        let Some(len) = b
            .get(off + 2..off + 4)
            .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
        else {
            break;
        };
        if len < 16 || len % 4 != 0 || off + len > b.len() {
            break;
        }
        num_exts += 1;
        off += len;
    }
    Some(Message::Std(StdMessage {
        version,
        mode,
        stratum,
        poll,
        precision,
        root_delay: short(be32(b, 4)?),
        root_disp: short(be32(b, 8)?),
        ref_id: [b[12], b[13], b[14], b[15]],
        ref_time: timestamp(b, 16)?,
        org_time: timestamp(b, 24)?,
        rec_time: timestamp(b, 32)?,
        xmt_time: timestamp(b, 40)?,
        num_exts,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request() {
        let mut m = vec![0u8; 48];
        m[0] = 0x23; // v4, client
        m[2] = 6;
        m[3] = 0xec; // -20
        m[40..44].copy_from_slice(&3_900_000_000u32.to_be_bytes());
        let Some(Message::Std(s)) = parse(&m) else {
            panic!("not parsed")
        };
        assert_eq!((s.version, s.mode, s.poll), (4, 3, 64.0));
        assert!((s.precision - 2f64.powi(-20)).abs() < 1e-12);
        assert_eq!(s.org_time, 0.0);
        assert_eq!(s.xmt_time, 3_900_000_000.0 - NTP_UNIX_OFFSET);
    }

    #[test]
    fn rejects_non_ntp() {
        assert!(parse(b"").is_none());
        assert!(parse(&[0x00; 48]).is_none());
        assert!(parse(&[0x23; 20]).is_none());
    }
}
