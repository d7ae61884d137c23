//! Zeek log records: typed values, field schemas, and the TSV and JSON writers.
//!
//! Analyzers build records; writers own the format. A record knows its log's name (the path,
//! `"conn"` for conn.log), its schema and its values in schema order.

use std::net::IpAddr;

use crate::flow::Timestamp;

/// Zeek's field types, as they appear in the `#types` header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Time,
    Interval,
    String,
    Addr,
    Port,
    Count,
    Int,
    Double,
    Bool,
    Enum,
    SetString,
    SetEnum,
    VectorString,
    VectorCount,
    VectorInterval,
    VectorAddr,
}

impl FieldType {
    pub fn zeek_name(self) -> &'static str {
        match self {
            FieldType::Time => "time",
            FieldType::Interval => "interval",
            FieldType::String => "string",
            FieldType::Addr => "addr",
            FieldType::Port => "port",
            FieldType::Count => "count",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Bool => "bool",
            FieldType::Enum => "enum",
            FieldType::SetString => "set[string]",
            FieldType::SetEnum => "set[enum]",
            FieldType::VectorString => "vector[string]",
            FieldType::VectorCount => "vector[count]",
            FieldType::VectorInterval => "vector[interval]",
            FieldType::VectorAddr => "vector[addr]",
        }
    }
}

/// One column of a log: its Zeek name (`id.orig_h`) and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
}

/// A field's value. `Unset` is Zeek's `-`; an empty container is written `(empty)`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Unset,
    Time(Timestamp),
    /// Seconds.
    Interval(f64),
    Str(String),
    /// Raw bytes that may not be UTF-8; the writer escapes them as Zeek does (`\xNN`).
    Bytes(Vec<u8>),
    Addr(IpAddr),
    Port(u16),
    Count(u64),
    Int(i64),
    Double(f64),
    Bool(bool),
    Enum(&'static str),
    /// A set or vector; element type follows from the field's [`FieldType`].
    List(Vec<Value>),
}

/// A record of one log stream.
pub trait Record {
    /// The log's name without extension: `"conn"`, `"dns"`, `"notice"`.
    fn path(&self) -> &'static str;
    /// The columns, in output order. The same for every record of a path.
    fn fields(&self) -> &'static [Field];
    /// The values, in the order of [`Record::fields`].
    fn values(&self) -> Vec<Value>;
}

pub mod format;
pub(crate) mod record_id;
pub mod writer;

pub use writer::{
    render, render_values, Clock, LogError, LogFormat, LogSet, Rotation, SystemClock,
};
