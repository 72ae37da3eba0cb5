//! What a store reports about a user's sessions ([`SessionInfo`]), found through the
//! binding a handler makes at login
//! ([`Session::set_user`](crate::Session::set_user), kept under
//! [`USER_KEY`](crate::state::USER_KEY)). Stores that can find a user's sessions
//! ([`MemoryStore`](crate::MemoryStore), the Aerospike store) index it.

use time::OffsetDateTime;

use crate::id::Id;
use crate::state::Binding;

/// One of a user's live sessions, as [`Session::user_sessions`](crate::Session::user_sessions)
/// and [`SessionStore::user_sessions`](crate::SessionStore::user_sessions) list them.
///
/// It carries the session's short id (six characters, what logs show), never the full
/// id: a list shown to a user must not hand out other devices' credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionInfo {
    /// The first six characters of the session id.
    pub short_id: String,
    /// The user the session is bound to.
    pub user: String,
    /// The application's label for the session, if it set one.
    pub label: Option<String>,
    /// When the session was bound to the user (its sign-in).
    pub since: OffsetDateTime,
    /// When the session was last written (a save or a touch): its last request, at the
    /// precision of the touch policy (`TouchPolicy`), since requests that neither change
    /// the session nor are due a touch write nothing.
    pub last_seen: OffsetDateTime,
    /// When the session ends unless it is used again.
    pub expires_at: OffsetDateTime,
    /// Whether this is the session of the request that asked (always `false` from a
    /// store asked without a current session).
    pub current: bool,
}

impl SessionInfo {
    /// A session's entry, for store implementations: `id` is shortened here.
    pub fn new(
        id: &Id,
        binding: Binding,
        last_seen: OffsetDateTime,
        expires_at: OffsetDateTime,
        current: bool,
    ) -> Self {
        SessionInfo::with_short_id(
            id.short().as_str().to_owned(),
            binding,
            last_seen,
            expires_at,
            current,
        )
    }

    /// As [`new`](Self::new), for a store that keeps only the short id.
    pub fn with_short_id(
        short_id: String,
        binding: Binding,
        last_seen: OffsetDateTime,
        expires_at: OffsetDateTime,
        current: bool,
    ) -> Self {
        let since = binding.since_time();
        SessionInfo {
            short_id: short_id.trim_end_matches('…').to_owned(),
            user: binding.user,
            label: binding.label,
            since,
            last_seen,
            expires_at,
            current,
        }
    }
}

/// Sorts a list as the session helpers return it: the current session first, then the
/// most recently seen.
pub fn sort_sessions(list: &mut [SessionInfo]) {
    list.sort_by(|a, b| {
        b.current
            .cmp(&a.current)
            .then(b.last_seen.cmp(&a.last_seen))
            .then_with(|| a.short_id.cmp(&b.short_id))
    });
}

/// What one pass of [`SessionStore::end_user_pass`](crate::SessionStore::end_user_pass)
/// did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndPass {
    /// The sessions the index listed for the user (but the one kept).
    pub listed: usize,
    /// The live ones among them that the pass ended.
    pub ended: usize,
}
