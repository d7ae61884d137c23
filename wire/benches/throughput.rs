//! Throughput of the hot paths on Zeek conn.log-sized lines: encoding (shipper), framing
//! decode plus parse (aggregator), and RELP frames. `cargo bench -p estuary-wire`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chrono::Local;
use estuary_wire::encode::{Encoder, Header};
use estuary_wire::framing::SyslogDecoder;
use estuary_wire::relp::{Command, Frame, RelpCodec, Txnr};
use estuary_wire::{parse, Facility, Format, Framing, Origin, Pri, Severity};
use tokio_util::codec::{Decoder, Encoder as _};

const LINES: usize = 1_000_000;
const LINE: &[u8] =
    b"1763812559.123456\tCHhAvVGS1DHFjwGM9\t10.0.0.1\t51234\t10.0.0.2\t443\ttcp\tssl\t\
    0.123456\t1234\t5678\tSF\tT\tF\t0\tShADadFf\t12\t1890\t14\t6234\t-\t-";

fn report(name: &str, elapsed: Duration, bytes: usize) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{name:<36} {:>10.0} lines/s {:>8.1} MiB/s",
        LINES as f64 / secs,
        bytes as f64 / secs / (1024.0 * 1024.0)
    );
}

/// One header per batch: the shipper stamps a batch, not each line.
fn header(origin: Option<Origin>) -> Header<'static> {
    Header {
        pri: Pri {
            facility: Facility::Local7,
            severity: Severity::Informational,
        },
        timestamp: Local::now().fixed_offset(),
        hostname: "sensor1",
        tag: "bro_conn:",
        origin,
    }
}

/// Encodes every line into one buffer, as a shipper batch would.
fn encode(format: Format, framing: Framing) -> Vec<u8> {
    let mut out = Vec::with_capacity(LINES * 256);
    let mut header = header(None);
    let mut encoder = Encoder::new(format, Some(framing));
    let start = Instant::now();
    for i in 0..LINES {
        header.origin = Some(Origin {
            file: 0xfeed,
            offset: (i * LINE.len()) as u64,
        });
        encoder.write(&mut out, &header, LINE);
    }
    report(
        &format!("encode {format:?} {framing:?}"),
        start.elapsed(),
        out.len(),
    );
    out
}

/// Decodes in 64 KiB reads and parses every message, as an aggregator connection would.
fn decode_and_parse(name: &str, wire: &[u8]) {
    let mut decoder = SyslogDecoder::default();
    let mut buf = BytesMut::with_capacity(128 * 1024);
    let mut count = 0;
    let start = Instant::now();
    for chunk in wire.chunks(64 * 1024) {
        buf.extend_from_slice(chunk);
        while let Some(item) = decoder.decode(&mut buf).expect("framing") {
            let message = item.expect("not oversized");
            let parsed = parse(&message).expect("parse");
            black_box(parsed.body);
            count += 1;
        }
    }
    assert_eq!(count, LINES);
    report(name, start.elapsed(), wire.len());
}

fn relp(wire_message: &[u8]) {
    let mut codec = RelpCodec::default();
    let mut out = BytesMut::with_capacity(LINES * 300);
    let message = bytes::Bytes::copy_from_slice(wire_message);
    let start = Instant::now();
    for i in 0..LINES {
        let txnr = Txnr::new((i % 999_999_999 + 1) as u32).expect("txnr in range");
        let frame = Frame::new(txnr, Command::Syslog, message.clone());
        codec.encode(&frame, &mut out).expect("encode");
    }
    report("relp encode syslog frames", start.elapsed(), out.len());
    let total = out.len();
    let start = Instant::now();
    let mut count = 0;
    while let Some(frame) = codec.decode(&mut out).expect("decode") {
        black_box(frame);
        count += 1;
    }
    assert_eq!(count, LINES);
    report("relp decode syslog frames", start.elapsed(), total);
}

fn main() {
    // `cargo test --all-targets` runs bench binaries without `--bench`: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("{LINES} lines of {} bytes", LINE.len());
    let lf3164 = encode(Format::Rfc3164, Framing::NewLine);
    let oc5424 = encode(Format::Rfc5424, Framing::OctetCounting);
    decode_and_parse("decode+parse Rfc3164 NewLine", &lf3164);
    decode_and_parse("decode+parse Rfc5424 OctetCounting", &oc5424);
    relp(&lf3164[..lf3164.iter().position(|&b| b == b'\n').unwrap_or(0)]);
}
