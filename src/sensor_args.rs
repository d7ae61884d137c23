//! `estuary sensor`'s command-line options, validated into the sensor's run options.

use std::path::PathBuf;
use std::time::Duration;

use estuary_sensor::run::{Analysis, SensorOptions, Source};
use estuary_sensor::split::{NodeSplit, SplitMode};
use estuary_sensor::zeeklog::{LogFormat, Rotation};

/// Capture packets (live or from a file) and write Zeek-compatible logs.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["read", "interface"])))]
pub struct SensorArgs {
    /// Read packets from a pcap or pcapng file.
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub read: Option<PathBuf>,
    /// Capture live from an interface.
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// Bytes captured per packet (live).
    #[arg(long, default_value_t = 65535)]
    pub snaplen: i32,
    /// Do not put the interface into promiscuous mode.
    #[arg(long)]
    pub no_promisc: bool,
    /// BPF filter (pcap-filter syntax), combined with the node split filter.
    #[arg(short = 'f', long = "filter", value_name = "BPF")]
    pub filter: Option<String>,
    /// Directory for the logs (conn.log, dns.log ...).
    #[arg(long, default_value = ".")]
    pub logdir: PathBuf,
    /// Ignore bad IP/TCP/UDP checksums (offloaded captures), like `zeek -C`.
    #[arg(short = 'C', long = "ignore-checksums")]
    pub ignore_checksums: bool,
    /// Write Zeek's JSON logs instead of TSV.
    #[arg(long)]
    pub json: bool,
    /// Number of sensor nodes sharing the traffic.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub node_count: u32,
    /// This node's index, 0 .. node-count - 1.
    #[arg(long, default_value_t = 0)]
    pub node_index: u32,
    /// Split between nodes with the seed's BPF filter instead of the sensor's own hash
    /// (drops VLAN, QinQ and IPv6 traffic on every node).
    #[arg(long)]
    pub bpf_split: bool,
    /// VLAN id to prefix the BPF split filter with (`vlan <id> &&`).
    #[arg(long)]
    pub vlan: Option<u16>,
    /// Worker threads, split by the symmetric flow hash (zeekctl's lb_procs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub lb_procs: u16,
    /// Connection logs only: no application analyzers.
    #[arg(long)]
    pub no_analyzers: bool,
    /// Rotate logs after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub rotate_interval: Option<u64>,
    /// Rotate a log once it reaches this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub rotate_size: Option<u64>,
    /// Sensor configuration (local networks, notice policy), TOML.
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
    /// Capture statistics file (default: <logdir>/netstats.json).
    #[arg(long)]
    pub stats_file: Option<PathBuf>,
    /// Flow table limit; the oldest connections are evicted beyond it.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_conns: usize,
}

impl SensorArgs {
    /// Validated run options.
    pub fn options(&self) -> anyhow::Result<SensorOptions> {
        if self.node_index >= self.node_count {
            anyhow::bail!(
                "--node-index {} is not below --node-count {}",
                self.node_index,
                self.node_count
            );
        }
        let source = match (&self.read, &self.interface) {
            (Some(f), _) => Source::File(f.clone()),
            (None, Some(i)) => Source::Live {
                iface: i.clone(),
                snaplen: self.snaplen,
                promisc: !self.no_promisc,
            },
            // clap's required group guarantees one of the two.
            (None, None) => Source::File(PathBuf::from("-")),
        };
        let mut o = SensorOptions::new(source, self.logdir.clone());
        o.filter = self.filter.clone();
        o.format = if self.json {
            LogFormat::Json
        } else {
            LogFormat::Tsv
        };
        o.rotation = Rotation {
            interval: self.rotate_interval.map(Duration::from_secs),
            max_bytes: self.rotate_size,
        };
        o.ignore_checksums = self.ignore_checksums;
        o.split = NodeSplit {
            count: self.node_count,
            index: self.node_index,
            mode: if self.bpf_split {
                SplitMode::Bpf
            } else {
                SplitMode::Hash
            },
            vlan: self.vlan,
        };
        o.workers = usize::from(self.lb_procs);
        o.analysis = if self.no_analyzers {
            Analysis::ConnOnly
        } else {
            Analysis::Full
        };
        o.stats_file = self.stats_file.clone();
        o.max_conns = self.max_conns.max(1);
        if let Some(path) = &self.config {
            let cfg = estuary_config::sensor::load(path)?;
            estuary_sensor::config::apply(&cfg, &mut o);
        }
        Ok(o)
    }
}
