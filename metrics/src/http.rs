//! The HTTP side: `GET /metrics` and `GET /status`, one small thread per daemon.

use std::net::SocketAddr;

use crate::Report;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `gather()`'s report on `addr` from a thread that lives as long as the process.
/// Returns the address bound (the port when `addr` asked for port 0).
pub fn serve(
    addr: SocketAddr,
    gather: impl Fn() -> Report + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let server = tiny_http::Server::http(addr).map_err(std::io::Error::other)?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("metrics server bound to no IP address"))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let (body, content_type, code) = match request.url() {
                    "/metrics" => (crate::encode(&gather().samples), OPENMETRICS, 200),
                    "/status" => (gather().status.to_string(), "application/json", 200),
                    _ => (
                        "not found: try /metrics or /status\n".to_owned(),
                        "text/plain",
                        404,
                    ),
                };
                let header = tiny_http::Header::from_bytes("Content-Type", content_type)
                    .expect("a valid static header");
                let response = tiny_http::Response::from_string(body)
                    .with_status_code(code)
                    .with_header(header);
                if let Err(err) = request.respond(response) {
                    tracing::debug!(%err, "metrics client went away");
                }
            }
        })?;
    tracing::info!(%bound, "serving /metrics and /status");
    Ok(bound)
}
