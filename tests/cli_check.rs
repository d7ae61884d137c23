//! `estuary check` and `estuary config` run as the real binary.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn config_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/tests/fixtures")
        .join(name)
}

/// Runs `estuary <args> --config <config>`, checks its exit code and returns (stdout, stderr).
fn estuary(args: &[&str], config: &Path, code: i32) -> (String, String) {
    let out: Output = Command::new(common::estuary_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("estuary runs");
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (text(&out.stdout), text(&out.stderr))
}

fn assert_has_lines(text: &str, expected: &[&str]) {
    for expected in expected {
        assert!(
            text.lines().any(|l| l == *expected),
            "missing {expected:?} in\n{text}"
        );
    }
}

#[test]
fn check_bad_shipper_file_prints_file_line_key_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("60-bro.conf");
    fs::write(
        &path,
        "$ModLoad imfile\n$InputFileName /var/log/a.log\n$InputFileTag a:\n$ActionQueueType LinkedList\n$InputFileFacility local99\n*.* @@127.0.0.1:10514\n",
    )
    .unwrap();
    let (text, _) = estuary(&["check"], &path, 1);
    let lines: Vec<&str> = text.lines().collect();
    let file = path.display();
    assert_eq!(
        lines,
        [
            format!("{file}:4: $ActionQueueType: directive is not supported by estuary ship"),
            format!("{file}:5: $InputFileFacility: unknown facility \"local99\""),
        ]
    );
}

#[test]
fn check_bad_aggregator_file_lists_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.cfg");
    fs::write(&path, "LogDir = /l\nSpoolDir = /s\nListenTCP = 127.0.0.1:514\nBroArgs = -f x\nMinDiskSpace = lots\n").unwrap();
    let (text, _) = estuary(&["check"], &path, 1);
    let file = path.display();
    assert!(
        text.contains(&format!("{file}:4: BroArgs: is a broctl option")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{file}:5: MinDiskSpace: expected a percentage")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2, "{text}");
}

#[test]
fn check_accepts_the_fixtures() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = vec![
        config_fixture("seed-60-bro.conf"),
        config_fixture("ship-example.toml"),
        config_fixture("aggregate-example.toml"),
    ];
    for name in [
        "estuary-aggregate-tcp.cfg",
        "estuary-aggregate-relp.cfg",
        "estuary-ship-tcp.conf",
        "estuary-ship-relp.conf",
    ] {
        let text = fs::read_to_string(config_fixture(name)).unwrap();
        let rundir = dir.path().display().to_string();
        let text = text
            .replace("{rundir}", &rundir)
            .replace("{input}", &format!("{rundir}/in.log"))
            .replace("{port}", "10514");
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        paths.push(path);
    }
    for path in paths {
        let (text, _) = estuary(&["check"], &path, 0);
        assert_eq!(text, format!("{}: OK\n", path.display()));
    }
}

#[test]
fn config_prints_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cluster.cfg");
    fs::write(
        &path,
        "LogDir = /var/log/bro\nSpoolDir = /var/spool/bro\nListenRELP = 127.0.0.1:2514\n",
    )
    .unwrap();
    let (text, _) = estuary(&["config"], &path, 0);
    assert_has_lines(
        &text,
        &[
            "LogDir = /var/log/bro",
            "LogRotationInterval = 1day",
            "LogExpireInterval = 30days",
            "StatsLog = /var/spool/bro/stats.log",
            "MailSubjectPrefix = [Bro]",
            "MailAlarmPrefix = ALERT:",
            "MailFrom = Big Brother <bro@localhost>",
            "MinDiskSpace = 5",
            "TimeFmt = %d %b %H:%M:%S",
            "ListenRELP = 127.0.0.1:2514",
            "ListenTCP = ",
            "SendMail = /usr/sbin/sendmail",
        ],
    );

    let (text, _) = estuary(&["config"], &config_fixture("seed-60-bro.conf"), 0);
    assert_has_lines(
        &text,
        &[
            "input[0].path = /usr/local/bro/logs/current/ssl.log",
            "input[0].tag = bro_ssl:",
            "input[0].severity = info",
            "input[0].facility = local7",
            "input[0].watch = inotify",
            "input[0].poll_interval = 1s",
            "input[5].state_file = /var/spool/estuary/stat-bro_ftp",
            "destination[0].name = central_syslog_server:514",
            "destination[0].transport = udp",
            "destination[0].format = rfc3164",
        ],
    );
}

#[test]
fn config_on_a_bad_file_fails_with_the_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ship.toml");
    fs::write(&path, "[[input]]\npath = \"/a\"\ntag = \"a:\"\nspeed = 3\n").unwrap();
    let (_, err) = estuary(&["config"], &path, 1);
    assert!(
        err.contains(&format!(
            "{}:4: speed: unknown field `speed`",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn config_prints_a_sensor_files_effective_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sensor.toml");
    fs::write(
        &path,
        "[notice]\nalarm = [\"Scan::Port_Scan\"]\n[log]\nrotate_size = \"1m\"\n",
    )
    .unwrap();
    let (text, _) = estuary(&["config"], &path, 0);
    assert_has_lines(
        &text,
        &[
            "notice.alarm = Scan::Port_Scan",
            "log.format = tsv",
            "log.rotate_interval = off",
            "log.rotate_size = 1048576",
        ],
    );
    assert!(!text.contains("default"), "{text}");
}

/// Every command that takes `-c/--config` says in its help what file it wants.
#[test]
fn every_config_option_has_help_text() {
    let help = |args: &[&str]| {
        let out = Command::new(common::estuary_bin())
            .args(args)
            .arg("--help")
            .output()
            .expect("estuary runs");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&[]);
    let mut commands: Vec<Vec<&str>> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(|c| vec![c])
        .collect();
    commands.push(vec!["cluster", "init"]);
    let mut with_config = 0;
    for command in &commands {
        let text = help(command);
        let Some(line) = text
            .lines()
            .find(|l| l.trim_start().starts_with("-c, --config"))
        else {
            continue;
        };
        with_config += 1;
        let description = line.split_once('>').map_or("", |(_, d)| d.trim());
        assert!(!description.is_empty(), "{command:?}: {line:?}\n{text}");
    }
    assert!(
        with_config >= 15,
        "only {with_config} commands take -c: {commands:?}"
    );
}
