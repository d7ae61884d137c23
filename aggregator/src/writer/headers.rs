//! Lines of Zeek logs that need more than an append: header blocks (one header per file; a
//! sensor with other `#fields` gets a file of its own; a `#` line that belongs to no header
//! block is data) and notices waiting for mail.

use std::io;
use std::time::SystemTime;

use crate::events::Refusal;
use crate::journal::Record;
use crate::route::{FileKey, LogName};
use crate::schema;

use super::Writer;

/// Header schemas kept (one per file, variants included).
const MAX_SCHEMAS: usize = 4096;
/// Senders whose lines of some log go to a variant file.
const MAX_ASSIGNED_HOSTS: usize = 4096;

impl Writer {
    pub(super) fn write_log(
        &mut self,
        host: &str,
        name: LogName,
        body: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        if body.first() != Some(&b'#') {
            // A data line ends any header block this sender was still sending: it was none.
            for line in self.collector.interrupt(host, name.as_str()) {
                self.write_data(host, &name, &line, now)?;
            }
            return self.write_data(host, &name, body, now);
        }
        let collected = self.collector.meta_line(host, name.as_str(), body);
        if let Some(((other, log), lines)) = collected.evicted {
            let detail = format_args!("header block of {log} never finished; written as data");
            self.events
                .bounded(Refusal::HeaderBlockEvicted, &other, &detail);
            if let Some(log) = LogName::internal(&log) {
                for line in lines {
                    self.write_data(&other, &log, &line, now)?;
                }
            }
        }
        for line in collected.data {
            self.write_data(host, &name, &line, now)?;
        }
        if let Some(block) = collected.block {
            if !self.adopt_schema(host, &name, &block) {
                let detail =
                    format_args!("header of {name} not kept: too many schemas; written as data");
                self.events.bounded(Refusal::SchemaLimit, host, &detail);
                for line in block {
                    self.write_data(host, &name, &line, now)?;
                }
            }
        }
        Ok(())
    }

    /// Appends a data line to the file `host`'s lines of `name` go to.
    fn write_data(
        &mut self,
        host: &str,
        name: &LogName,
        body: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        let target = self
            .state
            .assignments
            .get(host)
            .and_then(|m| m.get(name.as_str()))
            .and_then(|k| LogName::internal(k))
            .unwrap_or(name.clone());
        let key = self.key(host, &target);
        self.files
            .append(&self.state.schemas, &key, &target, host, body, now)?;
        if name.as_str() == "notice" {
            let fields = self
                .state
                .schemas
                .get(&key)
                .map(|s| schema::fields(s))
                .unwrap_or_default();
            if let Some(event) = crate::alarms::parse(&fields, body, host) {
                let mut line = serde_json::to_vec(&event)?;
                line.push(b'\n');
                self.files
                    .notices(&self.spool_dir, self.state.notices_segment, now)?
                    .buf
                    .extend_from_slice(&line);
            }
        }
        Ok(())
    }

    /// Makes `block` the header of the file `host`'s lines of `name` go to: the log's own file,
    /// or a variant file when its schema differs. False when the bounds on schemas and on
    /// senders with variants leave no room: the block is then no header.
    fn adopt_schema(&mut self, host: &str, name: &LogName, block: &[Vec<u8>]) -> bool {
        let schema = schema::schema_of(block);
        let primary = self.key(host, name);
        let full = self.state.schemas.len() >= MAX_SCHEMAS;
        let target = match self.state.schemas.get(&primary) {
            None if full => return false,
            None => {
                self.set_schema(primary, schema);
                name.as_str().to_owned()
            }
            Some(existing) if *existing == schema => name.as_str().to_owned(),
            Some(_) => {
                let variant = format!("{name}-{}", schema::variant_suffix(&schema));
                if let Some(v) = LogName::internal(&variant) {
                    let key = self.key(host, &v);
                    if !self.state.schemas.contains_key(&key) {
                        if full {
                            return false;
                        }
                        tracing::info!(host, log = %name, file = %key, "sensor changed #fields; its lines go to a separate file");
                        self.set_schema(key, schema);
                    }
                }
                variant
            }
        };
        let current = self
            .state
            .assignments
            .get(host)
            .and_then(|logs| logs.get(name.as_str()));
        if current.map_or(name.as_str(), String::as_str) == target {
            return true;
        }
        let new_host = !self.state.assignments.contains_key(host);
        if new_host && self.state.assignments.len() >= MAX_ASSIGNED_HOSTS {
            return false;
        }
        self.pending_records.push(Record::Assign {
            host: host.to_owned(),
            log: name.as_str().to_owned(),
            target: target.clone(),
        });
        self.state
            .assignments
            .entry(host.to_owned())
            .or_default()
            .insert(name.as_str().to_owned(), target);
        true
    }

    fn set_schema(&mut self, key: FileKey, schema: Vec<u8>) {
        self.pending_records.push(Record::Schema {
            key: key.clone(),
            schema: schema.clone(),
        });
        self.state.schemas.insert(key, schema);
    }
}
