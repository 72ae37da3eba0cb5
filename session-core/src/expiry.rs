//! Expiry: when a session ends, and the one number that the cookie's `Max-Age` and the
//! store's TTL share.

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// When a session expires. The variants are tower-sessions', and convert to and from its
/// `Expiry` with the `tower-sessions` feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// The cookie lives until the browser session ends (no `Max-Age`). The store keeps the
    /// record for the configured default store TTL after its last refresh.
    OnSessionEnd,
    /// The session ends after this long without activity; activity refreshes it according
    /// to the [`TouchPolicy`](crate::TouchPolicy).
    OnInactivity(Duration),
    /// The session ends at this instant, whatever the activity.
    AtDateTime(OffsetDateTime),
}

/// A store time-to-live in whole seconds: never zero, never "forever".
///
/// Built only by [`Lifetime::of`] (or [`Ttl::from_secs`]), which clamps it to the
/// configured maximum, so a store can write it as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(NonZeroU32);

impl Ttl {
    /// The largest TTL this crate will produce: 100 years, far below the sentinels
    /// databases give special meanings to (`u32::MAX`, `u32::MAX - 1`).
    pub const MAX: Ttl = Ttl(NonZeroU32::new(100 * 366 * 24 * 3600).unwrap());

    /// A TTL of `secs` seconds; `None` for 0 or for more than [`Ttl::MAX`].
    pub const fn from_secs(secs: u32) -> Option<Ttl> {
        match NonZeroU32::new(secs) {
            Some(n) if secs <= Self::MAX.0.get() => Some(Ttl(n)),
            _ => None,
        }
    }

    /// The TTL in seconds (at least 1).
    pub const fn as_secs(self) -> u32 {
        self.0.get()
    }

    /// The TTL as a duration.
    pub fn as_duration(self) -> Duration {
        Duration::seconds(i64::from(self.0.get()))
    }
}

/// What an [`Expiry`] means at one instant: the cookie's `Max-Age`, the store's TTL and
/// the absolute end of the session. `max_age`, when present, is exactly `ttl`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    /// `Max-Age` for the cookie; `None` for a browser-session cookie.
    pub max_age: Option<Ttl>,
    /// TTL for the store record.
    pub ttl: Ttl,
    /// When the record stops being valid: `now + ttl`.
    pub expires_at: OffsetDateTime,
}

impl Lifetime {
    /// The one function from an expiry to `Max-Age` and TTL.
    ///
    /// * `OnInactivity(d)`: `Max-Age = TTL = d`.
    /// * `AtDateTime(t)`: `Max-Age = TTL =` the seconds left until `t`, rounded up (so the
    ///   cookie never ends before the session).
    /// * `OnSessionEnd`: no `Max-Age`; TTL = `default_ttl`.
    ///
    /// Every TTL is clamped to `max_ttl`. Returns `None` when the session is already over
    /// (a non-positive duration, or an instant not after `now`): the caller deletes it
    /// rather than writing a TTL of zero, which many stores read as "never expire".
    pub fn of(
        expiry: &Expiry,
        now: OffsetDateTime,
        default_ttl: Ttl,
        max_ttl: Ttl,
    ) -> Option<Lifetime> {
        let (secs, browser_session) = match *expiry {
            Expiry::OnSessionEnd => (i64::from(default_ttl.as_secs()), true),
            Expiry::OnInactivity(d) => (ceil_secs(d), false),
            Expiry::AtDateTime(t) => (ceil_secs(t - now), false),
        };
        if secs <= 0 {
            return None;
        }
        let secs = secs.min(i64::from(max_ttl.as_secs()));
        let ttl = Ttl(NonZeroU32::new(secs as u32).expect("1 <= secs <= max_ttl"));
        Some(Lifetime {
            max_age: (!browser_session).then_some(ttl),
            ttl,
            expires_at: now + ttl.as_duration(),
        })
    }

    /// The lifetime left of a record that ends at `expires_at`, for re-issuing a cookie
    /// without refreshing the record. `None` when it has ended.
    pub fn remaining(
        expiry: &Expiry,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
        max_ttl: Ttl,
    ) -> Option<Lifetime> {
        let secs = ceil_secs(expires_at - now);
        if secs <= 0 {
            return None;
        }
        let ttl = Ttl(NonZeroU32::new(
            secs.min(i64::from(max_ttl.as_secs())) as u32
        )?);
        Some(Lifetime {
            max_age: (!matches!(expiry, Expiry::OnSessionEnd)).then_some(ttl),
            ttl,
            expires_at,
        })
    }
}

/// Whole seconds in `d`, rounded up; saturating.
fn ceil_secs(d: Duration) -> i64 {
    let whole = d.whole_seconds();
    if d.subsec_nanoseconds() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Ttl = Ttl::from_secs(86_400).unwrap();
    const YEAR: Ttl = Ttl::from_secs(365 * 86_400).unwrap();

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[test]
    fn inactivity_gives_the_same_max_age_and_ttl() {
        let l = Lifetime::of(
            &Expiry::OnInactivity(Duration::minutes(30)),
            now(),
            DAY,
            YEAR,
        )
        .unwrap();
        assert_eq!(l.ttl.as_secs(), 1800);
        assert_eq!(l.max_age, Some(l.ttl));
        assert_eq!(l.expires_at, now() + Duration::minutes(30));
    }

    #[test]
    fn zero_and_negative_durations_mean_expired() {
        for d in [Duration::ZERO, Duration::seconds(-1), Duration::MIN] {
            assert_eq!(
                Lifetime::of(&Expiry::OnInactivity(d), now(), DAY, YEAR),
                None
            );
        }
    }

    #[test]
    fn sub_second_durations_round_up_to_one_second() {
        let l = Lifetime::of(
            &Expiry::OnInactivity(Duration::milliseconds(1)),
            now(),
            DAY,
            YEAR,
        )
        .unwrap();
        assert_eq!(l.ttl.as_secs(), 1);
        assert_eq!(l.max_age.unwrap().as_secs(), 1);
    }

    #[test]
    fn past_and_present_instants_mean_expired() {
        for t in [
            now(),
            now() - Duration::seconds(1),
            OffsetDateTime::UNIX_EPOCH,
        ] {
            assert_eq!(Lifetime::of(&Expiry::AtDateTime(t), now(), DAY, YEAR), None);
        }
    }

    #[test]
    fn future_instants_count_the_seconds_left_rounded_up() {
        let t = now() + Duration::milliseconds(90_500);
        let l = Lifetime::of(&Expiry::AtDateTime(t), now(), DAY, YEAR).unwrap();
        assert_eq!(l.ttl.as_secs(), 91);
        assert_eq!(l.max_age, Some(l.ttl));
    }

    #[test]
    fn huge_values_are_clamped_to_the_maximum() {
        for e in [
            Expiry::OnInactivity(Duration::MAX),
            Expiry::OnInactivity(Duration::days(10_000)),
            Expiry::AtDateTime(now() + Duration::days(100_000)),
        ] {
            let l = Lifetime::of(&e, now(), DAY, YEAR).unwrap();
            assert_eq!(l.ttl, YEAR, "{e:?}");
            assert_eq!(l.max_age, Some(YEAR));
            assert_eq!(l.expires_at, now() + YEAR.as_duration());
        }
    }

    #[test]
    fn browser_session_has_no_max_age_and_the_default_ttl() {
        let l = Lifetime::of(&Expiry::OnSessionEnd, now(), DAY, YEAR).unwrap();
        assert_eq!(l.max_age, None);
        assert_eq!(l.ttl, DAY);
        // The default is clamped too.
        let l = Lifetime::of(&Expiry::OnSessionEnd, now(), YEAR, DAY).unwrap();
        assert_eq!(l.ttl, DAY);
    }

    #[test]
    fn ttl_never_is_zero_or_a_sentinel() {
        assert_eq!(Ttl::from_secs(0), None);
        assert_eq!(Ttl::from_secs(u32::MAX), None);
        assert_eq!(Ttl::from_secs(u32::MAX - 1), None);
        assert_eq!(Ttl::from_secs(1).unwrap().as_secs(), 1);
        assert!(Ttl::MAX.as_secs() < u32::MAX - 1);
    }

    #[test]
    fn remaining_counts_down_from_the_stored_end() {
        let end = now() + Duration::seconds(100);
        let e = Expiry::OnInactivity(Duration::minutes(30));
        let l = Lifetime::remaining(&e, end, now(), YEAR).unwrap();
        assert_eq!(l.ttl.as_secs(), 100);
        assert_eq!(l.max_age, Some(l.ttl));
        assert_eq!(l.expires_at, end);
        assert_eq!(Lifetime::remaining(&e, now(), now(), YEAR), None);
        let l = Lifetime::remaining(&Expiry::OnSessionEnd, end, now(), YEAR).unwrap();
        assert_eq!(l.max_age, None);
    }
}
