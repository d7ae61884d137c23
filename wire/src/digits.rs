//! Numbers as ASCII without the formatting machinery: the encoders run once per line.

/// The decimal digits of a number, on the stack.
pub(crate) struct Decimal {
    buf: [u8; 20],
    start: usize,
}

impl Decimal {
    pub(crate) fn new(n: u64) -> Decimal {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        let mut n = n;
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Decimal { buf, start }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Sixteen lower-case hex digits.
pub(crate) fn hex16(n: u64) -> [u8; 16] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, digit) in out.iter_mut().enumerate() {
        *digit = HEX[((n >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits() {
        assert_eq!(Decimal::new(0).as_bytes(), b"0");
        assert_eq!(
            Decimal::new(u64::MAX).as_bytes(),
            u64::MAX.to_string().as_bytes()
        );
        assert_eq!(&hex16(0xdead_beef), b"00000000deadbeef");
        assert_eq!(&hex16(u64::MAX), b"ffffffffffffffff");
    }
}
