//! [`AerospikeTestServer`]: one Aerospike node on 127.0.0.1, speaking the real wire
//! protocol to the real `aerospike` client, with faults on demand.
//!
//! It answers the info commands the client's cluster tending sends (node, cluster-name,
//! build, features, generations, peers, services, replicas: one node owning all 4096
//! partitions of each namespace) and the message protocol for read, write, operate
//! (bin writes and reads, touch, delete, expression writes, and the map operations
//! `put_items`, `put`, `clear`, `remove_by_key`, `remove_by_key_list`, `size`), touch and
//! delete, batch commands (each row, repeated rows included, answered as its own
//! command), scans (with a filter expression), background queries that write, with TTLs
//! and void-times, expiration over time, generations, last-update times, record-exists
//! actions, filter expressions (comparisons, `and`, `or`, `not`, `cond`, addition and
//! multiplication of integers, bin types, last update, time since update), truncation
//! with a per-node threshold, and the real result codes. Two namespaces exist: `test` (TTLs allowed) and `nottl`, which
//! like a namespace without `nsup-period` answers `FAIL_FORBIDDEN` to writes with a TTL.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::msgpack::{self, RawMap};

/// Seconds between the Unix epoch and Aerospike's (2010-01-01).
const CITRUSLEAF_EPOCH: i64 = 1_262_304_000;

/// Result codes the server answers with.
#[allow(missing_docs)]
pub mod rc {
    pub const OK: u8 = 0;
    pub const SERVER_ERROR: u8 = 1;
    pub const KEY_NOT_FOUND: u8 = 2;
    pub const GENERATION: u8 = 3;
    pub const PARAMETER: u8 = 4;
    pub const KEY_EXISTS: u8 = 5;
    pub const RECORD_TOO_BIG: u8 = 13;
    pub const KEY_BUSY: u8 = 14;
    pub const UNSUPPORTED_FEATURE: u8 = 16;
    pub const FAIL_FORBIDDEN: u8 = 22;
    pub const OP_NOT_APPLICABLE: u8 = 26;
    pub const FILTERED_OUT: u8 = 27;
    pub const NAMESPACE_NOT_FOUND: u8 = 20;
}

const INFO1_READ: u8 = 1;
const INFO1_GET_ALL: u8 = 1 << 1;
const INFO1_NOBINDATA: u8 = 1 << 5;
const INFO2_WRITE: u8 = 1;
const INFO2_DELETE: u8 = 1 << 1;
const INFO2_GENERATION: u8 = 1 << 2;
const INFO2_CREATE_ONLY: u8 = 1 << 5;
const INFO2_RESPOND_ALL_OPS: u8 = 1 << 7;
const INFO3_UPDATE_ONLY: u8 = 1 << 3;
const INFO3_CREATE_OR_REPLACE: u8 = 1 << 4;
const INFO3_REPLACE_ONLY: u8 = 1 << 5;

const OP_READ: u8 = 1;
const OP_WRITE: u8 = 2;
const OP_CDT_READ: u8 = 3;
const OP_CDT_WRITE: u8 = 4;
const OP_EXP_WRITE: u8 = 8;
const OP_TOUCH: u8 = 11;
const OP_DELETE: u8 = 14;

const PT_NULL: u8 = 0;
const PT_INTEGER: u8 = 1;
const PT_MAP: u8 = 19;

const TTL_NAMESPACE_DEFAULT: u32 = 0;
const TTL_NEVER: u32 = u32::MAX;
const TTL_DONT_UPDATE: u32 = u32::MAX - 1;

/// A stored bin: particle type and the particle's bytes as on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bin {
    /// The particle type (19 for maps).
    pub ptype: u8,
    /// The particle bytes.
    pub data: Vec<u8>,
}

/// A stored record, as the test can inspect it.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// The set name.
    pub set: String,
    /// Bins in write order.
    pub bins: Vec<(String, Bin)>,
    /// The generation (1 after the first write).
    pub generation: u32,
    /// Seconds since the Aerospike epoch when the record expires; 0 for never.
    pub void_time: u32,
    /// When the record was last written, Unix nanoseconds (the server's clock).
    pub last_update: i64,
}

impl StoredRecord {
    fn size(&self) -> usize {
        64 + self
            .bins
            .iter()
            .map(|(n, b)| n.len() + b.data.len() + 8)
            .sum::<usize>()
    }

    /// The bin named `name`.
    pub fn bin(&self, name: &str) -> Option<&Bin> {
        self.bins.iter().find(|(n, _)| n == name).map(|(_, b)| b)
    }

    fn set_bin(&mut self, name: &str, bin: Option<Bin>) {
        let at = self.bins.iter().position(|(n, _)| n == name);
        match (at, bin) {
            (Some(i), Some(b)) => self.bins[i].1 = b,
            (None, Some(b)) => self.bins.push((name.to_owned(), b)),
            (Some(i), None) => {
                self.bins.remove(i);
            }
            (None, None) => {}
        }
    }
}

/// Faults the server injects; change them at any time through
/// [`AerospikeTestServer::faults`].
#[derive(Debug, Default)]
pub struct Faults {
    /// Namespaces that answer `FAIL_FORBIDDEN` to writes carrying a TTL (besides
    /// `nottl`, which always does).
    pub forbid_ttl: HashSet<String>,
    /// Records larger than this many bytes are refused with `RECORD_TOO_BIG`.
    pub max_record_size: Option<usize>,
    /// The next this-many writes answer `KEY_BUSY` (`usize::MAX`: all of them).
    pub key_busy: usize,
    /// Every data command waits this long before answering.
    pub delay: Duration,
    /// The next data command waits this long before answering instead (taken by it).
    pub hold_next: Option<Duration>,
    /// The data command this many commands from now (0: the next) is carried out, then
    /// the connection closes without its answer: the answer lost, as when a node dies
    /// mid-reply.
    pub lose_answer_of: Option<usize>,
    /// The next this-many data commands close the connection instead of answering.
    pub drop_requests: usize,
    /// Every create-only write answers `KEY_EXISTS`, as if each id were taken.
    pub ids_taken: bool,
    /// The next this-many batch commands apply nothing and answer only the end marker:
    /// each row comes back to the client with no answer, which is how the client hands
    /// back the rows of a batch it lost (it could route none of its keys).
    pub unanswered_batches: usize,
}

type Key = (String, [u8; 20]);

#[derive(Default)]
struct Shared {
    records: Mutex<HashMap<Key, StoredRecord>>,
    faults: Mutex<Faults>,
    /// Seconds added to the real clock ([`AerospikeTestServer::advance`]).
    offset: AtomicI64,
    data_commands: AtomicUsize,
    /// Bumped by every truncate, reported as each set's `truncate_lut`.
    truncate_lut: AtomicI64,
}

impl Shared {
    fn now(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs() as i64;
        real + self.offset.load(Ordering::SeqCst) - CITRUSLEAF_EPOCH
    }

    /// The server's clock in Unix nanoseconds, [`advance`](AerospikeTestServer::advance)
    /// included.
    fn now_nanos(&self) -> i64 {
        let real = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_nanos() as i64;
        real + self.offset.load(Ordering::SeqCst) * 1_000_000_000
    }

    fn live(&self, rec: &StoredRecord) -> bool {
        rec.void_time == 0 || i64::from(rec.void_time) > self.now()
    }
}

/// One Aerospike node for tests. Dropping it stops it.
pub struct AerospikeTestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for AerospikeTestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AerospikeTestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl AerospikeTestServer {
    /// Starts a node on `127.0.0.1:0`.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let mut server = AerospikeTestServer {
            addr,
            shared: Arc::default(),
            tasks: Arc::default(),
            accept: None,
        };
        server.accept = Some(server.spawn_accept(listener));
        server
    }

    /// `127.0.0.1:PORT`, as the client's hosts string.
    pub fn hosts(&self) -> String {
        self.addr.to_string()
    }

    /// The faults to inject; lock, change, drop.
    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.shared.faults.lock().unwrap()
    }

    /// Moves the server's clock forward, so records expire without waiting.
    pub fn advance(&self, by: Duration) {
        self.shared
            .offset
            .fetch_add(by.as_secs() as i64, Ordering::SeqCst);
    }

    /// How many data (non-info) commands the server has received.
    pub fn data_commands(&self) -> usize {
        self.shared.data_commands.load(Ordering::SeqCst)
    }

    /// Every live record of `namespace`/`set`.
    pub fn records(&self, namespace: &str, set: &str) -> Vec<StoredRecord> {
        let records = self.shared.records.lock().unwrap();
        records
            .iter()
            .filter(|((ns, _), r)| ns == namespace && r.set == set && self.shared.live(r))
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Stops listening and closes every connection: clients see refused and dropped
    /// connections. The data is kept for [`restart`](Self::restart).
    pub fn stop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    /// Listens again on the same port, with the same data.
    pub async fn restart(&mut self) {
        self.stop();
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("rebind {}: {e}", self.addr),
            }
        };
        self.accept = Some(self.spawn_accept(listener));
    }

    fn spawn_accept(&self, listener: TcpListener) -> JoinHandle<()> {
        let shared = self.shared.clone();
        let tasks = self.tasks.clone();
        let port = self.addr.port();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let _ = stream.set_nodelay(true);
                let conn = tokio::spawn(serve_connection(stream, shared.clone(), port));
                let mut tasks = tasks.lock().unwrap();
                tasks.retain(|t| !t.is_finished());
                tasks.push(conn);
            }
        })
    }
}

impl Drop for AerospikeTestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve_connection(mut stream: TcpStream, shared: Arc<Shared>, port: u16) {
    loop {
        let mut header = [0u8; 8];
        if stream.read_exact(&mut header).await.is_err() {
            return;
        }
        let version = header[0];
        let kind = header[1];
        let len = u64::from_be_bytes([
            0, 0, header[2], header[3], header[4], header[5], header[6], header[7],
        ]);
        if version != 2 || len > 128 * 1024 * 1024 {
            return;
        }
        let mut body = vec![0u8; len as usize];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        let reply = match kind {
            1 => proto(
                1,
                info(&String::from_utf8_lossy(&body), &shared, port).as_bytes(),
            ),
            3 => {
                shared.data_commands.fetch_add(1, Ordering::SeqCst);
                let (delay, drop_it, lose_it) = {
                    let mut f = shared.faults.lock().unwrap();
                    let drop_it = f.drop_requests > 0;
                    if drop_it {
                        f.drop_requests -= 1;
                    }
                    let lose_it = !drop_it && f.lose_answer_of == Some(0);
                    f.lose_answer_of = match f.lose_answer_of {
                        Some(n) if !drop_it && n > 0 => Some(n - 1),
                        Some(n) if drop_it => Some(n),
                        _ => None,
                    };
                    (f.hold_next.take().unwrap_or(f.delay), drop_it, lose_it)
                };
                if drop_it {
                    return;
                }
                if lose_it {
                    let _ = message(&body, &shared);
                    return;
                }
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                proto(3, &message(&body, &shared))
            }
            _ => return,
        };
        if stream.write_all(&reply).await.is_err() {
            return;
        }
    }
}

fn proto(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    let len = (body.len() as u64).to_be_bytes();
    out.extend_from_slice(&[2, kind]);
    out.extend_from_slice(&len[2..]);
    out.extend_from_slice(body);
    out
}

const NAMESPACES: [&str; 2] = ["test", "nottl"];

fn info(request: &str, shared: &Shared, port: u16) -> String {
    let mut out = String::new();
    for name in request.split('\n').filter(|l| !l.is_empty()) {
        let value = info_value(name, shared, port);
        out.push_str(name);
        out.push('\t');
        out.push_str(&value);
        out.push('\n');
    }
    out
}

fn info_value(name: &str, shared: &Shared, port: u16) -> String {
    let all_partitions = base64::engine::general_purpose::STANDARD.encode([0xffu8; 512]);
    match name {
        "node" => "BB9000000000001".into(),
        "cluster-name" => "null".into(),
        "build" => "8.1.0.0".into(),
        "edition" => "Aerospike Community Edition".into(),
        "version" => "Aerospike Community Edition build 8.1.0.0".into(),
        "features" => "batch-any;blob-bits;cdt-list;cdt-map;float;geo;peers;pipelining;pscans;query-show;relaxed-sc;replicas;truncate-namespace;udf".into(),
        "partition-generation" | "peers-generation" | "rebalance-generation" => "1".into(),
        "partitions" => "4096".into(),
        "namespaces" => NAMESPACES.join(";"),
        "peers-clear-std" | "peers-clear-alt" | "peers-tls-std" | "peers-tls-alt" => {
            format!("1,{port},[]")
        }
        "service-clear-std" | "service-clear-alt" | "service" => format!("127.0.0.1:{port}"),
        "replicas" | "replicas-all" | "replicas-master" => NAMESPACES
            .iter()
            .map(|ns| format!("{ns}:0,1,{all_partitions}"))
            .collect::<Vec<_>>()
            .join(";"),
        _ => {
            if let Some(id) = name
                .strip_prefix("query-show:id=")
                .or_else(|| name.strip_prefix("query-show:trid="))
            {
                // Background queries are run to their end when they are received.
                return format!("trid={id}:status=done(ok):recs-succeeded=0:recs-failed=0");
            }
            if let Some(rest) = name.strip_prefix("namespace/") {
                let ttl = !(rest == "nottl" || shared.faults.lock().unwrap().forbid_ttl.contains(rest));
                let nsup = if ttl { 120 } else { 0 };
                return format!(
                    "ns_cluster_size=1;replication-factor=1;default-ttl=0;nsup-period={nsup};allow-ttl-without-nsup=false"
                );
            }
            if let Some(rest) = name.strip_prefix("sets/") {
                let mut parts = rest.splitn(2, '/');
                let ns = parts.next().unwrap_or_default();
                let set = parts.next().unwrap_or_default();
                let records = shared.records.lock().unwrap();
                let objects = records
                    .iter()
                    .filter(|((n, _), r)| n == ns && (set.is_empty() || r.set == set) && shared.live(r))
                    .count();
                let lut = shared.truncate_lut.load(Ordering::SeqCst);
                return format!("ns={ns}:set={set}:objects={objects}:tombstones=0:truncate_lut={lut};");
            }
            if let Some(args) = name.strip_prefix("truncate:").or_else(|| name.strip_prefix("truncate-namespace:")) {
                let mut ns = "";
                let mut set = None;
                for kv in args.split(';') {
                    match kv.split_once('=') {
                        Some(("namespace", v)) => ns = v,
                        Some(("set", v)) => set = Some(v),
                        _ => {}
                    }
                }
                let mut records = shared.records.lock().unwrap();
                records.retain(|(n, _), r| !(n == ns && set.is_none_or(|s| r.set == s)));
                shared.truncate_lut.fetch_add(1, Ordering::SeqCst);
                return "ok".into();
            }
            String::new()
        }
    }
}

#[derive(Clone)]
struct Op {
    op: u8,
    ptype: u8,
    name: String,
    data: Vec<u8>,
}

#[derive(Clone)]
struct Request {
    info1: u8,
    info2: u8,
    info3: u8,
    generation: u32,
    ttl: u32,
    namespace: String,
    set: String,
    digest: Option<[u8; 20]>,
    /// A scan/query (the query-id field), rather than a single-record command.
    query: bool,
    /// The filter expression (field 43), packed.
    filter: Option<Vec<u8>>,
    ops: Vec<Op>,
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The fields and operations of a message or of a batch row, from `pos`.
struct Parts {
    namespace: String,
    set: String,
    digest: Option<[u8; 20]>,
    query: bool,
    filter: Option<Vec<u8>>,
    /// The batch index field (41): the rows of a batch command.
    batch: Option<Vec<u8>>,
    ops: Vec<Op>,
    /// Where the parts end.
    end: usize,
}

fn parts(body: &[u8], mut pos: usize, n_fields: u16, n_ops: u16) -> Option<Parts> {
    let mut p = Parts {
        namespace: String::new(),
        set: String::new(),
        digest: None,
        query: false,
        filter: None,
        batch: None,
        ops: Vec::new(),
        end: 0,
    };
    for _ in 0..n_fields {
        let size = be_u32(body, pos)? as usize;
        let kind = *body.get(pos + 4)?;
        let data = body.get(pos + 5..pos + 4 + size)?;
        match kind {
            0 => p.namespace = String::from_utf8_lossy(data).into_owned(),
            1 => p.set = String::from_utf8_lossy(data).into_owned(),
            4 => p.digest = Some(data.try_into().ok()?),
            7 => p.query = true,
            41 => p.batch = Some(data.to_vec()),
            43 => p.filter = Some(data.to_vec()),
            _ => {}
        }
        pos += 4 + size;
    }
    for _ in 0..n_ops {
        let size = be_u32(body, pos)? as usize;
        let op = *body.get(pos + 4)?;
        let ptype = *body.get(pos + 5)?;
        let name_len = usize::from(*body.get(pos + 7)?);
        let name = String::from_utf8_lossy(body.get(pos + 8..pos + 8 + name_len)?).into_owned();
        let data = body.get(pos + 8 + name_len..pos + 4 + size)?.to_vec();
        p.ops.push(Op {
            op,
            ptype,
            name,
            data,
        });
        pos += 4 + size;
    }
    p.end = pos;
    Some(p)
}

fn parse(body: &[u8]) -> Option<(Request, Option<Vec<u8>>)> {
    let header = usize::from(*body.first()?);
    let p = parts(body, header, be_u16(body, 18)?, be_u16(body, 20)?)?;
    let request = Request {
        info1: body[1],
        info2: *body.get(2)?,
        info3: *body.get(3)?,
        generation: be_u32(body, 6)?,
        ttl: be_u32(body, 10)?,
        namespace: p.namespace,
        set: p.set,
        digest: p.digest,
        query: p.query,
        filter: p.filter,
        ops: p.ops,
    };
    Some((request, p.batch))
}

const BATCH_MSG_REPEAT: u8 = 1;
const BATCH_MSG_INFO4: u8 = 0x10;
const BATCH_MSG_GEN: u8 = 4;

/// The rows of a batch index field: each row's index and its request (a repeated row
/// takes the previous row's request with its own digest).
fn batch_rows(field: &[u8]) -> Option<Vec<(u32, Request)>> {
    let count = be_u32(field, 0)?;
    let mut pos = 5; // the count, then the batch flags
    let mut rows: Vec<(u32, Request)> = Vec::new();
    for _ in 0..count {
        let index = be_u32(field, pos)?;
        let digest: [u8; 20] = field.get(pos + 4..pos + 24)?.try_into().ok()?;
        let kind = *field.get(pos + 24)?;
        pos += 25;
        let mut request = if kind & BATCH_MSG_REPEAT != 0 {
            rows.last()?.1.clone()
        } else {
            let (info1, info2, info3) =
                (*field.get(pos)?, *field.get(pos + 1)?, *field.get(pos + 2)?);
            pos += 3;
            if kind & BATCH_MSG_INFO4 != 0 {
                pos += 1;
            }
            let mut generation = 0;
            if kind & BATCH_MSG_GEN != 0 {
                generation = u32::from(be_u16(field, pos)?);
                pos += 2;
            }
            let ttl = be_u32(field, pos)?;
            let p = parts(
                field,
                pos + 8,
                be_u16(field, pos + 4)?,
                be_u16(field, pos + 6)?,
            )?;
            pos = p.end;
            Request {
                info1,
                info2,
                info3,
                generation,
                ttl,
                namespace: p.namespace,
                set: p.set,
                digest: None,
                query: false,
                filter: p.filter,
                ops: p.ops,
            }
        };
        request.digest = Some(digest);
        rows.push((index, request));
    }
    Some(rows)
}

/// A batch command: each row answered as its own command would be, tagged with its
/// index, then the end marker.
fn batch(field: &[u8], shared: &Shared) -> Vec<u8> {
    let Some(rows) = batch_rows(field) else {
        return fail(rc::PARAMETER);
    };
    let mut out = Vec::new();
    let unanswered = {
        let mut f = shared.faults.lock().unwrap();
        let skip = f.unanswered_batches > 0;
        f.unanswered_batches -= usize::from(skip);
        skip
    };
    let rows = if unanswered { &[][..] } else { &rows[..] };
    for (index, request) in rows {
        let mut msg = execute(request, shared);
        msg[14..18].copy_from_slice(&index.to_be_bytes());
        out.extend_from_slice(&msg);
    }
    let mut last = reply(rc::OK, 0, 0, &[]);
    last[3] = INFO3_LAST;
    out.extend_from_slice(&last);
    out
}

fn reply(result: u8, generation: u32, void_time: u32, ops: &[(String, Option<Bin>)]) -> Vec<u8> {
    let mut out = vec![22, 0, 0, 0, 0, result];
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&void_time.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(ops.len() as u16).to_be_bytes());
    for (name, bin) in ops {
        let (ptype, data) = bin
            .as_ref()
            .map_or((PT_NULL, &[][..]), |b| (b.ptype, &b.data[..]));
        let size = 4 + name.len() + data.len();
        out.extend_from_slice(&(size as u32).to_be_bytes());
        out.extend_from_slice(&[OP_READ, ptype, 0, name.len() as u8]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
    }
    out
}

fn fail(code: u8) -> Vec<u8> {
    reply(code, 0, 0, &[])
}

fn message(body: &[u8], shared: &Shared) -> Vec<u8> {
    match parse(body) {
        None => fail(rc::PARAMETER),
        Some((_, Some(rows))) => batch(&rows, shared),
        Some((req, None)) => execute(&req, shared),
    }
}

/// One record's command.
fn execute(req: &Request, shared: &Shared) -> Vec<u8> {
    if !NAMESPACES.contains(&req.namespace.as_str()) {
        return fail(rc::NAMESPACE_NOT_FOUND);
    }
    if req.query {
        return scan(req, shared);
    }
    let Some(digest) = req.digest else {
        return fail(rc::PARAMETER);
    };
    let key = (req.namespace.clone(), digest);
    let mut records = shared.records.lock().unwrap();
    let existing = records.get(&key).filter(|r| shared.live(r)).cloned();
    if records.get(&key).is_some() && existing.is_none() {
        records.remove(&key); // expired: gone for good
    }
    if let (Some(filter), Some(rec)) = (&req.filter, &existing) {
        match filter::eval(filter, rec, shared.now_nanos()) {
            Ok(filter::Ev::Bool(true)) => {}
            Ok(_) => return fail(rc::FILTERED_OUT),
            Err(code) => return fail(code),
        }
    }

    if req.info2 & INFO2_DELETE != 0 {
        return match existing {
            None => fail(rc::KEY_NOT_FOUND),
            Some(r) if req.info2 & INFO2_GENERATION != 0 && r.generation != req.generation => {
                fail(rc::GENERATION)
            }
            Some(_) => {
                records.remove(&key);
                reply(rc::OK, 0, 0, &[])
            }
        };
    }
    if req.info2 & INFO2_WRITE == 0 {
        let Some(rec) = existing else {
            return fail(rc::KEY_NOT_FOUND);
        };
        if req.info1 & INFO1_READ == 0 || req.info1 & INFO1_NOBINDATA != 0 {
            return reply(rc::OK, rec.generation, rec.void_time, &[]);
        }
        let bins: Vec<(String, Option<Bin>)> =
            if req.info1 & INFO1_GET_ALL != 0 || req.ops.is_empty() {
                rec.bins
                    .iter()
                    .map(|(n, b)| (n.clone(), Some(b.clone())))
                    .collect()
            } else {
                let mut out = Vec::new();
                for op in &req.ops {
                    match op.op {
                        OP_READ => out.push((op.name.clone(), rec.bin(&op.name).cloned())),
                        OP_CDT_READ => match map_read(rec.bin(&op.name), &op.data) {
                            Ok(bin) => out.push((op.name.clone(), bin)),
                            Err(code) => return fail(code),
                        },
                        _ => return fail(rc::PARAMETER),
                    }
                }
                out
            };
        return reply(rc::OK, rec.generation, rec.void_time, &bins);
    }

    // A write or an operate with writes.
    {
        let mut faults = shared.faults.lock().unwrap();
        if faults.key_busy > 0 {
            if faults.key_busy != usize::MAX {
                faults.key_busy -= 1;
            }
            return fail(rc::KEY_BUSY);
        }
        let forbidden = req.namespace == "nottl" || faults.forbid_ttl.contains(&req.namespace);
        let real_ttl = !matches!(req.ttl, TTL_NAMESPACE_DEFAULT | TTL_NEVER | TTL_DONT_UPDATE);
        if forbidden && real_ttl {
            return fail(rc::FAIL_FORBIDDEN);
        }
    }
    let exists = existing.is_some();
    let taken = shared.faults.lock().unwrap().ids_taken;
    if req.info2 & INFO2_CREATE_ONLY != 0 && (exists || taken) {
        return fail(rc::KEY_EXISTS);
    }
    if req.info3 & (INFO3_UPDATE_ONLY | INFO3_REPLACE_ONLY) != 0 && !exists {
        return fail(rc::KEY_NOT_FOUND);
    }
    if req.info2 & INFO2_GENERATION != 0
        && existing.as_ref().map_or(0, |r| r.generation) != req.generation
    {
        return fail(rc::GENERATION);
    }
    let mut rec = existing.clone().unwrap_or(StoredRecord {
        set: req.set.clone(),
        bins: Vec::new(),
        generation: 0,
        void_time: 0,
        last_update: 0,
    });
    if req.info3 & (INFO3_CREATE_OR_REPLACE | INFO3_REPLACE_ONLY) != 0 {
        rec.bins.clear();
    }
    let respond_all = req.info2 & INFO2_RESPOND_ALL_OPS != 0;
    let mut results: Vec<(String, Option<Bin>)> = Vec::new();
    let mut deleted = false;
    for op in &req.ops {
        let result = match op.op {
            OP_WRITE => {
                let bin = (op.ptype != PT_NULL).then(|| Bin {
                    ptype: op.ptype,
                    data: op.data.clone(),
                });
                rec.set_bin(&op.name, bin);
                None
            }
            OP_TOUCH => {
                if !exists {
                    return fail(rc::KEY_NOT_FOUND);
                }
                None
            }
            OP_DELETE => {
                deleted = true;
                rec.bins.clear();
                None
            }
            OP_READ => {
                if req.info1 & INFO1_GET_ALL != 0 || op.name.is_empty() {
                    results.extend(rec.bins.iter().map(|(n, b)| (n.clone(), Some(b.clone()))));
                    continue;
                }
                results.push((op.name.clone(), rec.bin(&op.name).cloned()));
                continue;
            }
            OP_CDT_READ => match map_read(rec.bin(&op.name), &op.data) {
                Ok(bin) => {
                    results.push((op.name.clone(), bin));
                    continue;
                }
                Err(code) => return fail(code),
            },
            OP_CDT_WRITE => match map_write(&mut rec, &op.name, &op.data) {
                Ok(r) => r,
                Err(code) => return fail(code),
            },
            OP_EXP_WRITE => match exp_write(&mut rec, &op.name, &op.data, shared.now_nanos()) {
                Ok(()) => None,
                Err(code) => return fail(code),
            },
            _ => return fail(rc::UNSUPPORTED_FEATURE),
        };
        if respond_all {
            results.push((op.name.clone(), result));
        }
    }
    if let Some(max) = shared.faults.lock().unwrap().max_record_size {
        if rec.size() > max {
            return fail(rc::RECORD_TOO_BIG);
        }
    }
    if deleted || rec.bins.is_empty() {
        records.remove(&key);
        return reply(rc::OK, 0, 0, &results);
    }
    rec.generation += 1;
    rec.last_update = shared.now_nanos();
    rec.void_time = match req.ttl {
        TTL_NAMESPACE_DEFAULT | TTL_NEVER => 0,
        TTL_DONT_UPDATE => existing.map_or(0, |r| r.void_time),
        secs => (shared.now() + i64::from(secs)) as u32,
    };
    let (generation, void_time) = (rec.generation, rec.void_time);
    records.insert(key, rec);
    reply(rc::OK, generation, void_time, &results)
}

const INFO3_LAST: u8 = 1;

/// A foreground scan of a namespace/set: every live record (its digest, and the bins the
/// query projects, or none), then a last message. One node owns every partition, so the
/// partition list the client sends is all of them.
fn scan(req: &Request, shared: &Shared) -> Vec<u8> {
    if req.info2 & INFO2_WRITE != 0 {
        return background(req, shared);
    }
    let records = shared.records.lock().unwrap();
    let now = shared.now_nanos();
    let projected: Vec<&str> = req
        .ops
        .iter()
        .filter(|op| op.op == OP_READ)
        .map(|op| op.name.as_str())
        .collect();
    let with_bins = req.info1 & INFO1_NOBINDATA == 0;
    let mut out = Vec::new();
    for ((ns, digest), rec) in records.iter() {
        if *ns != req.namespace || (!req.set.is_empty() && rec.set != req.set) || !shared.live(rec)
        {
            continue;
        }
        if let Some(filter) = &req.filter {
            if filter::eval(filter, rec, now) != Ok(filter::Ev::Bool(true)) {
                continue;
            }
        }
        let bins: Vec<(String, Option<Bin>)> = if !with_bins {
            Vec::new()
        } else {
            rec.bins
                .iter()
                .filter(|(n, _)| projected.is_empty() || projected.contains(&n.as_str()))
                .map(|(n, b)| (n.clone(), Some(b.clone())))
                .collect()
        };
        let mut msg = reply(rc::OK, rec.generation, rec.void_time, &bins);
        // Fields: the digest, namespace and set, between the header and the bins.
        let mut fields = Vec::new();
        for (kind, data) in [
            (4u8, &digest[..]),
            (0, ns.as_bytes()),
            (1, rec.set.as_bytes()),
        ] {
            fields.extend_from_slice(&((data.len() + 1) as u32).to_be_bytes());
            fields.push(kind);
            fields.extend_from_slice(data);
        }
        msg[18..20].copy_from_slice(&3u16.to_be_bytes());
        msg.splice(22..22, fields);
        out.extend_from_slice(&msg);
    }
    let mut last = reply(rc::OK, 0, 0, &[]);
    last[3] = INFO3_LAST;
    out.extend_from_slice(&last);
    out
}

/// A background query that writes: `req`'s operations applied, as one write each, to
/// every live record of the namespace and set that its filter lets through, at once;
/// then the end marker. The job's status (`query-show`) is always "done".
fn background(req: &Request, shared: &Shared) -> Vec<u8> {
    let digests: Vec<[u8; 20]> = shared
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|((ns, _), r)| {
            *ns == req.namespace && (req.set.is_empty() || r.set == req.set) && shared.live(r)
        })
        .map(|((_, digest), _)| *digest)
        .collect();
    for digest in digests {
        let mut one = req.clone();
        one.query = false;
        one.digest = Some(digest);
        one.info3 |= INFO3_UPDATE_ONLY;
        // Each record's own outcome (filtered out, say) is the job's business only.
        let _ = execute(&one, shared);
    }
    let mut last = reply(rc::OK, 0, 0, &[]);
    last[3] = INFO3_LAST;
    last
}

/// An expression write: `[expression, flags]`; the expression's integer value goes to
/// `bin`. An expression that does not come to an integer fails the write.
fn exp_write(rec: &mut StoredRecord, bin: &str, data: &[u8], now: i64) -> Result<(), u8> {
    let parts = msgpack::list(data, 0).map_err(|_| rc::PARAMETER)?;
    let [exp, _flags] = &parts[..] else {
        return Err(rc::PARAMETER);
    };
    match filter::eval(exp, rec, now)? {
        filter::Ev::Int(v) => {
            rec.set_bin(bin, Some(int_bin(v)));
            Ok(())
        }
        _ => Err(rc::OP_NOT_APPLICABLE),
    }
}

const MAP_PUT: i64 = 67;
const MAP_PUT_ITEMS: i64 = 68;
const MAP_CLEAR: i64 = 75;
const MAP_REMOVE_BY_KEY: i64 = 76;
const MAP_REMOVE_KEY_LIST: i64 = 81;
const MAP_SIZE: i64 = 96;

fn map_of(bin: Option<&Bin>) -> Result<RawMap, u8> {
    match bin {
        None => Ok(RawMap::default()),
        Some(b) if b.ptype == PT_MAP => RawMap::parse(&b.data, 0).map_err(|_| rc::PARAMETER),
        Some(_) => Err(rc::OP_NOT_APPLICABLE),
    }
}

fn int_bin(v: i64) -> Bin {
    Bin {
        ptype: PT_INTEGER,
        data: v.to_be_bytes().to_vec(),
    }
}

/// `[opcode, args...]`, with no context.
fn cdt_args(data: &[u8]) -> Result<(i64, Vec<Vec<u8>>), u8> {
    let parts = msgpack::list(data, 0).map_err(|_| rc::PARAMETER)?;
    let (first, args) = parts.split_first().ok_or(rc::PARAMETER)?;
    let code = msgpack::read_int(first, 0).map_err(|_| rc::PARAMETER)?;
    if code == 0xff {
        return Err(rc::UNSUPPORTED_FEATURE); // nested contexts
    }
    Ok((code, args.to_vec()))
}

fn map_read(bin: Option<&Bin>, data: &[u8]) -> Result<Option<Bin>, u8> {
    let (code, _) = cdt_args(data)?;
    let map = map_of(bin)?;
    match code {
        MAP_SIZE => Ok(Some(int_bin(map.pairs.len() as i64))),
        _ => Err(rc::UNSUPPORTED_FEATURE),
    }
}

fn map_write(rec: &mut StoredRecord, bin: &str, data: &[u8]) -> Result<Option<Bin>, u8> {
    let (code, args) = cdt_args(data)?;
    let mut map = map_of(rec.bin(bin))?;
    let result = match code {
        MAP_PUT_ITEMS => {
            let items =
                RawMap::parse(args.first().ok_or(rc::PARAMETER)?, 0).map_err(|_| rc::PARAMETER)?;
            if rec.bin(bin).is_none() {
                map.order = items.order;
            }
            for (k, v) in items.pairs {
                map.put(k, v);
            }
            Some(int_bin(map.pairs.len() as i64))
        }
        MAP_PUT => {
            let k = args.first().ok_or(rc::PARAMETER)?.clone();
            let v = args.get(1).ok_or(rc::PARAMETER)?.clone();
            map.put(k, v);
            Some(int_bin(map.pairs.len() as i64))
        }
        MAP_CLEAR => {
            map.pairs.clear();
            None
        }
        MAP_REMOVE_BY_KEY => {
            map.remove(args.get(1).ok_or(rc::PARAMETER)?);
            None
        }
        MAP_REMOVE_KEY_LIST => {
            let keys =
                msgpack::list(args.get(1).ok_or(rc::PARAMETER)?, 0).map_err(|_| rc::PARAMETER)?;
            for k in keys {
                map.remove(&k);
            }
            None
        }
        _ => return Err(rc::UNSUPPORTED_FEATURE),
    };
    rec.set_bin(
        bin,
        Some(Bin {
            ptype: PT_MAP,
            data: map.encode(),
        }),
    );
    Ok(result)
}

/// Filter expressions: just what a session store's conditional writes use.
mod filter {
    use super::{msgpack, rc, StoredRecord, PT_INTEGER, PT_NULL};

    /// A value of an expression; `Unknown` where a bin is missing or of another type.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Ev {
        Int(i64),
        Bool(bool),
        Unknown,
    }

    const EQ: i64 = 1;
    const LE: i64 = 6;
    const AND: i64 = 16;
    const OR: i64 = 17;
    const NOT: i64 = 18;
    const ADD: i64 = 20;
    const MUL: i64 = 22;
    const LAST_UPDATE: i64 = 66;
    const SINCE_UPDATE: i64 = 67;
    const BIN: i64 = 81;
    const BIN_TYPE: i64 = 82;
    const COND: i64 = 123;
    const EXP_TYPE_INT: i64 = 2;

    /// Evaluates the packed expression `b` against `rec`, at `now` (Unix nanoseconds).
    pub(super) fn eval(b: &[u8], rec: &StoredRecord, now: i64) -> Result<Ev, u8> {
        let bad = |_| rc::PARAMETER;
        match b.first() {
            Some(0xc2) => return Ok(Ev::Bool(false)),
            Some(0xc3) => return Ok(Ev::Bool(true)),
            _ => {}
        }
        if let Ok(i) = msgpack::read_int(b, 0) {
            return Ok(Ev::Int(i));
        }
        let items = msgpack::list(b, 0).map_err(bad)?;
        let (op, args) = items.split_first().ok_or(rc::PARAMETER)?;
        let op = msgpack::read_int(op, 0).map_err(bad)?;
        let eval = |b: &[u8]| eval(b, rec, now);
        match op {
            BIN => {
                let [ty, name] = args else {
                    return Err(rc::PARAMETER);
                };
                if msgpack::read_int(ty, 0).map_err(bad)? != EXP_TYPE_INT {
                    return Err(rc::PARAMETER);
                }
                let name = raw_string(name)?;
                Ok(match rec.bin(&name) {
                    Some(bin) if bin.ptype == PT_INTEGER && bin.data.len() == 8 => Ev::Int(
                        i64::from_be_bytes(bin.data[..].try_into().expect("8 bytes")),
                    ),
                    _ => Ev::Unknown,
                })
            }
            BIN_TYPE => {
                let [name] = args else {
                    return Err(rc::PARAMETER);
                };
                let name = raw_string(name)?;
                Ok(Ev::Int(i64::from(
                    rec.bin(&name).map_or(PT_NULL, |bin| bin.ptype),
                )))
            }
            LAST_UPDATE => Ok(Ev::Int(rec.last_update)),
            SINCE_UPDATE => Ok(Ev::Int((now - rec.last_update).max(0) / 1_000_000)),
            ADD | MUL => {
                let mut acc = if op == ADD { 0i64 } else { 1 };
                for arg in args {
                    let Ev::Int(v) = eval(arg)? else {
                        return Ok(Ev::Unknown);
                    };
                    acc = if op == ADD {
                        acc.wrapping_add(v)
                    } else {
                        acc.wrapping_mul(v)
                    };
                }
                Ok(Ev::Int(acc))
            }
            COND => {
                // condition, value, condition, value, ..., default
                let (default, pairs) = args.split_last().ok_or(rc::PARAMETER)?;
                for pair in pairs.chunks(2) {
                    let [test, value] = pair else {
                        return Err(rc::PARAMETER);
                    };
                    if eval(test)? == Ev::Bool(true) {
                        return eval(value);
                    }
                }
                eval(default)
            }
            EQ..=LE => {
                let [l, r] = args else {
                    return Err(rc::PARAMETER);
                };
                let (Ev::Int(l), Ev::Int(r)) = (eval(l)?, eval(r)?) else {
                    return Ok(Ev::Unknown);
                };
                Ok(Ev::Bool(match op {
                    1 => l == r,
                    2 => l != r,
                    3 => l > r,
                    4 => l >= r,
                    5 => l < r,
                    _ => l <= r,
                }))
            }
            AND | OR => {
                // Three-valued: a deciding operand wins over an unknown one.
                let decisive = op == OR;
                let mut unknown = false;
                for arg in args {
                    match eval(arg)? {
                        Ev::Bool(v) if v == decisive => return Ok(Ev::Bool(decisive)),
                        Ev::Bool(_) => {}
                        _ => unknown = true,
                    }
                }
                Ok(if unknown {
                    Ev::Unknown
                } else {
                    Ev::Bool(!decisive)
                })
            }
            NOT => match args {
                [arg] => Ok(match eval(arg)? {
                    Ev::Bool(v) => Ev::Bool(!v),
                    _ => Ev::Unknown,
                }),
                _ => Err(rc::PARAMETER),
            },
            _ => Err(rc::PARAMETER),
        }
    }

    /// A msgpack string's bytes (bin names are packed without a particle type).
    fn raw_string(b: &[u8]) -> Result<String, u8> {
        let header = match b.first() {
            Some(0xa0..=0xbf) => 1,
            Some(0xd9) => 2,
            Some(0xda) => 3,
            Some(0xdb) => 5,
            _ => return Err(rc::PARAMETER),
        };
        Ok(String::from_utf8_lossy(b.get(header..).ok_or(rc::PARAMETER)?).into_owned())
    }
}
