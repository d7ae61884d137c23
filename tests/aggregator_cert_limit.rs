//! One client certificate cannot take every connection by connecting from many addresses:
//! `MaxConnectionsPerCertName` caps the connections under one certificate name whatever
//! address they come from, the refusals are counted by reason, and another certificate, like a
//! slot given back, is served as before.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const WAIT: Duration = Duration::from_secs(20);
const PER_NAME: usize = 3;

/// A TLS connection to 127.0.0.1:`port` from `local`, presenting `identity`.
async fn tls_from(
    local: [u8; 4],
    port: u16,
    ca: &Path,
    identity: &(std::path::PathBuf, std::path::PathBuf),
) -> TlsStream<tokio::net::TcpStream> {
    let pair = estuary_wire::tls::KeyPair {
        cert_file: &identity.0,
        key_file: &identity.1,
    };
    let config = estuary_wire::tls::client_config(ca, Some(pair)).unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((local, 0).into()).unwrap();
    let tcp = socket.connect(([127, 0, 0, 1], port).into()).await.unwrap();
    let name = estuary_wire::tls::server_name("localhost").unwrap();
    TlsConnector::from(config).connect(name, tcp).await.unwrap()
}

async fn send(stream: &mut TlsStream<tokio::net::TcpStream>, seq: u64) {
    // A refused connection may already be closed: what counts is whether the line arrives.
    let frame = octet_frame("sensor1", "bro_conn", &format!("seq={seq}\tx"));
    let _ = stream.write_all(&frame).await;
    let _ = stream.flush().await;
}

fn wait_seqs(agg: &Aggregator, seqs: &[u64]) {
    wait_for(WAIT, &format!("lines {seqs:?} in conn.log"), || {
        let counts = count_sequence_numbers(&agg.current("conn.log"));
        seqs.iter().all(|s| counts.contains_key(s)).then_some(())
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_certificate_name_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(&dir.path().join("pki"));
    let tls = free_tcp_port();
    let agg = Aggregator::start(
        dir.path(),
        &format!(
            "ListenTLS = 127.0.0.1:{tls}\nTLSCertFile = {}\nTLSKeyFile = {}\nTLSCAFile = {}\n\
             TLSRequireClientCert = 1\nAllowedPeers = sensor1.example localhost\n\
             MaxConnectionsPerCertName = {PER_NAME}\n",
            pki.server.0.display(),
            pki.server.1.display(),
            pki.ca.display(),
        ),
    );
    // sensor1's certificate from 127.0.0.2, .3, .4: each served (its line written), so each
    // holds its slot.
    let mut held = Vec::new();
    for i in 0..PER_NAME as u8 {
        let mut s = tls_from([127, 0, 0, 2 + i], tls, &pki.ca, &pki.client).await;
        send(&mut s, u64::from(i)).await;
        wait_seqs(&agg, &[u64::from(i)]);
        held.push(s);
    }
    // The same certificate from yet another address: refused, its line never written.
    let mut refused = tls_from([127, 0, 0, 9], tls, &pki.ca, &pki.client).await;
    send(&mut refused, 100).await;
    wait_for(WAIT, "the refusal counted by reason", || {
        let n = agg.status()["refusals"]["cert_name_connection_limit"].as_u64();
        (n == Some(1)).then_some(())
    });
    // Another certificate (`aggregator`, `localhost`) from the same address: its own budget.
    let mut other = tls_from([127, 0, 0, 9], tls, &pki.ca, &pki.server).await;
    send(&mut other, 200).await;
    wait_seqs(&agg, &[200]);
    // A slot given back is taken again.
    drop(held.pop());
    let mut again = retake_a_slot(&agg, tls, &pki).await;
    send(&mut again, 300).await;
    wait_seqs(&agg, &[300]);

    let counts = count_sequence_numbers(&agg.current("conn.log"));
    assert_eq!(counts.get(&100), None, "the refused connection's line");
    assert!(
        counts.values().all(|&n| n == 1),
        "each line once: {counts:?}"
    );
    let status = agg.status();
    assert_eq!(
        status["refusals"]["address_connection_limit"]
            .as_u64()
            .unwrap_or(0),
        0,
        "not the address cap: {status}"
    );
    let output = agg.daemon.output();
    assert!(
        output.contains("connections under certificate names"),
        "the refusal is logged with its reason:\n{output}"
    );
}

/// A new connection under sensor1's certificate once the aggregator has seen a held one
/// close (that takes a moment after the client drops it): retried until one is served.
async fn retake_a_slot(
    agg: &Aggregator,
    tls: u16,
    pki: &TestPki,
) -> TlsStream<tokio::net::TcpStream> {
    let deadline = std::time::Instant::now() + WAIT;
    let mut seq = 1000;
    loop {
        let mut s = tls_from([127, 0, 0, 10], tls, &pki.ca, &pki.client).await;
        send(&mut s, seq).await;
        let served = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            count_sequence_numbers(&agg.current("conn.log")).contains_key(&seq)
        });
        if served {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no slot given back within {WAIT:?}"
        );
        seq += 1;
    }
}
