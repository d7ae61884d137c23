//! The stream, the marks bucket and one pinned pull consumer per tag, created or checked
//! idempotently (`estuary cluster init`, and every aggregator at start).

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, PriorityPolicy};
use async_nats::jetstream::{self, kv, stream};

use crate::names;
use crate::Error;

/// What the cluster must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub stream: String,
    pub replicas: usize,
    /// How long the stream keeps lines no aggregator took.
    pub max_age: Duration,
    /// How long the server remembers a message id to drop a resent batch.
    pub duplicate_window: Duration,
    /// How long a silent pin holder keeps its tags before a standby takes them over.
    pub priority_timeout: Duration,
    /// How long a delivered batch may stay unacknowledged before it is delivered again.
    pub ack_wait: Duration,
    pub tags: Vec<String>,
}

impl Layout {
    /// The §4 defaults of the design: R3, 72 h, 2 min window, 30 s priority timeout.
    pub fn new(stream: impl Into<String>, tags: Vec<String>) -> Self {
        Layout {
            stream: stream.into(),
            replicas: 3,
            max_age: Duration::from_secs(72 * 3600),
            duplicate_window: Duration::from_secs(120),
            priority_timeout: Duration::from_secs(30),
            ack_wait: Duration::from_secs(20),
            tags,
        }
    }

    fn stream_config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", names::PREFIX)],
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            max_age: self.max_age,
            duplicate_window: self.duplicate_window,
            ..Default::default()
        }
    }

    fn consumer_config(&self, tag: &str) -> pull::Config {
        pull::Config {
            durable_name: Some(names::consumer(tag)),
            filter_subject: names::tag_filter(tag),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            num_replicas: self.replicas,
            priority_policy: PriorityPolicy::PinnedClient,
            priority_groups: vec![names::GROUP.to_owned()],
            priority_timeout: self.priority_timeout,
            ..Default::default()
        }
    }
}

/// What `init` found or made, one line per object.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.lines.iter().try_for_each(|l| writeln!(f, "{l}"))
    }
}

/// Creates what is missing and checks what exists. Refuses a server that drops the pinning
/// settings (before 2.11 they are silently ignored), and an existing stream or consumer whose
/// settings differ in a way that breaks the design.
pub async fn init(js: &jetstream::Context, layout: &Layout) -> Result<Report, Error> {
    let mut report = Report::default();
    let wanted = layout.stream_config();
    let mut stream = js
        .get_or_create_stream(wanted.clone())
        .await
        .map_err(|e| Error::Setup(format!("stream {}: {e}", layout.stream)))?;
    let info = stream
        .info()
        .await
        .map_err(|e| Error::Setup(format!("stream {}: {e}", layout.stream)))?;
    let have = &info.config;
    if have.subjects != wanted.subjects || have.num_replicas != wanted.num_replicas {
        return Err(Error::Setup(format!(
            "stream {} exists with subjects {:?} and {} replicas; estuary needs {:?} and {}",
            layout.stream, have.subjects, have.num_replicas, wanted.subjects, wanted.num_replicas
        )));
    }
    report.lines.push(format!(
        "stream {}: {} replicas, {} messages, duplicate window {:?}",
        layout.stream, have.num_replicas, info.state.messages, have.duplicate_window
    ));

    let bucket = match js.get_key_value(names::MARKS_BUCKET).await {
        Ok(b) => b,
        Err(_) => js
            .create_key_value(kv::Config {
                bucket: names::MARKS_BUCKET.to_owned(),
                description: "estuary: committed high-water marks per tag".to_owned(),
                history: 8,
                storage: stream::StorageType::File,
                num_replicas: layout.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Setup(format!("KV bucket {}: {e}", names::MARKS_BUCKET)))?,
    };
    let status = bucket
        .status()
        .await
        .map_err(|e| Error::Setup(format!("KV bucket {}: {e}", names::MARKS_BUCKET)))?;
    report.lines.push(format!(
        "kv {}: {} replicas, {} keys",
        names::MARKS_BUCKET,
        status.info.config.num_replicas,
        status.values()
    ));

    for tag in &layout.tags {
        let name = names::consumer(tag);
        let consumer = stream
            .get_or_create_consumer(&name, layout.consumer_config(tag))
            .await
            .map_err(|e| Error::Setup(format!("consumer {name}: {e}")))?;
        let info = consumer.cached_info();
        if info.config.priority_policy != PriorityPolicy::PinnedClient
            || info.config.priority_groups != [names::GROUP]
        {
            return Err(Error::ServerTooOld(name));
        }
        if info.config.filter_subject != names::tag_filter(tag) {
            return Err(Error::Setup(format!(
                "consumer {name} exists with filter {}; estuary needs {}",
                info.config.filter_subject,
                names::tag_filter(tag)
            )));
        }
        let pin = info
            .priority_groups
            .first()
            .and_then(|g| g.pinned_client_id.as_deref())
            .unwrap_or("none");
        report.lines.push(format!(
            "consumer {name}: pending {}, unacknowledged {}, pin {pin}",
            info.num_pending, info.num_ack_pending
        ));
    }
    Ok(report)
}
