//! Selector lines' `facility.priority` filters, as rsyslog evaluates them, checked against the
//! inputs.

use estuary_wire::{Facility, Severity};

use crate::shipper::InputConfig;

/// Which (facility, severity) pairs a selector accepts, as rsyslog evaluates `a,b.prio;c.none`.
#[derive(Clone)]
pub(super) struct Selector {
    accepts: [[bool; 8]; 24],
}

impl Selector {
    fn accepts(&self, facility: Facility, severity: Severity) -> bool {
        self.accepts[usize::from(facility.code())][usize::from(severity.code())]
    }

    fn is_everything(&self) -> bool {
        self.accepts.iter().all(|row| row.iter().all(|&b| b))
    }
}

pub(super) fn parse_facility(text: &str) -> Result<Facility, String> {
    if let Ok(code) = text.parse::<u8>() {
        return Facility::from_code(code)
            .ok_or_else(|| format!("facility number {code} is out of range (0-23)"));
    }
    text.parse::<Facility>().map_err(|e| e.to_string())
}

pub(super) fn parse_severity(text: &str) -> Result<Severity, String> {
    if let Ok(code) = text.parse::<u8>() {
        return Severity::from_code(code)
            .ok_or_else(|| format!("severity number {code} is out of range (0-7)"));
    }
    text.parse::<Severity>().map_err(|e| e.to_string())
}

/// `local7.*`, `*.*`, `local6,local7.info`, `*.info;mail.none`, `local7.=notice`, `local7.!debug`.
pub(super) fn parse_selector(text: &str) -> Result<Selector, String> {
    let mut accepts = [[false; 8]; 24];
    for part in text.split(';') {
        let (facilities, priority) = part
            .rsplit_once('.')
            .ok_or_else(|| format!("selector {part:?} has no '.priority'"))?;
        let facility_codes: Vec<usize> = if facilities == "*" {
            (0..24).collect()
        } else {
            facilities
                .split(',')
                .map(|f| parse_facility(f).map(|f| usize::from(f.code())))
                .collect::<Result<_, _>>()?
        };
        let (negate, priority) = match priority.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, priority),
        };
        let (exact, priority) = match priority.strip_prefix('=') {
            Some(rest) => (true, rest),
            None => (false, priority),
        };
        let severities: Vec<usize> = match priority {
            "*" if !exact => (0..8).collect(),
            "none" if !exact && !negate => {
                for &f in &facility_codes {
                    accepts[f] = [false; 8];
                }
                continue;
            }
            name => {
                let level = usize::from(parse_severity(name)?.code());
                if exact {
                    vec![level]
                } else {
                    (0..=level).collect()
                }
            }
        };
        for &f in &facility_codes {
            for &s in &severities {
                accepts[f][s] = !negate;
            }
        }
    }
    Ok(Selector { accepts })
}

/// The shipper filters destinations by input facility only, so the selector must accept whole inputs:
/// all of one facility (`Some`), or every input (`None`).
pub(super) fn facility_filter(
    selector: &Selector,
    inputs: &[InputConfig],
) -> Result<Option<Facility>, String> {
    if selector.is_everything() {
        return Ok(None);
    }
    let (accepted, rejected): (Vec<&InputConfig>, Vec<&InputConfig>) = inputs
        .iter()
        .partition(|i| selector.accepts(i.facility, i.severity));
    let Some(first) = accepted.first() else {
        let used: Vec<String> = inputs
            .iter()
            .map(|i| format!("{}.{}", i.facility, i.severity))
            .collect();
        return Err(format!(
            "selector matches none of the monitored files (they use {})",
            used.join(", ")
        ));
    };
    if let Some(split) = rejected
        .iter()
        .find(|r| accepted.iter().any(|a| a.facility == r.facility))
    {
        return Err(format!(
            "selector would drop the lines of {} ({}.{}) but not other {} files; estuary forwards whole facilities",
            split.path.display(),
            split.facility,
            split.severity,
            split.facility
        ));
    }
    if accepted.iter().all(|a| a.facility == first.facility) {
        Ok(Some(first.facility))
    } else if rejected.is_empty() {
        Ok(None)
    } else {
        Err("selector matches files of several facilities but not all; write one selector line per facility".into())
    }
}
