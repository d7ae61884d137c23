//! The SOCKS messages of Zeek's `socks-protocol.pac`, each read from one delivery as binpac's
//! datagram flow does: bytes after a message are ignored, a short one is an error.

/// Why a message does not parse: binpac's out-of-bound exception, or a check of
/// `socks-analyzer.pac` (each a protocol violation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Truncated,
    /// `version_error`: neither 4 nor 5.
    Version(u8),
    /// `socks5_request`: a reserved byte other than 0.
    Reserved(u8),
    /// `socks5_request`: a command other than 1-3.
    Command(u8),
    /// `SOCKS5_Address` of a type other than 1, 3, 4.
    AddrType(u8),
}

/// A bounded reader over one delivery.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8, Violation> {
        let (&b, rest) = self.data.split_first().ok_or(Violation::Truncated)?;
        self.data = rest;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], Violation> {
        if self.data.len() < n {
            return Err(Violation::Truncated);
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, Violation> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `uint8[] &until($element == 0)`: up to and with the NUL.
    fn until_nul(&mut self) -> Result<&'a [u8], Violation> {
        let end = self
            .data
            .iter()
            .position(|&b| b == 0)
            .ok_or(Violation::Truncated)?;
        self.bytes(end + 1)
    }

    /// `SOCKS5_Address`.
    fn socks5_address(&mut self) -> Result<(), Violation> {
        match self.u8()? {
            1 => self.bytes(4).map(drop),
            3 => {
                let len = self.u8()?;
                self.bytes(usize::from(len)).map(drop)
            }
            4 => self.bytes(16).map(drop),
            other => Err(Violation::AddrType(other)),
        }
    }
}

/// `SOCKS_Version`: the version byte and the rest of the message.
pub fn version(data: &[u8]) -> Result<(u8, &[u8]), Violation> {
    data.split_first()
        .map(|(&v, rest)| (v, rest))
        .ok_or(Violation::Truncated)
}

/// `SOCKS4_Request` after the version: command, port, address, user, and for 4a (an address
/// up to 0.0.0.255) the host name.
pub fn socks4_request(rest: &[u8]) -> Result<(), Violation> {
    let mut r = Reader { data: rest };
    r.bytes(3)?;
    let addr = r.u32()?;
    r.until_nul()?;
    if addr <= 0xff {
        r.until_nul()?;
    }
    Ok(())
}

/// `SOCKS4_Reply` after the version byte: zero, status, port, address.
pub fn socks4_reply(rest: &[u8]) -> Result<(), Violation> {
    Reader { data: rest }.bytes(8).map(drop)
}

/// `SOCKS5_Auth_Negotiation_Request`: the methods the client offers.
pub fn socks5_methods(rest: &[u8]) -> Result<(), Violation> {
    let mut r = Reader { data: rest };
    let count = r.u8()?;
    r.bytes(usize::from(count)).map(drop)
}

/// `SOCKS5_Auth_Negotiation_Reply`: the method the server selected.
pub fn socks5_selected_method(rest: &[u8]) -> Result<u8, Violation> {
    Reader { data: rest }.u8()
}

/// `SOCKS5_Request` with `socks5_request`'s checks (after binpac read the whole message).
pub fn socks5_request(rest: &[u8]) -> Result<(), Violation> {
    let mut r = Reader { data: rest };
    let command = r.u8()?;
    let reserved = r.u8()?;
    r.socks5_address()?;
    r.bytes(2)?;
    if reserved != 0 {
        return Err(Violation::Reserved(reserved));
    }
    if command == 0 || command > 3 {
        return Err(Violation::Command(command));
    }
    Ok(())
}

/// `SOCKS5_Reply`: reply code, reserved, bound address, port.
pub fn socks5_reply(rest: &[u8]) -> Result<(), Violation> {
    let mut r = Reader { data: rest };
    r.bytes(2)?;
    r.socks5_address()?;
    r.bytes(2).map(drop)
}

/// A username/password sub-negotiation message (RFC 1929) by its version byte.
#[derive(Debug, PartialEq, Eq)]
pub enum UserPass {
    V1,
    /// `SOCKS5_Unsupported_Authentication_Version`.
    Unsupported(u8),
}

/// `SOCKS5_Auth_Request_UserPass`: version, then for version 1 the user and the password.
pub fn userpass_request(data: &[u8]) -> Result<UserPass, Violation> {
    let mut r = Reader { data };
    let version = r.u8()?;
    if version != 1 {
        return Ok(UserPass::Unsupported(version));
    }
    let ulen = r.u8()?;
    r.bytes(usize::from(ulen))?;
    let plen = r.u8()?;
    r.bytes(usize::from(plen))?;
    Ok(UserPass::V1)
}

/// `SOCKS5_Auth_Reply_UserPass`: version, then for version 1 the status code.
pub fn userpass_reply(data: &[u8]) -> Result<UserPass, Violation> {
    let mut r = Reader { data };
    let version = r.u8()?;
    if version != 1 {
        return Ok(UserPass::Unsupported(version));
    }
    r.u8()?;
    Ok(UserPass::V1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Violation::*;

    #[test]
    fn socks4_requests_end_at_the_user_and_4a_host_nuls() {
        assert_eq!(socks4_request(b"\x01\x00\x50\xc0\x96\xbb\x0c\x00"), Ok(()));
        assert_eq!(
            socks4_request(b"\x01\x00\x50\xc0\x96\xbb\x0cbob"),
            Err(Truncated)
        );
        // 4a: address 0.0.0.1, then the host name.
        assert_eq!(
            socks4_request(b"\x01\x00\x50\0\0\0\x01bob\0a.org\0"),
            Ok(())
        );
        assert_eq!(
            socks4_request(b"\x01\x00\x50\0\0\0\x01bob\0a.org"),
            Err(Truncated)
        );
        assert_eq!(socks4_request(b"\x01\x00\x50\0\0"), Err(Truncated));
    }

    #[test]
    fn socks5_requests_check_reserved_then_command_after_reading() {
        let ok = b"\x01\x00\x03\x0ewww.osnews.com\x00\x50";
        assert_eq!(socks5_request(ok), Ok(()));
        assert_eq!(socks5_request(b"\x01\x00\x01\x0a\0\0\x01\x00\x16"), Ok(()));
        let v6 = [&[1u8, 0, 4][..], &[0; 16], &[0, 80]].concat();
        assert_eq!(socks5_request(&v6), Ok(()));
        assert_eq!(socks5_request(&v6[..v6.len() - 1]), Err(Truncated));
        assert_eq!(
            socks5_request(b"\x01\x07\x01\x0a\0\0\x01\x00\x16"),
            Err(Reserved(7))
        );
        assert_eq!(
            socks5_request(b"\x04\x00\x01\x0a\0\0\x01\x00\x16"),
            Err(Command(4))
        );
        assert_eq!(
            socks5_request(b"\x00\x00\x01\x0a\0\0\x01\x00\x16"),
            Err(Command(0))
        );
        assert_eq!(socks5_request(b"\x01\x00\x02\0\0"), Err(AddrType(2)));
        assert_eq!(socks5_request(b"\x01\x00\x03\xff.."), Err(Truncated));
    }

    #[test]
    fn replies_and_negotiation_need_their_whole_message() {
        assert_eq!(
            socks5_reply(b"\x00\x00\x01\xc0\xa8\x00\x1f\x0a\x80"),
            Ok(())
        );
        assert_eq!(
            socks5_reply(b"\x00\x00\x01\xc0\xa8\x00\x1f\x0a"),
            Err(Truncated)
        );
        assert_eq!(socks5_reply(b"\x00\x00\x09"), Err(AddrType(9)));
        assert_eq!(socks4_reply(b"\x00\x5a\0\0\0\0\0\0"), Ok(()));
        assert_eq!(socks4_reply(b"\x00\x5a\0\0"), Err(Truncated));
        assert_eq!(socks5_methods(b"\x03\x00\x03\x02"), Ok(()));
        assert_eq!(socks5_methods(b"\x03\x00"), Err(Truncated));
        assert_eq!(socks5_selected_method(b"\x02"), Ok(2));
        assert_eq!(socks5_selected_method(b""), Err(Truncated));
        assert_eq!(version(b""), Err(Truncated));
    }

    #[test]
    fn user_password_sub_negotiation() {
        assert_eq!(userpass_request(b"\x01\x03bob\x05alice"), Ok(UserPass::V1));
        assert_eq!(userpass_request(b"\x01\x03bob\x05ali"), Err(Truncated));
        assert_eq!(userpass_request(b"\x02xyz"), Ok(UserPass::Unsupported(2)));
        assert_eq!(userpass_reply(b"\x01\x00"), Ok(UserPass::V1));
        assert_eq!(userpass_reply(b"\x01"), Err(Truncated));
        assert_eq!(userpass_reply(b""), Err(Truncated));
    }
}
