//! Nodes on other hosts, seen through the `/status` endpoint each of their daemons serves on its
//! metrics address (the port node.cfg derives, at the node's host).

use std::time::Duration;

/// How long `estuary status` waits for a node on another host.
const TIMEOUT: Duration = Duration::from_secs(3);

/// `http://<host>:<port>/status`, brackets around an IPv6 address.
pub fn status_url(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("http://[{host}]:{port}/status")
    } else {
        format!("http://{host}:{port}/status")
    }
}

/// What the daemon at `url` reports; the error says why it could not be read.
pub fn fetch(url: &str) -> Result<serde_json::Value, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    response
        .body_mut()
        .read_json::<serde_json::Value>()
        .map_err(|e| format!("{url}: not a status answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_is_bracketed() {
        assert_eq!(status_url("::1", 9), "http://[::1]:9/status");
        assert_eq!(status_url("a.example", 9), "http://a.example:9/status");
    }

    #[test]
    fn a_closed_port_is_an_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert!(fetch(&status_url("127.0.0.1", port)).is_err());
    }
}
