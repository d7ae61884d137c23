//! The embedded default configuration of `estuary standalone`: one host running the sensor, a
//! shipper tailing its logs, and an aggregator receiving them over RELP on loopback.

use std::path::Path;

const SHIP: &str = include_str!("../defaults/standalone-ship.toml");
const AGGREGATE: &str = include_str!("../defaults/standalone-aggregate.cfg");

/// File name and contents of each default configuration, for a standalone installation rooted at
/// `dir` with the aggregator listening on `127.0.0.1:relp_port`.
pub fn default_files(dir: &Path, relp_port: u16) -> [(&'static str, String); 2] {
    let render = |template: &str| {
        template
            .replace("{dir}", &dir.display().to_string())
            .replace("{port}", &relp_port.to_string())
    };
    [
        ("ship.toml", render(SHIP)),
        ("aggregate.cfg", render(AGGREGATE)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_configurations() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in default_files(dir.path(), 2514) {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let config = crate::load_any(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            match config {
                crate::AnyConfig::Shipper(c) => {
                    assert_eq!(c.inputs.len(), 9);
                    assert_eq!(c.destinations[0].port, 2514);
                }
                crate::AnyConfig::Aggregator(c) => {
                    assert_eq!(c.log_dir, dir.path().join("logs"));
                    assert_eq!(c.listen.relp.map(|a| a.port()), Some(2514));
                }
                crate::AnyConfig::Sensor(_) => panic!("{name} read as a sensor config"),
            }
        }
    }
}
