//! A damaged capture file: libpcap stops at a record it cannot read (cut short, or with an
//! impossible length) but does not say where it is. [`locate`] walks the file's records (pcap
//! or pcapng) to name the byte offset of the damaged one and how many packets come before it.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

/// The weird logged when a capture file ends in damage (a cut record or an impossible
/// length); its `addl` says where and what libpcap reported.
pub const WEIRD: &str = "damaged_capture_file";

/// libpcap's `MAXIMUM_SNAPLEN`: no record of the usual link types holds more.
const MAX_CAPLEN: u32 = 256 * 1024;

/// Where a capture file is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// Where the damaged record (or block) starts.
    pub offset: u64,
    /// Complete packets before it.
    pub packets: u64,
    pub what: Fault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The file ends inside a record's (or block's) header.
    CutHeader,
    /// The file ends inside a record's (or block's) data.
    CutData,
    /// A record's captured length is over libpcap's maximum (a longer one than the snapshot
    /// length but under the maximum is read, cut to the snapshot length, as libpcap does), or a
    /// pcapng block's length cannot be.
    ImpossibleLength(u32),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.what {
            Fault::CutHeader => "cut inside a record header".to_string(),
            Fault::CutData => "cut inside a record".to_string(),
            Fault::ImpossibleLength(n) => format!("a record of impossible length {n}"),
        };
        write!(
            f,
            "{what} at byte offset {} (after packet {})",
            self.offset, self.packets
        )
    }
}

/// Finds the first damaged record of the capture at `path`; `None` if every record is whole
/// (or the format is not one this walks).
pub fn locate(path: &Path) -> io::Result<Option<Damage>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut r = Walker {
        inner: BufReader::new(file),
        pos: 0,
        len,
    };
    let Some(magic) = r.array::<4>()? else {
        return Ok(None);
    };
    match magic {
        [0x0a, 0x0d, 0x0d, 0x0a] => pcapng(&mut r),
        _ => match Order::of_pcap(magic) {
            Some(order) => pcap(&mut r, order),
            None => Ok(None),
        },
    }
}

#[derive(Debug, Clone, Copy)]
enum Order {
    Little,
    Big,
}

impl Order {
    fn of_pcap(magic: [u8; 4]) -> Option<Order> {
        const MAGICS: [u32; 2] = [0xa1b2_c3d4, 0xa1b2_3c4d];
        if MAGICS.contains(&u32::from_le_bytes(magic)) {
            Some(Order::Little)
        } else if MAGICS.contains(&u32::from_be_bytes(magic)) {
            Some(Order::Big)
        } else {
            None
        }
    }

    fn u32(self, b: &[u8]) -> u32 {
        let b = [b[0], b[1], b[2], b[3]];
        match self {
            Order::Little => u32::from_le_bytes(b),
            Order::Big => u32::from_be_bytes(b),
        }
    }
}

struct Walker {
    inner: BufReader<File>,
    pos: u64,
    len: u64,
}

impl Walker {
    fn left(&self) -> u64 {
        self.len.saturating_sub(self.pos)
    }

    /// The next `N` bytes, or `None` if fewer are left.
    fn array<const N: usize>(&mut self) -> io::Result<Option<[u8; N]>> {
        if self.left() < N as u64 {
            return Ok(None);
        }
        let mut b = [0; N];
        self.inner.read_exact(&mut b)?;
        self.pos += N as u64;
        Ok(Some(b))
    }

    fn skip(&mut self, n: u64) -> io::Result<()> {
        let n_signed = i64::try_from(n).map_err(|_| io::ErrorKind::InvalidData)?;
        self.inner.seek_relative(n_signed)?;
        self.pos += n;
        Ok(())
    }
}

fn pcap(r: &mut Walker, order: Order) -> io::Result<Option<Damage>> {
    // The rest of the file header: version, zone, sigfigs, snaplen, linktype.
    if r.array::<20>()?.is_none() {
        return Ok(None);
    }
    let mut packets = 0;
    loop {
        let offset = r.pos;
        let damage = |what| {
            Ok(Some(Damage {
                offset,
                packets,
                what,
            }))
        };
        if r.left() == 0 {
            return Ok(None);
        }
        let Some(record) = r.array::<16>()? else {
            return damage(Fault::CutHeader);
        };
        let caplen = order.u32(&record[8..12]);
        if caplen > MAX_CAPLEN {
            return damage(Fault::ImpossibleLength(caplen));
        }
        if r.left() < u64::from(caplen) {
            return damage(Fault::CutData);
        }
        r.skip(u64::from(caplen))?;
        packets += 1;
    }
}

const SECTION_HEADER: u32 = 0x0a0d_0d0a;
/// Enhanced, simple and (obsolete) packet blocks.
const PACKET_BLOCKS: [u32; 3] = [6, 3, 2];

fn pcapng(r: &mut Walker) -> io::Result<Option<Damage>> {
    let mut order = Order::Little;
    let mut packets = 0;
    let mut offset = 0;
    // The section header's type was read already.
    let mut first = Some(SECTION_HEADER);
    loop {
        let damage = |what| {
            Ok(Some(Damage {
                offset,
                packets,
                what,
            }))
        };
        let kind = match first.take() {
            Some(k) => k,
            None => match r.array::<4>()? {
                Some(b) => order.u32(&b),
                None => return damage(Fault::CutHeader),
            },
        };
        let Some(length) = r.array::<4>()? else {
            return damage(Fault::CutHeader);
        };
        if kind == SECTION_HEADER {
            let Some(bom) = r.array::<4>()? else {
                return damage(Fault::CutHeader);
            };
            order = match bom {
                [0x4d, 0x3c, 0x2b, 0x1a] => Order::Little,
                [0x1a, 0x2b, 0x3c, 0x4d] => Order::Big,
                _ => return Ok(None),
            };
        }
        let length = order.u32(&length);
        let read = r.pos - offset;
        if !length.is_multiple_of(4) || u64::from(length) < read + 4 {
            return damage(Fault::ImpossibleLength(length));
        }
        let rest = u64::from(length) - read;
        if r.left() < rest {
            return damage(Fault::CutData);
        }
        r.skip(rest)?;
        if PACKET_BLOCKS.contains(&kind) {
            packets += 1;
        }
        offset = r.pos;
        if r.left() == 0 {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_file(records: &[&[u8]]) -> Vec<u8> {
        let mut f = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        f.extend([0; 8]);
        f.extend(65535u32.to_le_bytes());
        f.extend(1u32.to_le_bytes());
        for data in records {
            f.extend([0; 8]);
            f.extend((data.len() as u32).to_le_bytes());
            f.extend((data.len() as u32).to_le_bytes());
            f.extend(*data);
        }
        f
    }

    fn locate_bytes(bytes: &[u8]) -> Option<Damage> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pcap");
        std::fs::write(&path, bytes).unwrap();
        locate(&path).unwrap()
    }

    #[test]
    fn whole_pcap_has_no_damage() {
        assert_eq!(locate_bytes(&pcap_file(&[b"abcd", b"efgh"])), None);
    }

    #[test]
    fn pcap_cuts_and_lengths_are_located() {
        let whole = pcap_file(&[b"abcd", b"efgh"]);
        let second = 24 + 16 + 4;
        let at = |what| {
            Some(Damage {
                offset: second,
                packets: 1,
                what,
            })
        };
        assert_eq!(locate_bytes(&whole[..whole.len() - 1]), at(Fault::CutData));
        assert_eq!(
            locate_bytes(&whole[..second as usize + 5]),
            at(Fault::CutHeader)
        );
        let mut huge = whole.clone();
        let caplen = second as usize + 8;
        huge[caplen..caplen + 4].copy_from_slice(&300_000u32.to_le_bytes());
        assert_eq!(locate_bytes(&huge), at(Fault::ImpossibleLength(300_000)));
    }

    #[test]
    fn pcapng_cut_block_is_located() {
        let mut f = Vec::new();
        // Section header (28 bytes), interface description (20 bytes), one packet block.
        f.extend(SECTION_HEADER.to_le_bytes());
        f.extend(28u32.to_le_bytes());
        f.extend([0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0]);
        f.extend(u64::MAX.to_le_bytes());
        f.extend(28u32.to_le_bytes());
        f.extend(1u32.to_le_bytes());
        f.extend(20u32.to_le_bytes());
        f.extend([1, 0, 0, 0, 0, 0, 0, 0]);
        f.extend(20u32.to_le_bytes());
        let packet = f.len() as u64;
        f.extend(6u32.to_le_bytes());
        f.extend(36u32.to_le_bytes());
        f.extend([0; 24]);
        f.extend(36u32.to_le_bytes());
        assert_eq!(locate_bytes(&f), None);
        assert_eq!(
            locate_bytes(&f[..f.len() - 6]),
            Some(Damage {
                offset: packet,
                packets: 0,
                what: Fault::CutData
            })
        );
        assert_eq!(
            locate_bytes(&f[..packet as usize + 6]),
            Some(Damage {
                offset: packet,
                packets: 0,
                what: Fault::CutHeader
            })
        );
    }
}
