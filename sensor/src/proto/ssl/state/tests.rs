use super::*;
use crate::flow::Transport;
use crate::proto::testkit::{conn, Collect};
use proptest::prelude::*;

const CLIENT_HELLO_TOO_SHORT: &[u8] = &[22, 3, 1, 0, 4, 1, 0, 0, 0];

fn tls() -> SslAnalyzer {
    SslAnalyzer::new(conn(Transport::Tcp, 443))
}

#[test]
fn alert_after_client_hello_is_logged_at_finish() {
    let mut a = tls();
    let mut out = Collect::default();
    // A ClientHello record too short for tls-parser still counts as a 'C'.
    a.data(
        Timestamp(1.0),
        Direction::Orig,
        CLIENT_HELLO_TOO_SHORT,
        &mut out,
    );
    a.data(
        Timestamp(1.1),
        Direction::Resp,
        &[21, 3, 3, 0, 2, 2, 40],
        &mut out,
    );
    a.finish(Timestamp(2.0), &mut out);
    assert_eq!(
        out.rows(),
        vec!["-\t-\t-\t-\tF\thandshake_failure\t-\tF\tCl\t-\t-\t-"]
    );
}

/// Zeek's `proc_ciphertext_record`: established only with a ciphertext record once both
/// sides sent ChangeCipherSpec, not at the second ChangeCipherSpec itself.
#[test]
fn established_needs_a_ciphertext_record_after_both_ccs() {
    let mut a = tls();
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Orig,
        &[20, 3, 3, 0, 1, 1],
        &mut out,
    );
    a.data(
        Timestamp(1.1),
        Direction::Resp,
        &[20, 3, 3, 0, 1, 1],
        &mut out,
    );
    assert!(out.records.is_empty());
    // Encrypted handshake (Finished): ciphertext.
    a.data(
        Timestamp(1.2),
        Direction::Resp,
        &[22, 3, 3, 0, 3, 9, 9, 9],
        &mut out,
    );
    assert_eq!(out.rows().len(), 1);
    assert!(out.rows()[0].contains("\tT\tIi\t"), "{:?}", out.rows());
}

/// `ssl_plaintext_data` in main.zeek: application data in the clear after the version is
/// known and before `established`.
#[test]
fn early_application_data_is_a_weird() {
    let mut a = tls();
    let mut out = Collect::default();
    let mut hello = vec![22, 3, 3, 0, 0];
    let mut body = vec![2, 0, 0, 0, 3, 3];
    body.extend_from_slice(&[1; 32]);
    body.extend_from_slice(&[0, 0xc0, 0x2f, 0]);
    body[3] = u8::try_from(body.len() - 4).expect("short");
    hello[4] = u8::try_from(body.len()).expect("short");
    hello.extend_from_slice(&body);
    a.data(Timestamp(1.0), Direction::Resp, &hello, &mut out);
    a.data(
        Timestamp(1.1),
        Direction::Resp,
        &[23, 3, 3, 0, 1, 0],
        &mut out,
    );
    assert_eq!(out.script_weirds, vec!["ssl_early_application_data"]);
}

/// `determine_ssl_record_layer`: a first record that is not TLS is a violation; the row is
/// written then and nothing more is read.
#[test]
fn bad_record_version_stops_the_analyzer() {
    let mut a = tls();
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Orig,
        CLIENT_HELLO_TOO_SHORT,
        &mut out,
    );
    a.data(
        Timestamp(1.1),
        Direction::Resp,
        &[21, 9, 9, 0, 2, 2, 40],
        &mut out,
    );
    a.data(
        Timestamp(1.2),
        Direction::Resp,
        &[21, 3, 3, 0, 2, 2, 40],
        &mut out,
    );
    a.finish(Timestamp(2.0), &mut out);
    assert_eq!(out.rows().len(), 1);
    assert!(out.rows()[0].contains("\tC\t"), "{:?}", out.rows());
    assert_eq!(out.violations, vec!["ssl"]);
}

/// `SSL_Analyzer::Undelivered`: after a gap in one direction neither direction is parsed.
#[test]
fn a_gap_stops_both_directions() {
    let mut a = tls();
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Orig,
        CLIENT_HELLO_TOO_SHORT,
        &mut out,
    );
    a.gap(Timestamp(1.1), Direction::Orig, 10, &mut out);
    a.data(
        Timestamp(1.2),
        Direction::Resp,
        &[21, 3, 3, 0, 2, 2, 40],
        &mut out,
    );
    a.finish(Timestamp(2.0), &mut out);
    assert!(
        out.rows()[0].ends_with("\tF\tC\t-\t-\t-"),
        "{:?}",
        out.rows()
    );
}

/// An alert record can hold several alerts; each is an `ssl_alert` event.
#[test]
fn every_alert_of_a_record_counts() {
    let mut a = tls();
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Resp,
        &[21, 3, 3, 0, 4, 1, 0, 2, 40],
        &mut out,
    );
    a.finish(Timestamp(2.0), &mut out);
    assert!(out.rows()[0].contains("handshake_failure\t-\tF\tll\t"));
}

/// SSLv2: a server hello keeps the connection in SSLv2; CLIENT-MASTER-KEY establishes it.
#[test]
fn sslv2_handshake() {
    let mut a = tls();
    let mut out = Collect::default();
    a.data(
        Timestamp(1.0),
        Direction::Orig,
        &[0x80, 9, 1, 0, 2, 0, 0, 0, 0, 0, 0],
        &mut out,
    );
    a.data(
        Timestamp(1.1),
        Direction::Resp,
        &[0x80, 15, 4, 0, 1, 0, 2, 0, 1, 0, 3, 0, 0, 0xaa, 1, 0, 0x80],
        &mut out,
    );
    a.data(
        Timestamp(1.2),
        Direction::Orig,
        &[0x80, 10, 2, 1, 0, 0x80, 0, 0, 0, 0, 0, 0],
        &mut out,
    );
    assert_eq!(out.services, vec!["ssl"]);
    let fp = crate::proto::ssl::x509::fingerprint(&[0xaa]);
    assert_eq!(
        out.rows(),
        vec![format!(
            "SSLv2\tSSLv20_CK_RC4_128_WITH_MD5\t-\t-\tF\t-\t-\tT\tCs\t{fp}\t(empty)\t-"
        )]
    );
}

fn dtls_record(epoch: u16, seq: u8, kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![kind, 0xfe, 0xfd];
    r.extend_from_slice(&epoch.to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0, 0, seq]);
    r.extend_from_slice(&u16::try_from(payload.len()).expect("short").to_be_bytes());
    r.extend_from_slice(payload);
    r
}

fn dtls_fragment(kind: u8, length: u8, offset: u8, data: &[u8]) -> Vec<u8> {
    let mut f = vec![kind, 0, 0, length, 0, 0, 0, 0, offset, 0, 0];
    f.push(u8::try_from(data.len()).expect("short"));
    f.extend_from_slice(data);
    f
}

/// `dtls-analyzer.pac`: fragments are put back together before the handshake is read;
/// epoch 1 records are ciphertext.
#[test]
fn dtls_fragments_and_epochs() {
    let mut a = SslAnalyzer::new_dtls(conn(Transport::Udp, 443));
    let mut out = Collect::default();
    let mut hello = vec![0xfe, 0xfd];
    hello.extend_from_slice(&[5; 32]);
    hello.extend_from_slice(&[0, 0xc0, 0x30, 0]);
    let (first, second) = hello.split_at(10);
    let len = u8::try_from(hello.len()).expect("short");
    let mut dgram = dtls_record(0, 1, 22, &dtls_fragment(2, len, 10, second));
    a.data(Timestamp(1.0), Direction::Resp, &dgram, &mut out);
    assert!(out.records.is_empty());
    dgram = dtls_record(0, 0, 22, &dtls_fragment(2, len, 0, first));
    a.data(Timestamp(1.0), Direction::Resp, &dgram, &mut out);
    let mut ccs = dtls_record(0, 2, 20, &[1]);
    ccs.extend_from_slice(&dtls_record(1, 0, 22, &[9; 8]));
    a.data(Timestamp(1.1), Direction::Resp, &ccs, &mut out);
    a.data(Timestamp(1.2), Direction::Orig, &ccs, &mut out);
    assert_eq!(
        out.rows(),
        vec!["DTLSv12\tTLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\t-\t-\tF\t-\t-\tT\tsiI\t-\t-\t-"]
    );
}

/// `is_unified_record`: once DTLS 1.3 is chosen, records with the unified header are skipped
/// (no violation, no row yet).
#[test]
fn dtls13_unified_records_are_skipped() {
    let mut a = SslAnalyzer::new_dtls(conn(Transport::Udp, 443));
    let mut out = Collect::default();
    let mut hello = vec![0xfe, 0xfd];
    hello.extend_from_slice(&[5; 32]);
    hello.extend_from_slice(&[0, 0x13, 0x01, 0, 0, 6, 0, 43, 0, 2, 0xfe, 0xfc]);
    let len = u8::try_from(hello.len()).expect("short");
    let dgram = dtls_record(0, 0, 22, &dtls_fragment(2, len, 0, &hello));
    a.data(Timestamp(1.0), Direction::Resp, &dgram, &mut out);
    a.data(
        Timestamp(1.1),
        Direction::Resp,
        &[0x2c, 0, 1, 0, 4, 1, 2, 3, 4],
        &mut out,
    );
    assert!(out.records.is_empty() && out.violations.is_empty());
    a.finish(Timestamp(2.0), &mut out);
    assert!(out.rows()[0].starts_with("DTLSv13\t"), "{:?}", out.rows());
}

proptest! {
    #[test]
    fn arbitrary_streams_never_panic(
        chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..300)), 0..12),
        dtls in any::<bool>(),
    ) {
        let mut a = if dtls {
            SslAnalyzer::new_dtls(conn(Transport::Udp, 443))
        } else {
            tls()
        };
        let mut out = Collect::default();
        for (orig, mut data) in chunks {
            if let Some(first) = data.first_mut() { *first = 22; }
            let dir = if orig { Direction::Orig } else { Direction::Resp };
            a.data(Timestamp(1.0), dir, &data, &mut out);
        }
        a.finish(Timestamp(2.0), &mut out);
    }
}
