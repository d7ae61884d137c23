//! A status file write that hangs (a FIFO nobody reads stands in for a disk stuck in fsync)
//! must not hold up RELP acknowledgements: on a two-core machine the runtime has one worker
//! thread, and file I/O on it once stalled every connection.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use estuary_aggregator::clock::SystemClock;

fn relp_frame(txnr: u64, command: &str, data: &str) -> String {
    format!("{txnr} {command} {} {data}\n", data.len())
}

/// Reads one RELP frame (`txnr command datalen[ data]\n`); returns its txnr and data.
fn read_frame(reader: &mut impl Read) -> std::io::Result<(u64, String)> {
    let mut header = Vec::new();
    let mut spaces = 0;
    let mut byte = [0u8];
    loop {
        reader.read_exact(&mut byte)?;
        match byte[0] {
            b' ' if spaces == 2 => break,
            b'\n' if spaces == 2 => break,
            b' ' => spaces += 1,
            _ => {}
        }
        header.push(byte[0]);
    }
    let header = String::from_utf8_lossy(&header).into_owned();
    let fields: Vec<&str> = header.split(' ').collect();
    let bad = |_| std::io::Error::other(format!("bad RELP header {header:?}"));
    let txnr: u64 = fields[0].parse().map_err(bad)?;
    let len: usize = fields[2].parse().map_err(bad)?;
    let mut data = vec![0; if len > 0 { len + 1 } else { 0 }];
    reader.read_exact(&mut data)?;
    Ok((txnr, String::from_utf8_lossy(&data).into_owned()))
}

/// Sends `count` syslog frames one at a time; returns how many were acknowledged.
fn relp_send(port: u16, count: u64) -> u64 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let offers = "relp_version=0\nrelp_software=test\ncommands=syslog";
    stream
        .write_all(relp_frame(1, "open", offers).as_bytes())
        .unwrap();
    let (txnr, data) = read_frame(&mut reader).unwrap();
    assert!(txnr == 1 && data.starts_with("200 OK"), "{data:?}");
    let mut acked = 0;
    for txnr in 2..2 + count {
        let msg = format!("<190>1 2026-01-01T00:00:00Z sensor1 bro_conn - - - {txnr}\tC");
        stream
            .write_all(relp_frame(txnr, "syslog", &msg).as_bytes())
            .unwrap();
        match read_frame(&mut reader) {
            Ok((t, data)) => assert!(t == txnr && data.starts_with("200 OK"), "{data:?}"),
            Err(_) => break,
        }
        acked += 1;
    }
    acked
}

#[test]
fn relp_acks_while_the_status_file_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let fifo = spool.join(".status.json.tmp");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut cfg = estuary_aggregator::testing::config(&dir.path().join("logs"), &spool);
    cfg.listen.relp = Some("127.0.0.1:0".parse().unwrap());
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The service on its own runtime, one worker thread as on two cores; the client below uses
    // plain threads, so a wedged runtime fails the test instead of hanging it.
    let service = std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
            .block_on(estuary_aggregator::serve(
                cfg,
                Arc::new(SystemClock),
                async {
                    let _ = stop_rx.await;
                },
                Some(bound_tx),
            ))
    });
    let port = bound_rx.blocking_recv().unwrap().relp.unwrap().port();
    // Let the status timer fire and hang on the FIFO first.
    std::thread::sleep(Duration::from_millis(300));
    let acked = relp_send(port, 20);
    // Release the hung write so the service can stop.
    let drained = std::fs::read(&fifo);
    stop_tx.send(()).unwrap();
    service.join().unwrap().unwrap();
    drained.unwrap();
    assert_eq!(acked, 20, "RELP stalled behind the status file");
}
