//! Coalescing: a store keeps at most `limit` commands in flight; operations that arrive
//! meanwhile wait, and leave together as one batch command.
//!
//! An operation that finds a place free queues itself, yields once to the runtime (so
//! every request that is ready to run reaches its own store operation and queues it
//! too), then sends everything queued: alone, as the plain single-record command, when
//! nothing joined it, so at low load nothing waits beyond that yield. Yielding matters
//! most when the database shares the app's core: the send wakes the database, the
//! kernel runs it at once, and the answer is in before the app looks at another
//! request, so without it no operation would ever find another to join.
//!
//! Operations that find no place wait for a place holder to send them: when a command
//! returns with operations waiting, a task of its own (the driver) sends batch after
//! batch until none wait. A command that has been in flight past [`PATIENCE`] (its node
//! died or hangs) stops counting against the limit, so the operations behind it get
//! places of their own instead of waiting out its timeout; and when no later operation
//! comes, the first that waits keeps a timer that does the same after [`PATIENCE`]. A
//! batch of several is always sent by a driver, never by a request's own future, so a
//! request that is cancelled (its client went away) cannot take other requests'
//! operations down with it. An operation the batch could not get
//! answered (its node died mid-command, a connection broke, a timeout, the client could
//! not route the batch's keys) or that found no record goes back to its own request,
//! which builds it anew and sends it alone with the store's whole retry policy: a
//! failover costs a coalesced operation what it costs one sent alone, plus the failed
//! attempt, and a session is never declared missing by a batch alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aerospike::expressions::Expression;
use aerospike::{
    BatchPolicy, Bins, Client, Error, Expiration, ReadPolicy, RecordExistsAction, WritePolicy,
};
use tokio::sync::oneshot;

use crate::op::{absent, bin_less, outcome, unanswered, Op, Outcome};

/// What a waiting operation makes of its answer.
fn coalesced<'a>(answer: Result<Answer, oneshot::error::RecvError>) -> Coalesced<'a> {
    match answer {
        Ok(Answer::Done(outcome)) => Coalesced::Done(outcome),
        // A driver that went away without answering (it panicked) is the same case.
        Ok(Answer::Retry) | Err(_) => Coalesced::Retry,
    }
}

/// The most rows one batch command carries; the rest go in the next.
const MAX_BATCH: usize = 512;

/// A command in flight longer than this (a node died or hangs) stops holding its place,
/// so the operations behind it are not held up for the whole timeout: they get a
/// place of their own.
const PATIENCE: Duration = Duration::from_millis(5);

/// Places in flight at most, counting those past [`PATIENCE`].
const MAX_PLACES: usize = 256;

pub(crate) struct Pipeline {
    client: Arc<Client>,
    read: ReadPolicy,
    write: WritePolicy,
    batch: BatchPolicy,
    limit: usize,
    queue: Mutex<Queue>,
    /// Whether an operation that finds the store idle yields twice before it looks
    /// for company: set when operations queued behind one sent alone (the first yield
    /// came back before they reached the store), cleared when a second yield found
    /// nobody either. See [`Pipeline::coalesce`].
    yield_twice: AtomicBool,
}

#[derive(Default)]
struct Queue {
    /// Each place in flight, by id, with when its current command was sent.
    places: Vec<(u64, Instant)>,
    next_id: u64,
    waiting: Vec<Waiter>,
    /// An empty buffer for `waiting`, its capacity kept from an earlier batch: under a
    /// steady load the queue refills without growing a vector of waiters (a few hundred
    /// bytes each) from nothing, copying it at each doubling, for every batch.
    spare: Vec<Waiter>,
    /// One waiting operation keeps a timer: if it is still waiting after [`PATIENCE`]
    /// (every command it waits for hangs, and no later operation came to find them
    /// overdue), it gives the queue a place and a driver of its own. One timer per
    /// round of waiting, not per operation: none at low load, where nothing waits.
    watched: bool,
}

impl Queue {
    fn next_id(&mut self) -> u64 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    fn open_place(&mut self, now: Instant) -> u64 {
        let id = self.next_id();
        self.places.push((id, now));
        id
    }

    /// Whether a command may take a place at `now`: fewer than `limit` places are
    /// prompt (those past [`PATIENCE`] no longer count), and fewer than [`MAX_PLACES`]
    /// are out in all.
    fn has_free_place(&self, now: Instant, limit: usize) -> bool {
        let prompt = self.places.iter().filter(|(_, at)| now - *at < PATIENCE);
        prompt.count() < limit && self.places.len() < MAX_PLACES
    }

    /// Restarts place `id`'s patience, for the command it sends at `now`.
    fn stamp(&mut self, id: u64, now: Instant) {
        if let Some(place) = self.places.iter_mut().find(|(p, _)| *p == id) {
            place.1 = now;
        }
    }

    /// The waiting operations, up to a batch. `empty` is a drained batch whose buffer
    /// the queue keeps, to refill (see [`Queue::spare`]).
    fn take(&mut self, mut empty: Vec<Waiter>) -> Vec<Waiter> {
        debug_assert!(empty.is_empty(), "a batch given back with waiters in it");
        // The watcher, if any, is among those taken.
        self.watched = false;
        if self.waiting.len() > MAX_BATCH {
            empty.extend(self.waiting.drain(..MAX_BATCH));
            return empty;
        }
        if self.waiting.is_empty() {
            self.keep_spare(empty);
            return Vec::new();
        }
        let refill = if empty.capacity() > 0 {
            empty
        } else {
            std::mem::take(&mut self.spare)
        };
        std::mem::replace(&mut self.waiting, refill)
    }

    /// Keeps `empty`'s buffer as the spare, if it is the larger.
    fn keep_spare(&mut self, empty: Vec<Waiter>) {
        if empty.capacity() > self.spare.capacity() {
            self.spare = empty;
        }
    }

    fn close_place(&mut self, id: u64) {
        if let Some(at) = self.places.iter().position(|(p, _)| *p == id) {
            self.places.swap_remove(at);
        }
    }
}

struct Waiter {
    tag: u64,
    op: Op,
    done: oneshot::Sender<Answer>,
}

/// A queued operation, as its caller holds it: what [`Pipeline::coalesce`] waits on.
struct Ticket {
    /// Its waiter's tag.
    tag: u64,
    answer: oneshot::Receiver<Answer>,
    /// The place it took, if one was free: then it sends its batch itself.
    place: Option<u64>,
    /// Whether it keeps the queue's timer (see [`Queue::watched`]).
    watch: bool,
}

/// What a waiting operation is told once its batch returns. The outcome is a few hundred
/// bytes, moved once through the channel: boxing it would cost an allocation instead.
#[allow(clippy::large_enum_variant)]
enum Answer {
    Done(Outcome),
    /// The batch could not reach the record's node (a node died mid-command, a
    /// connection broke, a timeout, the key could not be routed), or found no record:
    /// the operation is to be sent again alone, with the store's whole retry policy, as
    /// it would have been sent had it not met other operations.
    Retry,
}

impl Pipeline {
    /// `limit` commands in flight at most (at least one); reads alone with `read`, writes
    /// alone with `write` (its action, expiry and filter set per operation), batches
    /// with `read`'s base policy (`read_mode_ap` concerns only their reads).
    pub(crate) fn new(
        client: Arc<Client>,
        read: ReadPolicy,
        write: WritePolicy,
        limit: usize,
    ) -> Pipeline {
        let batch = BatchPolicy {
            base_policy: read.base_policy.clone(),
            ..BatchPolicy::default()
        };
        Pipeline {
            client,
            read,
            write,
            batch,
            limit: limit.max(1),
            queue: Mutex::new(Queue::default()),
            yield_twice: AtomicBool::new(false),
        }
    }

    /// Runs `op`, alone or in a batch with the operations that arrive with it.
    ///
    /// `again` builds the same operation anew, for a batch that could not answer it:
    /// a batch row is consumed by the client, and lost with it when the client cannot
    /// route any of the batch's keys. It runs only then, so the common path builds each
    /// operation once; `None` (it could not be built a second time) is an error.
    ///
    /// `op` is queued when this is called, from the future that awaits the result at
    /// once, and a command sent alone is boxed: so the future returned holds neither the
    /// operation (a few hundred bytes) nor a client command's future (kilobytes), and
    /// the callers' boxing copies under a kilobyte. With both inline, the engine's box
    /// of a save was 8.6 KB, copied on every operation.
    pub(crate) fn run<'a, F>(
        self: &'a Arc<Self>,
        op: Op,
        again: F,
    ) -> impl Future<Output = Outcome> + 'a
    where
        F: FnOnce() -> Option<Op> + 'a,
    {
        let queued = if self.limit == usize::MAX {
            // Never coalescing: no queue, no yield.
            Err(self.alone(op))
        } else {
            Ok(self.enqueue(op))
        };
        async move {
            let (sent, place) =
                match queued {
                    Err(sent) => (sent, None),
                    Ok(ticket) => match self.coalesce(ticket).await {
                        Coalesced::Done(outcome) => return outcome,
                        Coalesced::Alone(op, place) => (self.alone(op), place),
                        // Sent again as the plain single-record command: its retries route
                        // the key anew on every attempt, where a batch routes each key once,
                        // up front.
                        Coalesced::Retry => match again() {
                            Some(op) => (self.alone(op), None),
                            None => return Err(Error::client_error(
                                "the session store could not rebuild an operation to send it again",
                            )),
                        },
                    },
                };
            let outcome = sent.await;
            if place.is_some() && !self.lock().waiting.is_empty() {
                // Others queued while this went alone: next time, wait for them longer.
                self.yield_twice.store(true, Ordering::Relaxed);
            }
            drop(place);
            outcome
        }
    }

    /// Waits for the operation `ticket` queued: either sends it with the operations
    /// that joined it, or finds that nothing did: then it is to be sent alone, holding
    /// the place it took until then.
    async fn coalesce<'a>(self: &'a Arc<Self>, ticket: Ticket) -> Coalesced<'a> {
        let Ticket {
            tag,
            mut answer,
            place,
            watch,
        } = ticket;
        if let Some(id) = place {
            let place = Place(self, id);
            tokio::task::yield_now().await;
            // Measured: under tokio's own schedulers (axum) the requests that are ready
            // reach the store within the first turn; under actix-web (a runtime per
            // worker, connections in a `LocalSet`) only within a second, so without it
            // each operation went alone. Idle, nothing queues behind a lone operation,
            // and one turn stays the rule.
            let twice = self.yield_twice.load(Ordering::Relaxed);
            if twice {
                tokio::task::yield_now().await;
            }
            let mut batch = self.take(Vec::new());
            if let [only] = &batch[..] {
                if only.tag == tag {
                    if twice {
                        self.yield_twice.store(false, Ordering::Relaxed);
                    }
                    let op = batch.pop().expect("one waiter").op;
                    self.lock().keep_spare(batch);
                    return Coalesced::Alone(op, Some(place));
                }
            }
            if batch.is_empty() {
                drop(place);
            } else {
                place.hand_over(batch);
            }
        }
        if watch {
            // Not a `match` with the second wait in its arm: the timeout's result (about
            // 250 bytes) would stay in this future across that wait.
            if let Ok(early) = tokio::time::timeout(PATIENCE, &mut answer).await {
                return coalesced(early);
            }
            self.rescue();
        }
        coalesced(answer.await)
    }

    /// Gives the waiting operations a place and a driver, when a place is free: the
    /// watcher's job (see [`Queue::watched`]).
    fn rescue(self: &Arc<Self>) {
        let now = Instant::now();
        let mut queue = self.lock();
        queue.watched = false;
        if queue.waiting.is_empty() {
            return;
        }
        if !queue.has_free_place(now, self.limit) {
            return;
        }
        let id = queue.open_place(now);
        drop(queue);
        Place(self, id).hand_over(Vec::new());
    }

    /// [`send_alone`](Self::send_alone), boxed: kept out of the futures that wait for a
    /// batch, which most operations do.
    fn alone(&self, op: Op) -> Pin<Box<impl Future<Output = Outcome> + '_>> {
        Box::pin(self.send_alone(op))
    }

    /// Sends `op` as its plain single-record command: cheaper than a batch of one.
    async fn send_alone(&self, op: Op) -> Outcome {
        let client = &self.client;
        let found = match op {
            Op::Read(key) => client.get(&self.read, &key, Bins::All).await,
            Op::Write {
                key,
                exists,
                expiration,
                filter,
                ops,
            } => {
                let policy = self.write_policy(exists, expiration, filter);
                client.operate(&policy, &key, &ops).await
            }
            Op::Put {
                key,
                exists,
                expiration,
                filter,
                bins,
            } => {
                let policy = self.write_policy(exists, expiration, filter);
                return match client.put(&policy, &key, &bins).await {
                    Ok(()) => Ok(Some(bin_less())),
                    Err(e) => absent(e),
                };
            }
        };
        found.map(Some).or_else(absent)
    }

    /// The store's write policy with one write's action, expiry and filter.
    fn write_policy(
        &self,
        exists: RecordExistsAction,
        expiration: Expiration,
        filter: Option<Expression>,
    ) -> WritePolicy {
        let mut policy = self.write.clone();
        policy.record_exists_action = exists;
        policy.expiration = expiration;
        policy.send_key = false;
        policy.base_policy.filter_expression = filter;
        policy
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is consistent between statements: a panic cannot leave it half-done.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `op`; also takes a place when one is free, or else the watch when nobody
    /// keeps it.
    fn enqueue(&self, op: Op) -> Ticket {
        let (done, answer) = oneshot::channel();
        let now = Instant::now();
        let mut queue = self.lock();
        let tag = queue.next_id();
        queue.waiting.push(Waiter { tag, op, done });
        let place = queue
            .has_free_place(now, self.limit)
            .then(|| queue.open_place(now));
        let watch = place.is_none() && !std::mem::replace(&mut queue.watched, true);
        Ticket {
            tag,
            answer,
            place,
            watch,
        }
    }

    /// The waiting operations, up to a batch (see [`Queue::take`]).
    fn take(&self, empty: Vec<Waiter>) -> Vec<Waiter> {
        self.lock().take(empty)
    }

    /// Gives place `id` back, or hands it to a driver when operations are waiting.
    fn release(self: &Arc<Self>, id: u64) {
        let mut queue = self.lock();
        if queue.waiting.is_empty() {
            queue.close_place(id);
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                queue.stamp(id, Instant::now());
                drop(queue);
                runtime.spawn(Arc::clone(self).drive(id, Vec::new()));
            }
            Err(_) => {
                // No runtime to send them from: their callers see an error, never a hang.
                queue.close_place(id);
                queue.waiting.clear();
            }
        }
    }

    /// Sends `batch`, then the waiting operations batch after batch until none wait.
    async fn drive(self: Arc<Self>, id: u64, mut batch: Vec<Waiter>) {
        // Given back when no operation waits (or handed to a new driver if one arrives).
        let _place = Place(&self, id);
        let mut ops = Vec::with_capacity(batch.len());
        let mut replies = Vec::with_capacity(batch.len());
        loop {
            if batch.is_empty() {
                batch = self.take(std::mem::take(&mut batch));
                if batch.is_empty() {
                    return;
                }
            }
            for w in batch.drain(..) {
                ops.push(w.op.into_row());
                replies.push(w.done);
            }
            let now = Instant::now();
            self.lock().stamp(id, now);
            // Every row carries its own outcome, the command's failure included.
            let _ = self.client.batch(&self.batch, &mut ops).await;
            for (row, done) in ops.drain(..).zip(replies.drain(..)) {
                let answer = if unanswered(&row) {
                    Answer::Retry
                } else {
                    Answer::Done(outcome(row))
                };
                // A caller that has gone away no longer wants its answer.
                let _ = done.send(answer);
            }
        }
    }
}

/// Where [`Pipeline::coalesce`] left an operation.
#[allow(clippy::large_enum_variant)] // moved once, to its caller's single send
enum Coalesced<'a> {
    /// Its batch answered it.
    Done(Outcome),
    /// Nothing joined it: to be sent alone, holding its place (if it took one) until
    /// then.
    Alone(Op, Option<Place<'a>>),
    /// Its batch could not answer it: to be built anew and sent alone.
    Retry,
}

/// A place in flight, given back when dropped: on completion or cancellation alike.
struct Place<'a>(&'a Arc<Pipeline>, u64);

impl Place<'_> {
    /// Hands the place, and `batch` to send, to a driver.
    fn hand_over(self, batch: Vec<Waiter>) {
        let (pipeline, id) = (Arc::clone(self.0), self.1);
        std::mem::forget(self);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(pipeline.drive(id, batch))),
            Err(_) => {
                // Unreachable from a future the runtime polls; answer rather than hang.
                drop(batch);
                pipeline.release(id);
            }
        }
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiters(queue: &mut Queue, n: usize) {
        for _ in 0..n {
            let key = aerospike::Key::new("test", "sessions", aerospike::Value::Int(1)).unwrap();
            let tag = queue.next_id();
            let (done, _) = oneshot::channel();
            let op = Op::Read(key);
            queue.waiting.push(Waiter { tag, op, done });
        }
    }

    fn drained(mut batch: Vec<Waiter>) -> Vec<Waiter> {
        batch.clear();
        batch
    }

    #[test]
    fn a_steady_queue_refills_the_buffers_it_gave_out() {
        let mut queue = Queue::default();
        waiters(&mut queue, 8);
        let first = queue.take(Vec::new());
        assert_eq!(first.len(), 8);
        let first_buffer = first.as_ptr();
        waiters(&mut queue, 8);
        let second = queue.take(drained(first));
        assert_eq!(second.len(), 8);
        // The first batch's buffer now takes the queue's waiters, without growing.
        let capacity = queue.waiting.capacity();
        waiters(&mut queue, 8);
        assert_eq!(queue.waiting.as_ptr(), first_buffer);
        assert_eq!(queue.waiting.capacity(), capacity);
        // With nobody waiting, a drained batch is kept as the spare, and refills next.
        let third = queue.take(drained(second));
        let third_buffer = third.as_ptr();
        assert!(queue.take(drained(third)).is_empty());
        assert_eq!(queue.spare.as_ptr(), third_buffer);
        waiters(&mut queue, 1);
        let lone = queue.take(Vec::new());
        assert_eq!(queue.waiting.as_ptr(), third_buffer);
        assert_eq!(lone.len(), 1);
    }

    #[test]
    fn a_batch_takes_at_most_its_limit_in_arrival_order() {
        let mut queue = Queue::default();
        waiters(&mut queue, MAX_BATCH + 3);
        let batch = queue.take(Vec::new());
        assert_eq!(batch.len(), MAX_BATCH);
        assert_eq!(batch.first().map(|w| w.tag), Some(1));
        assert_eq!(queue.waiting.len(), 3);
        assert_eq!(
            queue.waiting.first().map(|w| w.tag),
            Some(MAX_BATCH as u64 + 1)
        );
        let rest = queue.take(drained(batch));
        assert_eq!(rest.len(), 3);
        assert!(queue.waiting.is_empty());
    }
}
