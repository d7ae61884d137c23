//! `/metrics` scraped over HTTP and parsed by a real Prometheus/OpenMetrics parser (the
//! `prometheus-client` Python package).

use std::process::Command;

/// Scrapes `url` and parses it with prometheus_client's OpenMetrics parser: one line per sample,
/// `name{k=v,...} value`, labels sorted.
const SCRAPE: &str = r#"
import sys, urllib.request
from prometheus_client.openmetrics.parser import text_string_to_metric_families
text = urllib.request.urlopen(sys.argv[1], timeout=5).read().decode()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %s" % (s.name, labels, s.value))
"#;

/// The parsed samples of `http://127.0.0.1:<port>/metrics`, or `None` while it does not answer.
pub fn scrape(port: u16) -> Option<Vec<String>> {
    let out = Command::new("python3")
        .args(["-c", SCRAPE, &format!("http://127.0.0.1:{port}/metrics")])
        .output()
        .ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    })
}

/// The value of the sample `key` (`name{labels}`).
pub fn value(samples: &[String], key: &str) -> Option<f64> {
    samples
        .iter()
        .find_map(|s| s.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
}
