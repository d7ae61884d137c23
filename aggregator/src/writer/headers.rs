//! Lines of Zeek logs that need more than an append: header blocks (one header per file; a
//! sensor with other `#fields` gets a file of its own) and notices waiting for mail.

use std::io;
use std::time::SystemTime;

use crate::journal::Record;
use crate::route::{FileKey, LogName};
use crate::schema::{self, Meta};

use super::Writer;

impl Writer {
    pub(super) fn write_log(
        &mut self,
        host: &str,
        name: LogName,
        body: &[u8],
        now: SystemTime,
    ) -> io::Result<()> {
        if body.first() == Some(&b'#') {
            if let Meta::Block(block) = self.collector.meta_line(host, name.as_str(), body) {
                self.adopt_schema(host, &name, &block);
            }
            return Ok(());
        }
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
                let mut line = serde_json::to_vec(&event).map_err(io::Error::other)?;
                line.push(b'\n');
                self.files
                    .notices(&self.spool_dir, self.state.notices_segment, now)?
                    .buf
                    .extend_from_slice(&line);
            }
        }
        Ok(())
    }

    fn adopt_schema(&mut self, host: &str, name: &LogName, block: &[Vec<u8>]) {
        let schema = schema::schema_of(block);
        let primary = self.key(host, name);
        let target = match self.state.schemas.get(&primary) {
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
                        tracing::info!(host, log = %name, file = %key, "sensor changed #fields; its lines go to a separate file");
                        self.set_schema(key, schema);
                    }
                }
                variant
            }
        };
        let logs = self.state.assignments.entry(host.to_owned()).or_default();
        if logs.get(name.as_str()) != Some(&target) {
            self.pending_records.push(Record::Assign {
                host: host.to_owned(),
                log: name.as_str().to_owned(),
                target: target.clone(),
            });
            logs.insert(name.as_str().to_owned(), target);
        }
    }

    fn set_schema(&mut self, key: FileKey, schema: Vec<u8>) {
        self.pending_records.push(Record::Schema {
            key: key.clone(),
            schema: schema.clone(),
        });
        self.state.schemas.insert(key, schema);
    }
}
