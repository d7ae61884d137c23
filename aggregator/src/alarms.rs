//! Which notices call for mail: rows of notice.log (Zeek TSV with the file's `#fields`, or JSON
//! lines) whose `actions` include `Notice::ACTION_ALARM` (alarm digest) or `Notice::ACTION_EMAIL`
//! (mailed at once), and Zeek's pretty-printed alarm layout (base/frameworks/notice/actions/pp-alarms.zeek).

use serde::{Deserialize, Serialize};

use crate::clock::Zone;

const ALARM: &str = "Notice::ACTION_ALARM";
const EMAIL: &str = "Notice::ACTION_EMAIL";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoticeEvent {
    pub ts: f64,
    pub note: String,
    pub msg: String,
    pub sub: Option<String>,
    pub uid: Option<String>,
    pub orig: Option<(String, String)>,
    pub resp: Option<(String, String)>,
    pub src: Option<String>,
    pub dst: Option<String>,
    pub p: Option<String>,
    pub peer_descr: Option<String>,
    /// The sending host (syslog HOSTNAME), when the notice itself names no peer.
    pub host: String,
    pub alarm: bool,
    pub email: bool,
    /// The notice's own `email_dest` addresses, mailed beside MailTo as Zeek's notice framework
    /// does; only plain addresses are kept (they come from the network and become a header).
    #[serde(default)]
    pub email_dest: Vec<String>,
}

/// One notice.log row, TSV (with the file's column names) or JSON.
enum Row<'a> {
    Json(serde_json::Value),
    Tsv {
        fields: &'a [String],
        cols: Vec<String>,
    },
}

impl Row<'_> {
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Row::Json(value) => match value.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Array(items) => Some(
                    items
                        .iter()
                        .filter_map(|v| v.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            },
            Row::Tsv { fields, cols } => {
                let i = fields.iter().position(|f| f == name)?;
                let v = cols.get(i)?;
                (v != "-" && v != "(empty)").then(|| v.clone())
            }
        }
    }
}

/// The notice in `line` when its actions ask for mail. `fields` are the column names of the
/// file's `#fields` line; empty for JSON logs.
pub fn parse(fields: &[String], line: &[u8], host: &str) -> Option<NoticeEvent> {
    let row = if line.first() == Some(&b'{') {
        Row::Json(serde_json::from_slice(line).ok()?)
    } else {
        if fields.is_empty() {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        Row::Tsv {
            fields,
            cols: text.split('\t').map(str::to_owned).collect(),
        }
    };
    let get = |name: &str| row.get(name);
    let actions = get("actions").unwrap_or_default();
    let alarm = actions.split(',').any(|a| a == ALARM);
    let email = actions.split(',').any(|a| a == EMAIL);
    if !alarm && !email {
        return None;
    }
    let pair = |h: &str, p: &str| Some((get(h)?, get(p).unwrap_or_default()));
    Some(NoticeEvent {
        // JSON has no NaN or infinity: the pending notice would not read back.
        ts: get("ts")
            .and_then(|t| t.parse().ok())
            .filter(|t: &f64| t.is_finite())
            .unwrap_or(0.0),
        note: get("note").unwrap_or_default(),
        msg: get("msg").unwrap_or_default(),
        sub: get("sub"),
        uid: get("uid"),
        orig: pair("id.orig_h", "id.orig_p"),
        resp: pair("id.resp_h", "id.resp_p"),
        src: get("src"),
        dst: get("dst"),
        p: get("p"),
        peer_descr: get("peer_descr"),
        host: host.to_owned(),
        alarm,
        email,
        email_dest: get("email_dest")
            .unwrap_or_default()
            .split(',')
            .filter(|a| is_plain_address(a))
            .map(str::to_owned)
            .collect(),
    })
}

fn is_plain_address(a: &str) -> bool {
    a.contains('@')
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@._%+-".contains(&b))
}

/// Zeek's `%D`: ISO timestamp with microsecond precision, in local time.
fn iso_micros(ts: f64, zone: Zone) -> String {
    match zoned_ts(ts, zone) {
        Some(t) => t.format("%Y-%m-%d-%H:%M:%S%.6f").to_string(),
        None => format!("{ts:.6}"),
    }
}

/// A notice's `ts` in `zone`; `None` when it is no time chrono can print.
fn zoned_ts(ts: f64, zone: Zone) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    // Far inside i64 (the float-to-int cast saturates, the nanoseconds need headroom).
    if !ts.is_finite() || ts.abs() >= 1e17 {
        return None;
    }
    let secs = ts.floor();
    let micros = ((ts - secs) * 1e6).round().min(999_999.0) as u32;
    zone.at_timestamp(secs as i64, micros * 1000)
}

impl NoticeEvent {
    fn who(&self) -> String {
        match (&self.orig, &self.resp) {
            (Some((oh, op)), Some((rh, rp))) => format!("{oh}:{op} -> {rh}:{rp}"),
            _ => match (&self.src, &self.dst, &self.p) {
                (Some(s), Some(d), _) => format!("{s} -> {d}"),
                (Some(s), None, Some(p)) => format!("{s}:{p}"),
                (Some(s), None, None) => s.clone(),
                _ => String::new(),
            },
        }
    }

    /// One block of the alarm digest, as pp-alarms.zeek prints it (no reverse DNS line: the
    /// aggregator does not resolve names).
    pub fn pretty_alarm(&self, zone: Zone) -> String {
        let mut out = format!("> {} {}", iso_micros(self.ts, zone), self.note);
        let who = self.who();
        if !who.is_empty() {
            out.push(' ');
            out.push_str(&who);
        }
        if let Some(uid) = &self.uid {
            out.push_str(&format!(" (uid {uid})"));
        }
        out.push('\n');
        let peer = self.peer_descr.as_deref().unwrap_or(&self.host);
        out.push_str(&format!("   <{peer}> {}\n", self.msg));
        if let Some(sub) = &self.sub {
            out.push_str(&format!("   {sub}\n"));
        }
        out.push('\n');
        out
    }

    /// The body of an individual Notice::ACTION_EMAIL mail (notice/main.zeek email_notice_to),
    /// plus the notice's time in `TimeFmt`, as zeekctl prints times, and the sensor.
    pub fn email_body(&self, time_fmt: &str, zone: Zone) -> String {
        let mut out = format!("Message: {}\n", self.msg);
        if let Some(sub) = &self.sub {
            out.push_str(&format!("Sub-message: {sub}\n"));
        }
        out.push('\n');
        match (&self.orig, &self.resp) {
            (Some((oh, op)), Some((rh, rp))) => {
                out.push_str(&format!("Connection: {oh}:{op} -> {rh}:{rp}\n"))
            }
            _ => {
                if let Some(src) = &self.src {
                    out.push_str(&format!("Address: {src}\n"));
                }
            }
        }
        if let Some(uid) = &self.uid {
            out.push_str(&format!("Connection uid: {uid}\n"));
        }
        let time = match zoned_ts(self.ts, zone) {
            Some(t) => crate::clock::format_zoned(time_fmt, &t),
            None => format!("{:.6}", self.ts),
        };
        out.push_str(&format!("Time: {time}\n"));
        out.push_str(&format!(
            "Sensor: {}\n",
            self.peer_descr.as_deref().unwrap_or(&self.host)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Vec<String> {
        "ts uid id.orig_h id.orig_p id.resp_h id.resp_p note msg sub src dst p peer_descr actions"
            .split(' ')
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn tsv_alarm() {
        let line = b"1700000000.5\tCabc\t10.0.0.1\t1234\t10.0.0.2\t22\tSSH::Password_Guessing\t10.0.0.1 guessed\t-\t10.0.0.1\t-\t-\t-\tNotice::ACTION_LOG,Notice::ACTION_ALARM";
        let e = parse(&fields(), line, "sensor1").unwrap();
        assert!(e.alarm && !e.email);
        let text = e.pretty_alarm(Zone::Local);
        assert!(text.contains("SSH::Password_Guessing 10.0.0.1:1234 -> 10.0.0.2:22 (uid Cabc)"));
        assert!(text.contains("   <sensor1> 10.0.0.1 guessed\n"));
    }

    #[test]
    fn json_email_and_plain_log() {
        let line =
            br#"{"ts":1700000000.0,"note":"X::Y","msg":"m","actions":["Notice::ACTION_EMAIL"]}"#;
        let e = parse(&[], line, "h").unwrap();
        assert!(e.email && !e.alarm);
        let body = e.email_body("%d %b %H:%M:%S", Zone::UTC);
        assert!(
            body.contains("\nTime: 14 Nov 22:13:20\nSensor: h\n"),
            "{body}"
        );
        let plain = br#"{"ts":1.0,"note":"X::Y","msg":"m","actions":["Notice::ACTION_LOG"]}"#;
        assert!(parse(&[], plain, "h").is_none());
        assert!(parse(&[], b"garbage\t\t", "h").is_none());
    }

    /// A sensor's ts far past what chrono can hold (here about 31 million years) once panicked
    /// the mailer thread; the raw number is printed instead.
    #[test]
    fn times_out_of_range_print_the_raw_number() {
        let line = br#"{"ts":1e15,"note":"X::Y","msg":"m","actions":["Notice::ACTION_EMAIL","Notice::ACTION_ALARM"]}"#;
        let e = parse(&[], line, "h").unwrap();
        assert!(e
            .email_body("%d %b %H:%M:%S", Zone::Local)
            .contains("\nTime: 1000000000000000.000000\n"));
        assert!(e
            .pretty_alarm(Zone::Local)
            .starts_with("> 1000000000000000.000000 X::Y\n"));
        // JSON has no NaN: such a ts must not make the pending notice unreadable.
        let tsv = b"nan\tX::Y\tNotice::ACTION_EMAIL";
        let fields = ["ts", "note", "actions"].map(str::to_owned);
        let e = parse(&fields, tsv, "h").unwrap();
        let line = serde_json::to_vec(&e).unwrap();
        assert_eq!(serde_json::from_slice::<NoticeEvent>(&line).unwrap(), e);
    }

    fn text() -> impl proptest::strategy::Strategy<Value = Option<String>> {
        proptest::option::of(proptest::string::string_regex("(.|\n|\r){0,16}").unwrap())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever a sensor puts in a notice, the alarm digest, the mail body and the rendered
        /// mail come out without a panic, and no field adds a mail header.
        #[test]
        fn notice_mails_never_panic(
            ts in proptest::prop_oneof![
                proptest::prelude::any::<f64>(),
                -1e20f64..1e20,
                0f64..1e10,
                proptest::strategy::Just(1e15),
                proptest::strategy::Just(253_402_300_800.0),
                proptest::strategy::Just(-62_167_219_201.0),
            ],
            fields in proptest::collection::vec(text(), 11),
            time_fmt in proptest::prop_oneof![
                proptest::strategy::Just("%d %b %H:%M:%S".to_owned()),
                proptest::string::string_regex("[%a-zA-Z.:0-9 ]{0,12}").unwrap(),
            ],
        ) {
            let field = |i: usize| fields[i].clone();
            let event = NoticeEvent {
                ts,
                note: field(0).unwrap_or_default(),
                msg: field(1).unwrap_or_default(),
                sub: field(2),
                uid: field(3),
                orig: field(4).map(|h| (h, field(5).unwrap_or_default())),
                resp: field(6).map(|h| (h, field(5).unwrap_or_default())),
                src: field(7),
                dst: field(8),
                p: field(9),
                peer_descr: field(10),
                host: "h".into(),
                alarm: true,
                email: true,
                email_dest: Vec::new(),
            };
            proptest::prop_assert!(event.pretty_alarm(Zone::Local).starts_with("> "));
            let body = event.email_body(&time_fmt, Zone::Local);
            proptest::prop_assert!(body.contains("\nTime: "));
            let dir = tempfile::tempdir().unwrap();
            let cfg = crate::testing::config(dir.path(), dir.path()).mail;
            let mail = crate::mail::Mail {
                subject: format!("ALERT: {}: {}", event.note, event.msg),
                to: "root@localhost".into(),
                body,
            };
            let now = crate::clock::from_unix_secs(1_795_388_400);
            let rendered = crate::mail::render(&cfg, &mail, "notice-0-0", Zone::Local, now);
            let headers = rendered.split("\n\n").next().unwrap_or_default();
            proptest::prop_assert_eq!(headers.lines().count(), 6, "{}", headers);
        }

        /// Any ts and fields in a notice.log row, TSV or JSON: parsing and formatting never
        /// panic, and what is kept for the mailer reads back.
        #[test]
        fn notice_rows_never_panic(
            ts in proptest::prop_oneof![
                proptest::string::string_regex("-?[0-9]{0,25}(\\.[0-9]{0,9})?(e-?[0-9]{1,3})?").unwrap(),
                proptest::string::string_regex(".{0,12}").unwrap(),
                proptest::strategy::Just("1e15".to_owned()),
                proptest::strategy::Just("inf".to_owned()),
            ],
            msg in proptest::string::string_regex("[^\t\n]{0,16}").unwrap(),
            json in proptest::prelude::any::<bool>(),
        ) {
            let fields: Vec<String> = ["ts", "note", "msg", "actions"].map(str::to_owned).to_vec();
            let line = if json {
                format!(r#"{{"ts":{ts},"note":"N::X","msg":{},"actions":["Notice::ACTION_EMAIL","Notice::ACTION_ALARM"]}}"#, serde_json::Value::String(msg))
            } else {
                format!("{ts}\tN::X\t{msg}\tNotice::ACTION_EMAIL,Notice::ACTION_ALARM")
            };
            if let Some(event) = parse(&fields, line.as_bytes(), "h") {
                event.pretty_alarm(Zone::Local);
                event.email_body("%d %b %H:%M:%S", Zone::Local);
                let kept = serde_json::to_vec(&event).unwrap();
                let back: NoticeEvent = serde_json::from_slice(&kept).unwrap();
                proptest::prop_assert_eq!(back.msg, event.msg);
            }
        }
    }
}
