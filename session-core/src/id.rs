//! Session ids: 128 random bits, written the way tower-sessions writes them.

use std::fmt;
use std::str::FromStr;

/// Length of an encoded id: 16 bytes in unpadded base64url.
pub const ID_LEN: usize = 22;

/// The URL-safe base64 alphabet (RFC 4648 §5).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The value of each byte in [`ALPHABET`]; `0xFF` for every other byte.
const BASE64URL: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// A session id: 128 bits from the operating system's CSPRNG.
///
/// The text form is exactly tower-sessions' (`base64url` without padding of the
/// little-endian bytes of an `i128`, 22 characters), so ids move losslessly between this
/// crate and tower-sessions' `Id` in both directions (with the `tower-sessions` feature).
///
/// Ids cannot be built from arbitrary numbers: they come from [`Id::random`], from a
/// store, or from [`str::parse`], which is strict (see [`FromStr`](#impl-FromStr-for-Id)).
///
/// `Debug` and `Display` print only the first six characters followed by `…`, so an id
/// written to a log cannot be replayed. Use [`Id::encode`] for the full text, which is a
/// secret that belongs in the cookie and the store only.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(u128);

impl Id {
    /// A fresh id from the operating system's random number generator.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot supply random bytes, which on supported
    /// platforms only happens when the system is unusable: falling back to a weaker
    /// source would be worse than stopping.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        Id(u128::from_le_bytes(bytes))
    }

    /// The full text of the id, as sent in the cookie (before any signing).
    ///
    /// This is a secret: do not log it.
    pub fn encode(&self) -> EncodedId {
        // The inverse of `parse_bytes`, for one fixed length: the 16 little-endian bytes
        // read as one big-endian number are 21 whole sextets, then two bits, which the
        // last character carries in its top bits. The base64 crate's general encoder
        // took twice as long for this, once per new session (tests compare the two).
        let bits = self.0.swap_bytes();
        let mut buf = [0u8; ID_LEN];
        for (i, c) in buf[..ID_LEN - 1].iter_mut().enumerate() {
            *c = ALPHABET[(bits >> (122 - 6 * i)) as usize & 0x3F];
        }
        buf[ID_LEN - 1] = ALPHABET[(bits as usize & 0x03) << 4];
        EncodedId(buf)
    }

    /// The id's 16 bytes, little-endian (the layout tower-sessions uses).
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// A short, non-secret prefix of the id for logs (six characters).
    pub fn short(&self) -> ShortId {
        self.encode().short()
    }

    pub(crate) fn shard_bits(&self) -> u64 {
        self.0 as u64
    }

    pub(crate) fn as_u128(&self) -> u128 {
        self.0
    }

    pub(crate) const fn from_u128(v: u128) -> Self {
        Id(v)
    }
}

/// The full text of an [`Id`] on the stack, without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncodedId([u8; ID_LEN]);

impl EncodedId {
    /// The 22 characters of the id.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base64url is ASCII")
    }

    /// The id's first [`SHORT_LEN`] characters.
    fn short(&self) -> ShortId {
        let mut prefix = [0u8; SHORT_LEN];
        prefix.copy_from_slice(&self.0[..SHORT_LEN]);
        ShortId(prefix)
    }
}

impl fmt::Debug for EncodedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncodedId({})", self.short())
    }
}

/// How many characters of an id its [`ShortId`] keeps.
pub const SHORT_LEN: usize = 6;

/// A loggable prefix of an [`Id`]: its first [`SHORT_LEN`] characters, shown followed
/// by `…`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShortId([u8; SHORT_LEN]);

impl ShortId {
    /// The characters alone, without the `…` that `Display` adds: what a list of a
    /// user's sessions shows ([`SessionInfo::short_id`](crate::SessionInfo::short_id)),
    /// and what a store keeps to list it.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("base64url is ASCII")
    }
}

impl fmt::Display for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.as_str())
    }
}

impl fmt::Debug for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.short(), f)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.short())
    }
}

/// Why a string is not an [`Id`]. Carries no part of the rejected input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a session id: expected 22 characters of unpadded base64url encoding 16 bytes")]
pub struct ParseIdError(());

impl FromStr for Id {
    type Err = ParseIdError;

    /// Parses the 22-character text form.
    ///
    /// Strict: anything but exactly 22 characters of the URL-safe base64 alphabet in the
    /// canonical encoding of 16 bytes (the last character's unused bits zero) is rejected,
    /// so every accepted string is the [`Id::encode`] of exactly one id. Never panics.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_bytes(s.as_bytes())
    }
}

impl Id {
    /// Like [`str::parse`], on raw bytes (a header value need not be UTF-8).
    ///
    /// This runs on every request that presents an id, so it is a fixed-size decoder
    /// (the `base64` crate's general engine cost several times more); a property test
    /// holds it to exactly what `base64`'s strict URL-safe engine accepts.
    pub fn parse_bytes(input: &[u8]) -> Result<Self, ParseIdError> {
        let input: &[u8; ID_LEN] = input.try_into().map_err(|_| ParseIdError(()))?;
        // 22 characters carry 132 bits: 21 whole sextets, then the last character's
        // top two bits; its low four bits must be zero (the canonical encoding).
        let mut acc: u128 = 0;
        let mut bad = 0u8;
        for &c in &input[..ID_LEN - 1] {
            let v = BASE64URL[usize::from(c)];
            bad |= v;
            acc = (acc << 6) | u128::from(v & 0x3F);
        }
        let last = BASE64URL[usize::from(input[ID_LEN - 1])];
        if (bad | last) & 0xC0 != 0 || last & 0x0F != 0 {
            return Err(ParseIdError(()));
        }
        acc = (acc << 2) | u128::from(last >> 4);
        // `acc` holds the 16 bytes big-endian; the id is their little-endian value.
        Ok(Id(acc.swap_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use std::collections::HashSet;

    /// tower-sessions' id of the same 128 bits (the `tower-sessions` feature's conversion
    /// is tested beside it, in `interop`).
    fn tower(id: Id) -> tower_sessions_core::session::Id {
        tower_sessions_core::session::Id(i128::from_le_bytes(id.as_u128().to_le_bytes()))
    }

    #[test]
    fn text_form_round_trips_and_matches_tower_sessions() {
        for _ in 0..100_000 {
            let id = Id::random();
            let text = id.encode();
            assert_eq!(text.as_str().len(), ID_LEN);
            assert_eq!(text.as_str().parse::<Id>(), Ok(id));

            assert_eq!(tower(id).to_string(), text.as_str());
            let parsed: tower_sessions_core::session::Id = text.as_str().parse().unwrap();
            assert_eq!(parsed, tower(id));
        }
    }

    #[test]
    fn a_million_ids_have_no_duplicate() {
        let mut seen = HashSet::with_capacity(1_000_000);
        for _ in 0..1_000_000 {
            assert!(seen.insert(Id::random()), "duplicate id generated");
        }
    }

    #[test]
    fn malformed_input_is_rejected() {
        let valid = Id::random().encode();
        let valid = valid.as_str();
        let long_64k = "A".repeat(64 * 1024);
        let cases: Vec<String> = vec![
            String::new(),
            valid[..21].to_string(),
            format!("{valid}A"),
            format!("{}+", &valid[..21]),
            format!("{}/", &valid[..21]),
            format!("{}=", &valid[..21]),
            format!("{}\0", &valid[..21]),
            format!("\"{}\"", &valid[..20]),
            format!("{} ", &valid[..21]),
            format!("{}é", &valid[..20]),
            "%41%41%41%41%41%41%41%41%41%41%41"
                .chars()
                .take(22)
                .collect(),
            "\\x00\\x01\\x02\\x03\\x04\\x05\\x06\\x07"
                .chars()
                .take(22)
                .collect(),
            long_64k,
            "A".repeat(24),
            // 22 valid characters whose last one has non-zero unused bits.
            format!("{}B", "A".repeat(21)),
        ];
        for case in &cases {
            assert!(case.parse::<Id>().is_err(), "accepted {case:?}");
            assert!(Id::parse_bytes(case.as_bytes()).is_err());
        }
        assert!(Id::parse_bytes(&[0xff; 22]).is_err());
        assert!(format!("{}A", "A".repeat(21)).parse::<Id>().is_ok());
    }

    #[test]
    fn every_non_canonical_last_character_is_rejected() {
        let prefix = &Id::random().encode().as_str()[..21].to_string();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let accepted: Vec<char> = alphabet
            .chars()
            .filter(|c| format!("{prefix}{c}").parse::<Id>().is_ok())
            .collect();
        // 22 characters carry 132 bits; the last 4 must be zero: A, Q, g, w.
        assert_eq!(accepted, vec!['A', 'Q', 'g', 'w']);
    }

    #[test]
    fn debug_and_display_do_not_reveal_the_id() {
        let id = Id::random();
        let full = id.encode();
        for shown in [
            format!("{id}"),
            format!("{id:?}"),
            format!("{:?}", id.short()),
            format!("{full:?}"),
        ] {
            assert!(!shown.contains(full.as_str()), "{shown} reveals the id");
            assert!(shown.contains(&full.as_str()[..6]));
        }
        assert_eq!(id.short().as_str(), &full.as_str()[..SHORT_LEN]);
    }

    #[test]
    fn text_form_is_the_base64_crates() {
        let edges = [0, 1, u128::MAX, u128::MAX >> 1, 1 << 127, 0x3F, 0x3F << 122];
        let random = (0..100_000).map(|_| Id::random().0);
        for v in edges.into_iter().chain(random) {
            let id = Id::from_u128(v);
            assert_eq!(
                id.encode().as_str(),
                URL_SAFE_NO_PAD.encode(v.to_le_bytes())
            );
            assert_eq!(Id::parse_bytes(id.encode().as_str().as_bytes()), Ok(id));
        }
    }

    #[test]
    fn known_vector_matches_tower_sessions() {
        let ours = Id::from_u128(1);
        assert_eq!(ours.encode().as_str(), "AQAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(
            tower_sessions_core::session::Id(1).to_string(),
            "AQAAAAAAAAAAAAAAAAAAAA"
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5_000))]

        #[test]
        fn every_id_round_trips(v in any::<u128>()) {
            let id = Id(v);
            let text = id.encode();
            let parsed = text.as_str().parse::<Id>();
            prop_assert_eq!(parsed, Ok(id));
            let tower = tower_sessions_core::session::Id(i128::from_le_bytes(v.to_le_bytes()));
            prop_assert_eq!(tower.to_string(), text.as_str());
        }

        #[test]
        fn only_encoded_ids_parse(s in "\\PC{0,40}") {
            if let Ok(id) = s.parse::<Id>() {
                let again = id.encode();
                prop_assert_eq!(again.as_str(), s.as_str());
            }
        }

        #[test]
        fn only_encoded_ids_parse_near_misses(s in "[A-Za-z0-9_\\-+/=]{20,24}") {
            if let Ok(id) = s.parse::<Id>() {
                let again = id.encode();
                prop_assert_eq!(again.as_str(), s.as_str());
            }
        }

        #[test]
        fn parsing_accepts_exactly_what_base64_accepts(s in "[A-Za-z0-9_\\-+/=.]{21,23}") {
            let mut out = [0u8; 16];
            let oracle = match URL_SAFE_NO_PAD.decode_slice(s.as_bytes(), &mut out) {
                Ok(16) if s.len() == ID_LEN => Ok(Id(u128::from_le_bytes(out))),
                _ => Err(ParseIdError(())),
            };
            prop_assert_eq!(Id::parse_bytes(s.as_bytes()), oracle);
        }

        #[test]
        fn every_last_character_is_checked(v in any::<u128>(), last in any::<u8>()) {
            let mut text = *Id(v).encode().as_str().as_bytes().first_chunk::<ID_LEN>().unwrap();
            text[ID_LEN - 1] = last;
            let mut out = [0u8; 16];
            let oracle = match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
                Ok(16) => Ok(Id(u128::from_le_bytes(out))),
                _ => Err(ParseIdError(())),
            };
            prop_assert_eq!(Id::parse_bytes(&text), oracle);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Id::parse_bytes(&b);
        }
    }
}
