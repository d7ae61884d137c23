use super::*;
use crate::flow::Transport;
use crate::proto::testkit::{conn, Collect};
use proptest::prelude::*;

proptest! {
    #[test]
    fn arbitrary_streams_never_panic(
        chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..12),
        gap in any::<bool>(),
    ) {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        a.data(Timestamp(0.0), Direction::Orig, b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n", &mut out);
        a.data(Timestamp(0.0), Direction::Resp, b"HTTP/1.1 200 OK\r\n", &mut out);
        for (orig, data) in chunks {
            let dir = if orig { Direction::Orig } else { Direction::Resp };
            a.data(Timestamp(1.0), dir, &data, &mut out);
            if gap {
                a.gap(Timestamp(1.0), dir, 10, &mut out);
            }
        }
        a.finish(Timestamp(2.0), &mut out);
    }
}

proptest! {
    /// Byte-range replies, multipart parts and bodies read as lines, fed arbitrary bytes.
    #[test]
    fn arbitrary_range_replies_never_panic(
        chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..200)), 0..12),
        gap in any::<bool>(),
    ) {
        let mut a = HttpAnalyzer::new(conn(Transport::Tcp, 80));
        let mut out = Collect::default();
        a.data(Timestamp(0.0), Direction::Orig, b"GET /x HTTP/1.1\r\nRange: bytes=0-\r\n\r\n", &mut out);
        a.data(Timestamp(0.0), Direction::Resp, b"HTTP/1.1 206 Partial\r\nContent-Type: multipart/byteranges; boundary=b\r\n\r\n--b\r\nContent-Range: bytes 9223372036854775800-9223372036854775806/9223372036854775807\r\n\r\n", &mut out);
        for (orig, data) in chunks {
            let dir = if orig { Direction::Orig } else { Direction::Resp };
            a.data(Timestamp(1.0), dir, &data, &mut out);
            if gap {
                a.gap(Timestamp(1.0), dir, 10, &mut out);
            }
        }
        a.finish(Timestamp(2.0), &mut out);
    }
}
