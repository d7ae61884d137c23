//! Which of its NATS tags this aggregator holds right now. The holder of the tag that carries
//! the notices (`<prefix>notice`) is the one aggregator that sends the alarm digests and the
//! cron mail; a single aggregator without NATS always does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use estuary_config::aggregator::{AggregatorConfig, NatsRole};
use estuary_nats::state::StreamState;

use crate::route::{Route, Router};
use crate::stats::NatsStatus;

/// Whether this aggregator sends the alarm digests and the cron mail.
#[derive(Clone)]
pub enum MailDuty {
    /// One aggregator over RELP: it always does.
    Always,
    /// One of several reading the stream: only while it holds the notice tag.
    NoticeHolder(Arc<Holdings>),
}

impl MailDuty {
    pub fn new(config: &AggregatorConfig, holdings: Option<&Arc<Holdings>>) -> MailDuty {
        match (&config.nats, holdings) {
            (Some(_), Some(h)) => MailDuty::NoticeHolder(h.clone()),
            _ => MailDuty::Always,
        }
    }

    pub fn now(&self) -> bool {
        match self {
            MailDuty::Always => true,
            MailDuty::NoticeHolder(h) => h.holds_notices(),
        }
    }
}

/// The tags' holding as the readers last reported it.
pub struct Holdings {
    notice_tag: Option<String>,
    /// A report older than this is not trusted: the reader may have been frozen and deposed
    /// without having run since.
    fresh_for: Duration,
    /// Tag -> when its reader last confirmed it holds the tag (`None`: it does not).
    held: Mutex<BTreeMap<String, Option<Instant>>>,
    /// The cluster's last answer and when it came (epoch seconds).
    cluster: Mutex<Option<(StreamState, u64)>>,
}

impl Holdings {
    /// `None` without a NATS input (also on an ingest node, which holds no tags).
    pub fn new(config: &AggregatorConfig) -> Option<Arc<Holdings>> {
        let nats = config
            .nats
            .as_ref()
            .filter(|n| n.role == NatsRole::Reader)?;
        let router = Router::new(&config.routing);
        let notice_tag = nats
            .tags
            .iter()
            .find(|t| {
                let name = t.trim_end_matches(':').as_bytes();
                matches!(router.route(name), Route::Log(l) if l.as_str() == "notice")
            })
            .cloned();
        Some(Arc::new(Holdings {
            notice_tag,
            fresh_for: nats.priority_timeout / 2,
            held: Mutex::new(nats.tags.iter().map(|t| (t.clone(), None)).collect()),
            cluster: Mutex::new(None),
        }))
    }

    /// A reader's report: whether it holds `tag` as of now.
    pub fn report(&self, tag: &str, holds: bool) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.insert(tag.to_owned(), holds.then(Instant::now));
    }

    /// Whether `tag` is held, by a report fresh enough to trust.
    pub fn holds(&self, tag: &str) -> bool {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        matches!(held.get(tag), Some(Some(at)) if at.elapsed() <= self.fresh_for)
    }

    pub fn cluster_answered(&self, state: StreamState, at: u64) {
        *self.cluster.lock().unwrap_or_else(|p| p.into_inner()) = Some((state, at));
    }

    /// For `status.json`.
    pub fn status(&self) -> NatsStatus {
        let tags: Vec<String> = {
            let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            held.keys().cloned().collect()
        };
        let cluster = self.cluster.lock().unwrap_or_else(|p| p.into_inner());
        NatsStatus {
            held: tags
                .into_iter()
                .map(|t| (t.clone(), self.holds(&t)))
                .collect(),
            cluster: cluster.as_ref().map(|(s, _)| s.clone()),
            asked: cluster.as_ref().map_or(0, |(_, at)| *at),
        }
    }

    pub fn notice_tag(&self) -> Option<&str> {
        self.notice_tag.as_deref()
    }

    fn holds_notices(&self) -> bool {
        self.notice_tag.as_deref().is_some_and(|t| self.holds(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(tags: Option<&[&str]>) -> AggregatorConfig {
        let dir = std::path::Path::new("/nonexistent");
        let mut cfg = crate::testing::config(dir, dir);
        cfg.nats = tags.map(crate::testing::nats_input);
        cfg
    }

    #[test]
    fn only_the_notice_tag_holder_has_the_mail_duty() {
        let single = config(None);
        assert!(Holdings::new(&single).is_none());
        assert!(MailDuty::new(&single, None).now());

        let cfg = config(Some(&["bro_conn", "bro_notice:"]));
        let holdings = Holdings::new(&cfg).unwrap();
        assert_eq!(holdings.notice_tag(), Some("bro_notice:"));
        let duty = MailDuty::new(&cfg, Some(&holdings));
        assert!(!duty.now(), "nothing held yet");
        holdings.report("bro_conn", true);
        assert!(!duty.now(), "holding another tag is not enough");
        holdings.report("bro_notice:", true);
        assert!(duty.now());
        holdings.report("bro_notice:", false);
        assert!(!duty.now(), "deposed");
    }

    #[test]
    fn without_a_notice_tag_no_aggregator_mails() {
        let cfg = config(Some(&["bro_conn"]));
        let holdings = Holdings::new(&cfg).unwrap();
        assert_eq!(holdings.notice_tag(), None);
        assert!(!MailDuty::new(&cfg, Some(&holdings)).now());
    }
}
