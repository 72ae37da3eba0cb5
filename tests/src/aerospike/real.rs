//! Real Aerospike nodes that a test owns: started, stopped, paused and restarted through
//! the scripts of a real server install (`start.sh` / `stop.sh`, as in the repository's
//! sibling `shared/aerospike/`), each cluster on ports and in a directory of its own, so
//! the faults a test injects never reach another test's server.
//!
//! The scripts are found through `AEROSPIKE_SERVER_DIR`; `scripts/test.sh` sets it when
//! they exist. Without it [`RealCluster::start`] returns `None` and says so once on
//! stderr; with `REQUIRE_AEROSPIKE=1` (CI) it panics instead, so a missing server can
//! never pass for a tested one.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Once;

static SAID: Once = Once::new();
/// The next base port to try: each cluster takes ports `base .. base + 10 * nodes`.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

/// The directory holding the real server's `start.sh` and `stop.sh`, if configured.
pub fn server_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("AEROSPIKE_SERVER_DIR")
        .map(PathBuf::from)
        .filter(|d| d.join("start.sh").is_file());
    let required = std::env::var("REQUIRE_AEROSPIKE").is_ok_and(|v| v == "1");
    SAID.call_once(|| {
        let line = match &dir {
            Some(d) => format!(
                "Aerospike fault tests: running real server nodes from {}\n",
                d.display()
            ),
            None => "Aerospike fault tests: AEROSPIKE_SERVER_DIR is not set, so the tests that \
                     stop, pause and restart a real server were not run\n"
                .to_string(),
        };
        let _ = std::io::stderr().write_all(line.as_bytes());
    });
    assert!(
        dir.is_some() || !required,
        "REQUIRE_AEROSPIKE=1 but AEROSPIKE_SERVER_DIR does not name a directory with start.sh"
    );
    dir
}

/// A cluster of real nodes on 127.0.0.1, stopped and removed when dropped.
#[derive(Debug)]
pub struct RealCluster {
    scripts: PathBuf,
    dir: PathBuf,
    port: u16,
    nodes: usize,
    /// Whether namespace `test` persists to a file per node (`AEROSPIKE_PERSIST=1`).
    persist: bool,
    /// The `AEROSPIKE_HOSTS` value: every node's address.
    pub hosts: String,
    /// A multi-node cluster's turn: one at a time per test binary, released after its
    /// nodes stop (fields drop after `Drop::drop`).
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

/// Multi-node clusters of one test binary run one at a time. The test harness runs
/// tests on parallel threads, and two 3-node clusters on a 2-core machine starve each
/// other's heartbeats: seen here, a frozen node back 9.8 s after it froze instead of
/// about 4.5 s, a connect timing out, and a cluster splitting again 7 s after a node
/// returned. The cluster tests measure a healthy cluster's failover, not that. Single
/// nodes time nothing and run side by side.
static TURN: std::sync::LazyLock<std::sync::Arc<tokio::sync::Mutex<()>>> =
    std::sync::LazyLock::new(Default::default);

fn free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl RealCluster {
    /// Starts `nodes` nodes (replication factor 2 when more than one), or `None` when no
    /// real server is configured (see the module docs).
    pub async fn start(nodes: usize) -> Option<RealCluster> {
        Self::start_with(nodes, false).await
    }

    /// As [`start`](Self::start), with namespace `test` kept in a file per node, so a
    /// node stopped and started again re-reads its records (a cold start), as a
    /// production node with storage does.
    pub async fn start_persistent(nodes: usize) -> Option<RealCluster> {
        Self::start_with(nodes, true).await
    }

    async fn start_with(nodes: usize, persist: bool) -> Option<RealCluster> {
        let scripts = server_dir()?;
        let turn = match nodes {
            1 => None,
            _ => Some(TURN.clone().lock_owned().await),
        };
        let span = 10 * nodes as u16;
        let port = loop {
            let offset = NEXT_PORT.fetch_add(span, Ordering::SeqCst);
            // Away from the default 3000 a developer's own server may use.
            let base = 3100 + (std::process::id() % 64) as u16 * 40 + offset;
            assert!(base < 60_000, "no free ports for a test cluster");
            let all_free = (0..nodes as u16)
                .flat_map(|i| [0, 1, 2].map(|d| base + 10 * i + d))
                .all(free);
            if all_free {
                break base;
            }
        };
        let dir = std::env::temp_dir().join(format!(
            "session-tests-aerospike-{}-{port}",
            std::process::id()
        ));
        let mut cluster = RealCluster {
            scripts,
            dir,
            port,
            nodes,
            persist,
            hosts: String::new(),
            _turn: turn,
        };
        // Dropped (and so stopped) even if the start fails half-way.
        cluster.hosts = cluster.run_start().await;
        Some(cluster)
    }

    fn script(&self, name: &str) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(self.scripts.join(name))
            .env("AEROSPIKE_DIR", &self.dir)
            .env("AEROSPIKE_PORT", self.port.to_string());
        if self.persist {
            cmd.env("AEROSPIKE_PERSIST", "1");
        }
        cmd
    }

    async fn run_start(&self) -> String {
        let mut cmd = self.script("start.sh");
        cmd.arg(self.nodes.to_string());
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("start.sh ran")
            .expect("start.sh could be run");
        assert!(
            out.status.success(),
            "start.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("start.sh prints the hosts")
            .trim()
            .to_owned()
    }

    /// Kills node `i` (1-based) and waits until it is gone; a memory namespace loses
    /// that node's copy of the data.
    pub async fn stop_node(&self, i: usize) {
        let mut cmd = self.script("stop.sh");
        cmd.arg(i.to_string());
        let status = tokio::task::spawn_blocking(move || cmd.status())
            .await
            .expect("stop.sh ran")
            .expect("stop.sh could be run");
        assert!(status.success(), "stop.sh {i} failed");
    }

    /// Starts every node that is not running (a restarted node comes back empty) and
    /// waits until the cluster holds all of them again.
    pub async fn restart_stopped(&self) {
        self.run_start().await;
    }

    /// Stops node `i` and starts it again (empty with a memory namespace, re-reading
    /// its file with a persistent one), and waits until the cluster holds it again.
    pub async fn restart_node(&self, i: usize) {
        self.stop_node(i).await;
        self.restart_stopped().await;
    }

    /// The service address of node `i` (1-based).
    pub fn address(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.port + 10 * (i as u16 - 1))
    }

    /// The answer of node `i` to the info command `cmd` (`statistics`,
    /// `cluster-stable:...`), or the I/O error of asking.
    pub async fn info(&self, i: usize, cmd: &str) -> std::io::Result<String> {
        let (address, cmd) = (self.address(i), cmd.to_owned());
        tokio::task::spawn_blocking(move || info(&address, &cmd))
            .await
            .expect("the info call ran")
    }

    /// Waits (60 s at most) until every node reports a cluster of all of them with no
    /// migration left, as an operator waits before restarting the next node.
    pub async fn wait_migrations(&self) {
        let cmd = format!("cluster-stable:size={};ignore-migrations=false", self.nodes);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let mut keys = Vec::new();
            for i in 1..=self.nodes {
                match self.info(i, &cmd).await {
                    Ok(answer) if !answer.contains("ERROR") => keys.push(answer),
                    _ => break,
                }
            }
            if keys.len() == self.nodes && keys.windows(2).all(|w| w[0] == w[1]) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "migrations did not finish within 60 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Waits (60 s at most) until each node of `nodes` (1-based) reports a cluster of
    /// exactly that many nodes, the same one: after a node froze or died, until the others
    /// have evicted it and formed a cluster without it.
    pub async fn wait_for_nodes(&self, nodes: &[usize]) {
        let cmd = format!("cluster-stable:size={};ignore-migrations=true", nodes.len());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let mut keys = Vec::new();
            for &i in nodes {
                match self.info(i, &cmd).await {
                    Ok(answer) if !answer.contains("ERROR") => keys.push(answer),
                    _ => break,
                }
            }
            if keys.len() == nodes.len() && keys.windows(2).all(|w| w[0] == w[1]) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nodes {nodes:?} did not form a cluster of their own within 60 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Which of the 4096 partitions of `namespace` node `i` (1-based) masters, by its own
    /// account (the `replicas` info command).
    pub async fn masters(&self, i: usize, namespace: &str) -> Vec<bool> {
        use base64::Engine as _;
        let answer = self
            .info(i, "replicas")
            .await
            .expect("node answers replicas");
        let value = answer.split_once('\t').map_or(answer.as_str(), |(_, v)| v);
        let entry = value
            .trim()
            .split(';')
            .find_map(|e| e.strip_prefix(&format!("{namespace}:")))
            .expect("the namespace's replicas");
        // regime, replica count, then one bitmap per replica: the master's first.
        let bitmap = entry.split(',').nth(2).expect("a master bitmap");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(bitmap)
            .expect("base64 bitmap");
        (0..4096)
            .map(|p| bytes[p >> 3] & (0x80 >> (p & 7)) != 0)
            .collect()
    }

    /// The process id of node `i` (1-based).
    pub fn pid(&self, i: usize) -> String {
        let pid_file = self.dir.join(format!("node-{i}/asd.pid"));
        let pid = std::fs::read_to_string(&pid_file).expect("the node's pid file");
        pid.trim().to_owned()
    }

    fn signal(&self, i: usize, signal: &str) {
        let pid = self.pid(i);
        let status = Command::new("kill")
            .args([signal, pid.as_str()])
            .status()
            .expect("kill could be run");
        assert!(status.success(), "kill {signal} node {i}");
    }

    /// Freezes node `i` with SIGSTOP: connections stay open and nothing answers, the
    /// way a hung machine behaves (a timeout, not a refusal).
    ///
    /// Returns once every thread of the node has stopped: `kill` returns when the signal
    /// is sent, and a thread still running for a moment after that could answer one more
    /// request (CI saw a read served right after `kill -STOP`).
    pub fn pause(&self, i: usize) {
        self.signal(i, "-STOP");
        let pid = self.pid(i);
        let stopped = |task: &std::path::Path| {
            // Field 3 of `stat`, after the parenthesised command name: T when stopped.
            std::fs::read_to_string(task.join("stat"))
                .map(|stat| {
                    stat.rsplit_once(") ")
                        .is_some_and(|(_, rest)| rest.starts_with('T'))
                })
                .unwrap_or(true) // a thread that has exited answers nothing
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the node's threads");
            if tasks.flatten().all(|t| stopped(&t.path())) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {i} did not stop within 5 s of SIGSTOP"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Lets a paused node `i` run again (SIGCONT).
    pub fn resume(&self, i: usize) {
        self.signal(i, "-CONT");
    }
}

/// One info command over the server's info protocol (version 2, type 1), blocking.
fn info(address: &str, cmd: &str) -> std::io::Result<String> {
    use std::io::Read as _;
    let timeout = Some(std::time::Duration::from_secs(1));
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    let body = format!("{cmd}\n");
    let header = (2u64 << 56) | (1u64 << 48) | body.len() as u64;
    stream.write_all(&header.to_be_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut header = [0u8; 8];
    stream.read_exact(&mut header)?;
    let len = (u64::from_be_bytes(header) & ((1 << 48) - 1)) as usize;
    let mut answer = vec![0u8; len];
    stream.read_exact(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        // stop.sh resumes paused nodes before stopping them.
        let _ = self.script("stop.sh").status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
