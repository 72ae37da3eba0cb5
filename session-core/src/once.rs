//! [`LoadOnce`]: the "loaded" mark of a request's session, set by the first load that
//! succeeds while any other load of the same request waits for it.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

const EMPTY: u8 = 0;
const LOADING: u8 = 1;
/// Loading, and a load of the same request waits for it to end.
const WAITED: u8 = 2;
const LOADED: u8 = 3;

/// An async once-cell holding nothing but "done", for the load of a request's session.
///
/// One load runs at a time; others wait for it and return once it succeeded, or try
/// themselves after it failed or was cancelled. A request loads its session from one
/// task nearly always, so that path is a compare-and-swap and a store: no semaphore (as
/// `tokio::sync::OnceCell` takes), and no notification unless someone waits.
#[derive(Debug, Default)]
pub(crate) struct LoadOnce {
    state: AtomicU8,
    done: Notify,
}

impl LoadOnce {
    pub(crate) fn is_done(&self) -> bool {
        self.state.load(Ordering::Acquire) == LOADED
    }

    /// Runs `load` unless a load succeeded already; while another runs, waits for it.
    pub(crate) async fn get_or_try_init<E, F, Fut>(&self, load: F) -> Result<(), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        loop {
            match self
                .state
                .compare_exchange(EMPTY, LOADING, Ordering::Acquire, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(LOADED) => return Ok(()),
                Err(_) => self.wait().await,
            }
        }
        // Ours to run. Failed, or dropped mid-way: the next caller tries.
        let mut running = Running(self);
        load().await?;
        running.end(LOADED);
        Ok(())
    }

    /// Waits until the load running now ends, however it ends.
    async fn wait(&self) {
        let notified = self.done.notified();
        tokio::pin!(notified);
        // Registered before announcing ourselves, so the end's notification finds us.
        notified.as_mut().enable();
        let announced =
            self.state
                .compare_exchange(LOADING, WAITED, Ordering::AcqRel, Ordering::Acquire);
        if matches!(announced, Ok(_) | Err(WAITED)) {
            notified.await;
        }
    }
}

/// The running load: ends it as failed unless [`end`](Self::end) said otherwise.
struct Running<'a>(&'a LoadOnce);

impl Running<'_> {
    fn end(&mut self, state: u8) {
        if self.0.state.swap(state, Ordering::AcqRel) == WAITED {
            self.0.done.notify_waiters();
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.0.state.load(Ordering::Relaxed) != LOADED {
            self.end(EMPTY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;
    use std::time::Duration;

    async fn slow_load(runs: &AtomicUsize, ok: bool) -> Result<(), &'static str> {
        runs.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if ok {
            Ok(())
        } else {
            Err("store down")
        }
    }

    /// `fut`'s output, or a failed test when a waiter is stranded.
    async fn within<T>(fut: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(5), fut)
            .await
            .expect("no load waits forever")
    }

    #[tokio::test]
    async fn concurrent_loads_run_once() {
        let once = LoadOnce::default();
        let runs = AtomicUsize::new(0);
        let load = || once.get_or_try_init(|| slow_load(&runs, true));
        let all = within(async { tokio::join!(load(), load(), load(), load(), load()) }).await;
        assert_eq!(all, (Ok(()), Ok(()), Ok(()), Ok(()), Ok(())));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(once.is_done());
        once.get_or_try_init(|| slow_load(&runs, true))
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "done stays done");
    }

    #[tokio::test]
    async fn a_failed_load_lets_the_next_caller_try() {
        let once = LoadOnce::default();
        let runs = AtomicUsize::new(0);
        let (first, second) = within(async {
            tokio::join!(
                once.get_or_try_init(|| slow_load(&runs, false)),
                once.get_or_try_init(|| slow_load(&runs, true)),
            )
        })
        .await;
        assert_eq!(first, Err("store down"));
        assert_eq!(
            second,
            Ok(()),
            "the waiter ran its own load after the failure"
        );
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(once.is_done());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_load_does_not_strand_its_waiters() {
        let once = Arc::new(LoadOnce::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let (o, r) = (once.clone(), runs.clone());
        let cancelled = tokio::spawn(async move {
            let _ = o.get_or_try_init(|| slow_load(&r, true)).await;
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (o, r) = (once.clone(), runs.clone());
        let waiter = tokio::spawn(async move { o.get_or_try_init(|| slow_load(&r, true)).await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        cancelled.abort();
        let waited = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter is not stranded")
            .unwrap();
        assert_eq!(waited, Ok(()));
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert!(once.is_done());
    }
}
