//! Ids and expiries to and from tower-sessions', for each release of
//! tower-sessions-core this crate speaks.

/// The conversions for one release of tower-sessions-core, `$core`.
macro_rules! conversions {
    ($core:ident) => {
        impl From<crate::Id> for $core::session::Id {
            fn from(id: crate::Id) -> Self {
                $core::session::Id(i128::from_le_bytes(id.as_u128().to_le_bytes()))
            }
        }

        impl From<$core::session::Id> for crate::Id {
            /// Lossless: both ids are 128 bits with the same text form.
            ///
            /// The one way to build an [`Id`](crate::Id) other than parsing and
            /// randomness: tower-sessions' `Id` has a public field, so this conversion
            /// trusts the caller the way a store is trusted. It is meant for ids that come
            /// out of a tower-sessions store.
            fn from(id: $core::session::Id) -> Self {
                crate::Id::from_u128(u128::from_le_bytes(id.0.to_le_bytes()))
            }
        }

        impl From<$core::Expiry> for crate::Expiry {
            fn from(e: $core::Expiry) -> Self {
                match e {
                    $core::Expiry::OnSessionEnd => crate::Expiry::OnSessionEnd,
                    $core::Expiry::OnInactivity(d) => crate::Expiry::OnInactivity(d),
                    $core::Expiry::AtDateTime(t) => crate::Expiry::AtDateTime(t),
                }
            }
        }

        impl From<crate::Expiry> for $core::Expiry {
            fn from(e: crate::Expiry) -> Self {
                match e {
                    crate::Expiry::OnSessionEnd => $core::Expiry::OnSessionEnd,
                    crate::Expiry::OnInactivity(d) => $core::Expiry::OnInactivity(d),
                    crate::Expiry::AtDateTime(t) => $core::Expiry::AtDateTime(t),
                }
            }
        }
    };
}

#[cfg(feature = "tower-sessions")]
conversions!(tower_sessions_core);
#[cfg(feature = "tower-sessions-014")]
conversions!(tower_sessions_core_014);

#[cfg(all(test, feature = "tower-sessions"))]
mod tests {
    use crate::{Expiry, Id};
    use time::{Duration, OffsetDateTime};

    #[test]
    fn ids_convert_both_ways_losslessly() {
        for _ in 0..10_000 {
            let tower = tower_sessions_core::session::Id::default();
            let ours = Id::from(tower);
            assert_eq!(tower_sessions_core::session::Id::from(ours), tower);
            assert_eq!(ours.encode().as_str(), tower.to_string());
        }
        let one = Id::from(tower_sessions_core::session::Id(1));
        assert_eq!(one.encode().as_str(), "AQAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn expiries_convert_both_ways() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for e in [
            Expiry::OnSessionEnd,
            Expiry::OnInactivity(Duration::minutes(5)),
            Expiry::AtDateTime(at),
        ] {
            let tower = tower_sessions_core::Expiry::from(e);
            assert_eq!(Expiry::from(tower), e);
        }
    }
}
