//! tunnel.log, as Zeek's `base/frameworks/tunnels` writes it: a tunnel is `DISCOVER`ed when a
//! connection is first seen inside it (or a connection's encapsulation changes to it), and
//! `CLOSE`d when the connection that carries it (VXLAN, Geneve, GTP, Teredo, AYIYA over UDP)
//! is removed. IP tunnels (IP-in-IP, GRE) have no such connection and are never closed.

use std::collections::HashMap;

use crate::conn_log::ConnRecord;
use crate::flow::{Encap, Timestamp, TunnelId, TunnelType};
use crate::zeeklog::record_id::log_fields;
use crate::zeeklog::{Field, Record, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelAction {
    Discover,
    Close,
}

/// One tunnel.log row.
#[derive(Debug, Clone, PartialEq)]
pub struct TunnelRecord {
    pub ts: Timestamp,
    pub encap: Encap,
    pub action: TunnelAction,
}

const FIELDS: &[Field] = log_fields!(
    "tunnel_type": Enum,
    "action": Enum,
);

impl Record for TunnelRecord {
    fn path(&self) -> &'static str {
        "tunnel"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn values(&self) -> Vec<Value> {
        let id = &self.encap.id;
        vec![
            Value::Time(self.ts),
            Value::Str(self.encap.uid.clone()),
            Value::Addr(id.orig_h),
            Value::Port(id.orig_p),
            Value::Addr(id.resp_h),
            Value::Port(id.resp_p),
            Value::Enum(self.encap.kind.zeek_name()),
            Value::Enum(match self.action {
                TunnelAction::Discover => "Tunnel::DISCOVER",
                TunnelAction::Close => "Tunnel::CLOSE",
            }),
        ]
    }
}

/// Zeek's `Tunnel::active`: the tunnels discovered and not yet closed.
#[derive(Debug, Default)]
pub struct ActiveTunnels {
    active: HashMap<TunnelId, TunnelType>,
}

/// Tunnels remembered at most; beyond it a new tunnel is logged but not tracked for closing.
const MAX_ACTIVE: usize = 100_000;

impl ActiveTunnels {
    /// `Tunnel::register_all`: a DISCOVER row for each tunnel of the chain not active yet.
    pub fn register(&mut self, ts: f64, chain: &[Encap], out: &mut Vec<TunnelRecord>) {
        for encap in chain {
            if self.active.contains_key(&encap.id) {
                continue;
            }
            if self.active.len() < MAX_ACTIVE {
                self.active.insert(encap.id, encap.kind);
            }
            out.push(TunnelRecord {
                ts: Timestamp(ts),
                encap: encap.clone(),
                action: TunnelAction::Discover,
            });
        }
    }

    /// `Tunnel::finalize_tunnel`: the CLOSE row when the removed connection carried a tunnel.
    pub fn removed(&mut self, conn: &ConnRecord) -> Option<TunnelRecord> {
        let id = TunnelId {
            orig_h: conn.orig_h,
            orig_p: conn.orig_p,
            resp_h: conn.resp_h,
            resp_p: conn.resp_p,
        };
        let kind = self.active.remove(&id)?;
        Some(TunnelRecord {
            ts: Timestamp(conn.ts.0 + conn.duration.unwrap_or(0.0)),
            encap: Encap {
                uid: conn.uid.clone(),
                id,
                kind,
            },
            action: TunnelAction::Close,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }
}
