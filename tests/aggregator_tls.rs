//! Syslog over TLS (RFC 5425) into the aggregator: rsyslog's GnuTLS `omfwd` with a client
//! certificate is admitted by certificate name and limited to the tags its peer rule allows; a
//! client without a certificate is refused and counted; rsyslog `omrelp` over TLS delivers too.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_peers_admitted_by_certificate_name_and_tag() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path());
    let (tls_port, tcp_port, relp_port) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let logs = dir.path().join("logs");
    let config = dir.path().join("aggregator.toml");
    std::fs::write(
        &config,
        format!(
            r#"log_dir = "{logs}"
spool_dir = "{spool}"
[listen]
tls = "127.0.0.1:{tls_port}"
tcp = "127.0.0.1:{tcp_port}"
relp_tls = "127.0.0.1:{relp_port}"
[mail]
sendmail = ""
[tls]
cert_file = "{cert}"
key_file = "{key}"
ca_file = "{ca}"
require_client_cert = true
[[peer]]
cert_name = "sensor1.example"
tag_regex = "^bro_(conn|ssl)$"
"#,
            logs = logs.display(),
            spool = dir.path().join("spool").display(),
            cert = pki.server.0.display(),
            key = pki.server.1.display(),
            ca = pki.ca.display(),
        ),
    )
    .unwrap();
    let _agg = Daemon::estuary(
        "aggregator",
        &["aggregate", "--config", config.to_str().unwrap()],
        dir.path(),
    );
    wait_for_tcp_listen(tls_port, Duration::from_secs(20));

    let input = dir.path().join("in.log");
    let mut text = String::new();
    for i in 0..200u64 {
        text.push_str(&format!("1.0\tC{i:017}\tssl\t\n"));
    }
    std::fs::write(&input, &text).unwrap();
    let conn_in = dir.path().join("conn.in");
    let conn_text: String = (0..100u64)
        .map(|i| format!("1.0\tC{:017}\tconn\t\n", 1000 + i))
        .collect();
    std::fs::write(&conn_in, &conn_text).unwrap();
    let http = dir.path().join("http.log");
    std::fs::write(&http, "1.0\tC99999999999999999\thttp\n").unwrap();
    let rsyslog_conf = format!(
        "global(defaultNetstreamDriver=\"gtls\" defaultNetstreamDriverCAFile=\"{ca}\" \
         defaultNetstreamDriverCertFile=\"{cert}\" defaultNetstreamDriverKeyFile=\"{key}\" \
         localHostname=\"sensor1\" parser.escapeControlCharacterTab=\"off\")\n\
         module(load=\"imfile\" mode=\"polling\" pollingInterval=\"1\")\n\
         module(load=\"omrelp\")\n\
         input(type=\"imfile\" file=\"{conn_in}\" tag=\"bro_conn\" facility=\"local7\" ruleset=\"relp\")\n\
         ruleset(name=\"relp\") {{ action(type=\"omrelp\" target=\"127.0.0.1\" port=\"{relp_port}\" \
         tls=\"on\" tls.caCert=\"{ca}\" tls.myCert=\"{cert}\" tls.myPrivKey=\"{key}\" \
         tls.authMode=\"name\" tls.permittedPeer=[\"localhost\"] \
         template=\"RSYSLOG_SyslogProtocol23Format\") }}\n\
         input(type=\"imfile\" file=\"{input}\" tag=\"bro_ssl\" facility=\"local7\" ruleset=\"fwd\")\n\
         input(type=\"imfile\" file=\"{http}\" tag=\"bro_http\" facility=\"local7\" ruleset=\"fwd\")\n\
         ruleset(name=\"fwd\") {{ action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{tls_port}\" \
         protocol=\"tcp\" tcp_framing=\"octet-counted\" streamDriver=\"gtls\" streamDriverMode=\"1\" \
         streamDriverAuthMode=\"x509/name\" streamDriverPermittedPeers=\"localhost\" \
         template=\"RSYSLOG_SyslogProtocol23Format\") }}\n",
        ca = pki.ca.display(),
        cert = pki.client.0.display(),
        key = pki.client.1.display(),
        input = input.display(),
        http = http.display(),
        conn_in = conn_in.display(),
    );
    let mut rsyslog = start_rsyslog("rsyslog", dir.path(), &rsyslog_conf);
    let ssl_log = logs.join("current/ssl.log");
    let got = wait_for(Duration::from_secs(30), "200 lines over TLS", || {
        let t = std::fs::read_to_string(&ssl_log).unwrap_or_default();
        (t.lines().count() >= 200).then_some(t)
    });
    assert_eq!(got, text, "byte for byte, trailing empty field included");
    let conn_log = logs.join("current/conn.log");
    let got = wait_for(Duration::from_secs(30), "100 lines over RELP/TLS", || {
        let t = std::fs::read_to_string(&conn_log).unwrap_or_default();
        (t.lines().count() >= 100).then_some(t)
    });
    assert_eq!(got, conn_text, "RELP over TLS");

    // No client certificate: the handshake fails and the peer is counted as refused.
    let client = estuary_wire::tls::client_config(&pki.ca, None).unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", tls_port))
        .await
        .unwrap();
    let connector = tokio_rustls::TlsConnector::from(client);
    let name = estuary_wire::tls::server_name("localhost").unwrap();
    if let Ok(mut stream) = connector.connect(name, tcp).await {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = stream
            .write_all(&octet_frame("x", "bro_conn", "seq=1\tnope"))
            .await;
        let mut buf = [0u8; 16];
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    }
    let status = dir.path().join("spool/status.json");
    wait_for(Duration::from_secs(10), "refusals counted", || {
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&status).ok()?).ok()?;
        // The bro_http line (tag not allowed) and the certificate-less client.
        (s["peers"]["127.0.0.1"]["refused"].as_u64()? >= 2).then_some(())
    });
    rsyslog.terminate(Duration::from_secs(5));
    assert!(!logs.join("current/http.log").exists());
    assert!(!std::fs::read_to_string(&conn_log).unwrap().contains("nope"));
}
