//! A connection's conn.log row, as Zeek's `conn.zeek` fills it at the end.

use super::{Conn, Kind, LocalNets};
use crate::conn_log::ConnRecord;
use crate::flow::Timestamp;

impl Conn {
    pub(super) fn record(&self, local: &LocalNets) -> ConnRecord {
        let duration = self.last - self.start;
        let (osize, rsize, state) = match &self.kind {
            Kind::Tcp(tcp) => {
                let (o, r) = tcp.sizes();
                (o, r, tcp.conn_state(self.history.as_str()))
            }
            Kind::Udp => {
                let state = match (self.stats[0].active, self.stats[1].active) {
                    (true, true) => "SF",
                    (true, false) => "S0",
                    (false, true) => "SHR",
                    (false, false) => "OTH",
                };
                (self.stats[0].size, self.stats[1].size, state)
            }
            Kind::Icmp | Kind::Other => (self.stats[0].size, self.stats[1].size, "OTH"),
        };
        let positive = duration > 0.0;
        ConnRecord {
            ts: Timestamp(self.start),
            uid: self.uid.clone(),
            orig_h: self.orig_h,
            orig_p: self.orig_p,
            resp_h: self.resp_h,
            resp_p: self.resp_p,
            proto: self.proto,
            service: self.services.clone(),
            duration: positive.then_some(duration),
            orig_bytes: positive.then_some(osize),
            resp_bytes: positive.then_some(rsize),
            conn_state: state,
            local_orig: (!local.is_empty()).then(|| local.contains(self.orig_h)),
            local_resp: (!local.is_empty()).then(|| local.contains(self.resp_h)),
            missed_bytes: self.missed_bytes,
            history: self.history.as_str().to_string(),
            orig_pkts: self.stats[0].pkts,
            orig_ip_bytes: self.stats[0].ip_bytes,
            resp_pkts: self.stats[1].pkts,
            resp_ip_bytes: self.stats[1].ip_bytes,
            tunnel_parents: self.tunnel_parents.clone(),
            ip_proto: self.ip_proto,
        }
    }
}
