//! conn.log `conn_state` of a TCP connection from its endpoint states and history.

use super::endpoint::State;
use super::Tcp;

impl Tcp {
    /// conn.log `conn_state` from the endpoint states (Zeek's `conn_state()` for TCP).
    pub fn conn_state(&self, history: &str) -> &'static str {
        let os = self.orig.state;
        let rs = self.resp.state;
        let o_inactive = matches!(os, State::Inactive | State::Partial);
        let r_inactive = matches!(rs, State::Inactive | State::Partial);
        let (osize, rsize) = self.sizes();
        if rs == State::Reset {
            if matches!(os, State::SynSent | State::SynAckSent)
                || (os == State::Reset && osize == 0 && rsize == 0)
            {
                "REJ"
            } else if o_inactive {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == State::Reset {
            if r_inactive {
                if rstos0_history(history) {
                    "RSTOS0"
                } else {
                    "OTH"
                }
            } else {
                "RSTO"
            }
        } else if rs == State::Closed && os == State::Closed {
            "SF"
        } else if os == State::Closed {
            if r_inactive {
                "SH"
            } else {
                "S2"
            }
        } else if rs == State::Closed {
            if o_inactive {
                "SHR"
            } else {
                "S3"
            }
        } else if os == State::SynSent && rs == State::Inactive {
            "S0"
        } else if os == State::Established && rs == State::Established {
            "S1"
        } else {
            "OTH"
        }
    }
}

/// `/\^?S[^HAFGIQ]*R.*/` as a full match.
fn rstos0_history(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        if c == 'R' {
            return true;
        }
        if "HAFGIQ".contains(c) {
            return false;
        }
    }
    false
}
