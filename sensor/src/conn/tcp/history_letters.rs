//! The history letters of one segment's flags (Zeek's `TCPSessionAdapter::UpdateHistory`).

use super::{has, Tcp};
use crate::conn::history::{bits, History};
use crate::decode::tcpflags;

impl Tcp {
    pub(super) fn update_history(
        &mut self,
        is_orig: bool,
        flags: u8,
        rel_seq: u64,
        len: i64,
        history: &mut History,
    ) {
        let syn = has(flags, tcpflags::SYN);
        let fin = has(flags, tcpflags::FIN);
        let rst = has(flags, tcpflags::RST);
        let n = u8::from(syn) + u8::from(fin) + u8::from(rst);
        let (ep, _) = self.eps(is_orig);
        if n > 1 {
            if fin && rst {
                history.check(is_orig, bits::FIN_RST, 'I');
            } else {
                history.check(is_orig, bits::MULTI_FLAG, 'Q');
            }
        } else if n == 1 {
            if syn {
                let code = if has(flags, tcpflags::ACK) { 'H' } else { 'S' };
                if history.check(is_orig, bits::SYN, code) && rel_seq != ep.hist_last_syn {
                    history.add_dir(is_orig, code);
                }
                ep.hist_last_syn = rel_seq;
            }
            if fin {
                let end = rel_seq.wrapping_add(len as u64);
                if history.check(is_orig, bits::FIN, 'F') && end != ep.hist_last_fin {
                    history.add_dir(is_orig, 'F');
                }
                ep.hist_last_fin = end;
            }
            if rst {
                if history.check(is_orig, bits::RST, 'R') && rel_seq != ep.hist_last_rst {
                    history.add_dir(is_orig, 'R');
                }
                ep.hist_last_rst = rel_seq;
            }
        } else if len > 0 {
            history.check(is_orig, bits::DATA, 'D');
        } else if has(flags, tcpflags::ACK) {
            history.check(is_orig, bits::ACK, 'A');
        }
    }
}
