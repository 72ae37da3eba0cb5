//! The split watch: store calls wait while the cluster's nodes disagree about which
//! cluster they form.
//!
//! A node frozen past the heartbeat timeout is evicted, and the others take over its
//! partitions. When it runs again it still believes in the cluster it left, and serves
//! the partitions it mastered from the copies it had, until it notices and rejoins
//! (about 3 s on the test clusters). A client that has not dropped it yet routes to it:
//! reads see those old copies (a logged-out session live), and a write lands on them and
//! then wins over the cluster's newer copy when the node rejoins (measured: a logout
//! undone for good). Aerospike's AP mode has nothing that tells a client apart such a
//! claim from the current one.
//!
//! Every node tells its cluster key, though: the returned node reports the old one while
//! the others report the new one. The watch asks each node the client knows for it
//! every [`INTERVAL`] (one `statistics` info call per node, about 2 KB), and while two
//! nodes report different keys, store calls wait for them to agree again, within their
//! budget. A node just started that has no cluster yet (key 0) is left out, and so is a
//! node that has not answered for [`GRACE`], so a node's death and a rolling restart hold
//! nothing up; the moments in which the nodes switch to a new key together are held up
//! for a poll. A node that missed fewer polls than that counts with the key it last
//! reported: a returned node slow to answer (it is catching up after a freeze) keeps the
//! calls waiting, where leaving it out let a read through to its old copies (seen in CI:
//! one read of an ended session live, 1.3 s after the node returned).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;
use std::time::{Duration, Instant};

use aerospike::{AdminPolicy, Client};
use tokio::sync::Notify;

/// How often the watch asks the nodes.
pub(crate) const INTERVAL: Duration = Duration::from_millis(50);

/// How long a node that stopped answering still counts with the key it last reported:
/// shorter than a heartbeat timeout (1.5 s by default), so a dead node's last key
/// expires before the others form their new cluster and nothing waits on it.
pub(crate) const GRACE: Duration = Duration::from_millis(500);

/// Whether the nodes agree; shared by the store and its watch task.
#[derive(Debug)]
pub(crate) struct SplitWatch {
    settled: AtomicBool,
    changed: Notify,
}

impl SplitWatch {
    pub(crate) fn new() -> SplitWatch {
        SplitWatch {
            settled: AtomicBool::new(true),
            changed: Notify::new(),
        }
    }

    /// Whether the nodes agreed at the last poll.
    pub(crate) fn settled(&self) -> bool {
        self.settled.load(Ordering::Acquire)
    }

    /// Waits until the nodes agree, `budget` at most; `false` if they still do not.
    pub(crate) async fn wait(&self, budget: Duration) -> bool {
        let agreed = async {
            loop {
                let changed = self.changed.notified();
                if self.settled() {
                    return;
                }
                changed.await;
            }
        };
        tokio::time::timeout(budget, agreed).await.is_ok()
    }

    fn set(&self, settled: bool) {
        if self.settled.swap(settled, Ordering::AcqRel) != settled {
            if settled {
                tracing::info!("the Aerospike cluster's nodes agree again; store calls go on");
                self.changed.notify_waiters();
            } else {
                tracing::warn!(
                    "Aerospike nodes report different clusters (a node returned from a split \
                     and has not rejoined): session store calls wait until they agree"
                );
            }
        }
    }
}

/// Polls the nodes of `client` every [`INTERVAL`] while `owner` (the store) lives.
pub(crate) async fn run<T: Send + Sync + 'static>(
    owner: Weak<T>,
    client: Weak<Client>,
    watch: Weak<SplitWatch>,
) {
    let admin = AdminPolicy {
        timeout: u32::try_from(INTERVAL.as_millis() * 4).unwrap_or(u32::MAX),
    };
    // Each node's last reported key, and when it reported it.
    let mut last: HashMap<String, (String, Instant)> = HashMap::new();
    loop {
        tokio::time::sleep(INTERVAL).await;
        if owner.strong_count() == 0 {
            return;
        }
        let (Some(client), Some(watch)) = (client.upgrade(), watch.upgrade()) else {
            return;
        };
        let nodes = client.nodes();
        if nodes.len() < 2 {
            last.clear();
            watch.set(true);
            continue;
        }
        let now = Instant::now();
        for node in &nodes {
            let Ok(info) = node.info(&admin, &["statistics"]).await else {
                continue;
            };
            match info.get("statistics").and_then(|s| cluster_key(s)) {
                Some(key) => {
                    last.insert(node.name().to_owned(), (key, now));
                }
                None => {
                    last.remove(node.name());
                }
            }
        }
        last.retain(|name, (_, seen)| {
            now.duration_since(*seen) <= GRACE && nodes.iter().any(|n| n.name() == name)
        });
        watch.set(agree(last.values().map(|(key, _)| key.as_str())));
    }
}

/// Whether the keys are all one.
fn agree<'a>(mut keys: impl Iterator<Item = &'a str>) -> bool {
    let Some(first) = keys.next() else {
        return true;
    };
    keys.all(|k| k == first)
}

/// The non-zero `cluster_key` of a `statistics` answer.
fn cluster_key(statistics: &str) -> Option<String> {
    let key = statistics
        .split(';')
        .find_map(|kv| kv.strip_prefix("cluster_key="))?;
    (!key.trim_start_matches('0').is_empty()).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_agree_when_they_report_one_key() {
        assert!(agree([].into_iter()));
        assert!(agree(["a1", "a1"].into_iter()));
        assert!(!agree(["a1", "b2", "a1"].into_iter()));
    }

    #[test]
    fn the_cluster_key_is_read_and_a_node_without_a_cluster_has_none() {
        let stats = "failed_best_practices=true;cluster_size=3;cluster_key=ABB3EABFC029;cluster_generation=4";
        assert_eq!(cluster_key(stats).as_deref(), Some("ABB3EABFC029"));
        assert_eq!(cluster_key("cluster_size=0;cluster_key=0;x=1"), None);
        assert_eq!(cluster_key("cluster_key=000"), None);
        assert_eq!(cluster_key("cluster_size=1"), None);
    }

    #[tokio::test]
    async fn waiters_go_on_when_the_nodes_agree_and_not_before() {
        let watch = std::sync::Arc::new(SplitWatch::new());
        assert!(watch.wait(Duration::ZERO).await, "settled from the start");
        watch.set(false);
        assert!(!watch.wait(Duration::from_millis(20)).await);
        let waiting = tokio::spawn({
            let watch = watch.clone();
            async move { watch.wait(Duration::from_secs(10)).await }
        });
        tokio::task::yield_now().await;
        watch.set(true);
        assert!(waiting.await.unwrap());
    }
}
