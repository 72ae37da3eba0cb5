//! Reading the id a request presents: every cookie of our name (or the id header), each
//! verified and parsed, in order.

use ::cookie::{Cookie, CookieJar};

use super::config::{Protection, SessionConfig};
use crate::id::Id;

/// At most this many cookies of our name are tried (verified, parsed) per request.
pub(crate) const MAX_CANDIDATES: usize = 8;

/// At most this many verified ids of one request are looked up in the store.
pub(crate) const MAX_STORE_READS: usize = 3;

/// Values longer than this are not ours (a private cookie of an id is about 70 bytes) and
/// are skipped before any decoding or cryptography.
pub(crate) const MAX_VALUE_LEN: usize = 256;

/// The id a request presented, once verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Incoming {
    pub(crate) id: Id,
    /// Verified with an old key: re-issue the cookie with the current one.
    pub(crate) stale_key: bool,
}

/// The verified ids a request presented, in the order it sent them, without repeats.
/// Compact (64 bytes), since every request that uses its session carries one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Candidates {
    ids: [Id; MAX_STORE_READS],
    len: u8,
    /// Bit `i`: candidate `i` was verified with an old key.
    stale: u8,
}

impl Default for Candidates {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Candidates {
    /// No candidate.
    pub(crate) const EMPTY: Candidates = Candidates {
        ids: [Id::from_u128(0); MAX_STORE_READS],
        len: 0,
        stale: 0,
    };

    /// Adds `found` unless it is there already or the list is full.
    fn push(&mut self, found: Incoming) {
        let len = usize::from(self.len);
        if len == MAX_STORE_READS || self.ids[..len].contains(&found.id) {
            return;
        }
        self.ids[len] = found.id;
        self.stale |= u8::from(found.stale_key) << len;
        self.len += 1;
    }

    fn is_full(&self) -> bool {
        usize::from(self.len) == MAX_STORE_READS
    }

    /// The first candidate.
    pub(crate) fn first(&self) -> Option<Incoming> {
        self.iter().next()
    }

    /// Whether there is none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The candidates, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Incoming> + '_ {
        self.ids[..usize::from(self.len)]
            .iter()
            .enumerate()
            .map(|(i, &id)| Incoming {
                id,
                stale_key: self.stale & (1 << i) != 0,
            })
    }
}

/// What a request presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// No id at all.
    Absent,
    /// Only ids that were malformed or failed verification.
    Rejected,
    /// Verified, well-formed ids.
    Found(Candidates),
}

/// Finds and verifies the session id among the values of the request header
/// [`request_header`](SessionConfig::request_header) (all of them, in order).
#[cfg(test)]
pub(crate) fn find_id<'a, I>(config: &SessionConfig, values: I) -> Option<Incoming>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    match lookup(config, values) {
        Lookup::Found(found) => found.first(),
        Lookup::Absent | Lookup::Rejected => None,
    }
}

/// Like `find_id`, telling a request that presented no id apart from one whose ids
/// were all malformed or failed verification.
pub(crate) fn lookup<'a, I>(config: &SessionConfig, values: I) -> Lookup
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut tried = 0;
    let mut found = Candidates::default();
    'values: for raw in values {
        if tried >= MAX_CANDIDATES || found.is_full() {
            break;
        }
        if config.id_source == crate::IdSource::Cookie {
            for (name, value) in cookie_pairs(raw) {
                if name != config.name.as_bytes() {
                    continue;
                }
                tried += 1;
                if let Some(id) = verify(config, value) {
                    found.push(id);
                }
                if tried >= MAX_CANDIDATES || found.is_full() {
                    break 'values;
                }
            }
        } else {
            let value = raw.trim_ascii();
            if value.is_empty() {
                continue; // an empty header is how a forgotten session comes back
            }
            tried += 1;
            if let Some(id) = verify(config, value) {
                found.push(id);
            }
        }
    }
    if !found.is_empty() {
        Lookup::Found(found)
    } else if tried == 0 {
        Lookup::Absent
    } else {
        Lookup::Rejected
    }
}

pub(super) fn verify(config: &SessionConfig, value: &[u8]) -> Option<Incoming> {
    if value.len() > MAX_VALUE_LEN {
        return None;
    }
    let (keys, signed) = match &config.protection {
        Protection::Plain => {
            let id = Id::parse_bytes(value).ok()?;
            return Some(Incoming {
                id,
                stale_key: false,
            });
        }
        Protection::Signed(keys) => (keys, true),
        Protection::Private(keys) => (keys, false),
    };
    let value = std::str::from_utf8(value).ok()?;
    let jar = CookieJar::new();
    let cookie = || Cookie::new(config.name.clone(), value.to_owned());
    // Signed mode verifies with the name-bound keys, current first.
    let (first, rest) = match keys.signing.split_first() {
        Some((first, rest)) if signed => (first, rest),
        _ => (&keys.current, &keys.old[..]),
    };
    for (i, key) in std::iter::once(first).chain(rest).enumerate() {
        let plain = if signed {
            jar.signed(key).verify(cookie())
        } else {
            jar.private(key).decrypt(cookie())
        };
        if let Some(plain) = plain {
            // Verified with this key; a malformed id under a valid signature is still
            // not an id.
            let id = plain.value().parse().ok()?;
            return Some(Incoming {
                id,
                stale_key: i > 0,
            });
        }
    }
    None
}

/// The `name=value` pairs of one `Cookie` header, as the cookie crate's `split_parse`
/// reads them: split at `;`, name and value trimmed, keyless pairs and empty names
/// skipped. Works on bytes, so a header that is not UTF-8 costs no conversion.
pub(super) fn cookie_pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';').filter_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let name = pair[..eq].trim_ascii();
        (!name.is_empty()).then(|| (name, pair[eq + 1..].trim_ascii()))
    })
}
