//! The leading columns every protocol log shares: `ts`, `uid` and the connection 4-tuple.

use crate::proto::{ConnInfo, Timestamp};
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

/// An [`Emit`](crate::proto::Emit) that keeps everything, for analyzer tests.
#[cfg(test)]
pub(crate) mod testkit {
    use crate::proto::{Emit, Timestamp};
    use crate::zeeklog::format::tsv_value;
    use crate::zeeklog::Record;

    #[derive(Default)]
    pub struct Collect {
        pub records: Vec<Box<dyn Record + Send>>,
        pub weirds: Vec<String>,
        pub services: Vec<&'static str>,
    }

    impl Emit for Collect {
        fn record(&mut self, record: Box<dyn Record + Send>) {
            self.records.push(record);
        }
        fn weird(&mut self, _ts: Timestamp, name: &str, _addl: Option<String>) {
            self.weirds.push(name.to_string());
        }
        fn confirm_service(&mut self, service: &'static str) {
            self.services.push(service);
        }
    }

    impl Collect {
        /// Each record's values after `id.resp_p`, tab-joined as the TSV writer renders them.
        pub fn rows(&self) -> Vec<String> {
            self.records
                .iter()
                .map(|r| {
                    r.values()
                        .iter()
                        .zip(r.fields())
                        .skip(6)
                        .map(|(v, f)| {
                            let mut cell = String::new();
                            tsv_value(&mut cell, f.ty, v);
                            cell
                        })
                        .collect::<Vec<_>>()
                        .join("\t")
                })
                .collect()
        }
    }

    pub fn conn(proto: crate::proto::Transport, resp_p: u16) -> crate::proto::ConnInfo {
        crate::proto::ConnInfo {
            uid: "CTest".into(),
            id: crate::proto::ConnId {
                orig_h: "10.0.0.1".parse().expect("literal address"),
                orig_p: 40000,
                resp_h: "10.0.0.2".parse().expect("literal address"),
                resp_p,
                proto,
            },
        }
    }
}
