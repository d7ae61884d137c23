//! Samples to OpenMetrics text through `prometheus-client`.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// Only goes up; the name gets `_total`.
    Counter(u64),
    Gauge(f64),
}

/// One metric value with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Without `_total` for counters (the encoder adds it).
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Labels,
    pub value: Value,
}

impl Sample {
    pub fn counter(name: &'static str, help: &'static str, value: u64) -> Sample {
        Sample {
            name,
            help,
            labels: Vec::new(),
            value: Value::Counter(value),
        }
    }

    pub fn gauge(name: &'static str, help: &'static str, value: f64) -> Sample {
        Sample {
            name,
            help,
            labels: Vec::new(),
            value: Value::Gauge(value),
        }
    }

    pub fn label(mut self, key: &str, value: impl Into<String>) -> Sample {
        self.labels.push((key.to_owned(), value.into()));
        self
    }
}

enum Metric {
    Counters(Family<Labels, Counter>),
    Gauges(Family<Labels, Gauge<f64, AtomicU64>>),
}

/// The samples as OpenMetrics text; samples of one name form one metric family, and a metric
/// without labels is written without braces.
pub fn encode(samples: &[Sample]) -> String {
    let mut registry = Registry::default();
    let mut families: BTreeMap<&str, Metric> = BTreeMap::new();
    for s in samples {
        if s.labels.is_empty() {
            match s.value {
                Value::Counter(n) => {
                    let c = Counter::<u64>::default();
                    c.inc_by(n);
                    registry.register(s.name, s.help, c);
                }
                Value::Gauge(v) => {
                    let g = Gauge::<f64, AtomicU64>::default();
                    g.set(v);
                    registry.register(s.name, s.help, g);
                }
            }
            continue;
        }
        let family = families.entry(s.name).or_insert_with(|| match s.value {
            Value::Counter(_) => {
                let f = Family::<Labels, Counter>::default();
                registry.register(s.name, s.help, f.clone());
                Metric::Counters(f)
            }
            Value::Gauge(_) => {
                let f = Family::<Labels, Gauge<f64, AtomicU64>>::default();
                registry.register(s.name, s.help, f.clone());
                Metric::Gauges(f)
            }
        });
        match (family, s.value) {
            (Metric::Counters(f), Value::Counter(n)) => {
                f.get_or_create(&s.labels).inc_by(n);
            }
            (Metric::Gauges(f), Value::Gauge(v)) => {
                f.get_or_create(&s.labels).set(v);
            }
            _ => tracing::warn!(name = s.name, "a metric given as both counter and gauge"),
        }
    }
    let mut text = String::new();
    // Writing into a String cannot fail.
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode metrics");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_and_labels() {
        let text = encode(&[
            Sample::counter("estuary_x_lines_sent", "Lines sent", 3).label("destination", "a"),
            Sample::counter("estuary_x_lines_sent", "Lines sent", 4).label("destination", "b"),
            Sample::gauge("estuary_x_ratio", "A ratio", 0.5),
        ]);
        assert!(
            text.contains("estuary_x_lines_sent_total{destination=\"a\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("estuary_x_lines_sent_total{destination=\"b\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE estuary_x_ratio gauge\nestuary_x_ratio 0.5\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
