//! What a request's end calls for, decided from a snapshot of its session: a pure
//! function, tested as a decision table. [`run`](super::run) carries the decision out.

use time::OffsetDateTime;

use crate::cookie::{SessionConfig, TouchPolicy};
use crate::expiry::{Expiry, Lifetime};
use crate::id::Id;
use crate::state::{State, Status, Stored};

/// What [`plan`] reads of a request's session: a copy, taken under the state's lock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Facts {
    pub(super) status: Status,
    /// The record the session was loaded from (for a logout without a read, the first
    /// id the request presented).
    pub(super) stored: Option<Stored>,
    /// Whether the session holds any value.
    pub(super) holds_values: bool,
    /// The session's expiry, the configured one unless a handler set another.
    pub(super) expiry: Expiry,
    /// A handler changed the expiry in this request.
    pub(super) expiry_changed: bool,
    /// The cookie was verified with an old key: the client needs it again.
    pub(super) stale_key: bool,
    /// The request presented at least one well-formed, verified id.
    pub(super) presented: bool,
}

impl Facts {
    /// The loaded session `state`.
    pub(super) fn of(state: &State, config: &SessionConfig, presented: bool) -> Self {
        Facts {
            status: state.status(),
            stored: state.stored,
            holds_values: !state.holds_nothing(),
            expiry: state.expiry.unwrap_or(config.expiry),
            expiry_changed: state.expiry_changed,
            stale_key: state.stale_key,
            presented,
        }
    }

    /// A logout whose session was never read: `first` is the first id presented.
    pub(super) fn flushed(first: Option<Id>, config: &SessionConfig, now: OffsetDateTime) -> Self {
        Facts {
            status: Status::Purged,
            stored: first.map(|id| Stored {
                id,
                expires_at: now,
            }),
            holds_values: false,
            expiry: config.expiry,
            expiry_changed: false,
            stale_key: false,
            presented: first.is_some(),
        }
    }
}

/// The one store action a request's end calls for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum StoreAction {
    /// No store call.
    None,
    /// A logout: delete `delete` (and, after a logout without a read, every id the
    /// request presented), then create a record of the values if the session lives on.
    Purge {
        delete: Option<Id>,
        create: Option<Lifetime>,
    },
    /// A new session: create a record of its values.
    Create(Lifetime),
    /// A new id for a stored session (`cycle_id`, or an expiry already over): create the
    /// values under a new id, if any are left and the session lives, and delete `delete`.
    Replace {
        create: Option<Lifetime>,
        delete: Id,
    },
    /// Write the changes to the stored record.
    Save { id: Id, life: Lifetime },
    /// Extend the stored record's life.
    Touch { id: Id, life: Lifetime },
}

/// What the client is sent when the store action succeeds (a missing record or a
/// failure is settled in [`run`](super::run)).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum CookieAction {
    /// Nothing.
    Keep,
    /// The id the new record was created under.
    Issue,
    /// The stored id again, living `life`, with no store call: a cookie under an old key.
    Resend(Id, Lifetime),
    /// After a save or touch: the cookie again if it carries a `Max-Age` or `resend`
    /// (an old key, or an expiry the handler changed).
    Refresh { resend: bool },
    /// The cookie removed.
    Remove,
}

/// A request's end: the store action and the cookie action.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Decision {
    pub(super) store: StoreAction,
    pub(super) cookie: CookieAction,
}

impl Decision {
    const NOTHING: Decision = Decision {
        store: StoreAction::None,
        cookie: CookieAction::Keep,
    };

    fn new(store: StoreAction, cookie: CookieAction) -> Self {
        Decision { store, cookie }
    }
}

/// What the session's end calls for, given what the request did to it (`facts`), the
/// configuration, whether only deletions may be written (a server error), and the time.
pub(super) fn plan(
    facts: &Facts,
    config: &SessionConfig,
    deletions_only: bool,
    now: OffsetDateTime,
) -> Decision {
    let status = facts.status;
    let old = facts.stored.map(|s| s.id);
    if deletions_only {
        // A server error: no change is written, but a logout or the old id of a cycle
        // is still deleted, and the client told to forget it.
        let purge = Decision::new(
            StoreAction::Purge {
                delete: old,
                create: None,
            },
            CookieAction::Remove,
        );
        return match status {
            Status::Purged | Status::Renewed if old.is_some() => purge,
            Status::Purged if facts.presented => purge,
            _ => Decision::NOTHING,
        };
    }
    let life = Lifetime::of(&facts.expiry, now, config.default_ttl, config.max_ttl);
    // The lifetime of a new record holding the values, if the session lives on with any.
    let keep = life.filter(|_| facts.holds_values);
    if status == Status::Purged {
        let cookie = match keep {
            Some(_) => CookieAction::Issue,
            None if old.is_some() || facts.presented => CookieAction::Remove,
            None => CookieAction::Keep,
        };
        let store = StoreAction::Purge {
            delete: old,
            create: keep,
        };
        return Decision::new(store, cookie);
    }
    let Some(stored) = facts.stored else {
        return match keep {
            Some(life) => Decision::new(StoreAction::Create(life), CookieAction::Issue),
            None => Decision::NOTHING,
        };
    };
    // A change that left no value at all: the session ends.
    let emptied = status == Status::Changed && !facts.holds_values;
    let Some(life) = life.filter(|_| status != Status::Renewed && !emptied) else {
        // A new id, an expiry already over, or no value left.
        let cookie = match keep {
            Some(_) => CookieAction::Issue,
            None => CookieAction::Remove,
        };
        let store = StoreAction::Replace {
            create: keep,
            delete: stored.id,
        };
        return Decision::new(store, cookie);
    };
    let id = stored.id;
    let resend = facts.stale_key || facts.expiry_changed;
    if status == Status::Changed {
        let store = StoreAction::Save { id, life };
        return Decision::new(store, CookieAction::Refresh { resend });
    }
    if should_touch(config.touch, &facts.expiry, stored.expires_at, &life) {
        let store = StoreAction::Touch { id, life };
        return Decision::new(store, CookieAction::Refresh { resend });
    }
    if facts.stale_key {
        let left = Lifetime::remaining(&facts.expiry, stored.expires_at, now, config.max_ttl);
        if let Some(left) = left {
            return Decision::new(StoreAction::None, CookieAction::Resend(id, left));
        }
    }
    Decision::NOTHING
}

/// Whether an unchanged session gets its life extended now.
fn should_touch(
    policy: TouchPolicy,
    expiry: &Expiry,
    stored_until: OffsetDateTime,
    fresh: &Lifetime,
) -> bool {
    if matches!(expiry, Expiry::AtDateTime(_)) {
        // A fixed end: refreshing cannot move it.
        return false;
    }
    match policy {
        TouchPolicy::OnStateChanges => false,
        TouchPolicy::OnEveryRequest => true,
        TouchPolicy::Throttled { percent } => {
            // In nanoseconds: `time`'s date arithmetic and checked `Duration` products
            // cost about 300 instructions a request here.
            let gained =
                fresh.expires_at.unix_timestamp_nanos() - stored_until.unix_timestamp_nanos();
            let window = i128::from(fresh.ttl.as_secs()) * 1_000_000_000;
            gained * 100 >= window * i128::from(percent)
        }
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    fn id() -> Id {
        "o4ri6i5CpSLnF7m11Ps83Q".parse().unwrap()
    }

    const HOUR: Duration = Duration::HOUR;

    fn config(touch: TouchPolicy) -> SessionConfig {
        SessionConfig::builder()
            .expiry(Expiry::OnInactivity(HOUR))
            .touch_policy(touch)
            .build()
            .unwrap()
    }

    /// A session loaded from a record that ends `left` from now.
    fn loaded(status: Status, left: Duration) -> Facts {
        Facts {
            status,
            stored: Some(Stored {
                id: id(),
                expires_at: now() + left,
            }),
            holds_values: true,
            expiry: Expiry::OnInactivity(HOUR),
            expiry_changed: false,
            stale_key: false,
            presented: true,
        }
    }

    fn fresh(status: Status, holds_values: bool) -> Facts {
        Facts {
            stored: None,
            holds_values,
            presented: false,
            ..loaded(status, HOUR)
        }
    }

    fn life(expiry: Expiry) -> Lifetime {
        let c = config(TouchPolicy::OnStateChanges);
        Lifetime::of(&expiry, now(), c.default_ttl, c.max_ttl).unwrap()
    }

    fn hour() -> Lifetime {
        life(Expiry::OnInactivity(HOUR))
    }

    fn is(store: StoreAction, cookie: CookieAction) -> Decision {
        Decision { store, cookie }
    }

    const NOTHING: Decision = Decision::NOTHING;

    #[test]
    fn every_fate_has_one_store_action_and_one_cookie_action() {
        use CookieAction::{Issue, Keep, Refresh, Remove, Resend};
        use Status::{Changed, Purged, Renewed, Unchanged};
        let every = config(TouchPolicy::OnEveryRequest);
        let never = config(TouchPolicy::OnStateChanges);
        let half = config(TouchPolicy::Throttled { percent: 50 });
        let past = Expiry::AtDateTime(now() - Duration::SECOND);
        let later = Expiry::AtDateTime(now() + HOUR);
        let over = |mut f: Facts| {
            f.expiry = past;
            f
        };
        let stale = |mut f: Facts| {
            f.stale_key = true;
            f
        };
        let empty = |mut f: Facts| {
            f.holds_values = false;
            f
        };
        let (save, touch) = (
            StoreAction::Save {
                id: id(),
                life: hour(),
            },
            StoreAction::Touch {
                id: id(),
                life: hour(),
            },
        );
        let purge = |delete, create| StoreAction::Purge { delete, create };
        let replace = |create| StoreAction::Replace {
            create,
            delete: id(),
        };
        #[rustfmt::skip]
        let table: Vec<(&str, Facts, &SessionConfig, bool, Decision)> = vec![
            // A new session.
            ("untouched new session", fresh(Unchanged, false), &every, false, NOTHING),
            ("new session with values", fresh(Changed, true), &never, false,
                is(StoreAction::Create(hour()), Issue)),
            ("new session emptied again", fresh(Changed, false), &never, false, NOTHING),
            ("new session already over", over(fresh(Changed, true)), &never, false, NOTHING),
            // A change to a stored session.
            ("changed", loaded(Changed, HOUR), &never, false, is(save, Refresh { resend: false })),
            ("changed, old key", stale(loaded(Changed, HOUR)), &never, false,
                is(save, Refresh { resend: true })),
            ("expiry changed", Facts { expiry_changed: true, ..loaded(Changed, HOUR) }, &never,
                false, is(save, Refresh { resend: true })),
            ("changed to empty", empty(loaded(Changed, HOUR)), &never, false,
                is(replace(None), Remove)),
            ("changed, expiry over", over(loaded(Changed, HOUR)), &never, false,
                is(replace(None), Remove)),
            // A new id.
            ("cycled", loaded(Renewed, HOUR), &never, false, is(replace(Some(hour())), Issue)),
            ("cycled, empty", empty(loaded(Renewed, HOUR)), &never, false,
                is(replace(None), Remove)),
            ("cycled, expiry over", over(loaded(Renewed, HOUR)), &never, false,
                is(replace(None), Remove)),
            // A logout.
            ("logged out", empty(loaded(Purged, HOUR)), &never, false,
                is(purge(Some(id()), None), Remove)),
            ("logged out, new values", loaded(Purged, HOUR), &never, false,
                is(purge(Some(id()), Some(hour())), Issue)),
            ("logout of an unknown id", Facts { presented: true, ..fresh(Purged, false) },
                &never, false, is(purge(None, None), Remove)),
            ("logout presenting no id", fresh(Purged, false), &never, false,
                is(purge(None, None), Keep)),
            ("logout without a read", Facts::flushed(Some(id()), &never, now()), &never, false,
                is(purge(Some(id()), None), Remove)),
            ("logout without a read or an id", Facts::flushed(None, &never, now()), &never,
                false, is(purge(None, None), Keep)),
            // Reads only.
            ("read, touched every request", loaded(Unchanged, HOUR / 2), &every, false,
                is(touch, Refresh { resend: false })),
            ("read, old key, touched", stale(loaded(Unchanged, HOUR / 2)), &every, false,
                is(touch, Refresh { resend: true })),
            ("read, never touched", loaded(Unchanged, HOUR / 2), &never, false, NOTHING),
            ("read, old key, not touched", stale(loaded(Unchanged, HOUR / 2)), &never, false,
                is(StoreAction::None, Resend(id(), Lifetime::remaining(
                    &Expiry::OnInactivity(HOUR), now() + HOUR / 2, now(), never.max_ttl,
                ).unwrap()))),
            ("read, touched recently", loaded(Unchanged, HOUR * 0.9), &half, false, NOTHING),
            ("read, touch due", loaded(Unchanged, HOUR * 0.4), &half, false,
                is(touch, Refresh { resend: false })),
            ("read, fixed end", Facts { expiry: later, ..loaded(Unchanged, HOUR / 2) }, &every,
                false, NOTHING),
            // A server error: deletions only.
            ("5xx, changed", loaded(Changed, HOUR), &every, true, NOTHING),
            ("5xx, new session", fresh(Changed, true), &every, true, NOTHING),
            ("5xx, read", loaded(Unchanged, HOUR / 2), &every, true, NOTHING),
            ("5xx, cycled", loaded(Renewed, HOUR), &every, true,
                is(purge(Some(id()), None), Remove)),
            ("5xx, logged out", loaded(Purged, HOUR), &every, true,
                is(purge(Some(id()), None), Remove)),
            ("5xx, logout of an unknown id", Facts { presented: true, ..fresh(Purged, false) },
                &every, true, is(purge(None, None), Remove)),
            ("5xx, logout presenting no id", fresh(Purged, false), &every, true, NOTHING),
            ("5xx, new session cycled", fresh(Renewed, true), &every, true, NOTHING),
        ];
        for (name, facts, config, deletions_only, expected) in table {
            assert_eq!(
                plan(&facts, config, deletions_only, now()),
                expected,
                "{name}"
            );
        }
    }

    #[test]
    fn a_session_ending_at_a_date_lives_exactly_until_then() {
        let end = now() + HOUR * 2;
        let facts = Facts {
            expiry: Expiry::AtDateTime(end),
            ..fresh(Status::Changed, true)
        };
        let decision = plan(&facts, &config(TouchPolicy::OnEveryRequest), false, now());
        let StoreAction::Create(life) = decision.store else {
            panic!("{decision:?}");
        };
        assert_eq!(life.expires_at, end);
        assert_eq!(life, self::life(Expiry::AtDateTime(end)));
    }
}
