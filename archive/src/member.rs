//! The gzip member header (RFC 1952) with estuary's length subfield.

/// Subfield id of the member length: `E`, `M`.
const SUBFIELD: [u8; 2] = *b"EM";
const MAGIC: [u8; 2] = [0x1f, 0x8b];
const DEFLATE: u8 = 8;
const FTEXT: u8 = 1;
const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;
/// RFC 1952's operating system byte for Unix.
const OS_UNIX: u8 = 3;
/// Where the member length sits in a header written by [`header`].
pub const LENGTH_AT: usize = 16;

/// A member header with a zero length placeholder at [`LENGTH_AT`] and, for the first member, the
/// original file name (the aggregator reads it back to recognise its own finished archives).
pub fn header(level: u32, name: Option<&str>) -> Vec<u8> {
    let xfl = match level {
        9 => 2,
        1 => 4,
        _ => 0,
    };
    let flags = FEXTRA | if name.is_some() { FNAME } else { 0 };
    let mut out = Vec::with_capacity(32 + name.map_or(0, str::len));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[DEFLATE, flags, 0, 0, 0, 0, xfl, OS_UNIX]);
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&SUBFIELD);
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    if let Some(name) = name {
        // A NUL would end the name early; file names have none, but a caller could pass one.
        out.extend(name.bytes().filter(|&b| b != 0));
        out.push(0);
    }
    out
}

/// What a member header says about the member's extent.
#[derive(Debug, PartialEq, Eq)]
pub enum Extent {
    /// The header records the member's total length in bytes.
    Known(usize),
    /// A gzip header without the length (another writer); the member ends where deflate ends.
    Unknown,
    /// Not a gzip header, or one cut short.
    Invalid,
}

/// Reads the member header at the start of `data`.
pub fn extent(data: &[u8]) -> Extent {
    let Some(fixed) = data.get(..10) else {
        return Extent::Invalid;
    };
    if fixed[..2] != MAGIC || fixed[2] != DEFLATE {
        return Extent::Invalid;
    }
    let flags = fixed[3];
    if flags & !(FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT) != 0 {
        return Extent::Invalid;
    }
    if flags & FEXTRA == 0 {
        return Extent::Unknown;
    }
    let Some(xlen) = data.get(10..12) else {
        return Extent::Invalid;
    };
    let xlen = usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    let Some(mut extra) = data.get(12..12 + xlen) else {
        return Extent::Invalid;
    };
    while let [a, b, l0, l1, rest @ ..] = extra {
        let len = usize::from(u16::from_le_bytes([*l0, *l1]));
        let Some(value) = rest.get(..len) else {
            return Extent::Invalid;
        };
        if [*a, *b] == SUBFIELD && len == 4 {
            let total = u32::from_le_bytes([value[0], value[1], value[2], value[3]]);
            return Extent::Known(total as usize);
        }
        extra = &rest[len..];
    }
    Extent::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut h = header(6, Some("conn~1~2~.log"));
        h[LENGTH_AT..LENGTH_AT + 4].copy_from_slice(&1234u32.to_le_bytes());
        assert_eq!(extent(&h), Extent::Known(1234));
        assert_eq!(extent(&h[..11]), Extent::Invalid);
        assert_eq!(extent(b"not gzip at all"), Extent::Invalid);
        // A plain gzip header (no FEXTRA), as gzip(1) writes it.
        assert_eq!(
            extent(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
            Extent::Unknown
        );
    }
}
