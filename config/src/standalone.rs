//! The embedded default configuration of `estuary standalone`: one host running the sensor, a
//! shipper tailing its logs, and an aggregator receiving them over RELP on loopback.

use std::path::Path;

const SHIP: &str = include_str!("../defaults/standalone-ship.toml");
const AGGREGATE: &str = include_str!("../defaults/standalone-aggregate.cfg");
const SENSOR: &str = include_str!("../defaults/standalone-sensor.toml");

/// How a standalone installation delivers its mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailSetup {
    /// Through this SMTP relay (`host:port`) to this address.
    Smtp { to: String, server: String },
    /// Handed to this sendmail-compatible program (`-t -oi`, message on stdin).
    SendMail(std::path::PathBuf),
}

/// File name and contents of each default configuration, for a standalone installation rooted at
/// `dir` with the aggregator listening on `127.0.0.1:relp_port`.
pub fn default_files(dir: &Path, relp_port: u16, mail: &MailSetup) -> [(&'static str, String); 3] {
    let mail = match mail {
        MailSetup::Smtp { to, server } => format!("MailTo = {to}\nSmtpServer = {server}\n"),
        MailSetup::SendMail(program) => format!("SendMail = {}\n", program.display()),
    };
    let render = |template: &str| {
        template
            .replace("{dir}", &dir.display().to_string())
            .replace("{port}", &relp_port.to_string())
            .replace("{mail}", &mail)
    };
    [
        ("ship.toml", render(SHIP)),
        ("aggregate.cfg", render(AGGREGATE)),
        ("sensor.toml", render(SENSOR)),
    ]
}

/// The `[[input]]` table `estuary standalone` appends to its ship.toml for the sensor log
/// `<name>.log` in `sensor_dir`: tag `bro_<name>:`, as the aggregator routes Zeek logs.
pub fn ship_input(sensor_dir: &Path, name: &str) -> String {
    format!(
        "\n[[input]]\npath = \"{}\"\ntag = \"bro_{name}:\"\nfacility = \"local7\"\nseverity = \"info\"\nstate_file = \"stat-bro_{name}\"\n",
        sensor_dir.join(format!("{name}.log")).display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_configurations() {
        let dir = tempfile::tempdir().unwrap();
        let smtp = MailSetup::Smtp {
            to: "soc@example.org".into(),
            server: "127.0.0.1:2525".into(),
        };
        for (name, mut text) in default_files(dir.path(), 2514, &smtp) {
            let path = dir.path().join(name);
            if name == "ship.toml" {
                text.push_str(&ship_input(&dir.path().join("sensor"), "ntp"));
            }
            std::fs::write(&path, text).unwrap();
            let config = crate::load_any(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            match config {
                crate::AnyConfig::Shipper(c) => {
                    assert_eq!(c.inputs.len(), 1);
                    assert_eq!(c.inputs[0].tag, "bro_ntp:");
                    assert_eq!(c.inputs[0].path, dir.path().join("sensor/ntp.log"));
                    assert_eq!(c.destinations[0].port, 2514);
                }
                crate::AnyConfig::Aggregator(c) => {
                    assert_eq!(c.log_dir, dir.path().join("logs"));
                    assert_eq!(c.listen.relp.map(|a| a.port()), Some(2514));
                    assert_eq!(c.mail.to, "soc@example.org");
                }
                crate::AnyConfig::Sensor(c) => {
                    assert!(c
                        .notice_actions
                        .iter()
                        .any(|(n, _)| *n == crate::sensor::Note::ScanPortScan));
                }
                crate::AnyConfig::Site(_) => panic!("{name} read as a node.cfg"),
            }
        }
    }
}
