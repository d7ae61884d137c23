//! The records of Zeek's `rdp-protocol.pac` that lie on the way to the server's certificates,
//! read as binpac reads them: a field that runs past its record (or a literal that does not
//! match, or a case without an arm) is an exception, which the analyzer reports as a
//! violation. Everything that the records only name is skipped.

/// What one TPKT said, up to where it parsed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found<'a> {
    /// `proc_rdp_client_core_data` or `proc_rdp_gcc_server_create_response` /
    /// `proc_rdp_server_security` ran: `ProtocolConfirmation`.
    pub confirmed: bool,
    /// The X.509 certificates of the server's chain (`proc_x509_cert_data`), in order.
    pub certs: Vec<&'a [u8]>,
    /// `go_encrypted` ran, with this method: later bytes are no longer RDP records.
    pub encrypted: Option<u32>,
}

/// A binpac exception: the bytes are not the records the parser expects.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

type Parse<T> = Result<T, Malformed>;

/// The length of the TPKT at the start of `buf`, once its header is there.
pub fn tpkt_len(buf: &[u8]) -> Option<usize> {
    Some(usize::from(u16::from_be_bytes([
        *buf.get(2)?,
        *buf.get(3)?,
    ])))
}

/// `TPKT` (`&length=tpkt_len`): the whole record, header included.
pub fn tpkt<'a>(record: &'a [u8], found: &mut Found<'a>) -> Parse<()> {
    let mut r = Reader::new(record);
    r.skip(4)?;
    let cotp_len = r.u8()?;
    match r.u8()? {
        0xd0 => connect_confirm(&mut r, cotp_len, found),
        0xe0 => connect_request(&mut r, cotp_len),
        0xf0 => dt_data(&mut r, found),
        _ => Ok(()),
    }
}

/// Whether a `Connect_*` record has bytes left for its optional part: Zeek's
/// `offsetof(switch1) + 2 - cotp.cotp_len - 1`, where the COTP starts 4 bytes into the TPKT.
fn has_more(r: &Reader<'_>, cotp_len: u8) -> bool {
    r.pos - 4 != usize::from(cotp_len) + 1
}

/// `Connect_Request`: the cookie is required; its negotiation request is read when the
/// COTP length says there is more.
fn connect_request(r: &mut Reader<'_>, cotp_len: u8) -> Parse<()> {
    r.skip(5)?;
    r.literal(b"Cookie: mstshash=")?;
    let value = r.rest().iter().take_while(|b| **b != b'\r').count();
    r.skip(value)?;
    r.literal(b"\r\n")?;
    if has_more(r, cotp_len) {
        r.skip(8)?;
    }
    Ok(())
}

/// `Connect_Confirm`: a negotiation response that selects a protocol goes encrypted.
fn connect_confirm<'a>(r: &mut Reader<'a>, cotp_len: u8, found: &mut Found<'a>) -> Parse<()> {
    r.skip(5)?;
    if !has_more(r, cotp_len) {
        return Ok(());
    }
    match r.u8()? {
        0x02 => {
            r.skip(3)?;
            let selected = r.u32le()?;
            if selected > 0 {
                found.encrypted = Some(selected);
            }
            Ok(())
        }
        0x03 => r.skip(7),
        _ => Err(Malformed),
    }
}

/// `DT_Data`: the MCS Connect Initial (0x65) or Connect Response (0x66).
fn dt_data<'a>(r: &mut Reader<'a>, found: &mut Found<'a>) -> Parse<()> {
    r.skip(2)?;
    match r.u8()? {
        0x65 => client_header(r, found),
        0x66 => server_header(r, found),
        _ => Ok(()),
    }
}

/// `ASN1EncodingMeta`: the tag and the (short or long form) length.
fn asn1_meta(r: &mut Reader<'_>) -> Parse<u64> {
    r.u8()?;
    let len = r.u8()?;
    if len & 0x80 == 0 {
        return Ok(u64::from(len));
    }
    r.take(usize::from(len & 0x7f))?
        .iter()
        .try_fold(0u64, |acc, b| {
            acc.checked_mul(256).map(|v| v | u64::from(*b))
        })
        .ok_or(Malformed)
}

/// `ASN1Encoding`: meta and content, skipped.
fn asn1_skip(r: &mut Reader<'_>) -> Parse<()> {
    let len = asn1_meta(r)?;
    r.skip(usize::try_from(len).map_err(|_| Malformed)?)
}

/// `Client_Header`: the MCS Connect Initial with its GCC Conference Create Request.
fn client_header<'a>(r: &mut Reader<'a>, found: &mut Found<'a>) -> Parse<()> {
    // The type length, both domain selectors and the upward flag, then the three domain
    // parameter sequences, whose contents are skipped alike.
    for _ in 0..7 {
        asn1_skip(r)?;
    }
    r.skip(4)?;
    let key_len = r.u16be()?;
    r.skip(usize::from(key_len) + 2)?;
    r.skip(8)?;
    r.literal(b"Duca")?;
    r.skip(2)?;
    data_blocks(r, found)
}

/// `Server_Header`: the MCS Connect Response with its GCC Conference Create Response,
/// which confirms the protocol.
fn server_header<'a>(r: &mut Reader<'a>, found: &mut Found<'a>) -> Parse<()> {
    r.skip(3)?;
    asn1_skip(r)?;
    asn1_skip(r)?;
    asn1_skip(r)?;
    r.skip(4)?;
    let key_len = r.u16be()?;
    r.skip(usize::from(key_len) + 1)?;
    r.skip(9)?;
    r.literal(b"McDn")?;
    r.skip(2)?;
    found.confirmed = true;
    data_blocks(r, found)
}

/// `Data_Block[] &until($input.length() == 0)`, each `&length=header.length-4`.
fn data_blocks<'a>(r: &mut Reader<'a>, found: &mut Found<'a>) -> Parse<()> {
    while !r.rest().is_empty() {
        let kind = r.u16le()?;
        let len = r.u16le()?;
        let body = usize::from(len).checked_sub(4).ok_or(Malformed)?;
        let mut block = Reader::new(r.take(body)?);
        match kind {
            // Client_Core_Data, up to dig_product_id.
            0xc001 => {
                block.skip(206)?;
                found.confirmed = true;
            }
            0xc002 | 0xc004 => block.skip(8)?,
            0xc003 => {
                let channels = usize::try_from(block.u32le()?).map_err(|_| Malformed)?;
                block.skip(channels.checked_mul(12).ok_or(Malformed)?)?;
            }
            0x0c01 => block.skip(if len == 8 { 4 } else { 8 })?,
            0x0c02 => server_security(&mut block, found)?,
            0x0c03 => block.skip(4)?,
            _ => {}
        }
    }
    Ok(())
}

/// `Server_Security_Data`: its certificate's chain, then confirmation and (with a method
/// and level) native encryption.
fn server_security<'a>(r: &mut Reader<'a>, found: &mut Found<'a>) -> Parse<()> {
    let method = r.u32le()?;
    let level = r.u32le()?;
    let random_len = r.u32le()?;
    let cert_len = r.u32le()?;
    r.skip(usize::try_from(random_len).map_err(|_| Malformed)?)?;
    let cert = r.take(usize::try_from(cert_len).map_err(|_| Malformed)?)?;
    server_certificate(&mut Reader::new(cert), found)?;
    found.confirmed = true;
    if method > 0 && level > 0 {
        found.encrypted = Some(0);
    }
    Ok(())
}

/// `Server_Certificate`: a proprietary one (1) or an X.509 chain (2); nothing else.
fn server_certificate<'a>(r: &mut Reader<'a>, found: &mut Found<'a>) -> Parse<()> {
    match r.u32le()? & 0x7fff_ffff {
        0x01 => {
            r.skip(10)?;
            let blob_len = r.u16le()?;
            let mut blob = Reader::new(r.take(usize::from(blob_len))?);
            blob.skip(4)?;
            let key_len = blob.u32le()?;
            blob.skip(8)?;
            blob.skip(usize::try_from(key_len).map_err(|_| Malformed)?)?;
            r.skip(2)?;
            let sig_len = r.u16le()?;
            r.skip(usize::from(sig_len))
        }
        0x02 => {
            let n = r.u32le()?;
            for _ in 0..n {
                let len = r.u32le()?;
                found
                    .certs
                    .push(r.take(usize::try_from(len).map_err(|_| Malformed)?)?);
            }
            Ok(())
        }
        _ => Err(Malformed),
    }
}

/// Bounded reads over one record.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    fn take(&mut self, n: usize) -> Parse<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Malformed)?;
        let out = self.data.get(self.pos..end).ok_or(Malformed)?;
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, n: usize) -> Parse<()> {
        self.take(n).map(|_| ())
    }

    fn literal(&mut self, lit: &[u8]) -> Parse<()> {
        if self.rest().starts_with(lit) {
            self.skip(lit.len())
        } else {
            Err(Malformed)
        }
    }

    fn u8(&mut self) -> Parse<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16be(&mut self) -> Parse<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u16le(&mut self) -> Parse<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32le(&mut self) -> Parse<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}
