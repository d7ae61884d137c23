//! Per-connection FTP state, following Zeek's FTP scripts: commands wait in a pending table,
//! each reply is matched to the best-scoring pending command, and a command is written once
//! it is complete (at the next request, the next reply, or the end of the connection).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

use super::adat::Adat;
use super::expect::Transfer;
use super::log::{DataChannel, FtpInfo};
use super::parser;
use crate::flow::{ConnInfo, Direction, Timestamp};
use crate::proto::lines::StreamBuf;
use crate::proto::ssl::SslAnalyzer;
use crate::proto::{Analyzer, Emit};

/// Longest command or reply line.
const MAX_LINE: usize = 8 * 1024;
/// Zeek's `FTP::max_pending_commands`.
const MAX_PENDING: usize = 20;
const MAX_USER: usize = 128;
const MAX_PASSWORD: usize = 128;
const MAX_ARG: usize = 4096;
const MAX_REPLY_MSG: usize = 4096;

/// Zeek's `FTP::logged_commands`.
const LOGGED: &[&str] = &[
    "APPE", "DELE", "RETR", "STOR", "STOU", "ACCT", "PORT", "PASV", "EPRT", "EPSV",
];
/// Commands whose argument is logged as an `ftp://` URL.
const FILE_CMDS: &[&str] = &[
    "APPE", "CWD", "DELE", "MKD", "RETR", "RMD", "RNFR", "RNTO", "STOR", "STOU", "REST", "SIZE",
    "MDTM",
];
/// Users whose password is logged (`FTP::guest_ids`).
const GUEST_IDS: &[&str] = &["anonymous", "ftp", "ftpuser", "guest"];

/// Zeek's `FTP::cmd_reply_code`: the replies each command can get.
fn expected_reply(cmd: &str, code: u16) -> bool {
    let codes: &[u16] = match cmd {
        "<init>" => &[120, 220, 421],
        "USER" => &[230, 331, 332, 421, 530, 500, 501],
        "PASS" => &[230, 202, 332, 421, 530, 500, 501, 503],
        "ACCT" => &[230, 202, 421, 530, 500, 501, 503],
        "CWD" => &[250, 421, 500, 501, 502, 530, 550],
        "CDUP" => &[200, 250, 421, 500, 501, 502, 530, 550],
        "SMNT" => &[202, 250, 421, 500, 501, 502, 530, 550],
        "REIN" => &[120, 220, 421, 500, 502],
        "QUIT" => &[221, 500],
        "PORT" => &[200, 421, 500, 501, 530],
        "PASV" => &[227, 421, 500, 501, 502, 530],
        "MODE" | "STRU" => &[200, 421, 500, 501, 502, 504, 530],
        "TYPE" => &[200, 421, 500, 501, 504, 530],
        "ALLO" => &[200, 202, 421, 500, 501, 504, 530],
        "REST" => &[200, 350, 421, 500, 501, 502, 530],
        "STOR" | "STOU" => &[
            110, 125, 150, 226, 250, 421, 425, 426, 451, 551, 552, 532, 450, 452, 553, 500, 501,
            530, 550,
        ],
        "RETR" => &[
            110, 125, 150, 226, 250, 421, 425, 426, 451, 450, 500, 501, 530, 550,
        ],
        "LIST" | "NLST" => &[
            125, 150, 226, 250, 421, 425, 426, 451, 450, 500, 501, 502, 530, 550,
        ],
        "APPE" => &[
            125, 150, 226, 250, 421, 425, 426, 451, 551, 552, 532, 450, 550, 452, 553, 500, 501,
            502, 530,
        ],
        "RNFR" => &[350, 421, 450, 550, 500, 501, 502, 530],
        "RNTO" => &[250, 421, 532, 553, 500, 501, 502, 503, 530],
        "DELE" | "RMD" => &[250, 421, 450, 550, 500, 501, 502, 530],
        "MKD" => &[257, 421, 500, 501, 502, 530, 550],
        "PWD" => &[257, 421, 500, 501, 502, 550],
        "ABOR" => &[225, 226, 421, 500, 501, 502],
        "SYST" => &[215, 421, 500, 501, 502, 530],
        "STAT" => &[211, 212, 213, 421, 450, 500, 501, 502, 530],
        "HELP" => &[200, 211, 214, 421, 500, 501, 502],
        "SITE" => &[200, 202, 214, 500, 501, 502, 530],
        "NOOP" => &[200, 421, 500],
        "LPRT" => &[500, 501, 521],
        "FEAT" => &[211, 500, 502],
        "OPTS" => &[200, 451, 501],
        "EPSV" => &[229, 500, 501],
        "EPRT" => &[200, 500, 501, 522],
        "SIZE" | "MDTM" => &[213, 500, 501, 550],
        "MLST" | "MLSD" => &[150, 226, 250, 500, 501, 550],
        "CLNT" => &[200, 500],
        "MACB" => &[200, 500, 550],
        _ => &[],
    };
    codes.contains(&code) || (code == 0 && matches!(cmd, "<init>" | "<missing>" | "QUIT"))
}

/// A command waiting for (or matched to) its reply.
#[derive(Debug, Clone)]
struct CmdArg {
    ts: Timestamp,
    cmd: String,
    arg: Vec<u8>,
    seq: u64,
    cwd_consumed: bool,
}

/// Zeek's `c$ftp`: the session record whose fields each written row snapshots.
struct Session {
    info: FtpInfo,
    cwd: String,
    cmdarg: Option<CmdArg>,
    pending: BTreeMap<u64, CmdArg>,
    command_seq: u64,
    user_seen: bool,
    logged_command_seen: bool,
    /// The record `ftp_data_expected` holds for this session's data channels.
    transfer: Transfer,
}

impl Session {
    /// The file its data channel carried since the last row goes on the next row, and no
    /// further (`ftp_message` clears `fuid` and `mime_type` after writing).
    fn take_transfer(&mut self) {
        let transfer = self.transfer.take();
        self.info.fuid = transfer.fuid;
        self.info.mime_type = transfer.mime_type;
    }
}

pub struct FtpAnalyzer {
    conn: ConnInfo,
    session: Option<Session>,
    bufs: [StreamBuf; 2],
    /// The code of a multi-line reply in progress.
    multiline: Option<u16>,
    confirmed: bool,
    /// The argument of the client's AUTH command (`TLS` upgrades the connection).
    auth_requested: Option<Vec<u8>>,
    /// After `AUTH TLS` was accepted.
    tls: Option<Box<SslAnalyzer>>,
    /// The ADAT exchange after `AUTH GSSAPI` was answered with 334.
    adat: Option<Adat>,
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

impl FtpAnalyzer {
    pub fn new(conn: ConnInfo) -> Self {
        FtpAnalyzer {
            conn,
            session: None,
            bufs: Default::default(),
            multiline: None,
            confirmed: false,
            auth_requested: None,
            tls: None,
            adat: None,
        }
    }

    /// Zeek's `set_ftp_session`.
    fn session(&mut self, ts: Timestamp) -> &mut Session {
        let conn = &self.conn;
        self.session.get_or_insert_with(|| {
            let mut pending = BTreeMap::new();
            pending.insert(
                1,
                CmdArg {
                    ts,
                    cmd: "<init>".into(),
                    arg: Vec::new(),
                    seq: 1,
                    cwd_consumed: false,
                },
            );
            Session {
                info: FtpInfo::new(ts, conn.clone()),
                cwd: ".".into(),
                cmdarg: None,
                pending,
                command_seq: 1,
                user_seen: false,
                logged_command_seen: false,
                transfer: Transfer::default(),
            }
        })
    }

    fn request(&mut self, ts: Timestamp, line: &[u8], out: &mut dyn Emit) {
        let Some((cmd, mut arg)) = parser::parse_command(line) else {
            return;
        };
        if let Some(s) = self.session.as_mut() {
            if let (Some(ca), Some(_)) = (&s.cmdarg, s.info.reply_code) {
                if s.pending.remove(&ca.seq).is_some() {
                    self.message(ts, out);
                }
            }
        }
        let resp_h = self.conn.id.resp_h;
        let s = self.session(ts);
        if s.pending.len() < MAX_PENDING {
            s.command_seq += 1;
            let seq = s.command_seq;
            s.pending.insert(
                seq,
                CmdArg {
                    ts,
                    cmd: cmd.clone(),
                    arg: arg.clone(),
                    seq,
                    cwd_consumed: false,
                },
            );
        } else {
            out.weird(
                ts,
                "FTP_too_many_pending_commands",
                Some(s.pending.len().to_string()),
            );
        }
        match cmd.as_str() {
            "AUTH" => self.auth_requested = Some(arg.clone()),
            "USER" => {
                if arg.len() > MAX_USER {
                    out.weird(ts, "FTP_user_too_long", Some(arg.len().to_string()));
                    arg.truncate(MAX_USER);
                }
                let s = self.session(ts);
                s.info.user = arg;
                s.user_seen = true;
            }
            "PASS" => {
                if arg.len() > MAX_PASSWORD {
                    out.weird(ts, "FTP_password_too_long", Some(arg.len().to_string()));
                    arg.truncate(MAX_PASSWORD);
                }
                self.session(ts).info.password = Some(arg);
            }
            "PORT" | "EPRT" => {
                let parsed = if cmd == "PORT" {
                    parser::parse_port_tuple(&arg)
                } else {
                    parser::parse_eprt(&arg)
                };
                if let Some((h, p)) = parsed {
                    let chan = DataChannel {
                        passive: false,
                        orig_h: resp_h,
                        resp_h: h,
                        resp_p: p,
                    };
                    let s = self.session(ts);
                    s.info.data_channel = Some(chan);
                    out.expect_ftp_data(ts, chan, s.transfer.clone());
                }
            }
            _ => {}
        }
    }

    fn reply(&mut self, ts: Timestamp, line: &[u8], out: &mut dyn Emit) {
        let Some((r, multiline)) = parser::parse_reply(line, self.multiline) else {
            return;
        };
        self.multiline = multiline;
        let cont = r.cont;
        if !self.confirmed && r.code > 0 {
            self.confirmed = true;
            out.confirm_service("ftp");
        }
        if r.code == 234 && self.auth_requested.as_deref() == Some(&b"TLS"[..]) {
            // Zeek's ftp_starttls: the rest of the connection is TLS.
            let mut tls = Box::new(SslAnalyzer::new(self.conn.clone()));
            let client = self.bufs[0].take_all();
            let server = self.bufs[1].take_all();
            if !client.is_empty() {
                tls.data(ts, Direction::Orig, &client, out);
            }
            if !server.is_empty() {
                tls.data(ts, Direction::Resp, &server, out);
            }
            self.tls = Some(tls);
        }
        if r.code == 334 && self.auth_requested.as_deref() == Some(&b"GSSAPI"[..]) {
            self.adat = Some(Adat::new());
        }
        let (orig_h, resp_h) = (self.conn.id.orig_h, self.conn.id.resp_h);
        let s = self.session(ts);
        if cont && r.code == 0 && s.info.reply_code.is_some() && !looks_like_reply(&r.msg) {
            return;
        }
        let ca = best_pending(&s.pending, r.code, &r.msg).unwrap_or_else(|| CmdArg {
            ts,
            cmd: "<missing>".into(),
            arg: Vec::new(),
            seq: 0,
            cwd_consumed: false,
        });
        s.info.reply_code = Some(r.code);
        s.info.reply_msg = Some(r.msg.clone());
        s.cmdarg = Some(ca.clone());
        if cont {
            return;
        }
        match (r.code, ca.cmd.as_str()) {
            (150, "RETR") | (213, "SIZE") => s.info.file_size = parser::last_count(&r.msg),
            (227, "PASV") | (229, "EPSV") | (227, "EPSV") | (229, "PASV") => {
                let parsed = if r.code == 227 {
                    parser::parse_port_tuple(&r.msg)
                } else {
                    parser::parse_epsv(&r.msg)
                };
                if let Some((mut h, p)) = parsed {
                    if r.code == 229 && h == IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
                        h = resp_h;
                    }
                    let chan = DataChannel {
                        passive: true,
                        orig_h,
                        resp_h: h,
                        resp_p: p,
                    };
                    s.info.data_channel = Some(chan);
                    out.expect_ftp_data(ts, chan, s.transfer.clone());
                }
            }
            _ => {}
        }
        let directory = matches!(
            (ca.cmd.as_str(), r.code),
            ("CWD", 250) | ("CDUP", 200) | ("CDUP", 250) | ("PWD", 257) | ("XPWD", 257)
        );
        if directory && !ca.cwd_consumed {
            if let Some(p) = s.pending.get_mut(&ca.seq) {
                p.cwd_consumed = true;
            }
            if let Some(c) = s.cmdarg.as_mut() {
                c.cwd_consumed = true;
            }
            match ca.cmd.as_str() {
                "CWD" => s.cwd = parser::compress_path(&parser::build_path(&s.cwd, &ca.arg)),
                "CDUP" => s.cwd = parser::compress_path(&format!("{}/..", s.cwd)),
                _ => {
                    if let Some(p) = parser::extract_path(&r.msg) {
                        s.cwd = p;
                    }
                }
            }
        }
        if s.pending.len() > 1 {
            s.pending.remove(&ca.seq);
            self.message(ts, out);
        }
    }

    /// Zeek's `ftp_message`: finishes the current command, writing it if it is a logged one.
    fn message(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        let resp_h = self.conn.id.resp_h;
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let Some(ca) = s.cmdarg.clone() else {
            return;
        };
        s.info.ts = ca.ts;
        s.info.command = Some(ca.cmd.clone());
        let mut arg = ca.arg.clone();
        if FILE_CMDS.contains(&ca.cmd.as_str()) {
            let mut path = parser::compress_path(&parser::build_path(&s.cwd, &ca.arg));
            if !path.starts_with('/') {
                path.insert(0, '/');
            }
            arg = format!("ftp://{}{}", parser::addr_to_uri(resp_h), path).into_bytes();
        }
        if arg.len() > MAX_ARG {
            out.weird(ts, "FTP_arg_too_long", Some(arg.len().to_string()));
            arg.truncate(MAX_ARG);
        }
        if let Some(m) = s.info.reply_msg.as_mut() {
            if m.len() > MAX_REPLY_MSG {
                out.weird(ts, "FTP_reply_msg_too_long", Some(m.len().to_string()));
                m.truncate(MAX_REPLY_MSG);
            }
        }
        let user = String::from_utf8_lossy(&s.info.user).to_ascii_lowercase();
        let hide = !GUEST_IDS.contains(&user.as_str());
        if ca.cmd == "PASS" && hide {
            arg = b"<hidden>".to_vec();
        }
        s.info.arg = (!arg.is_empty()).then_some(arg);
        if hide && s.info.password.is_some() {
            s.info.password = Some(b"<hidden>".to_vec());
        }
        s.take_transfer();
        if LOGGED.contains(&ca.cmd.as_str()) {
            out.record(Box::new(s.info.clone()));
            s.logged_command_seen = true;
        }
        s.info.file_size = None;
        s.info.data_channel = None;
    }
}

/// A continuation line that still looks like a reply (`/^[1-9][0-9]{2} [[:print:]]{10}.*/`).
fn looks_like_reply(msg: &[u8]) -> bool {
    match msg {
        [a, b, c, b' ', rest @ ..] => {
            (b'1'..=b'9').contains(a)
                && b.is_ascii_digit()
                && c.is_ascii_digit()
                && rest.len() >= 10
                && rest[..10].iter().all(|x| (0x20..0x7f).contains(x))
        }
        _ => false,
    }
}

/// Zeek's `get_pending_cmd`: the best-scoring pending command for a reply, ties to the oldest.
fn best_pending(pending: &BTreeMap<u64, CmdArg>, code: u16, msg: &[u8]) -> Option<CmdArg> {
    let mut best: Option<(i32, &CmdArg)> = None;
    for ca in pending.values() {
        let mut score = 0;
        if code == 500 || expected_reply(&ca.cmd, code) {
            score += 100;
        }
        if contains(msg, ca.cmd.as_bytes()) {
            score += 20;
        }
        if contains(msg, &ca.arg) {
            score += 10;
        }
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, ca));
        }
    }
    best.map(|(_, ca)| ca.clone())
}

impl Analyzer for FtpAnalyzer {
    fn data(&mut self, ts: Timestamp, dir: Direction, data: &[u8], out: &mut dyn Emit) {
        if let Some(tls) = self.tls.as_mut() {
            tls.data(ts, dir, data, out);
            return;
        }
        let i = match dir {
            Direction::Orig => 0,
            Direction::Resp => 1,
        };
        self.bufs[i].extend(data);
        while let Some(line) = self.bufs[i].line(MAX_LINE) {
            if line.overflow {
                out.weird(ts, "contentline_size_exceeded", None);
            }
            // Zeek's FTP analyzer passes on the lines it accepted, after reading them.
            let accepted = match dir {
                Direction::Orig => parser::is_ftp_cmd(&line.text),
                Direction::Resp => parser::parse_reply(&line.text, self.multiline).is_some(),
            };
            match dir {
                Direction::Orig => self.request(ts, &line.text, out),
                Direction::Resp => self.reply(ts, &line.text, out),
            }
            if let Some(adat) = self.adat.as_mut().filter(|_| accepted) {
                let done = match dir {
                    Direction::Orig => adat.request(ts, &line.text, out),
                    Direction::Resp => adat.reply(ts, &line.text, out),
                };
                if done {
                    self.adat = None;
                }
            }
            if self.tls.is_some() {
                return;
            }
        }
    }

    fn gap(&mut self, ts: Timestamp, dir: Direction, len: u64, out: &mut dyn Emit) {
        if let Some(tls) = self.tls.as_mut() {
            tls.gap(ts, dir, len, out);
            return;
        }
        // The partial line before the gap is unusable; lines after it start fresh.
        match dir {
            Direction::Orig => self.bufs[0].clear(),
            Direction::Resp => {
                self.bufs[1].clear();
                self.multiline = None;
            }
        }
    }

    fn finish(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        if let Some(tls) = self.tls.as_mut() {
            tls.finish(ts, out);
        }
        let Some(s) = self.session.as_mut() else {
            return;
        };
        let pending: Vec<CmdArg> = std::mem::take(&mut s.pending).into_values().collect();
        for ca in pending {
            if let Some(s) = self.session.as_mut() {
                s.cmdarg = Some(ca);
            }
            self.message(ts, out);
        }
        if let Some(mut s) = self.session.take() {
            if s.user_seen && !s.logged_command_seen {
                s.take_transfer();
                out.record(Box::new(s.info));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Transport;
    use crate::proto::testkit::{conn, Collect};
    use proptest::prelude::*;

    #[test]
    fn session_with_pasv_and_retr() {
        let mut a = FtpAnalyzer::new(conn(Transport::Tcp, 21));
        let mut out = Collect::default();
        let steps: &[(Direction, &[u8])] = &[
            (Direction::Resp, b"220-Welcome\r\n220 ready\r\n"),
            (Direction::Orig, b"USER joe\r\n"),
            (Direction::Resp, b"331 Password required\r\n"),
            (Direction::Orig, b"PASS secret\r\n"),
            (Direction::Resp, b"230 Logged in\r\n"),
            (Direction::Orig, b"CWD pub\r\n"),
            (Direction::Resp, b"250 OK\r\n"),
            (Direction::Orig, b"PASV\r\n"),
            (
                Direction::Resp,
                b"227 Entering Passive Mode (10,0,0,2,4,1)\r\n",
            ),
            (Direction::Orig, b"RETR a.txt\r\n"),
            (Direction::Resp, b"150 Opening (1234 bytes)\r\n226 Done\r\n"),
            (Direction::Orig, b"QUIT\r\n"),
        ];
        for (i, (dir, data)) in steps.iter().enumerate() {
            a.data(Timestamp(i as f64), *dir, data, &mut out);
        }
        a.finish(Timestamp(100.0), &mut out);
        assert_eq!(
            out.rows(),
            vec![
                "joe\t<hidden>\tPASV\t-\t-\t-\t227\tEntering Passive Mode (10,0,0,2,4,1)\tT\t10.0.0.1\t10.0.0.2\t1025\t-",
                "joe\t<hidden>\tRETR\tftp://10.0.0.2/./pub/a.txt\t-\t1234\t226\tDone\t-\t-\t-\t-\t-",
            ]
        );
        assert_eq!(out.services, vec!["ftp"]);
    }

    #[test]
    fn unlogged_session_gets_a_summary_row() {
        let mut a = FtpAnalyzer::new(conn(Transport::Tcp, 21));
        let mut out = Collect::default();
        a.data(Timestamp(1.0), Direction::Resp, b"220 hi\r\n", &mut out);
        a.data(
            Timestamp(2.0),
            Direction::Orig,
            b"USER anonymous\r\nPASS me@\r\n",
            &mut out,
        );
        a.data(
            Timestamp(3.0),
            Direction::Resp,
            b"331 ok\r\n530 Login incorrect.\r\n",
            &mut out,
        );
        a.data(Timestamp(4.0), Direction::Orig, b"QUIT\r\n", &mut out);
        a.data(
            Timestamp(5.0),
            Direction::Resp,
            b"221 Goodbye.\r\n",
            &mut out,
        );
        a.finish(Timestamp(6.0), &mut out);
        assert_eq!(
            out.rows(),
            vec!["anonymous\tme@\tQUIT\t-\t-\t-\t221\tGoodbye.\t-\t-\t-\t-\t-"]
        );
    }

    #[test]
    fn auth_tls_hands_over_to_tls() {
        let mut a = FtpAnalyzer::new(conn(Transport::Tcp, 21));
        let mut out = Collect::default();
        a.data(
            Timestamp(1.0),
            Direction::Resp,
            b"220 FTP ready\r\n",
            &mut out,
        );
        a.data(Timestamp(2.0), Direction::Orig, b"AUTH TLS\r\n", &mut out);
        a.data(
            Timestamp(3.0),
            Direction::Resp,
            b"234 Proceed\r\n",
            &mut out,
        );
        a.data(
            Timestamp(4.0),
            Direction::Orig,
            &[22, 3, 1, 0, 4, 1, 0, 0, 0],
            &mut out,
        );
        a.data(
            Timestamp(5.0),
            Direction::Resp,
            &[21, 3, 3, 0, 2, 2, 40],
            &mut out,
        );
        a.finish(Timestamp(6.0), &mut out);
        let paths: Vec<&str> = out.records.iter().map(|r| r.path()).collect();
        assert_eq!(paths, vec!["ssl"]);
        assert!(
            out.rows()[0].contains("handshake_failure\t-\tF\tCl"),
            "{:?}",
            out.rows()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_streams_never_panic(
            chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..16)
        ) {
            let mut a = FtpAnalyzer::new(conn(Transport::Tcp, 21));
            let mut out = Collect::default();
            for (orig, data) in chunks {
                let dir = if orig { Direction::Orig } else { Direction::Resp };
                a.data(Timestamp(1.0), dir, &data, &mut out);
            }
            a.finish(Timestamp(2.0), &mut out);
        }
    }
}
