//! estuary-wire's encoder against real rsyslog: imfile reads a Zeek-style log and omfwd sends it
//! with `RSYSLOG_TraditionalForwardFormat` and `RSYSLOG_SyslogProtocol23Format`, newline-framed
//! and octet-counted. Our bytes must equal rsyslog's apart from the timestamp, and our parser
//! must give back every line byte for byte.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use chrono::Local;
use estuary_wire::encode::{write_frame, write_message, Header};
use estuary_wire::framing::SyslogDecoder;
use estuary_wire::{parse, Facility, Format, Framing, Pri, Severity};
use tokio_util::codec::Decoder;

const LINES: &[&[u8]] = &[
    b"1763812559.123456\tCx1\t10.0.0.1\t51234\t10.0.0.2\t443\tTLSv12\t-\t(empty)\t\t",
    b"[x] starts like structured data\t]\"\\",
    b"not utf-8 \xff\xfe\t\x80",
    b" leading space",
];

struct Target {
    format: Format,
    framing: Framing,
    listener: TcpListener,
}

impl Target {
    fn new(format: Format, framing: Framing) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        Target {
            format,
            framing,
            listener,
        }
    }

    fn action(&self) -> String {
        let template = match self.format {
            Format::Rfc3164 => "RSYSLOG_TraditionalForwardFormat",
            Format::Rfc5424 => "RSYSLOG_SyslogProtocol23Format",
        };
        let framing = match self.framing {
            Framing::NewLine => "traditional",
            Framing::OctetCounting => "octet-counted",
        };
        format!(
            "action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{}\" protocol=\"tcp\" \
             tcp_framing=\"{framing}\" template=\"{template}\")\n",
            self.listener.local_addr().expect("local addr").port()
        )
    }

    /// Accepts rsyslog's connection and reads until `count` messages arrived; returns the raw
    /// stream and the decoded messages.
    fn receive(&self, count: usize, deadline: Instant) -> (Vec<u8>, Vec<Vec<u8>>) {
        let mut stream: TcpStream = common::wait_for(
            deadline.saturating_duration_since(Instant::now()),
            "rsyslog to connect",
            || self.listener.accept().ok().map(|(s, _)| s),
        );
        stream.set_nonblocking(false).expect("blocking stream");
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let mut decoder = SyslogDecoder::new(64 * 1024);
        let (mut raw, mut buf, mut messages) = (Vec::new(), BytesMut::new(), Vec::new());
        let mut chunk = [0u8; 4096];
        while messages.len() < count {
            assert!(
                Instant::now() < deadline,
                "got {messages:?} of {count} messages"
            );
            match stream.read(&mut chunk) {
                Ok(0) => panic!("rsyslog closed the connection"),
                Ok(n) => {
                    raw.extend_from_slice(&chunk[..n]);
                    buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => panic!("read from rsyslog: {e}"),
            }
            while let Some(item) = decoder.decode(&mut buf).expect("framing") {
                messages.push(item.expect("no oversized message").to_vec());
            }
        }
        (raw, messages)
    }
}

/// The message with its timestamp replaced by `TS`.
fn masked(message: &[u8]) -> Vec<u8> {
    let parsed = parse(message).expect("parse");
    let ts = parsed.timestamp.expect("timestamp").as_bytes();
    let at = message
        .windows(ts.len())
        .position(|w| w == ts)
        .expect("timestamp in message");
    [&message[..at], b"TS", &message[at + ts.len()..]].concat()
}

#[test]
fn encoder_matches_rsyslog_forward_templates_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("ssl.log");
    let mut contents = Vec::new();
    for line in LINES {
        contents.extend_from_slice(line);
        contents.push(b'\n');
    }
    std::fs::write(&log, contents).expect("write log");

    let targets = [
        Target::new(Format::Rfc3164, Framing::NewLine),
        Target::new(Format::Rfc3164, Framing::OctetCounting),
        Target::new(Format::Rfc5424, Framing::NewLine),
        Target::new(Format::Rfc5424, Framing::OctetCounting),
    ];
    let actions: String = targets.iter().map(Target::action).collect();
    let config = format!(
        "global(localHostname=\"sensor1\" parser.escapeControlCharacterTab=\"off\")\n\
         module(load=\"imfile\")\n\
         input(type=\"imfile\" file=\"{}\" tag=\"bro_ssl:\" facility=\"local7\" \
         severity=\"info\" ruleset=\"fwd\")\n\
         ruleset(name=\"fwd\") {{\n{actions}}}\n",
        log.display()
    );
    let rsyslog = common::start_rsyslog("rsyslog", dir.path(), &config);
    let deadline = Instant::now() + Duration::from_secs(15);

    for target in &targets {
        let what = format!("{:?}/{:?}", target.format, target.framing);
        let (raw, received) = target.receive(LINES.len(), deadline);
        assert!(!received.is_empty(), "{what}: {}", rsyslog.output());

        // Our framing writer frames rsyslog's messages exactly as rsyslog did.
        let mut reframed = Vec::new();
        for message in &received {
            write_frame(&mut reframed, target.framing, message);
        }
        assert_eq!(reframed, raw, "{what}: framing");

        for (line, theirs) in LINES.iter().zip(&received) {
            let now = Local::now();
            let header = Header {
                pri: Pri {
                    facility: Facility::Local7,
                    severity: Severity::Informational,
                },
                timestamp: now.fixed_offset(),
                hostname: "sensor1",
                tag: "bro_ssl:",
                origin: None,
            };
            let mut ours = Vec::new();
            write_message(&mut ours, target.format, &header, line);
            // The Protocol23 template ends in LF, which octet counting carries inside the frame.
            if (target.format, target.framing) == (Format::Rfc5424, Framing::OctetCounting) {
                ours.push(b'\n');
            }
            assert_eq!(
                String::from_utf8_lossy(&masked(&ours)),
                String::from_utf8_lossy(&masked(theirs)),
                "{what}"
            );
            assert_eq!(masked(&ours), masked(theirs), "{what}: bytes");

            // Same clock and zone: the two timestamps are close, offsets equal.
            let parsed = parse(theirs).expect("parse rsyslog's message");
            let their_time = parsed.resolve_timestamp(now).expect("rsyslog timestamp");
            let skew = (their_time - now.fixed_offset()).num_seconds().abs();
            assert!(
                skew < 60,
                "{what}: rsyslog's time {their_time} vs ours {now}"
            );
            if target.format == Format::Rfc5424 {
                let ours_parsed = parse(&ours).expect("parse ours");
                let offset = |ts: Option<&str>| ts.map(|t| t[t.len() - 6..].to_owned());
                assert_eq!(
                    offset(ours_parsed.timestamp),
                    offset(parsed.timestamp),
                    "{what}"
                );
            }

            // And our parser returns the line: facility, host, tag and body bytes.
            assert_eq!(parsed.pri, header.pri, "{what}");
            assert_eq!(parsed.hostname, Some("sensor1"), "{what}");
            assert_eq!(parsed.app_name, Some("bro_ssl"), "{what}");
            let expected: &[u8] = match target.format {
                // RFC 3164 as rsyslog writes it cannot tell `tag: x` from `tag:  x`.
                Format::Rfc3164 => line.strip_prefix(b" ").unwrap_or(line),
                Format::Rfc5424 => line,
            };
            assert_eq!(parsed.body, expected, "{what}");
        }
    }
}
