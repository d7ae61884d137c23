//! Throughput through a three-node R3 cluster on this host: shipper-side publishing and
//! aggregator-side reading with fenced commits, at the same time, lines checked for loss and
//! duplicates. Prints figures; asserts only correctness. Run with
//! `cargo test -p estuary-nats --release --test bench -- --ignored --nocapture`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use estuary_nats::testing::Cluster;
use estuary_nats::{
    setup, Connect, Layout, Numbering, Origin, Publisher, ReaderOptions, TagReader,
};

const LINES_PER_BATCH: u64 = 200;
const BATCHES_IN_FLIGHT: usize = 64;

/// A Zeek conn line of 124 bytes with the sequence number in its uid field.
fn line(i: u64) -> String {
    format!(
        "1700000000.{i:06}\tC{i:017}\t10.0.0.1\t52345\t10.0.0.2\t443\ttcp\tssl\t0.5\t1200\t4800\tSF\tT\tF\t0\tShADadFf\t12\t1800\t10\t5200\n"
    )
}

#[tokio::test]
#[ignore = "benchmark: minutes of CPU"]
async fn publish_and_read_a_million_lines_through_r3() {
    // BENCH_LINES overrides the million, for a quick check.
    let total: u64 = std::env::var("BENCH_LINES").map_or(1_000_000, |v| v.parse().unwrap());
    let cluster = Cluster::start().await;
    let connect = |name: &str| Connect {
        servers: cluster.urls(),
        name: name.into(),
        ..Default::default()
    };
    let js = connect("bench-init").jetstream().await.unwrap();
    setup::init(&js, &Layout::new("ESTUARY", vec!["bro_conn".into()]))
        .await
        .unwrap();

    let pub_js = connect("bench-shipper").jetstream().await.unwrap();
    let started = Instant::now();
    let shipper = tokio::spawn(async move {
        let publisher = Publisher::new(pub_js, "ESTUARY");
        let mut offset = 0u64;
        let mut next = 0u64;
        while next < total {
            let mut window = Vec::with_capacity(BATCHES_IN_FLIGHT);
            while window.len() < BATCHES_IN_FLIGHT && next < total {
                let n = LINES_PER_BATCH.min(total - next);
                let mut text = String::new();
                let from = offset;
                for i in next..next + n {
                    let line = line(i);
                    text.push_str(&format!(
                        "<190>1 2026-12-07T03:00:00Z sensor1 bro_conn - - [origin@32473 file=\"0000000000000001\" off=\"{offset}\"] {line}"
                    ));
                    offset += line.len() as u64;
                }
                let origin = Origin {
                    host: "sensor1".into(),
                    tag: "bro_conn".into(),
                    file: 1,
                    offset: from,
                    from,
                    end: offset,
                    numbering: Numbering::Element,
                };
                next += n;
                window.push((origin, Bytes::from(text)));
            }
            publisher.publish_all(&window).await.unwrap();
        }
        started.elapsed()
    });

    let read_js = connect("bench-aggregator").jetstream().await.unwrap();
    let mut reader = TagReader::open(
        &read_js,
        ReaderOptions {
            stream: "ESTUARY".into(),
            tag: "bro_conn".into(),
            holder: "agg1".into(),
            priority_timeout: Duration::from_secs(30),
            retention: Duration::from_secs(3600),
        },
    )
    .await
    .unwrap();
    let mut seen = vec![false; total as usize];
    let mut count = 0u64;
    while count < total {
        let Some(d) = reader.next(256, Duration::from_secs(5)).await.unwrap() else {
            panic!("no lines for 5 s after {count}");
        };
        for (_, lines) in &d.batches {
            for l in lines {
                let text = std::str::from_utf8(&l.text).unwrap();
                let uid = &text.rsplit("] ").next().unwrap().as_bytes()[18..36];
                let i: usize = std::str::from_utf8(&uid[1..]).unwrap().parse().unwrap();
                assert!(!seen[i], "line {i} twice");
                seen[i] = true;
                count += 1;
            }
        }
        reader.commit(d).await.unwrap();
    }
    let end_to_end = started.elapsed();
    let publish = shipper.await.unwrap();
    println!(
        "R3, {LINES_PER_BATCH} lines/message, {BATCHES_IN_FLIGHT} messages in flight: \
         publish {:.0} lines/s, end to end (read + fenced commit + ack) {:.0} lines/s",
        total as f64 / publish.as_secs_f64(),
        total as f64 / end_to_end.as_secs_f64()
    );
    assert!(seen.iter().all(|s| *s));
}
