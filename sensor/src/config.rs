//! Applying a validated sensor configuration to the run options.

use estuary_config::sensor::{NoticeAction, SensorConfig};

use crate::conn::LocalNets;
use crate::notice_log::Action;
use crate::run::SensorOptions;
use crate::zeeklog::LogFormat;

/// Command-line flags win over the file for the log format and rotation only when given;
/// the file's values fill what the flags left unset.
pub fn apply(cfg: &SensorConfig, o: &mut SensorOptions) {
    let mut nets = if cfg.private_address_space_is_local {
        LocalNets::zeek_private()
    } else {
        LocalNets::default()
    };
    if !cfg.local_nets.is_empty() {
        let mut all: Vec<_> = cfg.local_nets.clone();
        if cfg.private_address_space_is_local {
            all.extend(LocalNets::zeek_private().nets().iter().copied());
        }
        nets = LocalNets::new(all);
    }
    o.local_nets = nets;
    for &(note, action) in &cfg.notice_actions {
        let a = match action {
            NoticeAction::Alarm => Action::Alarm,
            NoticeAction::Email => Action::Email,
        };
        o.notice_policy.actions.entry(note).or_default().push(a);
    }
    o.notice_policy.email_dest = cfg.email_dest.clone();
    if let Some(f) = cfg.log_format {
        if o.format == LogFormat::Tsv {
            o.format = f;
        }
    }
    if o.rotation.interval.is_none() {
        o.rotation.interval = cfg.rotate_interval;
    }
    if o.rotation.max_bytes.is_none() {
        o.rotation.max_bytes = cfg.rotate_size;
    }
}
