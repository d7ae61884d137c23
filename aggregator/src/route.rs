//! Which file a message goes to. Tags and host names arrive from the network: they are data,
//! never paths, so only names made of a small safe alphabet are ever used in a file name.

use estuary_config::aggregator::Routing;

/// Longest tag-derived or host-derived file name component we accept.
const MAX_NAME: usize = 64;

/// A log's base name (`conn` for `conn.log`), safe to use as a file name component.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogName(String);

impl LogName {
    /// `Some` only for 1-64 characters from `[A-Za-z0-9_]`. A `-` is not allowed here, so the
    /// schema variants the writer derives (`conn-1a2b3c4d`) can never collide with a tag.
    pub fn from_tag_part(part: &[u8]) -> Option<Self> {
        let ok = !part.is_empty()
            && part.len() <= MAX_NAME
            && part.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_');
        // Checked above: ASCII only.
        ok.then(|| Self(String::from_utf8_lossy(part).into_owned()))
    }

    /// A name built by the aggregator itself (catch-all, schema variants); validated the same way
    /// apart from allowing `-`.
    pub fn internal(name: &str) -> Option<Self> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME + 9
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        ok.then(|| Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for LogName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The routing decision for one tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A Zeek log: the body goes to `<name>.log`.
    Log(LogName),
    /// Anything else: the whole raw message goes to the catch-all log.
    CatchAll,
}

pub struct Router {
    prefix: Vec<u8>,
    catch_all: LogName,
}

impl Router {
    pub fn new(routing: &Routing) -> Self {
        let catch_all =
            LogName::internal(&routing.catch_all).unwrap_or_else(|| LogName("unrouted".to_owned()));
        Self {
            prefix: routing.tag_prefix.as_bytes().to_vec(),
            catch_all,
        }
    }

    pub fn catch_all(&self) -> &LogName {
        &self.catch_all
    }

    pub fn route(&self, tag: &[u8]) -> Route {
        let Some(rest) = tag.strip_prefix(self.prefix.as_slice()) else {
            return Route::CatchAll;
        };
        match LogName::from_tag_part(rest) {
            Some(name) if name != self.catch_all => Route::Log(name),
            _ => Route::CatchAll,
        }
    }
}

/// A sending host's name made safe for a folder name and a journal token: `[A-Za-z0-9._-]`,
/// not starting with a dot, at most 64 bytes; anything else becomes `unknown`.
pub fn host_key(host: &[u8]) -> &str {
    let ok = !host.is_empty()
        && host.len() <= MAX_NAME
        && host[0] != b'.'
        && host
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        // Checked above: ASCII only.
        std::str::from_utf8(host).unwrap_or("unknown")
    } else {
        "unknown"
    }
}

/// Names a file the writer keeps open, and its entries in the journal: `conn.log`,
/// `sensor1/conn.log` (per-host folders) or `@notices` (the pending-notices segment).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey(String);

impl FileKey {
    const NOTICES: &'static str = "@notices";

    pub fn notices() -> FileKey {
        FileKey(Self::NOTICES.to_owned())
    }

    /// `host` is a [`host_key`], given only with per-host folders.
    pub fn log(host: Option<&str>, name: &LogName) -> FileKey {
        match host {
            Some(host) => FileKey(format!("{host}/{name}.log")),
            None => FileKey(format!("{name}.log")),
        }
    }

    /// A key read back from the journal or found on disk; `None` unless [`FileKey::log`] or
    /// [`FileKey::notices`] could have made it.
    pub fn parse(key: &str) -> Option<FileKey> {
        let ok = key == Self::NOTICES || Self::log_parts(key).is_some();
        ok.then(|| FileKey(key.to_owned()))
    }

    pub fn is_notices(&self) -> bool {
        self.0 == Self::NOTICES
    }

    /// The log name and the host folder, if any, of a log's key.
    pub fn parts(&self) -> Option<(LogName, Option<&str>)> {
        Self::log_parts(&self.0)
    }

    fn log_parts(key: &str) -> Option<(LogName, Option<&str>)> {
        let (host, file) = match key.split_once('/') {
            Some((h, f)) if host_key(h.as_bytes()) == h => (Some(h), f),
            Some(_) => return None,
            None => (None, key),
        };
        Some((LogName::internal(file.strip_suffix(".log")?)?, host))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for FileKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn router() -> Router {
        Router::new(&Routing {
            tag_prefix: "bro_".into(),
            catch_all: "unrouted".into(),
            per_host: false,
        })
    }

    #[test]
    fn strips_prefix() {
        assert_eq!(
            router().route(b"bro_ssl"),
            Route::Log(LogName::from_tag_part(b"ssl").unwrap())
        );
        assert_eq!(router().route(b"sshd"), Route::CatchAll);
        assert_eq!(router().route(b"bro_"), Route::CatchAll);
        assert_eq!(router().route(b"bro_../../etc/passwd"), Route::CatchAll);
        assert_eq!(router().route(b"bro_unrouted"), Route::CatchAll);
    }

    #[test]
    fn hosts() {
        assert_eq!(host_key(b"sensor-1.example"), "sensor-1.example");
        assert_eq!(host_key(b"../x"), "unknown");
        assert_eq!(host_key(b"a/b"), "unknown");
        assert_eq!(host_key(b""), "unknown");
    }

    #[test]
    fn file_keys_read_back_as_written() {
        let conn = LogName::from_tag_part(b"conn").unwrap();
        for key in [
            FileKey::log(None, &conn),
            FileKey::log(Some("sensor-1"), &conn),
            FileKey::notices(),
        ] {
            assert_eq!(FileKey::parse(key.as_str()), Some(key));
        }
        assert_eq!(
            FileKey::log(Some("s1"), &conn).parts(),
            Some((conn, Some("s1")))
        );
        for bad in ["conn", "../conn.log", "a/b/conn.log", "@other", "co nn.log"] {
            assert_eq!(FileKey::parse(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn never_a_path(tag in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Route::Log(name) = router().route(&tag) {
                prop_assert!(!name.as_str().contains('/'));
                prop_assert!(!name.as_str().starts_with('.'));
            }
            let host = host_key(&tag);
            prop_assert!(!host.contains('/') && host != ".." && !host.starts_with('.'));
        }
    }
}
