//! The legacy `.conf` dialect against the real rsyslogd (`rsyslogd -N1` validates a config without
//! running it): what estuary accepts, rsyslogd accepts too, and the mistakes both reject are
//! reported by estuary with their line. (estuary is stricter where rsyslogd silently accepts
//! nonsense, e.g. `local99` or port 99999; see the unit tests.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn rsyslogd() -> PathBuf {
    ["/usr/sbin/rsyslogd", "/usr/bin/rsyslogd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("rsyslogd is installed (bash .ci/setup)")
}

/// `rsyslogd -N1` exit status for `text` written to `dir/name`.
fn rsyslog_accepts(dir: &Path, name: &str, text: &str) -> bool {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    let out = Command::new(rsyslogd())
        .arg("-N1")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("rsyslogd runs");
    out.status.success()
}

fn estuary_load(
    dir: &Path,
    name: &str,
    text: &str,
) -> Result<estuary_config::shipper::ShipperConfig, estuary_config::ConfigErrors> {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    estuary_config::shipper::load(&path)
}

fn header(dir: &Path) -> String {
    format!("$WorkDirectory {}\n$ModLoad imfile #\n", dir.display())
}

#[test]
fn rsyslogd_accepts_what_estuary_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let configs = [
        format!(
            "{}$ModLoad omrelp\n$MaxMessageSize 64k\n$InputFileName {dir}/ssl.log\n$InputFileTag bro_ssl:\n\
             $InputFileStateFile stat-bro_ssl\n$InputFileSeverity info\n$InputFileFacility local7\n$InputRunFileMonitor\n\
             $InputFileName {dir}/conn*.log\n$InputFileTag bro_conn:\n$InputFileSeverity 6\n$InputFileFacility local7\n\
             $InputFileTrimLineOverBytes 4096\n$InputRunFileMonitor\n$InputFilePollInterval 1\n\
             local7.* @@(o)127.0.0.1:10514;RSYSLOG_SyslogProtocol23Format\n*.* @[::1]:514\nlocal7.info :omrelp:127.0.0.1:2514\n",
            header(d),
            dir = d.display()
        ),
        format!(
            "{}$InputFileName {}/a.log\n$InputFileTag a:\n$InputRunFileMonitor\n*.* @@127.0.0.1:10514;RSYSLOG_TraditionalForwardFormat\n",
            header(d),
            d.display()
        ),
    ];
    for (i, text) in configs.iter().enumerate() {
        let name = format!("ok{i}.conf");
        if let Err(e) = estuary_load(d, &name, text) {
            panic!("estuary rejects config {i}: {e}");
        }
        assert!(
            rsyslog_accepts(d, &name, text),
            "rsyslogd -N1 rejects config {i}:\n{text}"
        );
    }
}

#[test]
fn mistakes_rsyslogd_rejects_are_errors_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let block = format!(
        "{}$InputFileName {}/a.log\n$InputFileTag a:\n$InputRunFileMonitor\n",
        header(d),
        d.display()
    );
    for (i, (bad, key)) in [
        ("$Bogus 1", "$Bogus"),
        ("local9.* @127.0.0.1", "local9.*"),
        ("*.* @127.0.0.1;NoSuchTemplate", "@127.0.0.1;NoSuchTemplate"),
    ]
    .into_iter()
    .enumerate()
    {
        let text = format!("{block}*.* @127.0.0.1:10514\n{bad}\n");
        let name = format!("bad{i}.conf");
        let errors = estuary_load(d, &name, &text).expect_err(bad);
        let bad_line = text.lines().count();
        assert!(
            errors
                .0
                .iter()
                .any(|e| e.line == Some(bad_line) && e.key.as_deref() == Some(key)),
            "{bad}: {errors}"
        );
        assert!(
            !rsyslog_accepts(d, &name, &text),
            "rsyslogd -N1 accepts {bad:?}"
        );
    }
}
