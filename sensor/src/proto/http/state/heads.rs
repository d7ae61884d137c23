//! Message heads: the request line, the status line and the header fields, into http.log's
//! columns and the framing of the body that follows.

use super::*;

impl HttpAnalyzer {
    pub(super) fn on_request(&mut self, ts: Timestamp, rl: RequestLine, out: &mut dyn Emit) {
        if self.current_request < self.current_response {
            out.script_weird(ts, "HTTP_response_before_request", None);
            self.current_request = self.current_response;
        }
        if self.pending.len() > MAX_PENDING {
            // Zeek's HTTP::max_pending_requests: write what waits and start over.
            out.script_weird(ts, "HTTP_excessive_pipelining", None);
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
        self.set_request_version(ts, version, out);
        let method = rl.method.clone();
        if !parser::is_known_method(&method) {
            out.script_weird(ts, "unknown_HTTP_method", Some(method.clone()));
        }
        if rl.version.is_none() && method != "GET" {
            out.weird(ts, "invalid_http_09_request_method", Some(method.clone()));
        }
        for w in &rl.weirds {
            out.weird(ts, w, None);
        }
        if rl.version.is_none() && self.reply_begun {
            // HTTP_Analyzer::DeliverStream: a reply message that exists when an HTTP/0.9
            // request comes is ended where it stands; the 0.9 reply starts afresh.
            out.weird(ts, "http_09_reply_before_request", None);
            self.finish_side(Direction::Resp, ts, out);
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

    /// Zeek's `SetVersion` for the request version: a change weirds.
    pub(super) fn set_request_version(
        &mut self,
        ts: Timestamp,
        version: String,
        out: &mut dyn Emit,
    ) {
        if self.request_version.as_ref().is_some_and(|v| *v != version) {
            out.weird(ts, "HTTP_version_mismatch", None);
        }
        self.request_version = Some(version);
    }

    pub(super) fn on_reply(&mut self, ts: Timestamp, sl: StatusLine, out: &mut dyn Emit) -> Head {
        self.reply_begun = true;
        self.reply_code = sl.code;
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
        // http/main.zeek's `http_reply`: a 200 to a CONNECT registers the proxy as a tunnel.
        if sl.code == 200 && info.method.as_deref() == Some("CONNECT") {
            out.tunnel(ts, TunnelType::Http);
        }
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
        if std::mem::take(&mut head.folded) {
            out.weird(ts, "HTTP_obsolete_line_folding", Some(name.clone()));
        }
        let name = name.to_ascii_uppercase();
        match name.as_str() {
            "CONTENT-LENGTH" => self.content_length(ts, head, &value, out),
            "TRANSFER-ENCODING" => {
                let version = match dir {
                    Direction::Orig => &self.request_version,
                    Direction::Resp => &self.reply_version,
                };
                let token = header_rules::value_token(&value);
                if let Some((t, rest)) = token {
                    if t.eq_ignore_ascii_case(b"chunked") && version.as_deref() == Some("1.1") {
                        head.chunked = true;
                        if !rest.is_empty() {
                            let rest = String::from_utf8_lossy(rest).into_owned();
                            out.weird(ts, "HTTP_chunked_multi", Some(rest));
                        }
                        if head.content_length.is_some() {
                            out.weird(ts, "HTTP_content_length_and_chunked", None);
                        }
                    }
                }
            }
            "CONTENT-ENCODING" => {
                if let Some(e) = Encoding::from_header(&value) {
                    head.encoding = Some(e);
                }
            }
            "CONTENT-TYPE" => {
                head.boundary = part::boundary_of(&value);
                if let Some(message) = header_rules::is_message_type(&value) {
                    head.message = message;
                }
            }
            // HTTP_Entity::SubmitHeader asks the analyzer's reply code, not the message's: a
            // request's Content-Range counts while a 206 reply is being read.
            "CONTENT-RANGE" if self.reply_code == 206 => self.content_range(ts, head, &value, out),
            "EXPECT" => {
                let token = header_rules::value_token(&value).map_or(&b""[..], |(t, _)| t);
                if !token.eq_ignore_ascii_case(b"100-continue") {
                    let addl = String::from_utf8_lossy(token).into_owned();
                    out.weird(ts, "HTTP_expect_not_100_continue", Some(addl));
                }
                head.expect_100 = true;
                if head.content_length == Some(0) {
                    out.weird(ts, "HTTP_content_length_0_and_expect_100_cont", None);
                }
            }
            _ => {}
        }
        if dir == Direction::Resp {
            let token = header_rules::value_token(&value).map_or(&b""[..], |(t, _)| t);
            match name.as_str() {
                "CONNECTION" if token.eq_ignore_ascii_case(b"close") => {
                    self.connection_close = true
                }
                "CONNECTION" if token.eq_ignore_ascii_case(b"upgrade") => {
                    head.upgrade_connection = true
                }
                "UPGRADE" if !token.is_empty() => {
                    head.upgrade_protocol = Some(String::from_utf8_lossy(token).to_lowercase())
                }
                _ => {}
            }
        }
        let in_entity = self.state(dir, ts).in_entity;
        if !in_entity {
            out.weird(ts, "missing_HTTP_entity", None);
        }
        let info = self.state(dir, ts);
        if let Some(f) = in_entity
            .then(|| super::super::filename::entity_filename(&name, &value))
            .flatten()
        {
            head.filename = Some(f);
        }
        if dir == Direction::Resp {
            return;
        }
        match name.as_str() {
            "RANGE" => info.range_request = true,
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

    /// Content-Length as `HTTP_Entity::SubmitHeader` reads it: a signed 64-bit number, the
    /// weirds of its clashes with chunking, a range and `Expect: 100-continue`.
    fn content_length(&mut self, ts: Timestamp, head: &mut Head, value: &[u8], out: &mut dyn Emit) {
        if head.chunked {
            out.weird(ts, "HTTP_content_length_and_chunked", None);
        }
        head.content_length = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .and_then(|n| u64::try_from(n).ok());
        let Some(n) = head.content_length else {
            let text = String::from_utf8_lossy(value.trim_ascii()).into_owned();
            out.weird(ts, "HTTP_bad_content_length", Some(text));
            return;
        };
        let token = header_rules::value_token(value).map_or(&b""[..], |(t, _)| t);
        if n > 0 && token.first() == Some(&b'0') {
            let text = String::from_utf8_lossy(token).into_owned();
            out.weird(ts, "HTTP_content_length_leading_zeros", Some(text));
        }
        if let Some(range) = head.range_len {
            if range != n {
                out.weird(ts, "HTTP_range_not_matching_len", None);
                head.content_length = Some(n.max(range));
            }
        }
        if n == 0 && head.expect_100 {
            out.weird(ts, "HTTP_content_length_0_and_expect_100_cont", None);
        }
    }

    /// A Content-Range read during a 206 reply: the range makes the body partial content of a file.
    fn content_range(&mut self, ts: Timestamp, head: &mut Head, value: &[u8], out: &mut dyn Emit) {
        if head.chunked {
            out.weird(ts, "HTTP_content_range_and_chunked", None);
        }
        let (range, weird) = match header_rules::content_range(value) {
            Ok(r) => r,
            Err((name, addl)) => {
                out.weird(ts, name, addl);
                return;
            }
        };
        if let Some((name, addl)) = weird {
            out.weird(ts, name, addl);
        }
        head.partial = Some(range.instance);
        head.range_first = Some(range.first);
        head.range_len = Some(range.len);
        match head.content_length {
            Some(n) if n > 0 => {
                if n != range.len {
                    out.weird(ts, "HTTP_range_not_matching_len", None);
                    head.content_length = Some(n.max(range.len));
                }
            }
            _ => head.content_length = Some(range.len),
        }
    }
}
