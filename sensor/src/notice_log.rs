//! notice.log: the notice row the detections build, and the notice policy (extra actions)
//! and suppression the record sink applies before writing it.
//!
//! A detection builds a [`Notice`] with [`Notice::new`], sets what it knows (connection,
//! `src`, `sub`, `n`, an `identifier` for suppression) and hands it to the sink; the sink adds
//! the configured actions and drops repeats of the same (note, identifier) within `suppress_for`.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::flow::{ConnId, Timestamp, Transport};
use crate::zeeklog::record_id::log_fields;
use crate::zeeklog::{Field, Record, Value};

pub use estuary_config::sensor::Note;

/// Notice actions; `Log` is always present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Log,
    Email,
    Alarm,
}

impl Action {
    pub fn zeek_name(self) -> &'static str {
        match self {
            Action::Log => "Notice::ACTION_LOG",
            Action::Email => "Notice::ACTION_EMAIL",
            Action::Alarm => "Notice::ACTION_ALARM",
        }
    }
}

/// Zeek's `Notice::default_suppression_interval`.
pub const DEFAULT_SUPPRESS_SECS: f64 = 3600.0;

/// One notice.log row.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub ts: Timestamp,
    pub uid: Option<String>,
    pub id: Option<ConnId>,
    pub note: Note,
    pub msg: String,
    pub sub: Option<String>,
    pub src: Option<IpAddr>,
    pub dst: Option<IpAddr>,
    pub p: Option<u16>,
    pub n: Option<u64>,
    pub actions: Vec<Action>,
    pub email_dest: Vec<String>,
    pub suppress_for: f64,
    /// Suppression key within the note (not logged), e.g. the scanner's address.
    pub identifier: Option<String>,
}

impl Notice {
    pub fn new(ts: Timestamp, note: Note, msg: impl Into<String>) -> Self {
        Notice {
            ts,
            uid: None,
            id: None,
            note,
            msg: msg.into(),
            sub: None,
            src: None,
            dst: None,
            p: None,
            n: None,
            actions: vec![Action::Log],
            email_dest: Vec::new(),
            suppress_for: DEFAULT_SUPPRESS_SECS,
            identifier: None,
        }
    }
}

const FIELDS: &[Field] = log_fields!(
    "fuid": String,
    "file_mime_type": String,
    "file_desc": String,
    "proto": Enum,
    "note": Enum,
    "msg": String,
    "sub": String,
    "src": Addr,
    "dst": Addr,
    "p": Port,
    "n": Count,
    "peer_descr": String,
    "actions": SetEnum,
    "email_dest": SetString,
    "suppress_for": Interval,
    "remote_location.country_code": String,
    "remote_location.region": String,
    "remote_location.city": String,
    "remote_location.latitude": Double,
    "remote_location.longitude": Double,
);

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "tcp",
        Transport::Udp => "udp",
        Transport::Icmp => "icmp",
    }
}

impl Record for Notice {
    fn path(&self) -> &'static str {
        "notice"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn values(&self) -> Vec<Value> {
        let id = self.id.as_ref();
        let mut actions = self.actions.clone();
        actions.sort();
        actions.dedup();
        vec![
            Value::Time(self.ts),
            self.uid.clone().map_or(Value::Unset, Value::Str),
            id.map_or(Value::Unset, |i| Value::Addr(i.orig_h)),
            id.map_or(Value::Unset, |i| Value::Port(i.orig_p)),
            id.map_or(Value::Unset, |i| Value::Addr(i.resp_h)),
            id.map_or(Value::Unset, |i| Value::Port(i.resp_p)),
            Value::Unset,
            Value::Unset,
            Value::Unset,
            id.map_or(Value::Unset, |i| Value::Enum(transport_name(i.proto))),
            Value::Enum(self.note.zeek_name()),
            Value::Str(self.msg.clone()),
            self.sub.clone().map_or(Value::Unset, Value::Str),
            self.src.map_or(Value::Unset, Value::Addr),
            self.dst.map_or(Value::Unset, Value::Addr),
            self.p.map_or(Value::Unset, Value::Port),
            self.n.map_or(Value::Unset, Value::Count),
            Value::Unset,
            Value::List(
                actions
                    .into_iter()
                    .map(|a| Value::Enum(a.zeek_name()))
                    .collect(),
            ),
            Value::List(self.email_dest.iter().cloned().map(Value::Str).collect()),
            Value::Interval(self.suppress_for),
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
            Value::Unset,
        ]
    }
}

/// Notice policy: extra actions per note, from the sensor config.
#[derive(Debug, Clone, Default)]
pub struct NoticePolicy {
    pub actions: HashMap<Note, Vec<Action>>,
    pub email_dest: Vec<String>,
}

/// Applies policy and suppression to notices before they are logged.
#[derive(Debug, Default)]
pub struct NoticeFilter {
    policy: NoticePolicy,
    /// (note, identifier) -> suppressed until.
    suppressed: HashMap<(Note, String), f64>,
}

const MAX_SUPPRESSED: usize = 100_000;

impl NoticeFilter {
    pub fn new(policy: NoticePolicy) -> Self {
        NoticeFilter {
            policy,
            suppressed: HashMap::new(),
        }
    }

    /// Returns false if the notice is suppressed; otherwise adds the policy's actions.
    pub fn admit(&mut self, notice: &mut Notice) -> bool {
        if let Some(ident) = &notice.identifier {
            let key = (notice.note, ident.clone());
            if let Some(&until) = self.suppressed.get(&key) {
                if notice.ts.0 < until {
                    return false;
                }
            }
            if self.suppressed.len() >= MAX_SUPPRESSED {
                let now = notice.ts.0;
                self.suppressed.retain(|_, until| *until > now);
            }
            self.suppressed
                .insert(key, notice.ts.0 + notice.suppress_for);
        }
        if let Some(extra) = self.policy.actions.get(&notice.note) {
            for a in extra {
                if !notice.actions.contains(a) {
                    notice.actions.push(*a);
                }
            }
            if extra.contains(&Action::Email) || extra.contains(&Action::Alarm) {
                for d in &self.policy.email_dest {
                    if !notice.email_dest.contains(d) {
                        notice.email_dest.push(d.clone());
                    }
                }
            }
        }
        true
    }
}
