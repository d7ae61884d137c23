//! Handing a rendered mail to the relay: the SendMail program (`-t -oi`, recipients from the
//! headers, as zeekctl does) or SMTP through lettre.

use std::io::{self, Write};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use estuary_config::aggregator::{MailConfig, MailTransport};
use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::{Address, SmtpTransport, Transport};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("running {program}: {source}")]
    Spawn { program: String, source: io::Error },
    #[error("{program} exited with {status}")]
    Exit {
        program: String,
        status: std::process::ExitStatus,
    },
    #[error("bad mail address {0:?}")]
    Address(String),
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
}

/// Sends one rendered message; `Ok(false)` when mail is disabled (not an error).
pub fn send(cfg: &MailConfig, message: &[u8]) -> Result<bool, SendError> {
    match &cfg.transport {
        MailTransport::Disabled => Ok(false),
        MailTransport::SendMail(program) => {
            let name = program.display().to_string();
            let mut child = Command::new(program)
                .args(["-t", "-oi"])
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|source| SendError::Spawn {
                    program: name.clone(),
                    source,
                })?;
            if let Some(mut stdin) = child.stdin.take() {
                stdin
                    .write_all(message)
                    .map_err(|source| SendError::Spawn {
                        program: name.clone(),
                        source,
                    })?;
            }
            let status = child.wait().map_err(|source| SendError::Spawn {
                program: name.clone(),
                source,
            })?;
            if status.success() {
                Ok(true)
            } else {
                Err(SendError::Exit {
                    program: name,
                    status,
                })
            }
        }
        MailTransport::Smtp { host, port } => {
            let text = String::from_utf8_lossy(message);
            let from = address(&cfg.from)?;
            let to = recipients(&text)?;
            let envelope =
                Envelope::new(Some(from), to).map_err(|_| SendError::Address(cfg.from.clone()))?;
            let relay = SmtpTransport::builder_dangerous(host.as_str())
                .port(*port)
                .timeout(Some(Duration::from_secs(10)))
                .build();
            relay.send_raw(&envelope, &crlf(message))?;
            Ok(true)
        }
    }
}

/// An envelope address. A bare local name (zeekctl's default MailTo is the user name) is
/// qualified with `@localhost`, as a local sendmail would.
fn address(text: &str) -> Result<Address, SendError> {
    let text = text.trim();
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    {
        return Address::from_str(&format!("{text}@localhost"))
            .map_err(|_| SendError::Address(text.to_owned()));
    }
    Mailbox::from_str(text)
        .map(|m| m.email)
        .or_else(|_| Address::from_str(text))
        .map_err(|_| SendError::Address(text.to_owned()))
}

impl SendError {
    /// Whether trying again can help (relay down) or not (bad address, rejected by the relay).
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::Address(_) => true,
            SendError::Smtp(err) => err.is_permanent(),
            SendError::Spawn { .. } | SendError::Exit { .. } => false,
        }
    }
}

/// The `To:` header's addresses (what `sendmail -t` would use).
fn recipients(message: &str) -> Result<Vec<Address>, SendError> {
    let to = message
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("To:"))
        .unwrap_or_default();
    to.split(',')
        .filter(|a| !a.trim().is_empty())
        .map(address)
        .collect()
}

fn crlf(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 40);
    for &b in message {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            address("Big Brother <bro@localhost>").unwrap().to_string(),
            "bro@localhost"
        );
        let to = recipients("From: x\nTo: a@b.c, d@e.f\n\nTo: z@z.z\n").unwrap();
        assert_eq!(to.len(), 2);
        assert_eq!(address("root").unwrap().to_string(), "root@localhost");
        assert!(address("a b <").unwrap_err().is_permanent());
    }

    #[test]
    fn sendmail_program_gets_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = dir.path().join("sendmail");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" > {0}.args\ncat > {0}\n",
                out.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut cfg = crate::testing::config(dir.path(), dir.path()).mail;
        cfg.transport = MailTransport::SendMail(script);
        assert!(send(&cfg, b"To: x@y\n\nhi\n").unwrap());
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "To: x@y\n\nhi\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out.args")).unwrap(),
            "-t -oi\n"
        );
        cfg.transport = MailTransport::Disabled;
        assert!(!send(&cfg, b"x").unwrap());
    }
}
