//! Expected FTP data connections. `FTP::add_expected_data_channel` (base/protocols/ftp/main.zeek)
//! puts the control session's record in `ftp_data_expected`, keyed by the data channel's
//! responder address and port, and schedules the `FTP_DATA` analyzer for the channel
//! (`analyzer::Manager::ScheduleAnalyzer`); a new connection from the channel's originator to
//! that address and port, from any port, gets `FTP_DATA` instead of the analyzers of its port
//! (`Manager::ApplyScheduledAnalyzers`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::log::DataChannel;

/// The timeout `add_expected_data_channel` schedules with, and `ftp_data_expected`'s
/// `&read_expire`.
const EXPECT_TIMEOUT: f64 = 300.0;
/// Entries of each table at most: beyond it, new expectations are dropped.
const MAX_EXPECTED: usize = 65_536;

/// The control session's fields a data connection's files set: `file_over_new_connection`
/// (base/protocols/ftp/files.zeek) sets `fuid`, `file_transferred` (main.zeek) and
/// `file_sniff` (files.zeek) set `mime_type`. The control connection's row takes them and
/// `ftp_message` clears them. Zeek shares the one `FTP::Info` record; here the handle is shared.
#[derive(Debug, Clone, Default)]
pub struct Transfer(Arc<Mutex<TransferFields>>);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferFields {
    pub fuid: Option<String>,
    pub mime_type: Option<&'static str>,
}

impl Transfer {
    fn fields(&self) -> MutexGuard<'_, TransferFields> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_fuid(&self, fuid: &str) {
        self.fields().fuid = Some(fuid.to_string());
    }

    pub fn set_mime_type(&self, mime_type: &'static str) {
        self.fields().mime_type = Some(mime_type);
    }

    /// The fields as they are now, cleared for the next command.
    pub fn take(&self) -> TransferFields {
        std::mem::take(&mut *self.fields())
    }
}

/// What a new connection finds scheduled for it.
pub struct Scheduled {
    /// The session from `ftp_data_expected`, if the channel is still in it.
    pub transfer: Option<Transfer>,
}

/// The scheduled `FTP_DATA` analyzers and `ftp_data_expected`.
#[derive(Default)]
pub struct Expectations {
    /// (originator, responder, responder port) to the latest timeout scheduled for it.
    scheduled: HashMap<(IpAddr, IpAddr, u16), f64>,
    /// (responder, responder port) to the session and the time it was last read or written.
    sessions: HashMap<(IpAddr, u16), (Transfer, f64)>,
}

impl Expectations {
    /// `add_expected_data_channel` at network time `now`. Scheduling first drops the
    /// analyzers whose timeout passed (`Manager::ExpireScheduledAnalyzers`).
    pub fn expect(&mut self, now: f64, chan: DataChannel, transfer: Transfer) {
        self.scheduled.retain(|_, timeout| *timeout > now);
        self.sessions
            .retain(|_, (_, last)| *last + EXPECT_TIMEOUT > now);
        let key = (chan.orig_h, chan.resp_h, chan.resp_p);
        if self.scheduled.len() < MAX_EXPECTED || self.scheduled.contains_key(&key) {
            self.scheduled.insert(key, now + EXPECT_TIMEOUT);
        }
        let key = (chan.resp_h, chan.resp_p);
        if self.sessions.len() < MAX_EXPECTED || self.sessions.contains_key(&key) {
            self.sessions.insert(key, (transfer, now));
        }
    }

    /// A new TCP connection: `FTP_DATA` when it was scheduled. `Manager::GetScheduled` does not
    /// check the timeout of an exact match; only scheduling expires entries.
    pub fn apply(
        &mut self,
        now: f64,
        orig_h: IpAddr,
        resp_h: IpAddr,
        resp_p: u16,
    ) -> Option<Scheduled> {
        if !self.scheduled.contains_key(&(orig_h, resp_h, resp_p)) {
            return None;
        }
        let transfer = match self.sessions.get_mut(&(resp_h, resp_p)) {
            Some((t, last)) if *last + EXPECT_TIMEOUT > now => {
                *last = now;
                Some(t.clone())
            }
            _ => None,
        };
        Some(Scheduled { transfer })
    }

    /// `FTP::finalize_ftp_data`: the data connection was removed, and its channel leaves
    /// `ftp_data_expected`.
    pub fn finished(&mut self, resp_h: IpAddr, resp_p: u16) {
        self.sessions.remove(&(resp_h, resp_p));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> IpAddr {
        s.parse().expect("literal address")
    }

    fn chan(orig: &str, resp: &str, port: u16) -> DataChannel {
        DataChannel {
            passive: true,
            orig_h: addr(orig),
            resp_h: addr(resp),
            resp_p: port,
        }
    }

    /// GetScheduled matches the originator and the responder's address and port, any
    /// originator port; the session comes from ftp_data_expected.
    #[test]
    fn a_channel_matches_its_originator_and_responder_port_only() {
        let mut e = Expectations::default();
        let t = Transfer::default();
        e.expect(10.0, chan("10.0.0.1", "10.0.0.2", 5000), t.clone());
        let (c, s) = (addr("10.0.0.1"), addr("10.0.0.2"));
        assert!(e.apply(11.0, s, c, 5000).is_none());
        assert!(e.apply(11.0, c, s, 5001).is_none());
        assert!(e.apply(11.0, addr("10.0.0.3"), s, 5000).is_none());
        let found = e.apply(11.0, c, s, 5000).expect("scheduled");
        found.transfer.expect("expected").set_fuid("Fx");
        assert_eq!(t.take().fuid.as_deref(), Some("Fx"));
        assert_eq!(t.take(), TransferFields::default());
    }

    /// The scheduled analyzer stays (it only expires), but finalize_ftp_data takes the channel
    /// out of ftp_data_expected: a second connection gets FTP_DATA with no session.
    #[test]
    fn a_finished_channel_leaves_the_session_table_only() {
        let mut e = Expectations::default();
        e.expect(0.0, chan("10.0.0.1", "10.0.0.2", 5000), Transfer::default());
        let (c, s) = (addr("10.0.0.1"), addr("10.0.0.2"));
        e.finished(s, 5000);
        let again = e.apply(1.0, c, s, 5000).expect("still scheduled");
        assert!(again.transfer.is_none());
    }

    /// Five minutes after scheduling, the next scheduling expires the analyzer; the session
    /// entry expires five minutes after it was last read.
    #[test]
    fn expectations_expire_after_five_minutes() {
        let mut e = Expectations::default();
        let (c, s) = (addr("10.0.0.1"), addr("10.0.0.2"));
        e.expect(0.0, chan("10.0.0.1", "10.0.0.2", 5000), Transfer::default());
        let late = e
            .apply(301.0, c, s, 5000)
            .expect("not expired before a new schedule");
        assert!(late.transfer.is_none());
        e.expect(
            301.0,
            chan("10.0.0.1", "10.0.0.2", 6000),
            Transfer::default(),
        );
        assert!(e.apply(302.0, c, s, 5000).is_none());
        assert!(e.apply(302.0, c, s, 6000).is_some());
    }
}
