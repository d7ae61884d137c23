//! A plain TCP receiver (a SIEM, a syslog server) that keeps what every connection sends.

use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Listens on 127.0.0.1; returns the port and the lines received so far over all connections.
/// Only whole lines are kept, each connection's on its own: a reconnecting sender's bytes never
/// land inside another connection's line, and a line cut by a dropped connection was never
/// delivered.
pub fn line_sink() -> (u16, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the line sink");
    let port = listener.local_addr().expect("local address").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let sink = sink.clone();
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                let mut buf = [0; 64 * 1024];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    pending.extend_from_slice(&buf[..n]);
                    if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                        sink.lock().unwrap().extend(pending.drain(..=end));
                    }
                }
            });
        }
    });
    (port, got)
}
