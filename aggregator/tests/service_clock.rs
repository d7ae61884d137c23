//! The whole service in-process on an injected clock: rotation happens when the clock says so,
//! archives are named from the clock's times, and an ACTION_ALARM notice becomes a digest mail.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use estuary_aggregator::clock::{from_unix_secs, Clock, ManualClock, Zone};
use estuary_config::aggregator::MailTransport;

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn frame(tag: &str, body: &str) -> Vec<u8> {
    let msg = format!("<190>1 2026-01-01T00:00:00Z sensor1 {tag} - - - {body}");
    format!("{} {msg}", msg.len()).into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_digest_follow_the_injected_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg =
        estuary_aggregator::testing::config(&dir.path().join("logs"), &dir.path().join("spool"));
    cfg.listen.tcp = Some("127.0.0.1:0".parse().unwrap());
    let outbox = dir.path().join("outbox");
    std::fs::create_dir_all(&outbox).unwrap();
    let script = dir.path().join("sendmail");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ncat > {}/$$.eml\n", outbox.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    cfg.mail.transport = MailTransport::SendMail(script);

    // 2020-01-01 10:59:59.5 UTC: half a second before an hourly boundary.
    let boundary = from_unix_secs(1_577_876_400);
    let clock = ManualClock::new(boundary - Duration::from_millis(500)).in_zone(Zone::UTC);
    assert_eq!(
        Zone::UTC.next_boundary(clock.now(), cfg.rotation_interval),
        boundary
    );
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let log_dir = cfg.log_dir.clone();
    let service = tokio::spawn(estuary_aggregator::serve(
        cfg,
        Arc::new(clock.clone()),
        async {
            let _ = stop_rx.await;
        },
        Some(bound_tx),
    ));
    let port = bound_rx.await.unwrap().tcp.unwrap().port();
    let header = "#separator \\x09\n#path\tnotice\n#fields\tts\tnote\tmsg\tactions\n#types\ttime\tenum\tstring\tset[enum]";
    let mut frames = Vec::new();
    for line in header.lines() {
        frames.extend(frame("bro_notice", line));
    }
    frames.extend(frame(
        "bro_notice",
        "1577876399.5\tScan::Port_Scan\tscan seen\tNotice::ACTION_LOG,Notice::ACTION_ALARM",
    ));
    frames.extend(frame("bro_conn", "1\tC1"));
    tokio::task::spawn_blocking(move || {
        TcpStream::connect(("127.0.0.1", port))
            .unwrap()
            .write_all(&frames)
            .unwrap();
    })
    .await
    .unwrap();
    let current = log_dir.join("current");
    wait_for("conn.log", || {
        current.join("conn.log").exists().then_some(())
    });
    // The clock passes the boundary; the rotation timer fires on its own.
    clock.set(boundary + Duration::from_secs(1));
    let archive = log_dir.join("2020-01-01");
    let names = wait_for("two archives", || {
        let names: Vec<String> = std::fs::read_dir(&archive)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        (names.len() == 2).then_some(names)
    });
    assert!(
        names.contains(&"conn.10:59:59-11:00:01.log.gz".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"notice.10:59:59-11:00:01.log.gz".to_owned()),
        "{names:?}"
    );
    let mail = wait_for("the alarm digest", || {
        let e = std::fs::read_dir(&outbox).ok()?.flatten().next()?;
        std::fs::read_to_string(e.path())
            .ok()
            .filter(|m| m.ends_with("\n\n"))
    });
    assert!(
        mail.contains("Subject: [Bro] Alarm summary from 10:59:59-11:00:01\n"),
        "{mail}"
    );
    assert!(
        mail.contains("> 2020-01-01-10:59:59.500000 Scan::Port_Scan\n   <sensor1> scan seen\n"),
        "{mail}"
    );
    stop_tx.send(()).unwrap();
    service.await.unwrap().unwrap();
}
