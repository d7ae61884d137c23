//! File names from entity headers, as `base/protocols/http/entities.zeek` takes them: a
//! Content-Disposition with a `filename=` (or `filename*=`) parameter, or a Content-Type with
//! a `name=` one, goes through `extract_filename_from_content_disposition`
//! (`base/utils/files.zeek`).

use super::parser::unescape_uri;

/// The file name an entity header gives (`name` upper-case), if it is one of those.
pub fn entity_filename(name: &str, value: &[u8]) -> Option<Vec<u8>> {
    let triggered = match name {
        "CONTENT-DISPOSITION" => param_at(value, b"filename", true).is_some(),
        "CONTENT-TYPE" => param_at(value, b"name", false).is_some(),
        _ => false,
    };
    triggered.then(|| extract_filename(value))
}

/// Where the value of the last `<key>[blanks][*]=` starts (after the `=`); `star` allows the
/// `*` of an extended parameter. Matched case-insensitively, as Zeek's patterns are.
fn param_at(value: &[u8], key: &[u8], star: bool) -> Option<usize> {
    let lower = value.to_ascii_lowercase();
    (0..lower.len()).rev().find_map(|at| {
        let rest = lower[at..].strip_prefix(key)?;
        let blanks = rest
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        let mut rest = &rest[blanks..];
        if star {
            rest = rest.strip_prefix(b"*").unwrap_or(rest);
        }
        rest.strip_prefix(b"=")
            .map(|after| value.len() - after.len())
    })
}

/// `extract_filename_from_content_disposition`: what follows the last `name[blanks][*]=`
/// (blanks skipped), the text inside quotes when it is quoted, without a `charset'lang'`
/// prefix, URI-unescaped.
fn extract_filename(value: &[u8]) -> Vec<u8> {
    let start = param_at(value, b"name", true).unwrap_or(0);
    let mut name = &value[start..];
    name = &name[name
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count()..];
    if let Some(quoted) = name.strip_prefix(b"\"") {
        name = &quoted[..quoted
            .iter()
            .position(|b| *b == b'"')
            .unwrap_or(quoted.len())];
    }
    if has_language_prefix(name) {
        if let Some(last) = name.iter().rposition(|b| *b == b'\'') {
            name = &name[last + 1..];
        }
    }
    unescape_uri(name).0
}

/// `^[a-zA-Z0-9\!#$%&+-^_`{}~]+'[...]*'` (its `+-^` is a range).
fn has_language_prefix(name: &[u8]) -> bool {
    let allowed = |b: &u8| {
        b.is_ascii_alphanumeric() || b"!#$%&_`{}~".contains(b) || (b'+'..=b'^').contains(b)
    };
    let first = name.iter().take_while(|b| allowed(b)).count();
    if first == 0 || name.get(first) != Some(&b'\'') {
        return false;
    }
    let rest = &name[first + 1..];
    let second = rest.iter().take_while(|b| allowed(b)).count();
    rest.get(second) == Some(&b'\'')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cd(value: &str) -> Option<String> {
        entity_filename("CONTENT-DISPOSITION", value.as_bytes())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn content_disposition_file_names() {
        assert_eq!(
            cd("attachment; filename=\"a b.txt\"; size=3").as_deref(),
            Some("a b.txt")
        );
        assert_eq!(
            cd("attachment; filename = x.zip; size=3").as_deref(),
            Some("x.zip; size=3")
        );
        assert_eq!(
            cd("form-data; filename=\"x\"; name=\"f\"").as_deref(),
            Some("f")
        );
        assert_eq!(
            cd("attachment; filename*=UTF-8''na%20me.txt").as_deref(),
            Some("na me.txt")
        );
        assert_eq!(cd("inline; name=\"f\""), None);
        assert_eq!(cd("attachment"), None);
    }

    #[test]
    fn content_type_names() {
        let ct = |v: &str| {
            entity_filename("CONTENT-TYPE", v.as_bytes())
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        assert_eq!(
            ct("application/octet-stream; name=\"p.exe\"").as_deref(),
            Some("p.exe")
        );
        assert_eq!(ct("text/html; charset=utf-8"), None);
    }
}
