//! The site commands over a node.cfg (zeekctl's start, stop, restart, status, cron, df,
//! netstats, diag, nodes): thin calls into `estuary_site::control`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context;
use estuary_config::node_cfg::SiteConfig;
use estuary_site::control::{self, Outcome};

/// A site command on the nodes of a node.cfg.
#[derive(Debug, Clone, Copy)]
pub enum SiteCommand {
    Start,
    Stop,
    Restart,
    Status,
    Cron,
    Df,
    Netstats,
    Diag,
    Nodes,
}

/// node.cfg as the site commands take it.
pub fn load(path: &Path) -> anyhow::Result<SiteConfig> {
    Ok(estuary_config::node_cfg::load(path)?)
}

pub fn run(command: SiteCommand, config: &Path, nodes: &[String]) -> anyhow::Result<ExitCode> {
    let site = load(config)?;
    let selected = control::select(&site, nodes)?;
    let exe = || std::env::current_exe().context("locate the estuary binary");
    let now = SystemTime::now();
    let outcome = match command {
        SiteCommand::Start => control::start(&site, &selected, &exe()?)?,
        SiteCommand::Stop => control::stop(&site, &selected)?,
        SiteCommand::Restart => {
            let stopped = control::stop(&site, &selected)?;
            let started = control::start(&site, &selected, &exe()?)?;
            Outcome {
                text: stopped.text + &started.text,
                ok: stopped.ok && started.ok,
            }
        }
        SiteCommand::Status => control::status(&site, &selected, now)?,
        SiteCommand::Cron => control::cron(&site, &exe()?, now)?,
        SiteCommand::Df => control::df(&site),
        SiteCommand::Netstats => control::netstats(&site, now),
        SiteCommand::Diag => {
            let mut all = Outcome {
                ok: true,
                ..Outcome::default()
            };
            for node in &selected {
                let one = control::diag(&site, node)?;
                all.text.push_str(&one.text);
            }
            all
        }
        SiteCommand::Nodes => Outcome {
            text: nodes_table(&site, &selected),
            ok: true,
        },
    };
    crate::stdout::print_out(
        &outcome.text,
        if outcome.ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        },
    )
}

/// `estuary nodes`: each node with its role, host and what it runs.
fn nodes_table(site: &SiteConfig, nodes: &[&estuary_config::node_cfg::Node]) -> String {
    let mut out = String::new();
    for node in nodes {
        out.push_str(&format!(
            "{} ({}, host {})\n",
            node.name,
            node.role.name(),
            node.host
        ));
        let processes = estuary_site::plan::processes(site, node);
        if processes.is_empty() {
            out.push_str("  runs nothing (estuary needs no proxy)\n");
        }
        for p in processes {
            out.push_str(&format!(
                "  {:<10} estuary {}\n",
                p.daemon.name(),
                p.args.join(" ")
            ));
        }
        if let Some(c) = node.role.capture() {
            let method = c.lb_method.as_deref().unwrap_or("estuary's flow hash");
            out.push_str(&format!(
                "  split      node {} of {}, {} capture threads (lb_method: {method})\n",
                c.index + 1,
                c.count,
                c.lb_procs
            ));
        }
        for (k, v) in &node.env_vars {
            out.push_str(&format!("  env        {k}={v}\n"));
        }
    }
    out
}

/// Whether `path` is a node.cfg (rather than another configuration).
pub fn is_node_cfg(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| estuary_config::node_cfg::looks_like_node_cfg(&t))
}

/// `--config` of the site commands.
#[derive(Debug, clap::Args)]
pub struct SiteArgs {
    /// The site's node.cfg (cluster.cfg is read from the same folder).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Only these nodes (default: all).
    #[arg(value_name = "NODE")]
    pub nodes: Vec<String>,
}
