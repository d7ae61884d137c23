//! What each daemon reports, read from the files it keeps up to date.

use std::path::Path;

use estuary_aggregator::stats::NatsStatus;
use estuary_config::aggregator::AggregatorConfig;
use estuary_config::shipper::ShipperConfig;
use estuary_site::netstats::Netstats;

use crate::{Report, Sample};

/// Build and process metrics every daemon serves.
fn common(samples: &mut Vec<Sample>) {
    samples.push(
        Sample::gauge("estuary_build_info", "The estuary version", 1.0)
            .label("version", env!("CARGO_PKG_VERSION")),
    );
    if let Some(rss) = resident_memory_bytes() {
        samples.push(Sample::gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            rss as f64,
        ));
    }
}

fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// The aggregator: messages per transport, refused, duplicates, disk, mail queue.
pub fn aggregator(config: &AggregatorConfig) -> Report {
    let mut samples = Vec::new();
    common(&mut samples);
    let status = estuary_aggregator::stats::read_status(&config.spool_dir).ok();
    // The status counts per peer, not per listener: with one listener the transport is known.
    let l = &config.listen;
    let enabled: Vec<&str> = [
        (l.udp.is_some(), "udp"),
        (l.tcp.is_some(), "tcp"),
        (l.tls.is_some(), "tls"),
        (l.relp.is_some(), "relp"),
        (l.relp_tls.is_some(), "relp-tls"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    let transport = match enabled.as_slice() {
        [one] => *one,
        _ => "all",
    };
    let (mut received, mut refused, mut duplicates) = (0, 0, 0);
    if let Some(s) = &status {
        for c in s.peers.values() {
            received += c.received;
            refused += c.refused + c.malformed;
            duplicates += c.duplicates;
        }
    }
    samples.push(
        Sample::counter(
            "estuary_aggregator_messages_received",
            "Syslog messages received",
            received,
        )
        .label("transport", transport),
    );
    samples.push(Sample::counter(
        "estuary_aggregator_messages_refused",
        "Messages refused (peer rules, size, malformed)",
        refused,
    ));
    samples.push(Sample::counter(
        "estuary_aggregator_duplicates_dropped",
        "Messages dropped as already written (replays)",
        duplicates,
    ));
    if let Ok(u) = estuary_aggregator::disk::usage(&config.log_dir) {
        samples.push(Sample::gauge(
            "estuary_aggregator_disk_free_ratio",
            "Free space on the LogDir file system, 0 to 1",
            u.free_percent() / 100.0,
        ));
    }
    let queued = estuary_aggregator::mail::Queue::open(&config.spool_dir)
        .and_then(|q| q.pending())
        .map_or(0, |p| p.len());
    samples.push(Sample::gauge(
        "estuary_mail_queue_length",
        "Mails waiting in the queue",
        queued as f64,
    ));
    if let Some(nats) = status.as_ref().and_then(|s| s.nats.as_ref()) {
        nats_samples(nats, &mut samples);
    }
    let status = status
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default();
    Report { samples, status }
}

/// The aggregator's NATS input: its tags' pins and the cluster's state as last asked.
fn nats_samples(nats: &NatsStatus, samples: &mut Vec<Sample>) {
    for (tag, held) in &nats.held {
        samples.push(
            Sample::gauge(
                "estuary_nats_tag_pinned",
                "1 while this aggregator holds the tag's pin, 0 on standby",
                f64::from(u8::from(*held)),
            )
            .label("tag", tag),
        );
    }
    let Some(cluster) = &nats.cluster else {
        return;
    };
    samples.push(
        Sample::gauge(
            "estuary_nats_stream_messages",
            "Messages in the stream",
            cluster.messages as f64,
        )
        .label("stream", &cluster.stream),
    );
    samples.push(
        Sample::gauge(
            "estuary_nats_stream_bytes",
            "Bytes in the stream",
            cluster.bytes as f64,
        )
        .label("stream", &cluster.stream),
    );
    for (tag, t) in &cluster.tags {
        let per_tag: [(&'static str, &'static str, u64); 3] = [
            (
                "estuary_nats_consumer_pending",
                "Batches of the tag not yet delivered to an aggregator (lag)",
                t.pending,
            ),
            (
                "estuary_nats_consumer_ack_pending",
                "Batches of the tag delivered and not yet acknowledged",
                t.ack_pending,
            ),
            (
                "estuary_nats_consumer_redelivered",
                "Batches of the tag delivered more than once",
                t.redelivered,
            ),
        ];
        for (name, help, value) in per_tag {
            samples.push(Sample::gauge(name, help, value as f64).label("tag", tag));
        }
        if !t.marks_holder.is_empty() {
            samples.push(
                Sample::gauge(
                    "estuary_nats_marks_holder",
                    "1 for the aggregator named in the tag's committed marks",
                    1.0,
                )
                .label("tag", tag)
                .label("holder", &t.marks_holder),
            );
        }
    }
}

/// The shipper: lines read, and sent and acknowledged per destination.
pub fn shipper(config: &ShipperConfig) -> Report {
    let mut samples = Vec::new();
    common(&mut samples);
    let path = estuary_shipper::stats::status_path(&config.work_dir);
    let status = estuary_shipper::stats::Status::load(&path).ok();
    let mut read = 0;
    for d in status.iter().flat_map(|s| &s.destinations) {
        let c = &d.counters;
        read = read.max(c.lines_read);
        samples.push(
            Sample::counter("estuary_shipper_lines_sent", "Lines sent", c.lines_sent)
                .label("destination", &d.name),
        );
        samples.push(
            Sample::counter(
                "estuary_shipper_lines_acknowledged",
                "Lines the destination acknowledged (RELP) or took (TCP, UDP)",
                c.lines_acked,
            )
            .label("destination", &d.name),
        );
        samples.push(
            Sample::gauge(
                "estuary_shipper_lines_behind",
                "Lines read for the destination and not yet acknowledged by it",
                c.lines_read.saturating_sub(c.lines_acked) as f64,
            )
            .label("destination", &d.name),
        );
    }
    samples.push(Sample::counter(
        "estuary_shipper_lines_read",
        "Lines read from the input files",
        read,
    ));
    let status = std::fs::read(&path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    Report { samples, status }
}

/// The sensor: packets received and dropped, from its statistics file.
pub fn sensor(netstats: &Path) -> Report {
    let mut samples = Vec::new();
    common(&mut samples);
    let stats = Netstats::load(netstats).ok();
    let (received, dropped) = stats.as_ref().map_or((0, 0), |n| (n.received, n.dropped()));
    samples.push(Sample::counter(
        "estuary_sensor_packets_received",
        "Packets received",
        received,
    ));
    samples.push(Sample::counter(
        "estuary_sensor_packets_dropped",
        "Packets dropped by the kernel or the interface",
        dropped,
    ));
    let status = std::fs::read(netstats)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    Report { samples, status }
}
