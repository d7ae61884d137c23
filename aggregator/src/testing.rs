//! A complete configuration for tests, built without the config loader.

use std::path::Path;
use std::time::Duration;

use estuary_config::aggregator::{
    AggregatorConfig, ConnectionLimits, DiskConfig, Durability, Listeners, MailConfig,
    MailTransport, Routing,
};

/// zeekctl's defaults, all listeners off, mail disabled, hourly rotation.
pub fn config(log_dir: &Path, spool_dir: &Path) -> AggregatorConfig {
    AggregatorConfig {
        source: log_dir.join("test.cfg"),
        log_dir: log_dir.to_path_buf(),
        spool_dir: spool_dir.to_path_buf(),
        rotation_interval: Duration::from_secs(3600),
        expire_interval: Some(Duration::from_secs(30 * 86_400)),
        keep_logs: Vec::new(),
        stats_log: spool_dir.join("stats.log"),
        stats_expire_interval: None,
        time_fmt: "%d %b %H:%M:%S".into(),
        debug: false,
        mail: MailConfig {
            to: "root@localhost".into(),
            from: "Big Brother <bro@localhost>".into(),
            reply_to: None,
            subject_prefix: "[Bro]".into(),
            alarm_prefix: "ALERT:".into(),
            mail_alarms: true,
            alarms_to: "root@localhost".into(),
            alarms_interval: None,
            transport: MailTransport::Disabled,
        },
        disk: DiskConfig {
            min_free_percent: 5.0,
            hard_floor_percent: 1.0,
        },
        listen: Listeners::default(),
        connection_limits: ConnectionLimits::default(),
        tls: None,
        peers: Vec::new(),
        max_message_size: 64 * 1024,
        routing: Routing {
            tag_prefix: "bro_".into(),
            catch_all: "unrouted".into(),
            per_host: false,
        },
        durability: Durability::Written,
        replay_mark_retention: Some(Duration::from_secs(7 * 86_400)),
        compress_level: 6,
        forward: Vec::new(),
        metrics_address: None,
        forward_metrics_address: None,
        nats: None,
    }
}

/// A reader of `tags` named `agg1`, for a cluster that is not there.
pub fn nats_input(tags: &[&str]) -> estuary_config::aggregator::NatsInput {
    estuary_config::aggregator::NatsInput {
        servers: vec!["nats://127.0.0.1:4222".into()],
        stream: "ESTUARY".into(),
        role: estuary_config::aggregator::NatsRole::Reader,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        name: "agg1".into(),
        credentials: None,
        ca_file: None,
        replicas: 3,
        priority_timeout: Duration::from_secs(30),
        max_age: Duration::from_secs(3600),
        duplicate_window: Duration::from_secs(120),
    }
}

/// Events for a writer under test.
pub fn events() -> std::sync::Arc<crate::events::Events> {
    std::sync::Arc::new(crate::events::Events::new(std::time::SystemTime::now()))
}
