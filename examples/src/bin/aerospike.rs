//! Sessions in Aerospike, on axum.
//!
//! `AEROSPIKE_HOSTS=127.0.0.1:3000 cargo run -p examples --bin aerospike`.
//!
//! The namespace (`test` here) must let records carry a TTL: give it an `nsup-period`
//! (e.g. `nsup-period 120` in its `namespace` block of `aerospike.conf`), or set
//! `allow-ttl-without-nsup true`. Without either, Aerospike refuses every write with a
//! TTL and `connect` says so. The record's TTL is the session cookie's `Max-Age`.

use axum::{routing::get, Router};
use session_aerospike::AerospikeStore;
use session_axum::{Expiry, Session, SessionLayer};

async fn count(session: Session) -> String {
    session.update_or("visits", 0u64, |n| *n += 1).unwrap();
    let n: u64 = session.get("visits").unwrap().unwrap_or(0);
    format!("visit {n}, stored in Aerospike")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hosts = std::env::var("AEROSPIKE_HOSTS")
        .map_err(|_| "set AEROSPIKE_HOSTS=host:port[,host:port...]")?;
    let store = AerospikeStore::builder()
        .namespace("test")
        .set("sessions")
        .connect(&hosts)
        .await?;
    let app = Router::new().route("/", get(count)).layer(
        SessionLayer::new(store)
            .with_secure(false) // plain http on localhost only
            .with_expiry(Expiry::OnInactivity(time::Duration::minutes(30))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3005").await?;
    println!("http://{}/", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
