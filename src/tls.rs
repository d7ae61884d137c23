//! `estuary tls init|issue`: a site CA and node certificates for mutual TLS.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use estuary_pki::{NodeName, SiteCa, Validity};

/// Create a site CA, or issue a node certificate from it.
#[derive(Debug, clap::Args)]
pub struct TlsArgs {
    /// Site directory holding ca.pem, ca.key and NODE.pem / NODE.key.
    #[arg(long, default_value = "/etc/estuary/tls", global = true)]
    pub dir: PathBuf,
    #[command(subcommand)]
    pub command: TlsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum TlsCommand {
    /// Create the site CA (ca.pem, ca.key with mode 0600, an empty crl.pem); an existing CA is
    /// never replaced.
    Init {
        /// The CA's common name.
        #[arg(long, default_value = "estuary site CA")]
        name: String,
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue NODE.pem and NODE.key (0600) for a node, named in the certificate's CN and SAN.
    Issue {
        node: NodeName,
        /// Further subject-alternative names (DNS names or IP addresses the node is reached by).
        #[arg(long = "san", value_name = "NAME")]
        sans: Vec<NodeName>,
        #[arg(long, default_value_t = 825)]
        days: u32,
    },
    /// Add NODE's certificate to the site's revocation list (crl.pem, the aggregator's TLSCRLFile).
    Revoke { node: NodeName },
}

impl TlsArgs {
    pub fn run(self) -> anyhow::Result<ExitCode> {
        let now = SystemTime::now();
        match self.command {
            TlsCommand::Init { name, days } => {
                let ca = SiteCa::init(&self.dir, &name, Validity::days_from(now, days))?;
                println!("{}", ca.cert_file().display());
            }
            TlsCommand::Issue { node, sans, days } => {
                let ca = SiteCa::load(&self.dir, now)?;
                let issued = ca.issue(&node, &sans, Validity::days_from(now, days))?;
                println!(
                    "{}\n{}",
                    issued.cert_file.display(),
                    issued.key_file.display()
                );
            }
            TlsCommand::Revoke { node } => {
                let crl = SiteCa::load(&self.dir, now)?.revoke(&node, now)?;
                println!("{}", crl.display());
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
