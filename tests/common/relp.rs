//! A minimal RELP client speaking librelp's framing, free to break the protocol.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub const OFFERS: &str = "relp_version=0\nrelp_software=test\ncommands=syslog";

pub struct Relp {
    stream: TcpStream,
    pub txnr: u32,
    buf: Vec<u8>,
}

impl Relp {
    /// Connects and opens the session.
    pub fn connect(port: u16) -> Relp {
        let mut relp = Relp::connect_raw(port);
        relp.send("open", OFFERS.as_bytes());
        let rsp = relp.read_rsp();
        assert!(rsp.1.starts_with("200 OK"), "{rsp:?}");
        relp
    }

    /// Connects from `local` (another 127.0.0.0/8 address) and opens the session.
    pub fn connect_from(local: std::net::Ipv4Addr, port: u16) -> Relp {
        let stream = tcp_from(local, port, 1).pop().unwrap();
        let mut relp = Relp::with(stream);
        relp.send("open", OFFERS.as_bytes());
        let rsp = relp.read_rsp();
        assert!(rsp.1.starts_with("200 OK"), "{rsp:?}");
        relp
    }

    /// Connects without opening.
    pub fn connect_raw(port: u16) -> Relp {
        Relp::with(TcpStream::connect(("127.0.0.1", port)).unwrap())
    }

    fn with(stream: TcpStream) -> Relp {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Relp {
            stream,
            txnr: 0,
            buf: Vec::new(),
        }
    }

    /// Sends `command` with the next transaction number.
    pub fn send(&mut self, command: &str, data: &[u8]) -> u32 {
        self.txnr += 1;
        self.send_txnr(self.txnr, command, data);
        self.txnr
    }

    /// Sends `command` with transaction number `txnr`, whatever the sequence says.
    pub fn send_txnr(&mut self, txnr: u32, command: &str, data: &[u8]) {
        let mut frame = format!("{txnr} {command} {}", data.len()).into_bytes();
        if !data.is_empty() {
            frame.push(b' ');
            frame.extend_from_slice(data);
        }
        frame.push(b'\n');
        // The server may have closed already; what it answered is what counts.
        let _ = self.stream.write_all(&frame);
    }

    /// Reads one `rsp` frame: (txnr, data).
    pub fn read_rsp(&mut self) -> (u32, String) {
        self.try_read_rsp().expect("server closed the session")
    }

    /// Reads one `rsp` frame; `None` once the server closed the connection.
    pub fn try_read_rsp(&mut self) -> Option<(u32, String)> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let mut parts = text.splitn(4, ' ');
                let txnr: u32 = parts.next().unwrap().parse().unwrap();
                assert_eq!(parts.next(), Some("rsp"), "{text}");
                let len: usize = parts.next().unwrap().parse().unwrap();
                let header = text.len() - parts.clone().next().map(str::len).unwrap_or(0);
                let total = header + len + 1;
                if self.buf.len() >= total {
                    let data =
                        String::from_utf8_lossy(&self.buf[header..header + len]).into_owned();
                    self.buf.drain(..total);
                    return Some((txnr, data));
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// `n` TCP connections to 127.0.0.1:`port` from `local` (another 127.0.0.0/8 address).
pub fn tcp_from(local: std::net::Ipv4Addr, port: u16, n: usize) -> Vec<TcpStream> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind((local, 0).into()).unwrap();
            let stream = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
            let stream = stream.into_std().unwrap();
            stream.set_nonblocking(false).unwrap();
            out.push(stream);
        }
        out
    })
}
