//! RELP, the Reliable Event Logging Protocol, as librelp speaks it.
//!
//! `TXNR SP COMMAND SP DATALEN [SP DATA] LF`: TXNR and DATALEN are 1 to 9 digits, COMMAND 1 to
//! 32 letters, DATA and the SP before it are absent when DATALEN is 0. There is no way to resync
//! after a bad frame, so every decode error is fatal for the session.

use std::fmt;
use std::io::Write as _;

pub mod client;
pub mod server;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::digits::Decimal;
use tokio_util::codec::{Decoder, Encoder};

pub use client::{ClientSession, Event, SessionError};
pub use server::{Action, ServerError, ServerSession};

/// librelp's `RELP_DFLT_MAX_DATA_SIZE`.
pub const DEFAULT_MAX_DATA_LEN: usize = 128 * 1024;

/// The protocol version librelp sends (its spec text says 1, the code says 0).
pub const RELP_VERSION: &str = "0";

const MAX_NUMBER_DIGITS: usize = 9;
const MAX_COMMAND_LEN: usize = 32;
/// Longest header: two 9-digit numbers, a 32-letter command and three separators.
const MAX_HEADER_LEN: usize = MAX_NUMBER_DIGITS * 2 + MAX_COMMAND_LEN + 3;
const MAX_TXNR: u32 = 999_999_999;

/// A transaction number: 1 to 999 999 999, wrapping back to 1; 0 marks a hint frame
/// (`serverclose`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Txnr(u32);

impl Txnr {
    pub const FIRST: Txnr = Txnr(1);
    pub const HINT: Txnr = Txnr(0);

    pub fn new(n: u32) -> Option<Txnr> {
        (n <= MAX_TXNR).then_some(Txnr(n))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The number after this one, wrapping 999 999 999 to 1.
    pub fn next(self) -> Txnr {
        if self.0 >= MAX_TXNR {
            Txnr(1)
        } else {
            Txnr(self.0 + 1)
        }
    }
}

impl fmt::Display for Txnr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A RELP command; names other than the known ones are kept as they came.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    Open,
    Syslog,
    Rsp,
    Close,
    ServerClose,
    StartTls,
    Other(String),
}

impl Command {
    /// Parses a command name; `None` unless it is 1 to 32 ASCII letters.
    pub fn from_name(name: &[u8]) -> Option<Command> {
        if name.is_empty()
            || name.len() > MAX_COMMAND_LEN
            || !name.iter().all(u8::is_ascii_alphabetic)
        {
            return None;
        }
        Some(match name {
            b"open" => Command::Open,
            b"syslog" => Command::Syslog,
            b"rsp" => Command::Rsp,
            b"close" => Command::Close,
            b"serverclose" => Command::ServerClose,
            b"starttls" => Command::StartTls,
            // Only ASCII letters, checked above.
            other => Command::Other(String::from_utf8_lossy(other).into_owned()),
        })
    }

    pub fn name(&self) -> &str {
        match self {
            Command::Open => "open",
            Command::Syslog => "syslog",
            Command::Rsp => "rsp",
            Command::Close => "close",
            Command::ServerClose => "serverclose",
            Command::StartTls => "starttls",
            Command::Other(name) => name,
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One RELP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub txnr: Txnr,
    pub command: Command,
    pub data: Bytes,
}

impl Frame {
    pub fn new(txnr: Txnr, command: Command, data: impl Into<Bytes>) -> Frame {
        Frame {
            txnr,
            command,
            data: data.into(),
        }
    }

    /// Appends the frame's wire form.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_header(self, |part| out.extend_from_slice(part));
        if !self.data.is_empty() {
            out.push(b' ');
            out.extend_from_slice(&self.data);
        }
        out.push(b'\n');
    }
}

/// `TXNR SP COMMAND SP DATALEN`, in parts.
fn write_header(frame: &Frame, mut put: impl FnMut(&[u8])) {
    put(Decimal::new(u64::from(frame.txnr.get())).as_bytes());
    put(b" ");
    put(frame.command.name().as_bytes());
    put(b" ");
    put(Decimal::new(frame.data.len() as u64).as_bytes());
}

/// Which part of a frame header was malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    Txnr,
    Command,
    DataLen,
}

/// The RELP stream cannot be read any further.
#[derive(Debug, thiserror::Error)]
pub enum RelpError {
    #[error("invalid RELP frame: bad {field:?} in header {header:?}")]
    BadHeader { field: HeaderField, header: String },
    #[error("RELP frame data of {len} bytes exceeds the limit of {max_len}")]
    TooLarge { len: usize, max_len: usize },
    #[error("RELP frame {txnr} does not end in LF (found byte {found:#04x})")]
    BadTrailer { txnr: Txnr, found: u8 },
    #[error("connection closed inside a RELP frame ({buffered} bytes buffered)")]
    Truncated { buffered: usize },
    #[error("command {command} data exceeds the limit of {max_len} bytes")]
    EncodeTooLarge { command: Command, max_len: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `tokio_util` codec for RELP frames, bounded by `max_data_len`.
#[derive(Debug, Clone)]
pub struct RelpCodec {
    max_data_len: usize,
}

impl RelpCodec {
    pub fn new(max_data_len: usize) -> RelpCodec {
        RelpCodec { max_data_len }
    }

    pub fn max_data_len(&self) -> usize {
        self.max_data_len
    }
}

impl Default for RelpCodec {
    fn default() -> Self {
        RelpCodec::new(DEFAULT_MAX_DATA_LEN)
    }
}

/// Where a number or word ended in the header: its value and the index of the separator.
enum Scan<T> {
    Incomplete,
    Done(T, usize),
}

fn bad(field: HeaderField, buf: &[u8]) -> RelpError {
    let shown = &buf[..buf.len().min(MAX_HEADER_LEN + 1)];
    RelpError::BadHeader {
        field,
        header: String::from_utf8_lossy(shown).into_owned(),
    }
}

/// Reads 1 to 9 digits at `start`, ended by one of `ends`.
fn scan_number(
    buf: &[u8],
    start: usize,
    ends: &[u8],
    field: HeaderField,
) -> Result<Scan<u32>, RelpError> {
    let mut value = 0u32;
    for (i, &b) in buf.iter().enumerate().skip(start) {
        let digits = i - start;
        if b.is_ascii_digit() && digits < MAX_NUMBER_DIGITS {
            value = value * 10 + u32::from(b - b'0');
        } else if digits > 0 && ends.contains(&b) {
            return Ok(Scan::Done(value, i));
        } else {
            return Err(bad(field, buf));
        }
    }
    Ok(Scan::Incomplete)
}

fn scan_command(buf: &[u8], start: usize) -> Result<Scan<Command>, RelpError> {
    for (i, &b) in buf.iter().enumerate().skip(start) {
        if b == b' ' {
            return Command::from_name(&buf[start..i])
                .map(|c| Scan::Done(c, i))
                .ok_or_else(|| bad(HeaderField::Command, buf));
        }
        if !b.is_ascii_alphabetic() || i - start >= MAX_COMMAND_LEN {
            return Err(bad(HeaderField::Command, buf));
        }
    }
    Ok(Scan::Incomplete)
}

impl Decoder for RelpCodec {
    type Item = Frame;
    type Error = RelpError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, RelpError> {
        let Scan::Done(txnr, sp1) = scan_number(buf, 0, b" ", HeaderField::Txnr)? else {
            return Ok(None);
        };
        let Scan::Done(command, sp2) = scan_command(buf, sp1 + 1)? else {
            return Ok(None);
        };
        let Scan::Done(len, sep) = scan_number(buf, sp2 + 1, b" \n", HeaderField::DataLen)? else {
            return Ok(None);
        };
        let len = len as usize;
        if len > self.max_data_len {
            return Err(RelpError::TooLarge {
                len,
                max_len: self.max_data_len,
            });
        }
        // Nine digits at most: always within 0..=999_999_999.
        let txnr = Txnr(txnr);
        let is_lf = buf[sep] == b'\n';
        if len == 0 && !is_lf || len > 0 && is_lf {
            return Err(bad(HeaderField::DataLen, buf));
        }
        let data_start = sep + 1;
        let trailer = if len == 0 { sep } else { data_start + len };
        if buf.len() <= trailer {
            buf.reserve(trailer + 1 - buf.len());
            return Ok(None);
        }
        if buf[trailer] != b'\n' {
            return Err(RelpError::BadTrailer {
                txnr,
                found: buf[trailer],
            });
        }
        let data = if len == 0 {
            Bytes::new()
        } else {
            buf.advance(data_start);
            buf.split_to(len).freeze()
        };
        let consumed = if len == 0 { trailer + 1 } else { 1 };
        buf.advance(consumed);
        Ok(Some(Frame {
            txnr,
            command,
            data,
        }))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, RelpError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(RelpError::Truncated {
                buffered: buf.len(),
            }),
        }
    }
}

impl Encoder<&Frame> for RelpCodec {
    type Error = RelpError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), RelpError> {
        if frame.data.len() > self.max_data_len {
            return Err(RelpError::EncodeTooLarge {
                command: frame.command.clone(),
                max_len: self.max_data_len,
            });
        }
        dst.reserve(MAX_HEADER_LEN + 2 + frame.data.len());
        write_header(frame, |part| dst.extend_from_slice(part));
        if !frame.data.is_empty() {
            dst.put_u8(b' ');
            dst.extend_from_slice(&frame.data);
        }
        dst.put_u8(b'\n');
        Ok(())
    }
}

impl Encoder<Frame> for RelpCodec {
    type Error = RelpError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), RelpError> {
        self.encode(&frame, dst)
    }
}

/// One feature of an `open` offer: `name=v1,v2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub name: String,
    pub values: Vec<String>,
}

/// The offers of an `open` command or of the server's answer to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offers(pub Vec<Offer>);

/// An offer or rsp that does not follow the RELP grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("offer is not UTF-8")]
    NotUtf8,
    #[error("offer feature name {0:?} is empty or longer than 32 bytes")]
    BadName(String),
    #[error("offer value of feature {0:?} is longer than 255 bytes")]
    ValueTooLong(String),
    #[error("rsp data {0:?} does not start with a three-digit status code")]
    BadRspCode(String),
}

impl Offers {
    /// What librelp offers from either side of `open`: `relp_version=0`, `relp_software=...`,
    /// `commands=syslog`.
    pub fn librelp(software: &str) -> Offers {
        Offers(vec![
            Offer {
                name: "relp_version".into(),
                values: vec![RELP_VERSION.into()],
            },
            Offer {
                name: "relp_software".into(),
                values: vec![software.into()],
            },
            Offer {
                name: "commands".into(),
                values: vec!["syslog".into()],
            },
        ])
    }

    /// Parses `name=v1,v2` lines (librelp's `relpOffersConstructFromFrame`).
    pub fn parse(data: &[u8]) -> Result<Offers, OfferError> {
        let text = std::str::from_utf8(data).map_err(|_| OfferError::NotUtf8)?;
        let mut offers = Vec::new();
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            let (name, values) = line.split_once('=').unwrap_or((line, ""));
            if name.is_empty() || name.len() > 32 {
                return Err(OfferError::BadName(name.into()));
            }
            let mut parsed = Vec::new();
            for value in values.split(',').filter(|v| !v.is_empty()) {
                if value.len() > 255 {
                    return Err(OfferError::ValueTooLong(name.into()));
                }
                parsed.push(value.to_owned());
            }
            offers.push(Offer {
                name: name.into(),
                values: parsed,
            });
        }
        Ok(Offers(offers))
    }

    /// The values of feature `name`, if offered.
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|o| o.name == name)
            .map(|o| o.values.as_slice())
    }

    /// Whether the `commands` offer lists `command`.
    pub fn supports(&self, command: &Command) -> bool {
        self.get("commands")
            .is_some_and(|cs| cs.iter().any(|c| c == command.name()))
    }

    /// Appends `name=v1,v2` lines joined by LF, no LF after the last.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for (i, offer) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            out.extend_from_slice(offer.name.as_bytes());
            out.push(b'=');
            for (j, value) in offer.values.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(value.as_bytes());
            }
        }
    }

    pub fn to_bytes(&self) -> Bytes {
        let mut out = Vec::new();
        self.encode(&mut out);
        out.into()
    }
}

/// RSP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Ok,
    Error,
    Other(u16),
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::Error => 500,
            Status::Other(code) => code,
        }
    }

    fn from_code(code: u16) -> Status {
        match code {
            200 => Status::Ok,
            500 => Status::Error,
            other => Status::Other(other),
        }
    }
}

/// The data of an `rsp` frame: `CODE [SP HUMANMSG] [LF CMDDATA]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: Status,
    pub message: String,
    /// The offers in the answer to `open`; empty otherwise.
    pub data: Bytes,
}

impl Response {
    /// `200 OK`.
    pub fn ok() -> Response {
        Response {
            status: Status::Ok,
            message: "OK".into(),
            data: Bytes::new(),
        }
    }

    /// `500 <message>`.
    pub fn error(message: impl Into<String>) -> Response {
        Response {
            status: Status::Error,
            message: message.into(),
            data: Bytes::new(),
        }
    }

    /// The server's answer to `open`: `200 OK\n` and its offers.
    pub fn open_ok(offers: &Offers) -> Response {
        Response {
            status: Status::Ok,
            message: "OK".into(),
            data: offers.to_bytes(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.status == Status::Ok
    }

    pub fn parse(data: &[u8]) -> Result<Response, OfferError> {
        let (head, rest) = match data.iter().position(|&b| b == b'\n') {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        let code = head
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .filter(|_| matches!(head.get(3), None | Some(b' ')))
            .ok_or_else(|| OfferError::BadRspCode(String::from_utf8_lossy(head).into_owned()))?;
        // Three ASCII digits.
        let code = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        let message = head.get(4..).unwrap_or_default();
        Ok(Response {
            status: Status::from_code(code),
            message: String::from_utf8_lossy(message).into_owned(),
            data: Bytes::copy_from_slice(rest),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{:03}", self.status.code());
        if !self.message.is_empty() {
            out.push(b' ');
            out.extend_from_slice(self.message.as_bytes());
        }
        if !self.data.is_empty() {
            out.push(b'\n');
            out.extend_from_slice(&self.data);
        }
    }

    /// The `rsp` frame answering transaction `txnr`.
    pub fn to_frame(&self, txnr: Txnr) -> Frame {
        let mut out = Vec::new();
        self.encode(&mut out);
        Frame::new(txnr, Command::Rsp, out)
    }
}

#[cfg(test)]
mod tests;
