//! Field filters (`id.resp_h=10.0.0.0/8`, `service~^ht`, `duration>=60`), typed by a file's
//! `#types` when they are compiled for it. Tests in a group are ANDed; groups (`--or`) are ORed.

use std::net::IpAddr;
use std::str::FromStr;

use aho_corasick::AhoCorasick;
use memchr::memmem;
use regex::bytes::Regex;

use crate::header::Header;
use crate::time::{parse_bound, End};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Match,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One `field<op>value` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: String,
    pub op: Op,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("{0:?} is not a filter (field=value, field!=value, field~regex, field<N, field<=N, field>N, field>=N)")]
    Syntax(String),
    #[error("{filter:?}: {reason}")]
    Value { filter: String, reason: String },
}

impl FromStr for Filter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let at = text
            .find(['=', '!', '~', '<', '>'])
            .filter(|&at| at > 0)
            .ok_or_else(|| FilterError::Syntax(text.to_owned()))?;
        let (field, rest) = text.split_at(at);
        let (op, len) = match rest.as_bytes() {
            [b'!', b'=', ..] => (Op::Ne, 2),
            [b'<', b'=', ..] => (Op::Le, 2),
            [b'>', b'=', ..] => (Op::Ge, 2),
            [b'=', ..] => (Op::Eq, 1),
            [b'~', ..] => (Op::Match, 1),
            [b'<', ..] => (Op::Lt, 1),
            [b'>', ..] => (Op::Gt, 1),
            _ => return Err(FilterError::Syntax(text.to_owned())),
        };
        Ok(Filter {
            field: field.to_owned(),
            op,
            value: rest[len..].to_owned(),
        })
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Match => "~",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        };
        write!(f, "{}{op}{}", self.field, self.value)
    }
}

/// Groups of filters: a row matches when every filter of some group does. No groups: every row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub Vec<Vec<Filter>>);

impl Filters {
    pub fn parse(groups: &[Vec<String>]) -> Result<Filters, FilterError> {
        let groups = groups
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| g.iter().map(|f| f.parse()).collect())
            .collect::<Result<_, _>>()?;
        Ok(Filters(groups))
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().flatten().map(|f| f.field.as_str())
    }

    /// The filters typed for one file's header. A field the header lacks reads as unset.
    pub fn compile(&self, header: &Header) -> Result<Compiled, FilterError> {
        let groups = self
            .0
            .iter()
            .map(|g| g.iter().map(|f| Test::new(f, header)).collect())
            .collect::<Result<Vec<Vec<Test>>, _>>()?;
        let prefilter = Prefilter::new(&groups);
        Ok(Compiled { groups, prefilter })
    }
}

/// Filters compiled for one header.
#[derive(Debug)]
pub struct Compiled {
    groups: Vec<Vec<Test>>,
    prefilter: Option<Prefilter>,
}

impl Compiled {
    pub fn matches(&self, fields: &[&[u8]], header: &Header) -> bool {
        self.groups.is_empty()
            || self
                .groups
                .iter()
                .any(|g| g.iter().all(|t| t.matches(fields, header)))
    }

    /// Bytes that every matching row contains, to find candidate rows before splitting them.
    pub fn prefilter(&self) -> Option<&Prefilter> {
        self.prefilter.as_ref()
    }
}

#[derive(Debug)]
struct Test {
    index: Option<usize>,
    negate: bool,
    container: bool,
    check: Check,
    /// A literal every field satisfying the (not negated) test contains.
    literal: Option<Vec<u8>>,
}

#[derive(Debug)]
enum Check {
    Unset,
    Empty,
    Bytes(Vec<u8>),
    Regex(Regex),
    Net { net: IpAddr, prefix: u8 },
    Int { cmp: Cmp, value: i128 },
    Float { cmp: Cmp, value: f64 },
    Bool(bool),
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

enum Kind {
    Addr,
    Int,
    Float,
    Time,
    Bool,
    Text,
}

fn kind(element_type: &str) -> Kind {
    match element_type {
        "addr" => Kind::Addr,
        "count" | "int" | "port" => Kind::Int,
        "double" | "interval" => Kind::Float,
        "time" => Kind::Time,
        "bool" => Kind::Bool,
        _ => Kind::Text,
    }
}

impl Test {
    fn new(filter: &Filter, header: &Header) -> Result<Test, FilterError> {
        let index = header.index(&filter.field);
        let ty = index.map_or("string", |i| header.types[i].as_str());
        let (container, element) = match ty.split_once('[') {
            Some((_, inner)) => (true, inner.trim_end_matches(']')),
            None => (false, ty),
        };
        let error = |reason: String| FilterError::Value {
            filter: filter.to_string(),
            reason,
        };
        let value = filter.value.as_str();
        let cmp = match filter.op {
            Op::Eq | Op::Ne => Cmp::Eq,
            Op::Lt => Cmp::Lt,
            Op::Le => Cmp::Le,
            Op::Gt => Cmp::Gt,
            Op::Ge => Cmp::Ge,
            Op::Match => Cmp::Eq,
        };
        let ordered = !matches!(filter.op, Op::Eq | Op::Ne | Op::Match);
        let mut literal = None;
        let check = if filter.op == Op::Match {
            Check::Regex(Regex::new(value).map_err(|e| error(e.to_string()))?)
        } else if !ordered && value.as_bytes() == header.unset_field.as_slice() {
            Check::Unset
        } else if !ordered && value.as_bytes() == header.empty_field.as_slice() {
            Check::Empty
        } else {
            match kind(element) {
                Kind::Addr if !ordered => {
                    let (net, prefix) = parse_net(value).map_err(error)?;
                    if prefix == 32 && net.is_ipv4() {
                        literal = Some(net.to_string().into_bytes());
                    }
                    Check::Net { net, prefix }
                }
                Kind::Int => {
                    let value: i128 = value
                        .parse()
                        .map_err(|_| error(format!("{ty} field needs an integer")))?;
                    literal = (!ordered).then(|| value.to_string().into_bytes());
                    Check::Int { cmp, value }
                }
                Kind::Float => Check::Float {
                    cmp,
                    value: value
                        .parse()
                        .map_err(|_| error(format!("{ty} field needs a number")))?,
                },
                Kind::Time => {
                    let micros = parse_bound(value, End::From).map_err(error)?;
                    Check::Float {
                        cmp,
                        value: micros as f64 / 1e6,
                    }
                }
                Kind::Bool if !ordered => Check::Bool(match value {
                    "T" | "true" => true,
                    "F" | "false" => false,
                    _ => return Err(error("bool field needs T or F".into())),
                }),
                Kind::Text if !ordered => {
                    let printable = value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
                    if printable && !value.is_empty() {
                        literal = Some(value.as_bytes().to_vec());
                    }
                    Check::Bytes(value.as_bytes().to_vec())
                }
                _ => return Err(error(format!("{ty} field cannot be compared with < or >"))),
            }
        };
        Ok(Test {
            index,
            negate: filter.op == Op::Ne,
            container,
            literal: literal.filter(|_| filter.op == Op::Eq && index.is_some()),
            check,
        })
    }

    fn matches(&self, fields: &[&[u8]], header: &Header) -> bool {
        let field = self.index.and_then(|i| fields.get(i).copied());
        let hit = match (&self.check, field) {
            (Check::Unset, None) => true,
            (_, None) => false,
            (Check::Unset, Some(f)) => f == header.unset_field.as_slice(),
            (Check::Empty, Some(f)) => f == header.empty_field.as_slice(),
            (_, Some(f)) if f == header.unset_field.as_slice() => false,
            (_, Some(f)) if self.container => {
                f != header.empty_field.as_slice()
                    && split(f, &header.set_separator).any(|e| self.element(e))
            }
            (_, Some(f)) => self.element(f),
        };
        hit != self.negate
    }

    fn element(&self, text: &[u8]) -> bool {
        match &self.check {
            Check::Unset | Check::Empty => false,
            Check::Bytes(b) => text == b.as_slice(),
            Check::Regex(r) => r.is_match(text),
            Check::Net { net, prefix } => {
                parse_addr(text).is_some_and(|a| contains(*net, *prefix, a))
            }
            Check::Int { cmp, value } => parse_int(text).is_some_and(|v| cmp.holds(v, *value)),
            Check::Float { cmp, value } => std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse::<f64>().ok())
                .is_some_and(|v| cmp.holds(v, *value)),
            Check::Bool(b) => text == if *b { b"T" } else { b"F" },
        }
    }
}

fn split<'a>(field: &'a [u8], separator: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = Some(field);
    std::iter::from_fn(move || {
        let text = rest?;
        match (!separator.is_empty())
            .then(|| memmem::find(text, separator))
            .flatten()
        {
            Some(at) => {
                rest = Some(&text[at + separator.len()..]);
                Some(&text[..at])
            }
            None => {
                rest = None;
                Some(text)
            }
        }
    })
}

fn parse_int(text: &[u8]) -> Option<i128> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

fn parse_addr(text: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// `10.0.0.0/8`, `2001:db8::/32`, or one address.
fn parse_net(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|&p| p <= max)
            .ok_or_else(|| format!("bad prefix length {p:?} (0-{max})"))?,
    };
    Ok((addr, prefix))
}

fn contains(net: IpAddr, prefix: u8, addr: IpAddr) -> bool {
    let bits = |a: IpAddr| -> Option<(u128, u32)> {
        match a {
            IpAddr::V4(v4) => Some((u128::from(u32::from(v4)), 32)),
            IpAddr::V6(v6) => Some((u128::from(v6), 128)),
        }
    };
    let (Some((n, width)), Some((a, a_width))) = (bits(net), bits(addr)) else {
        return false;
    };
    if width != a_width {
        return false;
    }
    let shift = width - u32::from(prefix);
    shift >= width || (n >> shift) == (a >> shift)
}

/// Finds candidate rows in raw bytes: one literal per group, any of them.
#[derive(Debug)]
pub enum Prefilter {
    One(Box<memmem::Finder<'static>>),
    Any(AhoCorasick),
}

impl Prefilter {
    fn new(groups: &[Vec<Test>]) -> Option<Prefilter> {
        let literals: Vec<Vec<u8>> = groups
            .iter()
            .map(|g| {
                g.iter()
                    .filter_map(|t| t.literal.clone())
                    .max_by_key(Vec::len)
            })
            .collect::<Option<_>>()?;
        match literals.as_slice() {
            [] => None,
            [one] => Some(Prefilter::One(Box::new(
                memmem::Finder::new(one).into_owned(),
            ))),
            many => AhoCorasick::new(many).ok().map(Prefilter::Any),
        }
    }

    /// The offset of the next candidate at or after `from`.
    pub fn find(&self, haystack: &[u8], from: usize) -> Option<usize> {
        let rest = haystack.get(from..)?;
        match self {
            Prefilter::One(finder) => finder.find(rest),
            Prefilter::Any(ac) => ac.find(rest).map(|m| m.start()),
        }
        .map(|at| at + from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::CONN;

    fn header() -> Header {
        Header::parse(CONN.as_bytes()).unwrap().0
    }

    fn row(line: &str) -> Vec<&[u8]> {
        line.as_bytes().split(|&b| b == b'\t').collect()
    }

    fn matches(filters: &[&[&str]], line: &str) -> bool {
        let groups: Vec<Vec<String>> = filters
            .iter()
            .map(|g| g.iter().map(|s| s.to_string()).collect())
            .collect();
        let h = header();
        Filters::parse(&groups)
            .unwrap()
            .compile(&h)
            .unwrap()
            .matches(&row(line), &h)
    }

    const ROW: &str = "1764597600.5\tC1\t10.1.2.3\t443\ttcp\tCa,Cb";

    #[test]
    fn typed_tests() {
        assert!(matches(&[&["id.orig_h=10.0.0.0/8"]], ROW));
        assert!(matches(&[&["id.orig_h=10.1.2.3"]], ROW));
        assert!(!matches(&[&["id.orig_h=192.168.0.0/16"]], ROW));
        assert!(matches(&[&["id.orig_h!=192.168.0.0/16"]], ROW));
        assert!(matches(&[&["id.resp_p=443", "proto=tcp"]], ROW));
        assert!(!matches(&[&["id.resp_p=443", "proto=udp"]], ROW));
        assert!(matches(&[&["id.resp_p=22"], &["proto=tcp"]], ROW));
        assert!(matches(&[&["id.resp_p>=443", "id.resp_p<444"]], ROW));
        assert!(matches(&[&["ts>=2025-12-01T14:00:00Z"]], ROW));
        assert!(!matches(&[&["ts<1764597600"]], ROW));
        assert!(matches(&[&["uid~^C[0-9]$"]], ROW));
        assert!(matches(&[&["tunnel_parents=Cb"]], ROW));
        assert!(!matches(&[&["tunnel_parents=C"]], ROW));
        assert!(!matches(&[&["tunnel_parents=-"]], ROW));
        let unset = "1.0\tC1\t10.1.2.3\t443\ttcp\t-";
        assert!(matches(&[&["tunnel_parents=-"]], unset));
        assert!(!matches(&[&["tunnel_parents=Cb"]], unset));
        let empty = "1.0\tC1\t10.1.2.3\t443\ttcp\t(empty)";
        assert!(matches(&[&["tunnel_parents=(empty)"]], empty));
        assert!(!matches(&[&["tunnel_parents~."]], empty));
    }

    #[test]
    fn bad_filters_are_errors() {
        let h = header();
        let compile = |f: &str| Filters::parse(&[vec![f.to_owned()]]).and_then(|f| f.compile(&h));
        assert!(matches!(compile("justtext"), Err(FilterError::Syntax(_))));
        assert!(matches!(compile("=x"), Err(FilterError::Syntax(_))));
        assert!(compile("id.orig_h=10.0.0.0/33").is_err());
        assert!(compile("id.orig_h<10.0.0.1").is_err());
        assert!(compile("id.resp_p=http").is_err());
        assert!(compile("uid~(").is_err());
        assert!(compile("proto>tcp").is_err());
    }

    #[test]
    fn prefilter_literals() {
        let h = header();
        let compiled = |groups: &[&[&str]]| {
            let groups: Vec<Vec<String>> = groups
                .iter()
                .map(|g| g.iter().map(|s| s.to_string()).collect())
                .collect();
            Filters::parse(&groups).unwrap().compile(&h).unwrap()
        };
        let c = compiled(&[&["id.orig_h=10.1.2.3", "proto=tcp"]]);
        assert_eq!(c.prefilter().unwrap().find(ROW.as_bytes(), 0), Some(16));
        assert!(compiled(&[&["id.orig_h=10.0.0.0/8"]]).prefilter().is_none());
        assert!(compiled(&[&["proto!=tcp"]]).prefilter().is_none());
        let c = compiled(&[&["uid=C9"], &["proto=tcp"]]);
        assert!(c.prefilter().unwrap().find(ROW.as_bytes(), 0).is_some());
        assert!(compiled(&[&["uid=C9"], &["id.orig_h=10.0.0.0/8"]])
            .prefilter()
            .is_none());
    }
}
