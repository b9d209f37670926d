//! Real Redis deployments for tests, on free ports of 127.0.0.1: a Redis
//! Cluster of 3 primaries and 3 replicas, and a Sentinel set (one primary,
//! one replica, three sentinels), each node a [`RedisServer`] (so it dies
//! with the test process however that ends). `shared()` starts a
//! deployment once per test binary; `start()` one of the test's own, to
//! fail on purpose.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::redis::{RedisServer, ping, server_args};
pub use crate::redis::{cli, info};

/// How long a cluster node or a sentinel waits before it calls a silent
/// primary failed, in a deployment a test fails on purpose: short, so that a
/// failover takes about two seconds.
pub const NODE_TIMEOUT_MS: u64 = 1000;

/// The same in a deployment shared by a test binary, which no test fails:
/// long enough that a node starved of CPU for a second (argon2 logins of the
/// parallel tests, on two cores) is not failed over under someone's test.
const SHARED_NODE_TIMEOUT_MS: u64 = 10_000;

/// Waits until `ok()`; on a timeout the panic message ends with `explain()`:
/// what a deployment's nodes logged, so that a failure on CI can be read.
fn wait_or_explain(
    what: &str,
    timeout: Duration,
    mut ok: impl FnMut() -> bool,
    explain: impl FnOnce() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() >= deadline {
            panic!("{what}: not within {timeout:?}\n{}", explain());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines each node logged, one block per node.
fn logs<'a>(nodes: impl IntoIterator<Item = &'a RedisServer>) -> String {
    nodes.into_iter().map(RedisServer::log_tail).collect()
}

/// A Redis Cluster: 3 primaries, each with a replica.
#[derive(Debug)]
pub struct Cluster {
    /// The six nodes, in the order they were started.
    pub nodes: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// The cluster a test binary shares (under key prefixes of its own).
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| Cluster::start_with(SHARED_NODE_TIMEOUT_MS))
    }

    /// Starts six nodes, creates the cluster and waits until it is healthy.
    pub fn start() -> Self {
        Self::start_with(NODE_TIMEOUT_MS)
    }

    fn start_with(node_timeout_ms: u64) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let timeout = node_timeout_ms.to_string();
        let mut nodes: Vec<RedisServer> = Vec::new();
        for i in 0..6 {
            let node = RedisServer::launch(dir.path().join(format!("n{i}")), |port| {
                server_args(
                    port,
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        &timeout,
                        // One failed shard must not stop the others (the default
                        // refuses every query while any slot is unserved).
                        "--cluster-require-full-coverage",
                        "no",
                        // A replica that was cut off a few seconds still fails over.
                        "--cluster-replica-validity-factor",
                        "0",
                    ],
                )
            });
            nodes.push(node);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let status = std::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("redis-cli");
        assert!(status.success(), "redis-cli --cluster create failed");
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// Waits until every running node sees the cluster ok with three
    /// primaries, each with a replica in sync.
    pub fn wait_healthy(&self, timeout: Duration) {
        let healthy = || {
            let running: Vec<&RedisServer> = self.nodes.iter().filter(|n| n.is_running()).collect();
            // Every running node sees three serving primaries and every other
            // running node as a healthy replica (gossip has settled).
            running.iter().all(|n| {
                let view = cli(n.port(), &["CLUSTER", "NODES"]);
                let ok = |role: &str| {
                    view.lines()
                        .filter(|l| {
                            let f: Vec<&str> = l.split_whitespace().collect();
                            f.len() > 7
                                && f[2].contains(role)
                                && !f[2].contains("fail")
                                && !f[2].contains("handshake")
                                && f[7] == "connected"
                                && (role == "slave" || f.len() > 8)
                        })
                        .count()
                };
                cli(n.port(), &["CLUSTER", "INFO"]).contains("cluster_state:ok")
                    && ok("master") == 3
                    && ok("slave") == running.len() - 3
            }) && self.primaries().len() == 3
                && self
                    .primaries()
                    .iter()
                    .all(|&p| info(p, "replication", "connected_slaves").as_deref() == Some("1"))
                && running.iter().all(|n| {
                    info(n.port(), "replication", "role").as_deref() != Some("slave")
                        || info(n.port(), "replication", "master_link_status").as_deref()
                            == Some("up")
                })
        };
        wait_or_explain("a healthy cluster", timeout, healthy, || logs(&self.nodes));
    }

    /// `redis-cluster://` with every node.
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port());
        for (i, n) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", n.port()));
        }
        url
    }

    fn any_running(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.is_running() && ping(n.port()))
            .map(|n| n.port())
            .expect("a running node")
    }

    /// The ports of the primaries that serve slots, as the cluster says.
    pub fn primaries(&self) -> Vec<u16> {
        let nodes = cli(self.any_running(), &["CLUSTER", "NODES"]);
        let mut out: Vec<u16> = nodes
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let serving = f.len() > 8;
                (f.len() > 2 && f[2].contains("master") && !f[2].contains("fail") && serving)
                    .then(|| f[1].split(['@', ':']).nth(1)?.parse().ok())
                    .flatten()
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// The port of the primary serving `key`'s slot.
    pub fn primary_of(&self, key: &str) -> u16 {
        let port = self.any_running();
        let slot: u16 = cli(port, &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("a slot");
        let nodes = cli(port, &["CLUSTER", "NODES"]);
        for l in nodes.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            for range in &f[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>())
                    && (a..=b).contains(&slot)
                {
                    return f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
                }
            }
        }
        panic!("no primary serves slot {slot}");
    }

    /// The port of the replica of the primary on `primary`.
    pub fn replica_of(&self, primary: u16) -> u16 {
        let nodes = cli(primary, &["CLUSTER", "NODES"]);
        let id = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .and_then(|l| l.split_whitespace().next())
            .expect("the primary's id")
            .to_owned();
        nodes
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 3 && f[2].contains("slave") && f[3] == id)
                    .then(|| f[1].split(['@', ':']).nth(1)?.parse().ok())
                    .flatten()
            })
            .expect("a replica")
    }

    /// The node on `port`.
    pub fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes
            .iter_mut()
            .find(|n| n.port() == port)
            .expect("a node on that port")
    }
}

/// The Sentinel set's service name.
pub const SERVICE: &str = "reissue";

/// A primary, its replica and three sentinels.
#[derive(Debug)]
pub struct Sentinel {
    /// The first primary (a replica after a failover).
    pub primary: RedisServer,
    /// Its replica.
    pub replica: RedisServer,
    /// The three sentinels.
    pub sentinels: Vec<RedisServer>,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    /// The set a test binary shares.
    pub fn shared() -> &'static Sentinel {
        static SHARED: OnceLock<Sentinel> = OnceLock::new();
        SHARED.get_or_init(|| Sentinel::start_with(SHARED_NODE_TIMEOUT_MS))
    }

    /// Starts the five, and waits until the set is healthy.
    pub fn start() -> Self {
        Self::start_with(NODE_TIMEOUT_MS)
    }

    fn start_with(down_after_ms: u64) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let primary =
            RedisServer::launch(dir.path().join("primary"), |port| server_args(port, &[]));
        let p = primary.port();
        let p_s = p.to_string();
        let replica = RedisServer::launch(dir.path().join("replica"), |port| {
            server_args(port, &["--replicaof", "127.0.0.1", &p_s])
        });
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let sdir = dir.path().join(format!("s{i}"));
            let conf = sdir.join("sentinel.conf");
            let sentinel = RedisServer::launch(sdir, |port| {
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\nprotected-mode no\n\
                         sentinel monitor {SERVICE} 127.0.0.1 {p} 2\n\
                         sentinel down-after-milliseconds {SERVICE} {down_after_ms}\n\
                         sentinel failover-timeout {SERVICE} 10000\n\
                         sentinel parallel-syncs {SERVICE} 1\n"
                    ),
                )
                .expect("sentinel.conf");
                vec![conf.display().to_string(), "--sentinel".to_owned()]
            });
            sentinels.push(sentinel);
        }
        let set = Self {
            primary,
            replica,
            sentinels,
            _dir: dir,
        };
        set.wait_healthy(Duration::from_secs(30));
        set
    }

    /// The port of the primary the sentinels name.
    pub fn current_primary(&self) -> Option<u16> {
        let s = self.sentinels.iter().find(|s| ping(s.port()))?;
        let reply = cli(s.port(), &["SENTINEL", "get-master-addr-by-name", SERVICE]);
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// Waits until the sentinels agree on a primary with a replica in sync
    /// and know each other.
    pub fn wait_healthy(&self, timeout: Duration) {
        let healthy = || {
            let Some(p) = self.current_primary() else {
                return false;
            };
            let replica = [&self.primary, &self.replica]
                .into_iter()
                .find(|n| n.port() != p && n.is_running());
            info(p, "replication", "connected_slaves").as_deref() == Some("1")
                && replica.is_some_and(|r| {
                    info(r.port(), "replication", "master_link_status").as_deref() == Some("up")
                })
                && self.sentinels.iter().all(|s| {
                    let m = cli(s.port(), &["SENTINEL", "master", SERVICE]);
                    let lines: Vec<&str> = m.lines().collect();
                    let field = |name: &str| {
                        lines
                            .iter()
                            .position(|l| *l == name)
                            .and_then(|i| lines.get(i + 1))
                            .map(|v| v.to_string())
                    };
                    field("num-other-sentinels").as_deref() == Some("2")
                        && field("num-slaves").as_deref() == Some("1")
                        && field("port").as_deref() == Some(&p.to_string())
                })
        };
        let nodes = [&self.primary, &self.replica].into_iter();
        wait_or_explain("a healthy Sentinel set", timeout, healthy, || {
            logs(nodes.chain(&self.sentinels))
        });
    }

    /// `redis-sentinel://` with the three sentinels.
    pub fn url(&self) -> String {
        format!(
            "redis-sentinel://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}&sentinelServiceName={SERVICE}",
            self.sentinels[0].port(),
            self.sentinels[1].port(),
            self.sentinels[2].port()
        )
    }
}
