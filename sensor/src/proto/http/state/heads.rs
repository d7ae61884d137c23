//! Message heads: the request line, the status line and the header fields, into http.log's
//! columns and the framing of the body that follows.

use super::*;

impl HttpAnalyzer {
    pub(super) fn on_request(&mut self, ts: Timestamp, rl: RequestLine, out: &mut dyn Emit) {
        if self.current_request < self.current_response {
            out.weird(ts, "HTTP_response_before_request", None);
            self.current_request = self.current_response;
        }
        if self.pending.len() > MAX_PENDING {
            // Zeek's HTTP::max_pending_requests: write what waits and start over.
            out.weird(ts, "HTTP_excessive_pipelining", None);
            self.current_response = self.current_response.max(1);
            while self.current_response < self.current_request {
                if let Some(info) = self.pending.remove(&self.current_response) {
                    out.record(Box::new(info));
                }
                self.requests.pop_front();
                self.current_response += 1;
            }
        }
        self.current_request += 1;
        let version = rl.version.clone().unwrap_or_else(|| "0.9".into());
        if self.request_version.as_ref().is_some_and(|v| *v != version) {
            out.weird(ts, "HTTP_version_mismatch", None);
        }
        self.request_version = Some(version);
        let method = rl.method.clone();
        if !parser::is_known_method(&method) {
            out.weird(ts, "unknown_HTTP_method", Some(method.clone()));
        }
        if rl.version.is_none() && method != "GET" {
            out.weird(ts, "invalid_http_09_request_method", Some(method.clone()));
        }
        for w in &rl.weirds {
            out.weird(ts, w, None);
        }
        self.reply_http09 |= rl.version.is_none();
        let (uri, weirds) = parser::unescape_uri(&rl.uri);
        for w in weirds {
            out.weird(ts, w, None);
        }
        let info = self.state(Direction::Orig, ts);
        info.method = Some(method.clone());
        info.uri = Some(uri);
        info.in_entity = true;
        if self.requests.len() >= MAX_PENDING {
            self.requests.pop_front();
        }
        self.requests.push_back(RequestMeta { method });
    }

    pub(super) fn on_reply(&mut self, ts: Timestamp, sl: StatusLine, out: &mut dyn Emit) -> Head {
        // Zeek confirms the protocol on a reply only while a request waits for one.
        if !self.confirmed && !self.requests.is_empty() {
            self.confirmed = true;
            out.confirm_service("http");
        }
        if self
            .reply_version
            .as_ref()
            .is_some_and(|v| *v != sl.version)
        {
            out.weird(ts, "HTTP_version_mismatch", None);
        }
        self.reply_version = Some(sl.version.clone());
        let informational = (100..200).contains(&sl.code);
        let advance = match self.pending.get(&self.current_response) {
            None => true,
            Some(info) => info.status_code.is_some_and(|c| !(100..200).contains(&c)),
        };
        if advance {
            self.current_response += 1;
        }
        let request = if informational {
            self.requests.front().cloned()
        } else {
            self.requests.pop_front()
        };
        let info = self.state(Direction::Resp, ts);
        info.status_code = Some(sl.code);
        info.status_msg = Some(sl.reason.clone());
        info.version = Some(sl.version);
        if informational {
            info.info_code = Some(sl.code);
            info.info_msg = Some(sl.reason);
        }
        info.in_entity = true;
        Head {
            status: Some(sl.code),
            request,
            ..Head::default()
        }
    }

    pub(super) fn on_header(
        &mut self,
        dir: Direction,
        ts: Timestamp,
        head: &mut Head,
        name: String,
        value: Vec<u8>,
        out: &mut dyn Emit,
    ) {
        head.headers += 1;
        if head.headers > MAX_HEADERS {
            if head.headers == MAX_HEADERS + 1 {
                out.weird(ts, "HTTP_too_many_headers", None);
            }
            return;
        }
        match name.as_str() {
            "CONTENT-LENGTH" => {
                // Zeek reads the length as a signed 64-bit number and rejects a negative one.
                head.content_length = std::str::from_utf8(&value)
                    .ok()
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .and_then(|n| u64::try_from(n).ok());
                if head.content_length.is_none() {
                    let text = String::from_utf8_lossy(value.trim_ascii()).into_owned();
                    out.weird(ts, "HTTP_bad_content_length", Some(text));
                }
            }
            "TRANSFER-ENCODING" => {
                head.chunked = value
                    .to_ascii_lowercase()
                    .windows(7)
                    .any(|w| w == b"chunked");
            }
            "CONTENT-ENCODING" => head.encoding = Some(Encoding::from_header(&value)),
            "CONTENT-TYPE" => head.boundary = multipart::boundary_of(&value),
            "CONTENT-RANGE" if head.status == Some(206) => {
                head.partial = parser::content_range(&value);
            }
            _ => {}
        }
        let in_entity = self.state(dir, ts).in_entity;
        if !in_entity && !self.missing_entity_reported {
            self.missing_entity_reported = true;
            out.weird(ts, "missing_HTTP_entity", None);
        }
        let info = self.state(dir, ts);
        if in_entity && name == "CONTENT-DISPOSITION" {
            head.filename = parser::disposition_filename(&value);
        }
        if dir == Direction::Resp {
            return;
        }
        match name.as_str() {
            "REFERER" => info.referrer = Some(value),
            "HOST" => info.host = Some(value),
            "ORIGIN" => info.origin = Some(value),
            "USER-AGENT" => info.user_agent = Some(value),
            "AUTHORIZATION" | "PROXY-AUTHORIZATION" => {
                if let Some(user) = parser::basic_auth_user(&value) {
                    info.username = Some(user);
                }
            }
            n if PROXY_HEADERS.contains(&n) => {
                let mut entry = format!("{n} -> ").into_bytes();
                entry.extend_from_slice(&value);
                let set = info.proxied.get_or_insert_with(Vec::new);
                if !set.contains(&entry) {
                    set.push(entry);
                }
            }
            _ => {}
        }
    }
}
