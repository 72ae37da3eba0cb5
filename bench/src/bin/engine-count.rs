//! Runs N requests of one engine workload on `MemoryStore`, with no executor and no
//! HTTP, for instruction counts: run it under `valgrind --tool=callgrind` with N and
//! with 0, and the difference over N is the engine's cost per request, repeatable to
//! the instruction.
//!
//! `engine-count WORKLOAD N [EXTRA]`, WORKLOAD one of `counter` (read a number, add 1,
//! write it back), `read`, `plain` (the cookie is sent, the session never loaded), `new`
//! (a new session per request); EXTRA more values in the session (a user id, a token,
//! a short list, ...: a session as apps keep them), 0 by default.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use session_core::{MemoryStore, SessionConfig, SessionEngine};

/// Polls a future that never waits (MemoryStore's) to completion.
fn ready<F: Future>(fut: F) -> F::Output {
    match pin!(fut).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("MemoryStore futures complete at once"),
    }
}

fn request(
    engine: &SessionEngine,
    cookie: Option<&str>,
    load: bool,
    write: bool,
) -> Option<String> {
    ready(async {
        // As both adapters do: the ids are read when a handler extracts the session.
        let lazy = engine.start_deferred();
        if load {
            lazy.identify(cookie.map(str::as_bytes));
            let session = lazy.load().await.expect("memory never fails");
            let n: u64 = session.get("n").expect("a number").unwrap_or(0);
            if write {
                session.insert("n", n + 1).expect("a number");
            }
        }
        // As both adapters do: a future only when a store call is due.
        let done = match lazy.try_finish(200) {
            session_core::Finish::Ready(done) => done,
            session_core::Finish::Store(call) => call.run().await,
        };
        done.header()
            .map(|h| h.split(';').next().expect("a pair").to_owned())
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "counter".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let engine = SessionEngine::new(
        MemoryStore::default(),
        SessionConfig::builder()
            .secure(false)
            .build()
            .expect("a valid config"),
    );
    let extra: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let cookie = request(&engine, None, true, true).expect("a new session");
    if extra > 0 {
        ready(async {
            let lazy = engine.start_deferred();
            lazy.identify(Some(cookie.as_bytes()));
            let session = lazy.load().await.expect("memory never fails");
            for i in 0..extra {
                let value = match i % 4 {
                    0 => serde_json::json!(1000 + i),
                    1 => serde_json::json!("a3f9c2e1b7d84a6f9e0c1d2b3a4f5e6d"),
                    2 => serde_json::json!(["en", "fr"]),
                    _ => serde_json::json!({"theme": "dark", "seen": true}),
                };
                session.insert(&format!("key{i}"), value).expect("fits");
            }
            let _ = lazy.finish(200).await;
        });
    }
    let (load, write, with_cookie) = match workload.as_str() {
        "counter" => (true, true, true),
        "read" => (true, false, true),
        "plain" => (false, false, true),
        "new" => (true, true, false),
        other => panic!("unknown workload {other}"),
    };
    for _ in 0..n {
        let cookie = with_cookie.then_some(cookie.as_str());
        std::hint::black_box(request(&engine, cookie, load, write));
    }
}
