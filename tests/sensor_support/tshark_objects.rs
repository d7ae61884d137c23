//! What tshark says about the objects in a capture: the mails it exports
//! (`--export-objects imf`, read with `mail-parser`) and the HTTP responses it dissects.

use std::path::{Path, PathBuf};
use std::process::Command;

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// A leaf MIME entity of an exported mail: its decoded body size, and the file name Zeek's
/// `base/protocols/smtp/entities.zeek` would give it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MailEntity {
    pub size: u64,
    pub name: Option<String>,
}

/// The files `tshark --export-objects KIND` writes from `file` into `into`, sorted.
pub fn export_objects(file: &Path, kind: &str, into: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(into).expect("objects dir");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-q", "--export-objects"])
        .arg(format!("{kind},{}", into.display()))
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "{}: {out:?}", file.display());
    let mut objects: Vec<PathBuf> = std::fs::read_dir(into)
        .expect("objects dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    objects.sort();
    objects
}

/// Per mail tshark exports from `file` (into `into`), the leaf entities Zeek would make files
/// of. tshark also exports a pipelined `MAIL`/`RCPT`/`DATA` with the message; those lines read
/// as header lines and change nothing below.
pub fn tshark_mail_entities(file: &Path, into: &Path) -> Vec<Vec<MailEntity>> {
    let mails = export_objects(file, "imf", into);
    mails
        .iter()
        .map(|p| leaf_entities(&std::fs::read(p).expect("read mail")))
        .collect()
}

/// `MIME_Entity::EndOfData`: a message whose header section never ends has no body ("entity
/// body missing"). `MIME_Mail::SubmitData` makes a file of an entity only with its first
/// bytes, so an empty body is none.
fn leaf_entities(raw: &[u8]) -> Vec<MailEntity> {
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") && !raw.windows(2).any(|w| w == b"\n\n") {
        return Vec::new();
    }
    let Some(mail) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    mail.parts
        .iter()
        .filter(|p| !matches!(p.body, PartType::Multipart(_) | PartType::Message(_)))
        .filter(|p| !p.contents().is_empty())
        .map(|p| {
            let headers = raw
                .get(p.offset_header as usize..p.offset_body as usize)
                .unwrap_or_default();
            MailEntity {
                size: p.contents().len() as u64,
                name: zeek_names(headers)
                    .then(|| p.attachment_name().map(str::to_string))
                    .flatten(),
            }
        })
        .collect()
}

/// entities.zeek takes a name only from a `filename[blanks][*]=` parameter of
/// Content-Disposition or a `name[blanks]=` one of Content-Type; RFC 2231 continuations
/// (`filename*0=`, `filename*1=`) match neither, so Zeek logs no name for them where a mail
/// reader joins the pieces.
fn zeek_names(headers: &[u8]) -> bool {
    let pattern = regex::bytes::Regex::new(r"(?i)name[ \t]*\*?=").expect("regex");
    pattern.is_match(headers)
}

/// One HTTP response as tshark dissects it.
#[derive(Debug)]
pub struct HttpResponse {
    /// `http.response_for.uri`: the full URL of the request.
    pub url: String,
    /// The media type of Content-Type, lower-case, without parameters.
    pub content_type: String,
    /// The first bytes of the (dechunked, decompressed) body.
    pub body_head: Vec<u8>,
    /// The quoted or plain `filename=` of a Content-Disposition header.
    pub disposition_name: Option<String>,
}

/// The HTTP responses tshark dissects in `file`.
pub fn tshark_http_responses(file: &Path) -> Vec<HttpResponse> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-Y", "http.response", "-T", "fields", "-E", "separator=/t"])
        .args(["-E", "occurrence=a", "-E", "aggregator=/s"])
        .args(["-e", "http.response_for.uri", "-e", "http.content_type"])
        .args(["-e", "http.response.line", "-e", "http.file_data"])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "{}: {out:?}", file.display());
    out.stdout
        .split(|b| *b == b'\n')
        .filter_map(|line| {
            let mut cols = line.splitn(4, |b| *b == b'\t');
            let url = String::from_utf8_lossy(cols.next()?).into_owned();
            let content_type = String::from_utf8_lossy(cols.next()?)
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let headers = String::from_utf8_lossy(cols.next()?).into_owned();
            let body = cols.next().unwrap_or_default();
            Some(HttpResponse {
                url,
                content_type,
                body_head: body[..body.len().min(16)].to_vec(),
                disposition_name: disposition_name(&headers),
            })
        })
        .filter(|r| !r.url.is_empty())
        .collect()
}

/// A simple `filename=` of a Content-Disposition header line (none for extended parameters).
fn disposition_name(headers: &str) -> Option<String> {
    let line = headers
        .split("\\r\\n")
        .map(str::trim_start)
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    let at = line.to_ascii_lowercase().find("filename=")?;
    let value = line[at + "filename=".len()..].trim();
    let value = match value.strip_prefix('"') {
        Some(q) => q.split('"').next().unwrap_or_default(),
        None => value.split(';').next().unwrap_or_default().trim(),
    };
    (!value.is_empty()).then(|| value.to_string())
}
