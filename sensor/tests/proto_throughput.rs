//! Analyzer throughput on synthetic streams (measured, never asserted; `#[ignore]`d so the
//! normal test run stays fast). Run with:
//! `cargo test --release -p estuary-sensor --test proto_throughput -- --ignored --nocapture`

use std::time::Instant;

use estuary_sensor::flow::{ConnId, ConnInfo, Direction, Timestamp, Transport};
use estuary_sensor::proto::{self, Emit};
use estuary_sensor::zeeklog::Record;

struct Count(usize);

impl Emit for Count {
    fn record(&mut self, _record: Box<dyn Record + Send>) {
        self.0 += 1;
    }
    fn weird(&mut self, _ts: Timestamp, _name: &str, _addl: Option<String>) {}
    fn confirm_service(&mut self, _service: &'static str) {}
}

fn conn(port: u16) -> ConnInfo {
    ConnInfo {
        uid: "CBench".into(),
        id: ConnId {
            orig_h: "10.0.0.1".parse().expect("literal"),
            orig_p: 40000,
            resp_h: "10.0.0.2".parse().expect("literal"),
            resp_p: port,
            proto: Transport::Tcp,
        },
    }
}

/// Feeds each exchange in 1448-byte segments, in order; returns (bytes, seconds, records).
fn run(
    port: u16,
    new: fn(&ConnInfo) -> Box<dyn proto::Analyzer>,
    exchanges: &[(Direction, Vec<u8>)],
) -> (usize, f64, usize) {
    let mut a = new(&conn(port));
    let mut out = Count(0);
    let start = Instant::now();
    let mut bytes = 0;
    for (dir, data) in exchanges {
        for seg in data.chunks(1448) {
            a.data(Timestamp(1.0), *dir, seg, &mut out);
        }
        bytes += data.len();
    }
    a.finish(Timestamp(2.0), &mut out);
    (bytes, start.elapsed().as_secs_f64(), out.0)
}

fn report(name: &str, (bytes, secs, records): (usize, f64, usize)) {
    println!(
        "{name}: {:.1} MB in {secs:.3} s = {:.2} Gbit/s, {records} records",
        bytes as f64 / 1e6,
        bytes as f64 * 8.0 / secs / 1e9
    );
}

#[test]
#[ignore]
fn analyzer_throughput() {
    let body = vec![b'x'; 20_000];
    let mut http = Vec::new();
    for i in 0..5000 {
        let req =
            format!("GET /file/{i} HTTP/1.1\r\nHost: example.org\r\nUser-Agent: bench\r\n\r\n");
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        resp.extend_from_slice(&body);
        http.push((Direction::Orig, req.into_bytes()));
        http.push((Direction::Resp, resp));
    }
    report("http", run(80, proto::http::new_analyzer, &http));

    let mut smtp = vec![
        (Direction::Resp, b"220 mx ESMTP\r\n".to_vec()),
        (Direction::Orig, b"EHLO bench\r\n".to_vec()),
        (Direction::Resp, b"250 ok\r\n".to_vec()),
    ];
    for i in 0..500 {
        let mut mail =
            format!("MAIL FROM:<a{i}@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\nSubject: {i}\r\n\r\n")
                .into_bytes();
        for _ in 0..2000 {
            mail.extend_from_slice(
                b"0123456789012345678901234567890123456789012345678901234567890123456789012\r\n",
            );
        }
        mail.extend_from_slice(b".\r\n");
        smtp.push((Direction::Orig, mail));
        smtp.push((
            Direction::Resp,
            b"250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n".to_vec(),
        ));
    }
    report("smtp", run(25, proto::smtp::new_analyzer, &smtp));

    // DNS over UDP: one datagram per call, 100k query/answer pairs on one flow.
    let mut a = proto::dns::new_analyzer(&ConnInfo {
        uid: "CBench".into(),
        id: ConnId {
            proto: Transport::Udp,
            resp_p: 53,
            ..conn(53).id
        },
    });
    let mut out = Count(0);
    let mut query = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    query.extend_from_slice(b"\x03www\x07example\x03org\x00\x00\x01\x00\x01");
    let mut answer = query.clone();
    answer[2] = 0x81;
    answer[3] = 0x80;
    answer[7] = 1;
    answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, 1]);
    let start = Instant::now();
    for i in 0..100_000u32 {
        let id = (i as u16).to_be_bytes();
        query[..2].copy_from_slice(&id);
        answer[..2].copy_from_slice(&id);
        a.data(Timestamp(1.0), Direction::Orig, &query, &mut out);
        a.data(Timestamp(1.1), Direction::Resp, &answer, &mut out);
    }
    a.finish(Timestamp(2.0), &mut out);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "dns: {} messages in {secs:.3} s = {:.0} messages/s, {} records",
        200_000,
        200_000.0 / secs,
        out.0
    );
}
