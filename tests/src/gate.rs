//! Named gates that hold a handler at a chosen point until the test opens them: for
//! races that must happen in a set order, without guessing at sleeps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;

struct Gate {
    reached: AtomicBool,
    open: Semaphore,
}

fn gate(name: &str) -> Arc<Gate> {
    static GATES: OnceLock<Mutex<HashMap<String, Arc<Gate>>>> = OnceLock::new();
    let mut gates = GATES.get_or_init(Default::default).lock().unwrap();
    gates
        .entry(name.to_owned())
        .or_insert_with(|| {
            Arc::new(Gate {
                reached: AtomicBool::new(false),
                open: Semaphore::new(0),
            })
        })
        .clone()
}

/// Called by a handler: marks the gate reached, then waits until it is opened.
pub async fn pass(name: &str) {
    let g = gate(name);
    g.reached.store(true, Ordering::SeqCst);
    g.open
        .acquire()
        .await
        .expect("gates are never closed")
        .forget();
}

/// Waits (10 s at most) until a handler has reached the gate `name`.
pub async fn reached(name: &str) {
    let g = gate(name);
    for _ in 0..1_000 {
        if g.reached.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no handler reached the gate {name:?}");
}

/// Lets the handler waiting at `name` go on.
pub fn open(name: &str) {
    gate(name).open.add_permits(1);
}
