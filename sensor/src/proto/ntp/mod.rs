//! NTP over UDP: ntp.log, one row per standard message, and the `ntp` service.

mod log;
mod parser;

pub use log::NtpInfo;

use crate::flow::{ConnInfo, Direction, Timestamp, Transport};
use crate::proto::{Analyzer, Emit};

/// Zeek's `NTP::ports`.
pub const PORTS: &[(Transport, u16)] = &[(Transport::Udp, 123)];

pub fn new_analyzer(info: &ConnInfo) -> Box<dyn Analyzer> {
    Box::new(NtpAnalyzer {
        conn: info.clone(),
        confirmed: false,
        flipped: false,
    })
}

/// Never: Zeek attaches its NTP analyzer by port only (it has no content signature), so a
/// datagram elsewhere that happens to parse as NTP is not NTP.
pub fn probe(_dir: Direction, _first_bytes: &[u8]) -> bool {
    false
}

pub struct NtpAnalyzer {
    conn: ConnInfo,
    confirmed: bool,
    flipped: bool,
}

/// NTP modes that tell which side is the client.
const MODE_CLIENT: u8 = 3;
const MODE_SERVER: u8 = 4;

impl Analyzer for NtpAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        match parser::parse(data) {
            Some(parser::Message::Std(msg)) => {
                if !self.confirmed {
                    self.confirmed = true;
                    out.confirm_service("ntp");
                }
                // Zeek's `proc_ntp_message`: a server message from the originator or a client
                // message from the responder flips the connection, once.
                let wrong_way = match dir {
                    Direction::Orig => msg.mode == MODE_SERVER,
                    Direction::Resp => msg.mode == MODE_CLIENT,
                };
                if wrong_way && !self.flipped {
                    self.flipped = true;
                    let id = &mut self.conn.id;
                    std::mem::swap(&mut id.orig_h, &mut id.resp_h);
                    std::mem::swap(&mut id.orig_p, &mut id.resp_p);
                    out.flip_roles();
                }
                out.record(Box::new(NtpInfo {
                    ts,
                    conn: self.conn.clone(),
                    msg,
                }));
            }
            Some(parser::Message::Other { .. }) => {}
            None => out.weird(ts, "NTP_invalid_message", None),
        }
    }

    fn gap(&mut self, _ts: Timestamp, _dir: Direction, _len: u64, _out: &mut dyn Emit) {}

    fn finish(&mut self, _ts: Timestamp, _out: &mut dyn Emit) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::testkit::{conn, Collect};

    #[test]
    fn confirms_and_logs() {
        let mut a = new_analyzer(&conn(Transport::Udp, 123));
        let mut out = Collect::default();
        let mut m = vec![0u8; 48];
        m[0] = 0x1b; // v3 client
        m[1] = 2;
        m[12..16].copy_from_slice(&[192, 0, 2, 1]);
        a.data(Timestamp(1.0), Direction::Orig, &m, &mut out);
        assert_eq!(out.services, ["ntp"]);
        assert_eq!(out.rows().len(), 1);
        assert!(
            out.rows()[0]
                .starts_with("3\t3\t2\t1.000000\t1.000000\t0.000000\t0.000000\t192.0.2.1\t"),
            "{}",
            out.rows()[0]
        );
    }
}
