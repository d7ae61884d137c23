//! The leading columns every protocol log shares: `ts`, `uid` and the connection 4-tuple.

use crate::flow::{ConnInfo, Timestamp};
use crate::zeeklog::Value;

/// Builds a log's `&'static [Field]` from its columns after `id.resp_p`.
macro_rules! log_fields {
    ($( $name:literal : $ty:ident ),* $(,)?) => {
        &[
            $crate::zeeklog::Field { name: "ts", ty: $crate::zeeklog::FieldType::Time },
            $crate::zeeklog::Field { name: "uid", ty: $crate::zeeklog::FieldType::String },
            $crate::zeeklog::Field { name: "id.orig_h", ty: $crate::zeeklog::FieldType::Addr },
            $crate::zeeklog::Field { name: "id.orig_p", ty: $crate::zeeklog::FieldType::Port },
            $crate::zeeklog::Field { name: "id.resp_h", ty: $crate::zeeklog::FieldType::Addr },
            $crate::zeeklog::Field { name: "id.resp_p", ty: $crate::zeeklog::FieldType::Port },
            $( $crate::zeeklog::Field { name: $name, ty: $crate::zeeklog::FieldType::$ty }, )*
        ]
    };
}
pub(crate) use log_fields;

/// The six leading values, in [`log_fields!`] order.
pub(crate) fn id_values(ts: Timestamp, info: &ConnInfo) -> Vec<Value> {
    vec![
        Value::Time(ts),
        Value::Str(info.uid.clone()),
        Value::Addr(info.id.orig_h),
        Value::Port(info.id.orig_p),
        Value::Addr(info.id.resp_h),
        Value::Port(info.id.resp_p),
    ]
}

/// An optional byte-string column: `-` when unset.
pub(crate) fn opt_bytes(s: &Option<Vec<u8>>) -> Value {
    s.as_ref().map_or(Value::Unset, |s| Value::Bytes(s.clone()))
}

pub(crate) fn opt_count(c: Option<u64>) -> Value {
    c.map_or(Value::Unset, Value::Count)
}
