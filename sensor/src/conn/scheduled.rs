//! Analyzers scheduled for a connection before it starts: the FTP data channels FTP sessions
//! announce (`Analyzer::schedule_analyzer` from base/protocols/ftp/main.zeek).

use super::{Conn, Tracker};
use crate::proto::ftp;

impl Tracker {
    /// `Manager::ApplyScheduledAnalyzers` for a new TCP connection: a scheduled `FTP_DATA`
    /// is its only analyzer (`BuildInitialAnalyzerTree` then skips the port's), and
    /// `scheduled_analyzer_applied` adds the `ftp-data` service when the channel is still in
    /// `ftp_data_expected`. Whether one applied.
    pub(super) fn apply_scheduled(&mut self, conn: &mut Conn, ts: f64) -> bool {
        let Some(s) = self
            .ftp_data
            .apply(ts, conn.orig_h, conn.resp_h, conn.resp_p)
        else {
            return false;
        };
        if s.transfer.is_some() {
            conn.services.push(ftp::DATA_SERVICE);
        }
        let a = ftp::FtpDataAnalyzer::new(conn.info(), s.transfer);
        conn.app.analyzers.push(("FTP_DATA", Box::new(a)));
        true
    }

    /// `FTP::finalize_ftp_data`: a removed data connection's channel leaves
    /// `ftp_data_expected`.
    pub(super) fn scheduled_removed(&mut self, conn: &Conn) {
        if conn.services.contains(&ftp::DATA_SERVICE) {
            self.ftp_data.finished(conn.resp_h, conn.resp_p);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::sync::Arc;

    use super::super::{PacketMeta, Records, TrackerConfig};
    use super::*;
    use crate::decode::{tcpflags, TcpHeader};
    use crate::dispatch::Dispatcher;
    use crate::output::Output;
    use crate::uid::UidGen;

    const CLIENT: &str = "10.0.0.1";
    const SERVER: &str = "10.0.0.2";

    struct Net {
        tracker: Tracker,
        out: Records,
        ts: f64,
    }

    impl Net {
        fn new() -> Self {
            let config = TrackerConfig {
                ignore_checksums: true,
                ..TrackerConfig::default()
            };
            let tracker = Tracker::new(
                Arc::new(config),
                Arc::new(Dispatcher::all()),
                UidGen::seeded(1),
            );
            Net {
                tracker,
                out: Records::default(),
                ts: 0.0,
            }
        }

        #[allow(clippy::too_many_arguments)]
        fn segment(
            &mut self,
            src: &str,
            sport: u16,
            dst: &str,
            dport: u16,
            flags: u8,
            seq: u32,
            ack: u32,
            payload: &[u8],
        ) {
            self.ts += 0.1;
            let mut l4 = vec![0u8; 20];
            l4.extend_from_slice(payload);
            let h = TcpHeader {
                src_port: sport,
                dst_port: dport,
                seq,
                ack,
                flags,
                window: 65535,
                header_len: 20,
                wscale: None,
            };
            let m = PacketMeta {
                ts: self.ts,
                src: src.parse::<IpAddr>().expect("literal address"),
                dst: dst.parse::<IpAddr>().expect("literal address"),
                ip_proto: 6,
                ip_len: 40 + payload.len() as u64,
                l4: &l4,
                l4_len: l4.len(),
                tunnels: &[],
            };
            self.tracker.tcp(&m, &h, &mut self.out);
        }

        /// A connection from `client` that opens, carries `data` from the server, and closes.
        fn server_sends(&mut self, client: (&str, u16), server: (&str, u16), data: &[u8]) {
            use tcpflags::{ACK, FIN, PSH, SYN};
            let ((c, cp), (s, sp)) = (client, server);
            let n = data.len() as u32;
            self.segment(c, cp, s, sp, SYN, 100, 0, b"");
            self.segment(s, sp, c, cp, SYN | ACK, 500, 101, b"");
            self.segment(c, cp, s, sp, ACK, 101, 501, b"");
            self.segment(s, sp, c, cp, PSH | ACK, 501, 101, data);
            self.segment(c, cp, s, sp, ACK | FIN, 101, 501 + n, b"");
            self.segment(s, sp, c, cp, ACK | FIN, 501 + n, 102, b"");
            self.segment(c, cp, s, sp, ACK, 102, 502 + n, b"");
        }

        fn finish(mut self) -> Records {
            self.tracker.drain(self.ts + 1.0, &mut self.out);
            self.out
        }
    }

    /// A PASV reply schedules FTP_DATA for the client and the server's data port: that
    /// connection's bytes are a file of source FTP_DATA and its service is ftp-data, while a
    /// connection to the same port from another host keeps the port's analyzers.
    #[test]
    fn a_passive_data_connection_is_a_file_and_ftp_data() {
        use tcpflags::{ACK, PSH, SYN};
        let mut net = Net::new();
        net.segment(CLIENT, 40000, SERVER, 21, SYN, 1, 0, b"");
        net.segment(SERVER, 21, CLIENT, 40000, SYN | ACK, 1, 2, b"");
        net.segment(CLIENT, 40000, SERVER, 21, ACK, 2, 2, b"");
        let cmd = b"PASV\r\n";
        net.segment(CLIENT, 40000, SERVER, 21, PSH | ACK, 2, 2, cmd);
        let reply = b"227 Entering Passive Mode (10,0,0,2,4,1)\r\n";
        net.segment(SERVER, 21, CLIENT, 40000, PSH | ACK, 2, 8, reply);
        net.server_sends((CLIENT, 40001), (SERVER, 1025), b"hello world\n");
        net.server_sends(("10.0.0.3", 40002), (SERVER, 1025), b"other\n");
        let out = net.finish();
        let files: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Output::File(f) => Some(f),
                _ => None,
            })
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let f = files[0];
        assert_eq!((f.source, f.seen_bytes), ("FTP_DATA", 12));
        assert_eq!((f.conn.id.orig_p, f.conn.id.resp_p), (40001, 1025));
        assert_eq!(f.mime_type, Some("text/plain"));
        let services = |orig_p: u16| {
            out.iter()
                .find_map(|o| match o {
                    Output::Conn(c) if c.orig_p == orig_p => Some(c.service.clone()),
                    _ => None,
                })
                .expect("conn row")
        };
        assert_eq!(services(40001), vec!["ftp-data"]);
        assert!(services(40002).is_empty());
    }
}
