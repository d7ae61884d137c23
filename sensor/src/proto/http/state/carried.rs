//! What an HTTP connection carries once HTTP has handed it on: the stream after a CONNECT's
//! 200, or WebSocket frames after an upgrade.

use super::{HttpAnalyzer, Mode};
use crate::flow::{Direction, Timestamp};
use crate::proto::{Analyzer, Emit};

impl HttpAnalyzer {
    /// An analyzer for HTTP found inside this connection's upgraded stream, which continues
    /// this one's transactions: Zeek keeps them per connection (`c$http_state`), so a
    /// tunnelled reply answers the oldest request still waiting for a final one, even the
    /// one the upgrade answered. Its file ids go on from this one's.
    pub(super) fn continuation(&mut self) -> HttpAnalyzer {
        let mut next = HttpAnalyzer::new(self.conn.clone());
        next.pending = std::mem::take(&mut self.pending);
        next.current_request = self.current_request;
        next.current_response = self.current_response;
        next.trans_depth = self.trans_depth;
        std::mem::swap(&mut next.fuids, &mut self.fuids);
        next
    }

    /// The analyzer of what the connection carries after HTTP, once there is one.
    pub(super) fn carried(&mut self) -> Option<&mut dyn Analyzer> {
        match &mut self.mode {
            Mode::Tunnel(inner) => Some(inner.as_mut()),
            Mode::WebSocket(ws) => Some(ws.as_mut()),
            _ => None,
        }
    }

    pub(super) fn start_tunnel(&mut self, ts: Timestamp, out: &mut dyn Emit) {
        let backlog = [
            (Direction::Orig, self.orig.buf.take_all()),
            (Direction::Resp, self.resp.buf.take_all()),
        ];
        for (dir, data) in backlog {
            if !data.is_empty() {
                self.tunnel_data(ts, dir, &data, out);
            }
        }
    }

    pub(super) fn tunnel_data(
        &mut self,
        ts: Timestamp,
        dir: Direction,
        data: &[u8],
        out: &mut dyn Emit,
    ) {
        if let Some(inner) = self.carried() {
            inner.data(ts, dir, data, out);
        }
    }
}
