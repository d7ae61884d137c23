//! tunnel.log, as Zeek's `base/frameworks/tunnels` writes it: a tunnel is `DISCOVER`ed when a
//! connection is first seen inside it (or a connection's encapsulation changes to it), and
//! `CLOSE`d when the connection that carries it (VXLAN, Geneve, GTP, Teredo, AYIYA over UDP)
//! is removed. IP tunnels (IP-in-IP, GRE) have no such connection and are never closed.
//! The proxies an analyzer finds (SOCKS, HTTP CONNECT) are registered with orig port 0 and no
//! uid, so one row stands for all the client's connections to the proxy, and none is closed.

use std::collections::HashMap;

use crate::conn_log::ConnRecord;
use crate::flow::{ConnId, Encap, Timestamp, TunnelId, TunnelType};
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

impl TunnelRecord {
    /// The DISCOVER row of a proxy found on connection `id`: SOCKS's `socks_request` and HTTP's
    /// `http_reply` to a CONNECT copy the connection's id with `orig_p = 0/tcp` and register
    /// it without a uid.
    pub fn proxy(ts: Timestamp, id: &ConnId, kind: TunnelType) -> Self {
        TunnelRecord {
            ts,
            encap: Encap {
                uid: String::new(),
                id: TunnelId {
                    orig_h: id.orig_h,
                    orig_p: 0,
                    resp_h: id.resp_h,
                    resp_p: id.resp_p,
                },
                kind,
            },
            action: TunnelAction::Discover,
        }
    }
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
            if self.encap.uid.is_empty() {
                Value::Unset
            } else {
                Value::Str(self.encap.uid.clone())
            },
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

    /// `Tunnel::register` of one tunnel an analyzer found: whether its DISCOVER row is new.
    pub fn discover(&mut self, row: &TunnelRecord) -> bool {
        if self.active.contains_key(&row.encap.id) {
            return false;
        }
        if self.active.len() < MAX_ACTIVE {
            self.active.insert(row.encap.id, row.encap.kind);
        }
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Transport;
    use crate::zeeklog::format::tsv_value;

    /// `Tunnel::register`: a proxy is one tunnel for all the client's connections (orig port
    /// 0, no uid), logged once while active.
    #[test]
    fn a_proxy_is_discovered_once_with_orig_port_0_and_no_uid() {
        let id = |orig_p| ConnId {
            orig_h: "10.0.0.1".parse().expect("addr"),
            orig_p,
            resp_h: "10.0.0.2".parse().expect("addr"),
            resp_p: 1080,
            proto: Transport::Tcp,
        };
        let first = TunnelRecord::proxy(Timestamp(1.0), &id(40000), TunnelType::Socks);
        let row: Vec<String> = first
            .values()
            .iter()
            .zip(first.fields())
            .map(|(v, f)| {
                let mut cell = String::new();
                tsv_value(&mut cell, f.ty, v);
                cell
            })
            .collect();
        assert_eq!(
            row[1..].join(" "),
            "- 10.0.0.1 0 10.0.0.2 1080 Tunnel::SOCKS Tunnel::DISCOVER"
        );
        let mut active = ActiveTunnels::default();
        assert!(active.discover(&first));
        let again = TunnelRecord::proxy(Timestamp(2.0), &id(40001), TunnelType::Socks);
        assert!(!active.discover(&again), "another connection to the proxy");
    }
}
