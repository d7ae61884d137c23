//! estuary-nats against a real three-node JetStream cluster on 127.0.0.1.

use std::time::{Duration, Instant};

use bytes::Bytes;
use estuary_nats::testing::Cluster;
use estuary_nats::{
    setup, Connect, Error, Layout, Numbering, Origin, Publisher, ReaderOptions, TagReader,
};

const STREAM: &str = "ESTUARY";

fn layout(tags: &[&str]) -> Layout {
    let mut l = Layout::new(STREAM, tags.iter().map(|t| t.to_string()).collect());
    l.priority_timeout = Duration::from_secs(3);
    l.ack_wait = Duration::from_secs(2);
    l
}

async fn connect(cluster: &Cluster, name: &str) -> async_nats::jetstream::Context {
    Connect {
        servers: cluster.urls(),
        name: name.into(),
        ..Default::default()
    }
    .jetstream()
    .await
    .expect("connect")
}

fn reader_opts(tag: &str, holder: &str) -> ReaderOptions {
    ReaderOptions {
        stream: STREAM.into(),
        tag: tag.into(),
        holder: holder.into(),
        priority_timeout: Duration::from_secs(3),
        retention: Duration::from_secs(3600),
    }
}

/// Lines `first..first+n` of a file whose line `i` is `line NNNNNN\n` (12 bytes, so at offset
/// `12 * i`), as the shipper sends them: one syslog message per line with its origin. `from` is
/// where the previous batch of the file ended.
fn batch(host: &str, tag: &str, file: u64, first: u64, n: u64, from: u64) -> (Origin, Bytes) {
    let text: String = (first..first + n)
        .map(|i| {
            format!(
                "<13>1 - {host} {tag} - - [origin@32473 file=\"{file:016x}\" off=\"{}\"] line {i:06}\n",
                12 * i
            )
        })
        .collect();
    let origin = Origin {
        host: host.into(),
        tag: tag.into(),
        file,
        offset: 12 * first,
        from,
        end: 12 * (first + n),
        numbering: Numbering::Element,
    };
    (origin, Bytes::from(text))
}

fn body(line: &estuary_nats::Line) -> String {
    let text = String::from_utf8_lossy(&line.text);
    text.rsplit("] ").next().unwrap_or_default().to_owned()
}

/// A cluster laid out for `tag`, a connection named `name`, a publisher on it, and reader
/// `agg-a` of the tag.
async fn with_reader(
    name: &str,
    tag: &str,
) -> (
    Cluster,
    async_nats::jetstream::Context,
    Publisher,
    TagReader,
) {
    let cluster = Cluster::start().await;
    let js = connect(&cluster, name).await;
    setup::init(&js, &layout(&[tag])).await.expect("init");
    let publisher = Publisher::new(js.clone(), STREAM);
    let reader = TagReader::open(&js, reader_opts(tag, "agg-a"))
        .await
        .expect("open a");
    (cluster, js, publisher, reader)
}

/// Opens a reader, retrying while the consumer's replicas elect a leader (after a kill).
async fn open_reader(js: &async_nats::jetstream::Context, opts: ReaderOptions) -> TagReader {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TagReader::open(js, opts.clone()).await {
            Ok(r) => return r,
            Err(e) if Instant::now() < deadline => {
                eprintln!("open: {e}; again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("open: {e}"),
        }
    }
}

/// Reads and commits until `want` lines came or `within` passed; returns the line texts.
async fn drain(reader: &mut TagReader, want: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        if let Some(d) = reader
            .next(64, Duration::from_millis(500))
            .await
            .expect("next")
        {
            let lines: Vec<String> = d
                .batches
                .iter()
                .flat_map(|(_, ls)| ls.iter().map(body))
                .collect();
            reader.commit(d).await.expect("commit");
            got.extend(lines);
        }
    }
    got
}

#[tokio::test]
async fn init_is_idempotent_and_reads_back_pinning() {
    let cluster = Cluster::start().await;
    let js = connect(&cluster, "init").await;
    let first = setup::init(&js, &layout(&["conn", "dns"]))
        .await
        .expect("init");
    let second = setup::init(&js, &layout(&["conn", "dns"]))
        .await
        .expect("init again");
    assert_eq!(first.lines.len(), 4, "{first}");
    assert_eq!(second.lines.len(), 4, "{second}");
    assert!(second.lines[0].contains("3 replicas"), "{second}");
    assert!(second.lines[2].starts_with("consumer agg-conn"), "{second}");

    let mut other = layout(&["conn"]);
    other.replicas = 1;
    let err = setup::init(&js, &other).await.unwrap_err();
    assert!(matches!(err, Error::Setup(_)), "{err}");
}

#[tokio::test]
async fn a_resent_batch_is_stored_once_and_lines_past_the_window_are_dropped_by_marks() {
    let cluster = Cluster::start().await;
    let js = connect(&cluster, "dedup").await;
    setup::init(&js, &layout(&["conn"])).await.expect("init");
    let publisher = Publisher::new(js.clone(), STREAM);

    let (o, payload) = batch("s1", "conn", 7, 0, 10, 0);
    let a = publisher
        .publish(&o, payload.clone())
        .await
        .expect("publish");
    let b = publisher.publish(&o, payload).await.expect("publish again");
    assert!(!a.duplicate);
    assert!(b.duplicate, "the resend inside the window is a duplicate");
    assert_eq!(a.sequence, b.sequence);

    let mut reader = TagReader::open(&js, reader_opts("conn", "agg1"))
        .await
        .expect("open");
    let got = drain(&mut reader, 10, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 10);

    // A shipper that lost its state resends lines 5..15 cut differently, under a new id (as
    // after the duplicate window): only 10..15 are new.
    let (o, payload) = batch("s1", "conn", 7, 5, 10, 60);
    let stored = publisher
        .publish(&o, payload)
        .await
        .expect("publish overlap");
    assert!(!stored.duplicate);
    let got = drain(&mut reader, 5, Duration::from_secs(20)).await;
    assert_eq!(
        got,
        (10..15).map(|i| format!("line {i:06}")).collect::<Vec<_>>()
    );
    assert!(drain(&mut reader, 1, Duration::from_secs(2))
        .await
        .is_empty());
}

#[tokio::test]
async fn the_pin_moves_to_the_standby_and_the_deposed_reader_cannot_commit() {
    let (cluster, _js, publisher, mut a) = with_reader("pins", "dns").await;

    let (o, payload) = batch("s1", "dns", 1, 0, 5, 0);
    publisher.publish(&o, payload).await.expect("publish");
    let first = next_delivery(&mut a).await;
    assert_eq!(first.lines(), 5);
    let landed_at = first.revision();
    a.commit(first).await.expect("commit");
    assert!(a.holds());

    // B starts while A holds the pin: B gets nothing.
    let js_b = connect(&cluster, "pins-b").await;
    let mut b = TagReader::open(&js_b, reader_opts("dns", "agg-b"))
        .await
        .expect("open b");
    let (o, payload) = batch("s1", "dns", 1, 5, 5, 60);
    publisher.publish(&o, payload).await.expect("publish");
    let pending_for_a = next_delivery(&mut a).await;
    assert_eq!(pending_for_a.lines(), 5);
    assert!(b
        .next(64, Duration::from_secs(1))
        .await
        .expect("b next")
        .is_none());

    // A freezes holding an uncommitted delivery; past the priority timeout B takes the tag,
    // gets the batch again and commits it.
    let got = drain(&mut b, 5, Duration::from_secs(30)).await;
    assert_eq!(
        got,
        (5..10).map(|i| format!("line {i:06}")).collect::<Vec<_>>()
    );
    assert!(b.holds());

    // A wakes up: its commit is refused and it writes nothing more. Asked about its commits,
    // it learns that the refused one never lands (its lines are cut), and that its first one
    // did, from the values B wrote since.
    let refused_at = pending_for_a.revision();
    let err = a.commit(pending_for_a).await.unwrap_err();
    assert!(matches!(err, Error::Deposed(_)), "{err}");
    assert!(!a.holds());
    assert!(!a.settle("agg-a", refused_at).await.expect("settle refused"));
    assert!(a.settle("agg-a", landed_at).await.expect("settle landed"));
    assert!(a
        .next(64, Duration::from_secs(1))
        .await
        .expect("a next")
        .is_none());
}

async fn next_delivery(reader: &mut TagReader) -> estuary_nats::Delivery {
    loop {
        if let Some(d) = reader
            .next(64, Duration::from_millis(500))
            .await
            .expect("next")
        {
            return d;
        }
    }
}

/// A holder killed after writing a delivery and before its compare-and-set comes back not
/// knowing whether that landed: settling moves the key on, so the commit, were it still on its
/// way, fails, and the answer is "no" for good.
#[tokio::test]
async fn settling_an_unanswered_commit_fences_it() {
    let (cluster, _js, publisher, mut a) = with_reader("settle", "ssl").await;
    let (o, payload) = batch("s1", "ssl", 1, 0, 3, 0);
    publisher.publish(&o, payload).await.expect("publish");
    let d = next_delivery(&mut a).await;
    let revision = d.revision();
    assert!(!a.settle("agg-a", revision).await.expect("settle"));
    let err = a.commit(d).await.unwrap_err();
    assert!(matches!(err, Error::Deposed(_)), "{err}");
    assert!(!a.settle("agg-a", revision).await.expect("settle again"));

    // Its next run reads the batch again and commits it; that one is known to have landed.
    drop(a);
    let js = connect(&cluster, "settle-again").await;
    let mut again = open_reader(&js, reader_opts("ssl", "agg-a")).await;
    let d = next_delivery(&mut again).await;
    assert_eq!(d.lines(), 3);
    let revision = d.revision();
    again.commit(d).await.expect("commit");
    assert!(again
        .settle("agg-a", revision)
        .await
        .expect("settle landed"));
}

#[tokio::test]
async fn a_stale_holder_is_fenced_even_inside_the_priority_timeout() {
    let (_cluster, js, publisher, mut a) = with_reader("fence", "notice").await;
    let (o, payload) = batch("s1", "notice", 1, 0, 3, 0);
    publisher.publish(&o, payload).await.expect("publish");
    let d = loop {
        if let Some(d) = a
            .next(64, Duration::from_millis(500))
            .await
            .expect("a next")
        {
            break d;
        }
    };
    // A second holder claims the tag in the bucket (as after a pin it got while A hung).
    let kv = js
        .get_key_value(estuary_nats::names::MARKS_BUCKET)
        .await
        .unwrap();
    let key = estuary_nats::names::marks_key("notice");
    let entry = kv.entry(&key).await.unwrap().unwrap();
    kv.update(&key, entry.value.clone(), entry.revision)
        .await
        .expect("bump");
    let err = a.commit(d).await.unwrap_err();
    assert!(matches!(err, Error::Deposed(_)), "{err}");
}

#[tokio::test]
async fn publishing_goes_on_through_the_kill_of_a_server_without_duplicates() {
    let mut cluster = Cluster::start().await;
    let js = connect(&cluster, "kill").await;
    setup::init(&js, &layout(&["conn"])).await.expect("init");
    let publisher = Publisher::new(js.clone(), STREAM);
    for n in 0..40u64 {
        if n == 10 {
            cluster.kill(0);
        }
        if n == 30 {
            cluster.restart(0);
        }
        let (o, payload) = batch("s1", "conn", 3, n * 10, 10, 120 * n);
        publisher.publish(&o, payload).await.expect("publish");
    }
    let mut reader = open_reader(&js, reader_opts("conn", "agg1")).await;
    let got = drain(&mut reader, 400, Duration::from_secs(60)).await;
    assert_eq!(
        got,
        (0..400).map(|i| format!("line {i:06}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_batch_after_a_gap_waits_for_the_batch_before_it() {
    let cluster = Cluster::start().await;
    let js = connect(&cluster, "gap").await;
    setup::init(&js, &layout(&["conn"])).await.expect("init");
    let publisher = Publisher::new(js.clone(), STREAM);
    let mut reader = TagReader::open(&js, reader_opts("conn", "agg1"))
        .await
        .expect("open");
    let (o, payload) = batch("s1", "conn", 9, 0, 5, 0);
    publisher.publish(&o, payload).await.expect("publish");
    assert_eq!(
        drain(&mut reader, 5, Duration::from_secs(20)).await.len(),
        5
    );

    // Lines 10..15 are stored before 5..10 (a resend after a failed publish).
    let (o, late) = batch("s1", "conn", 9, 10, 5, 120);
    publisher.publish(&o, late).await.expect("publish");
    let (o, payload) = batch("s1", "conn", 9, 5, 5, 60);
    publisher.publish(&o, payload).await.expect("publish");
    let got = drain(&mut reader, 10, Duration::from_secs(30)).await;
    assert_eq!(
        got,
        (5..15).map(|i| format!("line {i:06}")).collect::<Vec<_>>()
    );
}
