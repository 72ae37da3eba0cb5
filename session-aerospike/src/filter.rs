//! The filter expression every write to a session carries: the record is live (its
//! `expires` is after the app's `now`), and the server's clock has not reached the write's
//! deadline. Packed once and patched per write.
//!
//! The deadline is what keeps a write the store has reported failed from landing later:
//! a write sent to a node that hangs (a frozen process, a stalled VM) waits in its socket
//! until the node runs again, and is then applied to whatever copy that node holds, after
//! the store has answered 503 and after newer writes were acknowledged elsewhere. The
//! deadline is the end of the call's whole time budget, in Unix nanoseconds; the server
//! compares it with its own clock (the record's last update plus the time since, both
//! metadata), so once the store gives up on a write, no node applies it any more (up to
//! the clock difference between the app's machine and the node's).

use aerospike::expressions::{
    and, bin_exists, eq, from_packed_bytes, gt, int_bin, int_val, last_update, lt, num_add,
    num_mul, or, since_update, Expression,
};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::bins::BinNames;

const NANOS_PER_SEC: i64 = 1_000_000_000;
const NANOS_PER_MILLI: i64 = 1_000_000;

/// Placeholders packed into the template: as msgpack, a `uint 64` (marker `0xcf`) and a
/// `uint 32` (marker `0xce`), the forms every `now` and deadline of the next eighty years
/// take.
const NANOS_MARK: i64 = 0x5EED_5EED_5EED_5EED;
const SECS_MARK: i64 = 0xC0DE_5EED;
const DEADLINE_MARK: i64 = 0x5AFE_5AFE_5AFE_5AFE;

/// The server's clock, in Unix nanoseconds (to the millisecond): when the record was
/// last updated, plus the milliseconds since.
fn server_now() -> Expression {
    num_add(vec![
        last_update(),
        num_mul(vec![since_update(), int_val(NANOS_PER_MILLI)]),
    ])
}

/// The server applies the write only before `deadline` (Unix nanoseconds) by its own
/// clock.
pub(crate) fn before(deadline: i64) -> Expression {
    lt(server_now(), int_val(deadline))
}

/// The record is live at `now` (Unix nanoseconds): its `expires` is later, in
/// nanoseconds (format 2) or, for a format 1 record, in seconds. An ended record's
/// `expires` is 0, so it is never live.
pub(crate) fn live_expression(bins: &BinNames, now: i64) -> Expression {
    live(bins, now, now.div_euclid(NANOS_PER_SEC))
}

fn live(bins: &BinNames, now_nanos: i64, now_secs: i64) -> Expression {
    let expires = || int_bin(bins.expires.clone());
    or(vec![
        gt(expires(), int_val(now_nanos)),
        // Version 1 kept whole seconds.
        and(vec![
            eq(int_bin(bins.version.clone()), int_val(1)),
            gt(expires(), int_val(now_secs)),
        ]),
    ])
}

/// A write to a live session: [`live_expression`] at `now`, and [`before`] `deadline`.
pub(crate) fn write_expression(bins: &BinNames, now: i64, deadline: i64) -> Expression {
    write(bins, now, now.div_euclid(NANOS_PER_SEC), deadline)
}

fn write(bins: &BinNames, now_nanos: i64, now_secs: i64, deadline: i64) -> Expression {
    and(vec![live(bins, now_nanos, now_secs), before(deadline)])
}

/// A whole-record write that may create the record (tower-sessions' `save`): refused
/// only where the record has ended, and after `deadline`. A filter does not apply to a
/// record that does not exist, which is then created.
#[cfg(feature = "tower-sessions")]
pub(crate) fn not_ended(bins: &BinNames, deadline: i64) -> Expression {
    use aerospike::expressions::not;
    and(vec![not(bin_exists(bins.ended.clone())), before(deadline)])
}

/// A write to an ended session's record only (see `AerospikeStore::lead`), before
/// `deadline`.
pub(crate) fn ended_only(bins: &BinNames, deadline: i64) -> Expression {
    and(vec![bin_exists(bins.ended.clone()), before(deadline)])
}

/// [`write_expression`], packed once: the client packs an expression tree anew for every
/// command (about 10 000 instructions for this one, measured with `bench/count.py`),
/// while patching 20 bytes of a copy costs next to nothing.
pub(crate) struct WriteFilter {
    template: Vec<u8>,
    /// Where the 8 bytes of `now` in nanoseconds, the 4 of `now` in seconds and the 8 of
    /// the deadline go.
    nanos_at: usize,
    secs_at: usize,
    deadline_at: usize,
}

impl WriteFilter {
    /// `None` if the packed form is not what this expects (then every write packs the
    /// expression itself).
    pub(crate) fn new(bins: &BinNames) -> Option<WriteFilter> {
        let packed = write(bins, NANOS_MARK, SECS_MARK, DEADLINE_MARK)
            .base64()
            .ok()?;
        let template = STANDARD.decode(packed).ok()?;
        let u64_mark = |mark: i64| {
            let mut bytes = vec![0xcf];
            bytes.extend_from_slice(&mark.to_be_bytes());
            bytes
        };
        let mut secs = vec![0xce];
        secs.extend_from_slice(&(SECS_MARK as u32).to_be_bytes());
        Some(WriteFilter {
            nanos_at: only_place(&template, &u64_mark(NANOS_MARK))? + 1,
            secs_at: only_place(&template, &secs)? + 1,
            deadline_at: only_place(&template, &u64_mark(DEADLINE_MARK))? + 1,
            template,
        })
    }

    /// The expression for `now` and `deadline` (Unix nanoseconds), or `None` when either
    /// would pack in another form than the template's.
    pub(crate) fn at(&self, now: i64, deadline: i64) -> Option<Expression> {
        let secs = now.div_euclid(NANOS_PER_SEC);
        let secs = u32::try_from(secs).ok().filter(|s| *s >= 1 << 16)?;
        if now < 1 << 32 || deadline < 1 << 32 {
            return None;
        }
        let mut bytes = self.template.clone();
        bytes[self.nanos_at..self.nanos_at + 8].copy_from_slice(&now.to_be_bytes());
        bytes[self.secs_at..self.secs_at + 4].copy_from_slice(&secs.to_be_bytes());
        bytes[self.deadline_at..self.deadline_at + 8].copy_from_slice(&deadline.to_be_bytes());
        Some(from_packed_bytes(bytes))
    }
}

/// Where `needle` occurs in `haystack`, if exactly once.
fn only_place(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let mut places = haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i);
    let first = places.next()?;
    places.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patched_filter_packs_exactly_as_the_expression_would() {
        for bins in [
            BinNames::default(),
            BinNames {
                data: "d".into(),
                expires: "expires_at_long".into(),
                expiry: "e".into(),
                version: "vv".into(),
                ..BinNames::default()
            },
        ] {
            let filter = WriteFilter::new(&bins).expect("the template packs as expected");
            for now in [
                1_800_000_000_123_456_789, // 2027
                1_764_000_000_000_000_000,
                4_102_444_800_000_000_000,           // 2100
                (1 << 16) * NANOS_PER_SEC,           // the first second that fits
                i64::from(u32::MAX) * NANOS_PER_SEC, // the last
            ] {
                for deadline in [now + 6 * NANOS_PER_SEC, i64::MAX, 1 << 32] {
                    let patched = filter.at(now, deadline).expect("in range");
                    assert_eq!(
                        patched.base64().unwrap(),
                        write_expression(&bins, now, deadline).base64().unwrap(),
                        "now = {now}, deadline = {deadline}"
                    );
                }
            }
            // Instants that pack in other forms are left to the client.
            for now in [
                0,
                (1 << 32) - 1,
                (i64::from(u32::MAX) + 1) * NANOS_PER_SEC,
                -5,
            ] {
                assert!(filter.at(now, now + 1).is_none(), "now = {now}");
            }
            let now = 1_800_000_000_123_456_789;
            assert!(filter.at(now, (1 << 32) - 1).is_none());
            assert!(filter.at(now, -1).is_none());
        }
    }
}
