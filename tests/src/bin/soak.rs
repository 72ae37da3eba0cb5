//! Soak: mixed create / read / update / cycle / logout traffic at a steady rate against
//! each adapter and store, with a history checker. Loopback only, bounded in time.
//!
//! `cargo run --release -p session-tests --bin soak -- [SECONDS] [USERS]` (defaults 30 and
//! 40 per combination); `scripts/soak.sh` runs it. Exits non-zero on any violation.
//!
//! `soak cluster [SECONDS] [USERS]` instead starts a real 3-node Aerospike cluster
//! (replication factor 2, through `AEROSPIKE_SERVER_DIR`'s `start.sh`), serves it to an
//! axum app and an actix-web app at once (each with its own client and the store's
//! defaults, half the users each), and meanwhile, from 10 % of the run, restarts the
//! nodes one by one as an operator does (each stopped, started again empty, and the
//! next one only once migrations have finished), then, at 70 % of the run or once the
//! last node is back, freezes node 3 with SIGSTOP for [`PAUSE_SECS`]
//! (`SOAK_PAUSE_SECS` overrides it). The traffic runs on to the end: the apps must serve
//! every request afterwards. Exits non-zero on any violation or failed request.
//!
//! Each virtual user owns one session and keeps the state its acknowledged requests
//! produced. Every read must return exactly that state; a session idle longer than its
//! inactivity expiry must read back empty, one idle for less must not; a cycled or
//! logged-out cookie must read back empty.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use session_aerospike::AerospikeStore;
use session_core::{Expiry, MemoryStore, SessionConfig, SessionStore};
use session_tests::aerospike::{real_hosts, RealCluster, Served};
use session_tests::{Actix, Axum, Framework, TestServer};

/// Sessions end after this much inactivity.
const IDLE_SECS: i64 = 3;
/// The cluster soak's inactivity window: longer than the store's whole time budget, so
/// a request held up by a failover can never outlast its own session (which would be a
/// correct expiry that the model would call a violation).
const CLUSTER_IDLE_SECS: i64 = 8;
/// How long the cluster soak keeps a node frozen: a hang the cluster rides out without
/// evicting the node, below the heartbeat timeout of `start.sh`'s nodes (150 ms × 10).
/// Its last heartbeat may be one interval older than the freeze and its first after
/// it one interval later, so 0.8 s leaves the peers about 0.4 s of silence to spare
/// for a loaded machine to schedule it; it still outlasts the store's default 500 ms
/// attempt timeout, so requests caught on it retry elsewhere.
///
/// A node frozen for longer is evicted, and comes back still claiming the partitions it
/// mastered, with the copies it had when it stopped, until it rejoins (about 3.5 s
/// here). A client that had not dropped it before it returned routes reads to it (an AP
/// namespace gives the client no regime to tell the stale claim from the current one),
/// so sessions read back old or missing for those seconds: Aerospike's AP mode promises
/// nothing across such a split, and no client setting prevents it (README, Failover).
/// `SOAK_PAUSE_SECS=2` (or the former 4) reproduces it in some runs.
const PAUSE_SECS: f64 = 0.8;

/// [`PAUSE_SECS`], or `SOAK_PAUSE_SECS` when set.
fn pause_secs() -> f64 {
    std::env::var("SOAK_PAUSE_SECS")
        .ok()
        .map(|v| v.parse().expect("SOAK_PAUSE_SECS is a number of seconds"))
        .unwrap_or(PAUSE_SECS)
}

struct Tally {
    requests: AtomicU64,
    violations: AtomicU64,
    errors: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
    started: Instant,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            requests: AtomicU64::default(),
            violations: AtomicU64::default(),
            errors: AtomicU64::default(),
            latencies: Mutex::default(),
            started: Instant::now(),
        }
    }
}

impl Tally {
    /// Seconds since the run started, for lining failures up with the chaos schedule.
    fn at(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

struct User {
    client: reqwest::Client,
    server: Arc<TestServer>,
    tally: Arc<Tally>,
    cookie: Option<String>,
    model: BTreeMap<String, Value>,
    rng: u64,
    idle_secs: i64,
}

impl User {
    fn next(&mut self) -> u64 {
        // xorshift: deterministic per user, no dependency.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    async fn get(
        &mut self,
        path: &str,
        cookie: Option<&str>,
    ) -> Option<(u16, Vec<String>, String)> {
        let mut req = self.client.get(self.server.url(path));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let started = Instant::now();
        let result = req.send().await;
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                self.tally.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("t={:.1}s request error on {path}: {e}", self.tally.at());
                return None;
            }
        };
        let status = resp.status().as_u16();
        let cookies = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect();
        let body = resp.text().await.unwrap_or_default();
        self.tally.latencies.lock().unwrap().push(started.elapsed());
        if status != 200 {
            self.tally.errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("t={:.1}s {path} answered {status}", self.tally.at());
            return None;
        }
        Some((status, cookies, body))
    }

    fn violation(&self, what: String) {
        self.tally.violations.fetch_add(1, Ordering::Relaxed);
        eprintln!("t={:.1}s VIOLATION: {what}", self.tally.at());
    }

    fn absorb(&mut self, cookies: &[String]) {
        for c in cookies {
            let pair = c.split(';').next().unwrap_or_default();
            if pair == "id=" {
                self.cookie = None;
            } else if pair.starts_with("id=") {
                self.cookie = Some(pair.to_owned());
            }
        }
    }

    async fn check(&mut self, why: &str) {
        let cookie = self.cookie.clone();
        let Some((_, cookies, body)) = self.get("/all", cookie.as_deref()).await else {
            return;
        };
        self.absorb(&cookies);
        let got: BTreeMap<String, Value> = serde_json::from_str(&body).unwrap_or_default();
        if got != self.model {
            self.violation(format!(
                "{why}: read {got:?}, acknowledged {:?}",
                self.model
            ));
            self.model = got;
        }
    }

    async fn step(&mut self) {
        let roll = self.next() % 100;
        let key = format!("k{}", self.next() % 4);
        let value = self.next() % 1000;
        let cookie = self.cookie.clone();
        match roll {
            0..=34 => self.check("read").await,
            35..=69 => {
                if let Some((_, c, _)) = self
                    .get(&format!("/set/{key}/{value}"), cookie.as_deref())
                    .await
                {
                    self.absorb(&c);
                    self.model.insert(key, json!(value));
                }
            }
            70..=79 => {
                if let Some((_, c, _)) =
                    self.get(&format!("/remove/{key}"), cookie.as_deref()).await
                {
                    self.absorb(&c);
                    self.model.remove(&key);
                }
            }
            80..=86 => {
                let old = self.cookie.clone();
                if let Some((_, c, _)) = self
                    .get(&format!("/login/u{value}"), cookie.as_deref())
                    .await
                {
                    self.absorb(&c);
                    self.model.insert("user".into(), json!(format!("u{value}")));
                    if let (Some(old), Some(new)) = (old, self.cookie.clone()) {
                        if old != new {
                            self.stale(&old, "cycled-away id").await;
                        }
                    }
                }
            }
            87..=91 => {
                let old = self.cookie.clone();
                if self.get("/flush", cookie.as_deref()).await.is_some() {
                    self.cookie = None;
                    self.model.clear();
                    if let Some(old) = old {
                        self.stale(&old, "logged-out id").await;
                    }
                }
            }
            92..=96 => {
                // A short pause: the session must survive it.
                tokio::time::sleep(Duration::from_millis(500)).await;
                self.check("after a short pause").await;
            }
            _ => {
                // A pause past the inactivity expiry: the session must be gone.
                tokio::time::sleep(Duration::from_secs(self.idle_secs as u64 + 2)).await;
                self.model.clear();
                self.check("after the session expired").await;
            }
        }
    }

    async fn stale(&mut self, old: &str, what: &str) {
        if let Some((_, _, body)) = self.get("/all", Some(old)).await {
            if body != "{}" {
                self.violation(format!("a {what} still reads {body}"));
            }
        }
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn config(idle_secs: i64) -> SessionConfig {
    SessionConfig::builder()
        .expiry(Expiry::OnInactivity(time::Duration::seconds(idle_secs)))
        .build()
        .unwrap()
}

/// Starts `users` virtual users against `server` until `deadline`.
fn spawn_users(
    server: &Arc<TestServer>,
    tally: &Arc<Tally>,
    deadline: Instant,
    users: std::ops::Range<usize>,
    idle_secs: i64,
) -> Vec<tokio::task::JoinHandle<()>> {
    users
        .map(|u| {
            let mut user = User {
                client: reqwest::Client::new(),
                server: server.clone(),
                tally: tally.clone(),
                cookie: None,
                model: BTreeMap::new(),
                rng: 0x9E37_79B9_7F4A_7C15 ^ (u as u64 + 1),
                idle_secs,
            };
            tokio::spawn(async move {
                // Steady rate: one step every 50 ms per user.
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                while Instant::now() < deadline {
                    tick.tick().await;
                    user.step().await;
                }
            })
        })
        .collect()
}

/// Samples the RSS every second until `deadline`.
async fn sample_rss(deadline: Instant) -> Vec<u64> {
    let mut rss = Vec::new();
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(rss_kib());
    }
    rss
}

/// Waits for the users, prints one line of figures, and says whether all went well.
async fn report(
    label: &str,
    secs: u64,
    users: usize,
    tally: &Tally,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    rss: &[u64],
) -> bool {
    for t in tasks {
        if let Err(e) = t.await {
            eprintln!("a user task panicked: {e}");
            tally.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
    let mut lat = std::mem::take(&mut *tally.latencies.lock().unwrap());
    lat.sort();
    let p = |q: f64| {
        lat.get(((lat.len().max(1) - 1) as f64 * q) as usize)
            .copied()
            .unwrap_or_default()
    };
    let (req, bad, err) = (
        tally.requests.load(Ordering::Relaxed),
        tally.violations.load(Ordering::Relaxed),
        tally.errors.load(Ordering::Relaxed),
    );
    let third = rss.len() / 3;
    let early = rss.get(third).copied().unwrap_or(0);
    println!(
        "{label:<22} {secs:>4}s {users:>3} users {req:>8} requests {:>6.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  violations {bad}  errors {err}  RSS {early} -> {} (max {}) KiB",
        req as f64 / secs as f64,
        p(0.5).as_secs_f64() * 1e3,
        p(0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        rss.last().copied().unwrap_or(0),
        rss.iter().max().copied().unwrap_or(0),
    );
    bad == 0 && err == 0
}

async fn soak<F: Framework, S: SessionStore + Clone>(
    label: &str,
    store: S,
    secs: u64,
    users: usize,
) -> bool {
    let server = Arc::new(F::serve(store, config(IDLE_SECS)).await);
    let tally = Arc::new(Tally::default());
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks = spawn_users(&server, &tally, deadline, 0..users, IDLE_SECS);
    let rss = sample_rss(deadline).await;
    report(label, secs, users, &tally, tasks, &rss).await
}

/// A store on the soak's cluster, with the store's defaults.
async fn cluster_store(hosts: &str) -> AerospikeStore {
    AerospikeStore::connect(hosts)
        .await
        .expect("connect to the soak's cluster")
}

/// Both adapters on one real 3-node cluster through a rolling restart and a short
/// freeze.
async fn cluster_soak(secs: u64, users: usize) -> bool {
    let Some(cluster) = RealCluster::start(3).await else {
        eprintln!("soak cluster: needs AEROSPIKE_SERVER_DIR (a real server's start.sh)");
        return false;
    };
    println!("soak cluster: 3 nodes at {}", cluster.hosts);
    let config = config(CLUSTER_IDLE_SECS);
    let axum = Arc::new(Axum::serve(cluster_store(&cluster.hosts).await, config.clone()).await);
    let actix = Arc::new(Actix::serve(cluster_store(&cluster.hosts).await, config).await);
    let (axum_tally, actix_tally) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let half = users / 2;
    let axum_tasks = spawn_users(&axum, &axum_tally, deadline, 0..half, CLUSTER_IDLE_SECS);
    let actix_tasks = spawn_users(
        &actix,
        &actix_tally,
        deadline,
        half..users,
        CLUSTER_IDLE_SECS,
    );
    let chaos = async {
        let at = |fraction: f64| started + Duration::from_secs_f64(secs as f64 * fraction);
        let say = |what: &str| println!("t={:.1}s chaos: {what}", started.elapsed().as_secs_f64());
        tokio::time::sleep_until(at(0.10).into()).await;
        for node in 1..=3 {
            say(&format!("stop node {node}"));
            cluster.stop_node(node).await;
            say(&format!("start node {node} (empty)"));
            cluster.restart_stopped().await;
            cluster.wait_migrations().await;
            say(&format!("node {node} is back, migrations done"));
        }
        tokio::time::sleep_until(at(0.70).into()).await;
        let pause = pause_secs();
        say(&format!("freeze node 3 (SIGSTOP) for {pause} s"));
        cluster.pause(3);
        tokio::time::sleep(Duration::from_secs_f64(pause)).await;
        cluster.resume(3);
        say("node 3 resumed (SIGCONT)");
    };
    let (rss, ()) = tokio::join!(sample_rss(deadline), chaos);
    let a = report(
        "axum + 3-node cluster",
        secs,
        half,
        &axum_tally,
        axum_tasks,
        &rss,
    )
    .await;
    let b = report(
        "actix + 3-node cluster",
        secs,
        users - half,
        &actix_tally,
        actix_tasks,
        &rss,
    )
    .await;
    a && b
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A failed request's cause is logged by the layer at ERROR: print those, so a red
    // run says why, not only which request.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::ERROR)
        .init();
    let mut args = std::env::args().skip(1).peekable();
    let cluster = args.next_if(|a| a == "cluster").is_some();
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let users: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    if cluster {
        return if cluster_soak(secs, users).await {
            println!("soak: no violations, no errors");
            std::process::ExitCode::SUCCESS
        } else {
            println!("soak: FAILED");
            std::process::ExitCode::FAILURE
        };
    }
    let real = real_hosts().is_some();
    let aerospike = if real {
        "aerospike (real)"
    } else {
        "aerospike (test server)"
    };
    let mut ok = true;
    ok &= soak::<Axum, _>("axum + memory", MemoryStore::default(), secs, users).await;
    ok &= soak::<Actix, _>("actix + memory", MemoryStore::default(), secs, users).await;
    let store = Served::default_store().await;
    ok &= soak::<Axum, _>(&format!("axum + {aerospike}"), store.clone(), secs, users).await;
    ok &= soak::<Actix, _>(&format!("actix + {aerospike}"), store, secs, users).await;
    if ok {
        println!("soak: no violations, no errors");
        std::process::ExitCode::SUCCESS
    } else {
        println!("soak: FAILED");
        std::process::ExitCode::FAILURE
    }
}
