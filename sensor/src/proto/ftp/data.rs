//! FTP data connections: Zeek's `FTP_Data` analyzer (`File_Analyzer`,
//! src/analyzer/protocol/file/File.cc) hands each direction's bytes to the files framework as
//! one file (source `FTP_DATA`), and base/protocols/ftp/{main,files}.zeek note the file's id
//! and type on the control session that expected the connection.

use super::expect::Transfer;
use crate::file_magic::detect;
use crate::files_log::FileInfo;
use crate::flow::{ConnInfo, Direction, Timestamp};
use crate::proto::file_stream::{FileStream, Sniff};
use crate::proto::{Analyzer, Emit};
use crate::uid::UidGen;

/// `File_Analyzer::BUFFER_SIZE`: the bytes `Identify` types for `file_transferred`.
const IDENTIFY_SIZE: usize = 1024;

pub struct FtpDataAnalyzer {
    conn: ConnInfo,
    fuids: UidGen,
    /// The control session from `ftp_data_expected`; without it `FTP::get_file_handle` gives
    /// no handle, and the bytes make no file.
    transfer: Option<Transfer>,
    files: [FileStream; 2],
    /// The connection's first bytes, both directions together, until `Identify` ran.
    identify: Vec<u8>,
    identified: bool,
}

impl FtpDataAnalyzer {
    pub fn new(conn: ConnInfo, transfer: Option<Transfer>) -> Self {
        FtpDataAnalyzer {
            fuids: UidGen::for_connection(&conn.uid, 0x4654_5044),
            conn,
            transfer,
            files: Default::default(),
            identify: Vec::new(),
            identified: false,
        }
    }

    /// `File_Analyzer::Identify` raises `file_transferred`, whose handler in main.zeek sets
    /// the session's `mime_type` to the strongest match, `<unknown>` without one.
    fn identify(&mut self) {
        self.identified = true;
        if let Some(t) = &self.transfer {
            t.set_mime_type(detect(&self.identify).unwrap_or("<unknown>"));
        }
    }

    /// `file_sniff` in files.zeek: a sniffed type replaces the session's `mime_type`.
    fn sniffed(&self, sniff: Option<Sniff>) {
        if let (Some(t), Some(m)) = (&self.transfer, sniff.and_then(|s| s.mime_type)) {
            t.set_mime_type(m);
        }
    }

    /// The direction's file, begun with its first bytes (`file_mgr->DataIn` or `Gap`), when
    /// the connection has a file handle; `file_over_new_connection` gives the session its id.
    fn file(&mut self, ts: Timestamp, dir: Direction, out: &mut dyn Emit) -> Option<usize> {
        let t = self.transfer.as_ref()?;
        let i = usize::from(dir == Direction::Resp);
        if !self.files[i].is_open() {
            let fuid = self.fuids.next('F');
            t.set_fuid(&fuid);
            let info = FileInfo::new(ts, fuid, &self.conn, "FTP_DATA", dir);
            self.files[i].begin(info, out);
        }
        Some(i)
    }
}

impl Analyzer for FtpDataAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        if !self.identified {
            let room = IDENTIFY_SIZE - self.identify.len();
            self.identify
                .extend_from_slice(&data[..data.len().min(room)]);
            if self.identify.len() == IDENTIFY_SIZE {
                self.identify();
            }
        }
        if let Some(i) = self.file(ts, dir, out) {
            let sniff = self.files[i].data(ts, data);
            self.sniffed(sniff);
        }
    }

    fn gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit) {
        if let Some(i) = self.file(ts, dir, out) {
            let sniff = self.files[i].gap(len);
            self.sniffed(sniff);
        }
    }

    /// `File_Analyzer::Done`: what was buffered is identified, then both files end.
    fn finish(&mut self, _ts: Timestamp, out: &mut dyn Emit) {
        if !self.identified && !self.identify.is_empty() {
            self.identify();
        }
        for i in 0..2 {
            let sniff = self.files[i].end(out);
            self.sniffed(sniff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Transport;
    use crate::proto::ftp::FtpAnalyzer;
    use crate::proto::testkit::{conn, Collect};

    /// A control session up to `announce` (a PASV/EPSV reply or a PORT/EPRT command) and the
    /// RETR after it, answered.
    fn session(announce: &[(Direction, &[u8])]) -> (FtpAnalyzer, Collect) {
        let mut a = FtpAnalyzer::new(conn(Transport::Tcp, 21));
        let mut out = Collect::default();
        let login: [(Direction, &[u8]); 3] = [
            (Direction::Resp, b"220 ready\r\n"),
            (Direction::Orig, b"USER ftp\r\nPASS x@\r\n"),
            (Direction::Resp, b"331 ok\r\n230 in\r\n"),
        ];
        let retr: [(Direction, &[u8]); 2] = [
            (Direction::Orig, b"RETR a.bin\r\n"),
            (Direction::Resp, b"150 Opening\r\n226 Done\r\n"),
        ];
        for (dir, data) in login.iter().chain(announce).chain(&retr) {
            a.data(Timestamp(1.0), *dir, data, &mut out);
        }
        (a, out)
    }

    fn retr_row(mut a: FtpAnalyzer, mut out: Collect) -> String {
        a.data(Timestamp(9.0), Direction::Orig, b"QUIT\r\n", &mut out);
        a.finish(Timestamp(10.0), &mut out);
        let rows = out.rows();
        rows.into_iter()
            .find(|r| r.contains("\tRETR\t"))
            .expect("RETR row")
    }

    /// main.zeek: PORT announces a channel from the server to the address and port it names;
    /// files.zeek: the file's id and sniffed type go on the session's next row.
    #[test]
    fn a_port_channel_file_is_noted_on_the_retr_row() {
        let port: [(Direction, &[u8]); 2] = [
            (Direction::Orig, b"PORT 10,0,0,1,200,10\r\n"),
            (Direction::Resp, b"200 ok\r\n"),
        ];
        let (a, out) = session(&port);
        let [(chan, transfer)] = &out.ftp_data[..] else {
            panic!("{:?}", out.ftp_data);
        };
        assert!(!chan.passive);
        assert_eq!(
            (chan.orig_h, chan.resp_h),
            (
                conn(Transport::Tcp, 21).id.resp_h,
                conn(Transport::Tcp, 21).id.orig_h
            )
        );
        assert_eq!(chan.resp_p, 200 * 256 + 10);
        let mut data = FtpDataAnalyzer::new(conn(Transport::Tcp, 51210), Some(transfer.clone()));
        let mut files = Collect::default();
        data.data(Timestamp(2.0), Direction::Resp, b"%PDF-1.4\n", &mut files);
        data.finish(Timestamp(3.0), &mut files);
        let f = &files.files[0];
        assert_eq!(
            (f.source, f.dir, f.seen_bytes),
            ("FTP_DATA", Direction::Resp, 9)
        );
        assert_eq!(f.mime_type, Some("application/pdf"));
        let row = retr_row(a, out);
        assert!(row.ends_with(&format!("\t-\t-\t-\t-\t{}", f.fuid)), "{row}");
        assert!(row.contains("\tapplication/pdf\t"), "{row}");
    }

    /// File_Analyzer::Identify: bytes no signature matches make `file_transferred` set the
    /// session's type to `<unknown>` (file_sniff, with no type, leaves it); the file is
    /// typed by nothing.
    #[test]
    fn an_untyped_transfer_is_unknown_on_the_row() {
        let pasv: [(Direction, &[u8]); 2] = [
            (Direction::Orig, b"PASV\r\n"),
            (
                Direction::Resp,
                b"227 Entering Passive Mode (10,0,0,2,4,1)\r\n",
            ),
        ];
        let (a, out) = session(&pasv);
        let transfer = out.ftp_data[0].1.clone();
        let mut data = FtpDataAnalyzer::new(conn(Transport::Tcp, 1025), Some(transfer));
        let mut files = Collect::default();
        data.data(
            Timestamp(2.0),
            Direction::Resp,
            &[0, 1, 2, 200, 201],
            &mut files,
        );
        data.finish(Timestamp(3.0), &mut files);
        assert_eq!(files.files[0].mime_type, None);
        assert!(retr_row(a, out).contains("\t<unknown>\t"));
    }

    /// The first 4096 bytes type the file when they arrive (file_sniff), not at its end; each
    /// direction with data is its own file; a gap is missing bytes of the direction's file.
    #[test]
    fn each_direction_is_a_file_typed_once_its_bof_buffer_fills() {
        let transfer = Transfer::default();
        let mut data = FtpDataAnalyzer::new(conn(Transport::Tcp, 1025), Some(transfer.clone()));
        let mut out = Collect::default();
        let mut text = b"hello world\n".repeat(400);
        data.data(Timestamp(1.0), Direction::Orig, &text, &mut out);
        assert_eq!(transfer.take().mime_type, Some("text/plain"));
        text.truncate(10);
        data.data(Timestamp(2.0), Direction::Resp, &text, &mut out);
        data.gap(Timestamp(3.0), Direction::Resp, 100, &mut out);
        data.finish(Timestamp(4.0), &mut out);
        let sizes: Vec<_> = out
            .files
            .iter()
            .map(|f| (f.dir, f.seen_bytes, f.missing_bytes))
            .collect();
        assert_eq!(
            sizes,
            vec![(Direction::Orig, 4800, 0), (Direction::Resp, 10, 100)]
        );
        assert_eq!(transfer.take().fuid, Some(out.files[1].fuid.clone()));
    }

    /// FTP::get_file_handle: a connection no longer in ftp_data_expected makes no file.
    #[test]
    fn without_an_expected_session_there_is_no_file() {
        let mut data = FtpDataAnalyzer::new(conn(Transport::Tcp, 1025), None);
        let mut out = Collect::default();
        data.data(Timestamp(1.0), Direction::Resp, b"data", &mut out);
        data.gap(Timestamp(2.0), Direction::Resp, 10, &mut out);
        data.finish(Timestamp(3.0), &mut out);
        assert!(out.files.is_empty());
    }
}
