//! Every file an aggregator configuration names is read by `estuary check`: a TLS file that is
//! missing, a certificate without its key, a CA file holding a key fail the check with file,
//! line and key, and `estuary aggregate` fails the same way before creating anything.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Runs `estuary <args> --config <config>`: whether it succeeded, and what it printed.
fn estuary(args: &[&str], config: &Path) -> (bool, String) {
    let out = Command::new(estuary_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    // `check` reports on stdout, a failed start on stderr.
    (out.status.success(), text(&out.stdout) + &text(&out.stderr))
}

#[test]
fn bad_tls_files_fail_check_and_start_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(&dir.path().join("pki"));
    let missing = dir.path().join("missing.pem");
    let cases = [
        ("TLSCertFile", &missing, &pki.server.1, None),
        // The certificate given as its own key.
        ("TLSKeyFile", &pki.server.0, &pki.server.0, None),
        // Another identity's key.
        ("TLSKeyFile", &pki.server.0, &pki.client.1, None),
        (
            "TLSCAFile",
            &pki.server.0,
            &pki.server.1,
            Some(&pki.server.1),
        ),
    ];
    for (key, cert, private, ca) in cases {
        let logs = dir.path().join("logs");
        let spool = dir.path().join("spool");
        let config = dir.path().join("aggregator.cfg");
        let mut text = format!(
            "LogDir = {}\nSpoolDir = {}\nSendMail =\nListenTLS = 127.0.0.1:0\nTLSCertFile = {}\nTLSKeyFile = {}\n",
            logs.display(),
            spool.display(),
            cert.display(),
            private.display(),
        );
        if let Some(ca) = ca {
            text.push_str(&format!("TLSCAFile = {}\n", ca.display()));
        }
        std::fs::write(&config, &text).unwrap();
        let line = text
            .lines()
            .position(|l| l.starts_with(&format!("{key} =")))
            .unwrap()
            + 1;
        let at = format!("{}:{line}: {key}: ", config.display());
        for command in ["check", "aggregate"] {
            let (ok, stderr) = estuary(&[command], &config);
            assert!(!ok, "{command} passed with a bad {key}");
            assert!(
                stderr.contains(&at),
                "{command}, {key}: no {at:?} in\n{stderr}"
            );
            let first = stderr.lines().find(|l| l.contains(&at)).unwrap();
            let message = &first[first.find(&at).unwrap() + at.len()..];
            assert_eq!(
                first.matches(message).count(),
                1,
                "repeated text in {first:?}"
            );
        }
        assert!(
            !logs.exists() && !spool.exists(),
            "{key}: created before failing"
        );
    }
}

/// An error from the running daemon (a port already taken) says each part once, and the start
/// fails before LogDir and SpoolDir are created.
#[test]
fn a_taken_port_fails_the_start_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (logs, spool) = (dir.path().join("logs"), dir.path().join("spool"));
    let config = dir.path().join("aggregator.cfg");
    std::fs::write(
        &config,
        format!(
            "LogDir = {}\nSpoolDir = {}\nSendMail =\nListenTCP = 127.0.0.1:{port}\n",
            logs.display(),
            spool.display()
        ),
    )
    .unwrap();
    let (ok, output) = estuary(&["aggregate"], &config);
    assert!(!ok);
    let line = output.lines().find(|l| l.starts_with("estuary: ")).unwrap();
    assert!(
        line.contains(&format!("binding TCP 127.0.0.1:{port}")),
        "{line}"
    );
    let parts: Vec<&str> = line.trim_start_matches("estuary: ").split(": ").collect();
    let mut unique = parts.clone();
    unique.dedup();
    assert_eq!(parts, unique, "repeated text in {line:?}");
    assert!(!logs.exists() && !spool.exists(), "created before failing");
}
