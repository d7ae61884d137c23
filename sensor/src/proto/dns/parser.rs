//! Bounded DNS message parsing (RFC 1035, RFC 2136 updates) into the pieces dns.log needs.
//!
//! Written here rather than on a general DNS library because dns.log renders record data in
//! Zeek's own forms (`RRSIG 48 paypal.com`, `TXT 5 hello`, `LOC:  18 21 19`, update sections),
//! which need the raw RDATA, and a truncated answer section must keep the records before the cut.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest name accepted, in rendered bytes (RFC 1035 allows 255 on the wire).
const MAX_NAME_LEN: usize = 255;
/// Compression pointers followed before a name counts as a loop.
const MAX_POINTERS: usize = 32;
/// Records read from the answer section of one message.
const MAX_ANSWERS: usize = 256;
/// Questions read from one message.
const MAX_QUESTIONS: usize = 16;

pub const HEADER_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer than 12 bytes.
    ShortHeader,
    /// A name ran past the end, looped, or grew beyond 255 bytes.
    BadName,
    /// A question or record ended early.
    Truncated,
}

impl ParseError {
    /// Zeek's weird name for the problem.
    pub fn weird_name(self) -> &'static str {
        match self {
            ParseError::ShortHeader => "DNS_truncated_len_lt_hdr_len",
            ParseError::BadName => "DNS_label_len_gt_pkt",
            ParseError::Truncated => "DNS_truncated_ans_too_short",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    /// True for responses.
    pub qr: bool,
    pub opcode: u8,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    /// The three bits between RA and RCODE (Z, AD, CD), as Zeek logs them.
    pub z: u8,
    pub rcode: u8,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

pub fn parse_header(msg: &[u8]) -> Result<Header, ParseError> {
    let h = msg.get(..HEADER_LEN).ok_or(ParseError::ShortHeader)?;
    let word = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    let flags = word(2);
    Ok(Header {
        id: word(0),
        qr: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        aa: flags & 0x0400 != 0,
        tc: flags & 0x0200 != 0,
        rd: flags & 0x0100 != 0,
        ra: flags & 0x0080 != 0,
        z: ((flags >> 4) & 0x7) as u8,
        rcode: (flags & 0xf) as u8,
        qdcount: word(4),
        ancount: word(6),
        nscount: word(8),
        arcount: word(10),
    })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Lower-cased, dot-joined name (Zeek lower-cases query names).
    pub name: Vec<u8>,
    pub qtype: u16,
    pub qclass: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRecord {
    pub name: Vec<u8>,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    /// The RDATA rendered as dns.log shows it in `answers`. `None` for types whose Zeek
    /// events the DNS scripts do not handle (HINFO, CAA, SVCB ...): they leave no trace in
    /// the row. An empty rendering (WKS) marks the reply without adding an answer.
    pub rendered: Option<Vec<u8>>,
}

/// A parsed message: the header, its questions, and the records dns.log shows.
///
/// For queries and responses those are the answer section; for dynamic updates (opcode 5) the
/// prerequisite and update sections, rendered `pre: ...`, `del: ...`, `add: ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub header: Header,
    pub questions: Vec<Question>,
    pub answers: Vec<ResourceRecord>,
    /// Set when parsing stopped early; what was read before the problem is kept.
    pub error: Option<ParseError>,
}

pub const OPCODE_UPDATE: u8 = 5;
const CLASS_NONE: u16 = 254;
const CLASS_ANY: u16 = 255;
const TYPE_ANY: u16 = 255;

/// Parses one DNS message. Fails only when there is no header; later problems are reported in
/// [`Message::error`] with everything before them kept.
pub fn parse_message(msg: &[u8]) -> Result<Message, ParseError> {
    let header = parse_header(msg)?;
    let mut out = Message {
        header,
        questions: Vec::new(),
        answers: Vec::new(),
        error: None,
    };
    if let Err(e) = parse_sections(msg, &mut out) {
        out.error = Some(e);
    }
    Ok(out)
}

fn parse_sections(msg: &[u8], out: &mut Message) -> Result<(), ParseError> {
    let mut pos = HEADER_LEN;
    for i in 0..out.header.qdcount {
        let (name, next) = read_name(msg, pos)?;
        let fixed = msg.get(next..next + 4).ok_or(ParseError::Truncated)?;
        if usize::from(i) < MAX_QUESTIONS {
            out.questions.push(Question {
                name,
                qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
                qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
            });
        }
        pos = next + 4;
    }
    let update = out.header.opcode == OPCODE_UPDATE;
    let mut sections = vec![(out.header.ancount, Section::Answer)];
    if update {
        sections.push((out.header.nscount, Section::Update));
    }
    for (count, section) in sections {
        for _ in 0..count {
            let (rr, next) = read_record(msg, pos, section, update)?;
            pos = next;
            if out.answers.len() < MAX_ANSWERS {
                out.answers.push(rr);
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    /// The answer section, or the prerequisite section of an update.
    Answer,
    /// The update section of an update (the authority section's place).
    Update,
}

fn read_record(
    msg: &[u8],
    pos: usize,
    section: Section,
    update: bool,
) -> Result<(ResourceRecord, usize), ParseError> {
    let (name, next) = read_name(msg, pos)?;
    let fixed = msg.get(next..next + 10).ok_or(ParseError::Truncated)?;
    let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let class = u16::from_be_bytes([fixed[2], fixed[3]]);
    let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
    let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    let start = next + 10;
    let rdata = msg.get(start..start + rdlen).ok_or(ParseError::Truncated)?;
    let rendered = if update {
        Some(render_update(
            msg, section, &name, rtype, class, start, rdata,
        ))
    } else {
        render_rdata(msg, &name, rtype, start, rdata)
    };
    Ok((
        ResourceRecord {
            name,
            rtype,
            class,
            ttl,
            rendered,
        },
        start + rdlen,
    ))
}

fn render_update(
    msg: &[u8],
    section: Section,
    name: &[u8],
    rtype: u16,
    class: u16,
    start: usize,
    rdata: &[u8],
) -> Vec<u8> {
    let type_name = qtype_name(rtype);
    let name = lossy(name);
    // The formats of Zeek's dns_dynamic_update_pre/_del handlers and of its typed reply
    // handlers, which get an `add: ` prefix in the update section.
    let text = match (section, class, rtype) {
        (Section::Answer, CLASS_NONE, TYPE_ANY) => format!("pre: NameNotInUse {name}"),
        (Section::Answer, CLASS_ANY, TYPE_ANY) => format!("pre: NameInUse {name}"),
        (Section::Answer, CLASS_NONE, _) => format!("pre: NoRRSet {type_name} {name}"),
        (Section::Answer, _, _) => format!("pre: RRSetExists {type_name} {name}"),
        (Section::Update, CLASS_ANY, TYPE_ANY) => format!("del: RRSet * {name}"),
        (Section::Update, CLASS_NONE, _) => format!("del: RR {type_name} {name}"),
        (Section::Update, CLASS_ANY, _) => format!("del: RRSet {type_name}"),
        (Section::Update, _, 1 | 28 | 38) => format!(
            "add: {type_name} {name} {}",
            lossy(&render_rdata(msg, name.as_bytes(), rtype, start, rdata).unwrap_or_default())
        ),
        (Section::Update, _, _) => {
            format!(
                "add: {}",
                lossy(&render_rdata(msg, name.as_bytes(), rtype, start, rdata).unwrap_or_default())
            )
        }
    };
    text.into_bytes()
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// Renders RDATA as Zeek's DNS scripts put it into `answers`.
fn render_rdata(
    msg: &[u8],
    owner: &[u8],
    rtype: u16,
    start: usize,
    rdata: &[u8],
) -> Option<Vec<u8>> {
    match rtype {
        11 => return Some(Vec::new()),
        13 | 41 | 64 | 65 | 249 | 250 | 257 => return None,
        _ => {}
    }
    let name_at = |off: usize| read_name(msg, start + off).ok().map(|(n, _)| n);
    let rendered = match rtype {
        1 => <[u8; 4]>::try_from(rdata)
            .ok()
            .map(|a| Ipv4Addr::from(a).to_string().into_bytes()),
        28 => <[u8; 16]>::try_from(rdata)
            .ok()
            .map(|a| Ipv6Addr::from(a).to_string().into_bytes()),
        // NS, CNAME, PTR, DNAME; SOA shows its mname.
        2 | 5 | 12 | 39 | 6 => name_at(0),
        // MX: the exchange after the preference.
        15 => name_at(2),
        // SRV: the target after priority, weight and port.
        33 => name_at(6),
        16 => Some(render_txt("TXT", rdata)),
        99 => Some(render_txt("SPF", rdata)),
        43 => match rdata {
            [_, _, alg, digest, ..] => Some(format!("DS {alg} {digest}").into_bytes()),
            _ => None,
        },
        44 => match rdata {
            [_, _, fp @ ..] => Some(format!("SSHFP: {}", hex(fp)).into_bytes()),
            _ => None,
        },
        46 => match rdata {
            [t0, t1, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, _, ..] => {
                let covered = u16::from_be_bytes([*t0, *t1]);
                name_at(18).map(|signer| {
                    let signer = if signer.is_empty() {
                        b"<Root>".to_vec()
                    } else {
                        signer
                    };
                    let mut s = format!("RRSIG {covered} ").into_bytes();
                    s.extend_from_slice(&signer);
                    s
                })
            }
            _ => None,
        },
        // NSEC shows the owner name and the next name.
        47 => name_at(0).map(|next| {
            let mut s = b"NSEC ".to_vec();
            s.extend_from_slice(owner);
            s.push(b' ');
            s.extend_from_slice(&next);
            s
        }),
        48 => match rdata {
            [_, _, _, alg, ..] => Some(format!("DNSKEY {alg}").into_bytes()),
            _ => None,
        },
        50 => Some(b"NSEC3".to_vec()),
        35 => render_naptr(msg, start, rdata),
        65534 => Some(b"BIND9 signing signal".to_vec()),
        51 => Some(b"NSEC3PARAM".to_vec()),
        29 => match rdata {
            [_, size, hp, vp, ..] => Some(format!("LOC:  {size} {hp} {vp}").into_bytes()),
            _ => None,
        },
        _ => None,
    };
    Some(rendered.unwrap_or_else(|| format!("<unknown type={rtype}>").into_bytes()))
}

/// `NAPTR order preference flags service regexp replacement`, as Zeek's NAPTR handler.
fn render_naptr(msg: &[u8], start: usize, rdata: &[u8]) -> Option<Vec<u8>> {
    let order = u16::from_be_bytes([*rdata.first()?, *rdata.get(1)?]);
    let pref = u16::from_be_bytes([*rdata.get(2)?, *rdata.get(3)?]);
    let mut pos = 4;
    let mut strings = Vec::new();
    for _ in 0..3 {
        let len = usize::from(*rdata.get(pos)?);
        strings.push(rdata.get(pos + 1..pos + 1 + len)?.to_vec());
        pos += 1 + len;
    }
    let (replacement, _) = read_name(msg, start + pos).ok()?;
    let mut tail = strings[2].clone();
    if !replacement.is_empty() {
        if !tail.is_empty() {
            tail.push(b' ');
        }
        tail.extend_from_slice(&replacement);
    }
    let mut out = format!("NAPTR {order} {pref} ").into_bytes();
    out.extend_from_slice(&strings[0]);
    out.push(b' ');
    out.extend_from_slice(&strings[1]);
    out.push(b' ');
    out.extend_from_slice(&tail);
    Some(out)
}

fn render_txt(kind: &str, rdata: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = rdata;
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (s, after) = tail.split_at(take);
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(format!("{kind} {} ", s.len()).as_bytes());
        out.extend_from_slice(s);
        rest = after;
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads a possibly compressed name at `pos`; returns it lower-cased and the offset after it.
pub fn read_name(msg: &[u8], pos: usize) -> Result<(Vec<u8>, usize), ParseError> {
    let mut name = Vec::new();
    let mut cur = pos;
    let mut end = None;
    let mut pointers = 0;
    loop {
        let &len = msg.get(cur).ok_or(ParseError::BadName)?;
        match len & 0xc0 {
            0x00 if len == 0 => {
                let after = cur + 1;
                return Ok((name, end.unwrap_or(after)));
            }
            0x00 => {
                let label = msg
                    .get(cur + 1..cur + 1 + usize::from(len))
                    .ok_or(ParseError::BadName)?;
                if !name.is_empty() {
                    name.push(b'.');
                }
                name.extend(label.iter().map(u8::to_ascii_lowercase));
                if name.len() > MAX_NAME_LEN {
                    return Err(ParseError::BadName);
                }
                cur += 1 + usize::from(len);
            }
            0xc0 => {
                let &lo = msg.get(cur + 1).ok_or(ParseError::BadName)?;
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(ParseError::BadName);
                }
                end.get_or_insert(cur + 2);
                cur = usize::from(u16::from_be_bytes([len & 0x3f, lo]));
            }
            _ => return Err(ParseError::BadName),
        }
    }
}

/// Zeek's `decode_netbios_name`: the first-level decoding of a 32-character NetBIOS name, up to
/// the first byte that is not alphanumeric, punctuation or below 3 (the padding spaces and the
/// suffix byte are dropped); anything but 32 characters decodes to an empty name.
pub fn decode_netbios_name(name: &[u8]) -> Vec<u8> {
    if name.len() != 32 {
        return Vec::new();
    }
    let decoded = name.chunks(2).map(|pair| {
        let hi = pair[0].to_ascii_uppercase().wrapping_sub(b'A');
        let lo = pair[1].to_ascii_uppercase().wrapping_sub(b'A');
        (hi << 4).wrapping_add(lo)
    });
    decoded
        .take(15)
        .take_while(|b| b.is_ascii_alphanumeric() || b.is_ascii_punctuation() || *b < 3)
        .collect()
}

/// Zeek's `DNS::query_types` names; unknown types print as `query-<n>`.
pub fn qtype_name(t: u16) -> String {
    let known = match t {
        1 => "A",
        2 => "NS",
        3 => "MD",
        4 => "MF",
        5 => "CNAME",
        6 => "SOA",
        7 => "MB",
        8 => "MG",
        9 => "MR",
        10 => "NULL",
        11 => "WKS",
        12 => "PTR",
        13 => "HINFO",
        14 => "MINFO",
        15 => "MX",
        16 => "TXT",
        17 => "RP",
        18 => "AFSDB",
        19 => "X25",
        20 => "ISDN",
        21 => "RT",
        22 => "NSAP",
        23 => "NSAP-PTR",
        24 => "SIG",
        25 => "KEY",
        26 => "PX",
        27 => "GPOS",
        28 => "AAAA",
        29 => "LOC",
        30 => "NXT",
        31 => "EID",
        32 => "NIMLOC",
        33 => "SRV",
        34 => "ATMA",
        35 => "NAPTR",
        36 => "KX",
        37 => "CERT",
        38 => "A6",
        39 => "DNAME",
        40 => "SINK",
        41 => "OPT",
        42 => "APL",
        43 => "DS",
        44 => "SSHFP",
        45 => "IPSECKEY",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        49 => "DHCID",
        50 => "NSEC3",
        51 => "NSEC3PARAM",
        52 => "TLSA",
        53 => "SMIMEA",
        55 => "HIP",
        56 => "NINFO",
        57 => "RKEY",
        58 => "TALINK",
        59 => "CDS",
        60 => "CDNSKEY",
        61 => "OPENPGPKEY",
        62 => "CSYNC",
        63 => "ZONEMD",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        100 => "UINFO",
        101 => "UID",
        102 => "GID",
        103 => "UNSPEC",
        104 => "NID",
        105 => "L32",
        106 => "L64",
        107 => "LP",
        108 => "EUI48",
        109 => "EUI64",
        249 => "TKEY",
        250 => "TSIG",
        251 => "IXFR",
        252 => "AXFR",
        253 => "MAILB",
        254 => "MAILA",
        255 => "*",
        256 => "URI",
        257 => "CAA",
        32768 => "TA",
        32769 => "DLV",
        65281 => "WINS",
        65282 => "WINS-R",
        65422 => "XPF",
        65521 => "INTEGRITY",
        _ => return format!("query-{t}"),
    };
    known.to_string()
}

pub fn qclass_name(c: u16) -> String {
    match c {
        1 => "C_INTERNET".to_string(),
        2 => "C_CSNET".to_string(),
        3 => "C_CHAOS".to_string(),
        4 => "C_HESIOD".to_string(),
        254 => "C_NONE".to_string(),
        255 => "C_ANY".to_string(),
        // mDNS sets the top bit for "unicast response" / "cache flush".
        0x8001 => "C_INTERNET_FLUSH".to_string(),
        _ => format!("qclass-{c}"),
    }
}

pub fn rcode_name(r: u8) -> String {
    let known = match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSet",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => return format!("rcode-{r}"),
    };
    known.to_string()
}

/// Zeek's `DNS::netbios_opcodes`, used on the NetBIOS name service port.
pub fn netbios_opcode_name(o: u8) -> String {
    let known = match o {
        0 => "netbios-query",
        5 => "netbios-registration",
        6 => "netbios-release",
        7 => "netbios-wack",
        8 => "netbios-refresh",
        _ => return format!("netbios-opcode-{o}"),
    };
    known.to_string()
}

pub fn opcode_name(o: u8) -> String {
    let known = match o {
        0 => "query",
        1 => "iquery",
        2 => "server-status",
        4 => "notify",
        5 => "dynamic-update",
        6 => "dso",
        _ => return format!("opcode-{o}"),
    };
    known.to_string()
}

#[cfg(test)]
mod tests;
