//! The filter expression that keeps a save or touch from extending an ended session,
//! packed once and patched per write.

use aerospike::expressions::{and, eq, from_packed_bytes, gt, int_bin, int_val, or, Expression};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::store::BinNames;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// Placeholders packed into the template: as msgpack, a `uint 64` (marker `0xcf`) and a
/// `uint 32` (marker `0xce`), the forms every `now` of the next eighty years takes.
const NANOS_MARK: i64 = 0x5EED_5EED_5EED_5EED;
const SECS_MARK: i64 = 0xC0DE_5EED;

/// The record is live at `now` (Unix nanoseconds): its `expires` is later, in
/// nanoseconds (format 2) or, for a format 1 record, in seconds.
pub(crate) fn live_expression(bins: &BinNames, now: i64) -> Expression {
    expression(bins, now, now.div_euclid(NANOS_PER_SEC))
}

fn expression(bins: &BinNames, now_nanos: i64, now_secs: i64) -> Expression {
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

/// [`live_expression`], packed once: the client packs an expression tree anew for every
/// command (about 10 000 instructions for this one, measured with `bench/count.py`),
/// while patching 12 bytes of a copy costs next to nothing.
pub(crate) struct LiveFilter {
    template: Vec<u8>,
    /// Where the 8 bytes of `now` in nanoseconds and the 4 of `now` in seconds go.
    nanos_at: usize,
    secs_at: usize,
}

impl LiveFilter {
    /// `None` if the packed form is not what this expects (then every write packs the
    /// expression itself).
    pub(crate) fn new(bins: &BinNames) -> Option<LiveFilter> {
        let packed = expression(bins, NANOS_MARK, SECS_MARK).base64().ok()?;
        let template = STANDARD.decode(packed).ok()?;
        let mut nanos = vec![0xcf];
        nanos.extend_from_slice(&NANOS_MARK.to_be_bytes());
        let mut secs = vec![0xce];
        secs.extend_from_slice(&(SECS_MARK as u32).to_be_bytes());
        Some(LiveFilter {
            nanos_at: only_place(&template, &nanos)? + 1,
            secs_at: only_place(&template, &secs)? + 1,
            template,
        })
    }

    /// The expression for `now` (Unix nanoseconds), or `None` when `now` would pack in
    /// another form than the template's.
    pub(crate) fn at(&self, now: i64) -> Option<Expression> {
        let secs = now.div_euclid(NANOS_PER_SEC);
        let secs = u32::try_from(secs).ok().filter(|s| *s >= 1 << 16)?;
        if now < 1 << 32 {
            return None;
        }
        let mut bytes = self.template.clone();
        bytes[self.nanos_at..self.nanos_at + 8].copy_from_slice(&now.to_be_bytes());
        bytes[self.secs_at..self.secs_at + 4].copy_from_slice(&secs.to_be_bytes());
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
                expires: "expires_at_long_name".into(),
                expiry: "e".into(),
                version: "vv".into(),
                ..BinNames::default()
            },
        ] {
            let filter = LiveFilter::new(&bins).expect("the template packs as expected");
            for now in [
                1_800_000_000_123_456_789, // 2027
                1_764_000_000_000_000_000,
                4_102_444_800_000_000_000,           // 2100
                (1 << 16) * NANOS_PER_SEC,           // the first second that fits
                i64::from(u32::MAX) * NANOS_PER_SEC, // the last
            ] {
                let patched = filter.at(now).expect("in range");
                assert_eq!(
                    patched.base64().unwrap(),
                    live_expression(&bins, now).base64().unwrap(),
                    "now = {now}"
                );
            }
            // Instants that pack in other forms are left to the client.
            for now in [
                0,
                (1 << 32) - 1,
                (i64::from(u32::MAX) + 1) * NANOS_PER_SEC,
                -5,
            ] {
                assert!(filter.at(now).is_none(), "now = {now}");
            }
        }
    }
}
