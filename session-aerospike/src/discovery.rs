//! Nodes that tell their peers an address this machine cannot reach.
//!
//! The client finds a cluster's nodes through the addresses they advertise (their
//! `access-address`), and goes back to the seed addresses it was given only when it knows
//! no node at all. A node that listens on one address but advertises another (a server
//! bound to `127.0.0.1` advertises its first other interface; a node behind NAT advertises
//! its private address) is reached through its seed at first, but once it has left the
//! client's view (every restart does that) it is never found again: after a rolling
//! restart the client knows too few nodes to route every partition, and requests fail
//! until the app restarts.
//!
//! [`check`] asks each node the client reached which address it advertises and whether
//! that one answers from here; [`ip_map`] turns what it found into the client's
//! `ip_map`, which rewrites the advertised address to the one the client reached the
//! node at, where the two differ only in the host.

use std::collections::HashMap;
use std::time::Duration;

use aerospike::{AdminPolicy, Client, ClientPolicy};

/// How long one connection attempt to an advertised address may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// A node whose advertised addresses do not answer from this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreachable {
    /// The node's name.
    pub(crate) node: String,
    /// The host and port the client reached it at.
    pub(crate) reached: (String, u16),
    /// What it advertises, none of which answered.
    pub(crate) advertised: Vec<(String, u16)>,
}

/// The info command that names the address a node advertises, as the client's own
/// peer discovery asks for it.
fn service_command(policy: &ClientPolicy) -> &'static str {
    #[cfg(feature = "tls")]
    if policy.tls_policy.is_some() {
        return if policy.use_services_alternate {
            "service-tls-alt"
        } else {
            "service-tls-std"
        };
    }
    if policy.use_services_alternate {
        "service-clear-alt"
    } else {
        "service-clear-std"
    }
}

/// `host:port;host:port` (an IPv6 host in brackets), as the service commands answer.
fn parse_addresses(text: &str) -> Vec<(String, u16)> {
    text.trim()
        .split(';')
        .filter_map(|entry| {
            let (host, port) = entry.trim().rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Some((host.to_owned(), port.parse().ok()?))
        })
        .filter(|(host, _)| !host.is_empty())
        .collect()
}

async fn answers(host: &str, port: u16) -> bool {
    let connect = tokio::net::TcpStream::connect((host, port));
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, connect).await,
        Ok(Ok(_))
    )
}

/// The nodes the client knows whose advertised addresses all fail to answer from here,
/// while the client reaches them at another. A node that does not answer the question
/// is left out: nothing is known of it.
pub(crate) async fn check(client: &Client, policy: &ClientPolicy) -> Vec<Unreachable> {
    let command = service_command(policy);
    let admin = AdminPolicy {
        timeout: policy.timeout,
    };
    let mut found = Vec::new();
    for node in client.nodes() {
        let Ok(info) = node.info(&admin, &[command]).await else {
            continue;
        };
        let advertised = parse_addresses(info.get(command).map_or("", String::as_str));
        let host = node.host();
        let reached = (host.name, host.port);
        if advertised.is_empty() || advertised.contains(&reached) {
            continue;
        }
        let mut any = false;
        for (host, port) in &advertised {
            if answers(host, *port).await {
                any = true;
                break;
            }
        }
        if !any {
            found.push(Unreachable {
                node: node.name().to_owned(),
                reached,
                advertised,
            });
        }
    }
    found
}

/// The `ip_map` that sends the client to the addresses it reached the nodes at, over
/// `configured` (the application's own entries win), or `None` when it would add
/// nothing. An advertised host is mapped only where its port is the one the client
/// reached (an `ip_map` rewrites hosts, not ports) and only to one reached host.
pub(crate) fn ip_map(
    found: &[Unreachable],
    configured: Option<&HashMap<String, String>>,
) -> Option<HashMap<String, String>> {
    let mut wanted: HashMap<&str, Option<&str>> = HashMap::new();
    for node in found {
        for (host, port) in &node.advertised {
            if *port != node.reached.1 {
                continue;
            }
            let to = node.reached.0.as_str();
            wanted
                .entry(host.as_str())
                .and_modify(|was| {
                    if *was != Some(to) {
                        // Two nodes behind one advertised host, reached at two others:
                        // no single rewrite is right.
                        *was = None;
                    }
                })
                .or_insert(Some(to));
        }
    }
    let mut map = configured.cloned().unwrap_or_default();
    let mut added = false;
    for (from, to) in wanted {
        let Some(to) = to else { continue };
        if !map.contains_key(from) {
            map.insert(from.to_owned(), to.to_owned());
            added = true;
        }
    }
    added.then_some(map)
}

/// What [`check`] found, for the log: `node at reached advertises a, b`.
pub(crate) fn describe(found: &[Unreachable]) -> String {
    let address = |(host, port): &(String, u16)| format!("{host}:{port}");
    found
        .iter()
        .map(|u| {
            let advertised: Vec<String> = u.advertised.iter().map(address).collect();
            format!(
                "node {} at {} advertises {}",
                u.node,
                address(&u.reached),
                advertised.join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, reached: (&str, u16), advertised: &[(&str, u16)]) -> Unreachable {
        Unreachable {
            node: name.to_owned(),
            reached: (reached.0.to_owned(), reached.1),
            advertised: advertised
                .iter()
                .map(|(h, p)| ((*h).to_owned(), *p))
                .collect(),
        }
    }

    #[test]
    fn service_answers_parse() {
        assert_eq!(
            parse_addresses("192.0.2.2:3000;[fd00::2]:3000\n"),
            vec![("192.0.2.2".into(), 3000), ("fd00::2".into(), 3000)]
        );
        assert!(parse_addresses("").is_empty());
        assert!(parse_addresses("garbage;:12;host:notaport").is_empty());
    }

    #[test]
    fn one_machine_maps_its_advertised_host_to_the_reached_one() {
        // Three nodes on one machine, bound to loopback, advertising the machine's
        // interface address on their own ports.
        let found = [
            node("A", ("127.0.0.1", 3000), &[("192.0.2.2", 3000)]),
            node("B", ("127.0.0.1", 3010), &[("192.0.2.2", 3010)]),
            node("C", ("127.0.0.1", 3020), &[("192.0.2.2", 3020)]),
        ];
        let map = ip_map(&found, None).expect("a mapping");
        assert_eq!(map.len(), 1);
        assert_eq!(map["192.0.2.2"], "127.0.0.1");
    }

    #[test]
    fn no_mapping_where_ports_differ_or_hosts_conflict_or_the_app_chose() {
        // A port-mapping NAT: an ip_map cannot rewrite ports.
        let nat = [node("A", ("127.0.0.1", 4000), &[("172.17.0.2", 3000)])];
        assert_eq!(ip_map(&nat, None), None);
        // One advertised host reached at two hosts: no single rewrite.
        let conflict = [
            node("A", ("10.0.0.1", 3000), &[("172.17.0.2", 3000)]),
            node("B", ("10.0.0.2", 3000), &[("172.17.0.2", 3000)]),
        ];
        assert_eq!(ip_map(&conflict, None), None);
        // The application's own entry wins, and nothing else is added.
        let mine: HashMap<String, String> = [("192.0.2.2".into(), "10.9.9.9".into())].into();
        let found = [node("A", ("127.0.0.1", 3000), &[("192.0.2.2", 3000)])];
        assert_eq!(ip_map(&found, Some(&mine)), None);
        // Other entries of the application's are kept beside the added one.
        let other: HashMap<String, String> = [("10.1.1.1".into(), "10.2.2.2".into())].into();
        let map = ip_map(&found, Some(&other)).expect("a mapping");
        assert_eq!(map["10.1.1.1"], "10.2.2.2");
        assert_eq!(map["192.0.2.2"], "127.0.0.1");
    }
}
