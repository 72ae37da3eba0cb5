//! Reading the id from a request and writing it into a response, framework-neutrally.
//!
//! # Which cookie is ours
//!
//! The id is read from the `Cookie` request header(s) (or the configured id header, never
//! from the URL). Pairs of other names are ignored, and so are keyless pairs (`foo` with no
//! `=`) and pairs that do not parse. When several cookies carry our name (a browser sends
//! all that match the request: one set for `Path=/` and one for a sub-path, or one set by
//! a parent domain), they are tried in the order the browser sends them, which RFC 6265
//! makes most-specific path first. Every one that verifies and parses as an [`Id`] is a
//! candidate, up to [`MAX_STORE_READS`], and the engine takes the first that names a
//! live session: a cookie planted by a sibling subdomain (a well-formed unknown id) or a
//! few junk cookies cannot hide the user's own. In signed and private modes a cookie that
//! fails verification is no candidate and costs no store read. At most
//! [`MAX_CANDIDATES`] cookies are tried and values longer than [`MAX_VALUE_LEN`] are
//! skipped unread, so a hostile header costs bounded work.

use std::borrow::Cow;
use std::time::SystemTime;

use cookie::{Cookie, CookieJar};

use crate::config::{Keys, Protection, SessionConfig};
use crate::expiry::{Lifetime, Ttl};
use crate::id::Id;

/// At most this many cookies of our name are tried (verified, parsed) per request.
pub const MAX_CANDIDATES: usize = 8;

/// At most this many verified ids of one request are looked up in the store.
pub const MAX_STORE_READS: usize = 3;

/// Values longer than this are not ours (a private cookie of an id is about 70 bytes) and
/// are skipped before any decoding or cryptography.
pub const MAX_VALUE_LEN: usize = 256;

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

impl SessionConfig {
    /// Finds and verifies the session id among the values of the request header
    /// [`request_header`](SessionConfig::request_header) (all of them, in order).
    #[cfg(test)]
    pub(crate) fn find_id<'a, I>(&self, values: I) -> Option<Incoming>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        match self.lookup(values) {
            Lookup::Found(found) => found.first(),
            Lookup::Absent | Lookup::Rejected => None,
        }
    }

    /// Like `find_id`, telling a request that presented no id apart from one whose ids
    /// were all malformed or failed verification.
    pub(crate) fn lookup<'a, I>(&self, values: I) -> Lookup
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut tried = 0;
        let mut found = Candidates::default();
        'values: for raw in values {
            if tried >= MAX_CANDIDATES || found.is_full() {
                break;
            }
            if self.id_source == crate::IdSource::Cookie {
                for (name, value) in cookie_pairs(raw) {
                    if name != self.name.as_bytes() {
                        continue;
                    }
                    tried += 1;
                    if let Some(id) = self.verify(value) {
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
                if let Some(id) = self.verify(value) {
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

    fn verify(&self, value: &[u8]) -> Option<Incoming> {
        if value.len() > MAX_VALUE_LEN {
            return None;
        }
        let (keys, signed) = match &self.protection {
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
        let cookie = || Cookie::new(self.name.clone(), value.to_owned());
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

    /// The id as it travels: plain, signed or encrypted with the current key, appended
    /// to `out`.
    fn push_protected(&self, id: &Id, out: &mut String) {
        let plain = id.encode();
        match &self.protection {
            Protection::Plain => out.push_str(plain.as_str()),
            Protection::Signed(keys) | Protection::Private(keys) => {
                let mut jar = CookieJar::new();
                let c = Cookie::new(self.name.clone(), plain.as_str().to_owned());
                self.add_protected(&mut jar, keys, c);
                let protected = jar
                    .get(&self.name)
                    .expect("the jar holds the cookie just added");
                out.push_str(protected.value());
            }
        }
    }

    fn add_protected(&self, jar: &mut CookieJar, keys: &Keys, c: Cookie<'static>) {
        if matches!(self.protection, Protection::Signed(_)) {
            jar.signed_mut(&keys.signing[0]).add(c);
        } else {
            jar.private_mut(&keys.current).add(c);
        }
    }

    /// The response header value that hands `id` to the client, with `max_age` (`None`
    /// for a browser-session cookie): a whole `Set-Cookie` value, or the protected id
    /// alone in header mode. Adapters get it from [`Finished::header`](crate::Finished::header);
    /// this is for tools that issue ids themselves.
    ///
    /// ```
    /// use session_core::{Id, SessionConfig};
    ///
    /// let config = SessionConfig::builder().secure(false).build().unwrap();
    /// let id = Id::random();
    /// let value = config.issue(&id, None);
    /// assert_eq!(value, format!("id={}; HttpOnly; SameSite=Lax; Path=/", id.encode().as_str()));
    /// ```
    pub fn issue(&self, id: &Id, max_age: Option<Ttl>) -> String {
        self.issue_until(id, max_age, |age| {
            SystemTime::now().checked_add(std::time::Duration::from_secs(age.as_secs().into()))
        })
    }

    /// [`issue`](Self::issue) for a session whose lifetime the engine decided: `Expires`
    /// is the instant its record ends, and no clock is read again.
    pub(crate) fn issue_for(&self, id: &Id, life: &Lifetime) -> String {
        self.issue_until(id, life.max_age, |_| {
            Some(SystemTime::from(life.expires_at))
        })
    }

    /// `issue`, with `expires` giving the `Expires` instant for a `Max-Age`.
    fn issue_until(
        &self,
        id: &Id,
        max_age: Option<Ttl>,
        expires: impl FnOnce(Ttl) -> Option<SystemTime>,
    ) -> String {
        match self.id_source {
            crate::IdSource::Header(_) => {
                let mut out = String::with_capacity(crate::ID_LEN);
                self.push_protected(id, &mut out);
                out
            }
            crate::IdSource::Cookie => {
                // The cookie crate's own rendering, with the attributes rendered once by
                // `cookie_attributes`: Max-Age and Expires are the last it writes.
                let mut out = String::with_capacity(
                    self.name.len() + 1 + MAX_VALUE_LEN / 2 + self.cookie_attrs.len() + 60,
                );
                out.push_str(&self.name);
                out.push('=');
                self.push_protected(id, &mut out);
                out.push_str(&self.cookie_attrs);
                if let Some(age) = max_age {
                    use std::fmt::Write;
                    // Expires beside Max-Age, for the clients that know only Expires;
                    // those that know both take Max-Age (RFC 6265 §5.3).
                    let _ = write!(out, "; Max-Age={}", age.as_secs());
                    if let Some(at) = expires(age) {
                        let _ = write!(out, "; Expires={}", httpdate::HttpDate::from(at));
                    }
                }
                out
            }
        }
    }

    /// The response header value that makes the client forget the session: a cookie with
    /// the same attributes, an empty value, `Max-Age=0` and an `Expires` in 1970, or an
    /// empty id header.
    pub(crate) fn removal(&self) -> String {
        match self.id_source {
            crate::IdSource::Header(_) => String::new(),
            crate::IdSource::Cookie => {
                let mut c = self.cookie(Cow::Borrowed(""), Some(time::Duration::ZERO));
                c.set_expires(time::OffsetDateTime::UNIX_EPOCH);
                c.to_string()
            }
        }
    }

    /// Every attribute of our cookie but Max-Age, as the cookie crate renders them after
    /// `name=value`: computed once when the configuration is built.
    pub(crate) fn cookie_attributes(&self) -> String {
        let rendered = self.cookie(Cow::Borrowed(""), None).to_string();
        rendered[self.name.len() + 1..].to_owned()
    }

    fn cookie<'c>(&'c self, value: Cow<'c, str>, max_age: Option<time::Duration>) -> Cookie<'c> {
        let mut b = Cookie::build((self.name.as_str(), value))
            .path(self.path.as_str())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site);
        if self.partitioned {
            b = b.partitioned(true);
        }
        if let Some(domain) = &self.domain {
            b = b.domain(domain.as_str());
        }
        if let Some(age) = max_age {
            b = b.max_age(age);
        }
        b.build()
    }
}

/// The `name=value` pairs of one `Cookie` header, as the cookie crate's `split_parse`
/// reads them: split at `;`, name and value trimmed, keyless pairs and empty names
/// skipped. Works on bytes, so a header that is not UTF-8 costs no conversion.
fn cookie_pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';').filter_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let name = pair[..eq].trim_ascii();
        (!name.is_empty()).then(|| (name, pair[eq + 1..].trim_ascii()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Key, SameSite};

    fn plain() -> SessionConfig {
        SessionConfig::default()
    }

    fn find(c: &SessionConfig, header: &str) -> Option<Incoming> {
        c.find_id([header.as_bytes()])
    }

    #[test]
    fn issue_renders_exactly_what_the_cookie_crate_renders() {
        let key = Key::from(&[3u8; 64]);
        let configs = [
            SessionConfig::builder(),
            SessionConfig::builder().secure(false).http_only(false),
            SessionConfig::builder()
                .name("__Secure-sid")
                .domain("example.com")
                .path("/app")
                .same_site(SameSite::None)
                .partitioned(true),
            SessionConfig::builder()
                .same_site(SameSite::Strict)
                .signed(key.clone()),
            SessionConfig::builder().private(key),
        ];
        let id = Id::random();
        for builder in configs {
            let c = builder.build().unwrap();
            for age in [
                None,
                Ttl::from_secs(1),
                Ttl::from_secs(86_400),
                Some(Ttl::MAX),
            ] {
                let issued = c.issue(&id, age);
                let value = issued.split(';').next().unwrap()[c.name.len() + 1..].to_owned();
                let mut expected = c.cookie(Cow::Owned(value), age.map(Ttl::as_duration));
                // Expires is the one attribute that depends on the clock: take it from
                // what was issued (its value is checked in the next test).
                let expires = Cookie::parse(issued.as_str()).unwrap().expires_datetime();
                assert_eq!(expires.is_some(), age.is_some(), "{issued}");
                if let Some(at) = expires {
                    expected.set_expires(at);
                }
                assert_eq!(issued, expected.to_string());
                // And it reads back as the same id.
                let pair = issued.split(';').next().unwrap();
                assert_eq!(find(&c, pair).unwrap().id, id);
            }
        }
    }

    #[test]
    fn cookie_pairs_split_like_the_cookie_crate() {
        let header = " a=1;b = 2 ;; lonely ; =nameless; c=; d=x=y;e=\"q\" ";
        let ours: Vec<(String, String)> = cookie_pairs(header.as_bytes())
            .map(|(n, v)| {
                let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
                (s(n), s(v))
            })
            .collect();
        let theirs: Vec<(String, String)> = Cookie::split_parse(header)
            .filter_map(Result::ok)
            .map(|c| (c.name().to_owned(), c.value().to_owned()))
            .collect();
        assert_eq!(ours, theirs);
        assert_eq!(ours.len(), 5);
    }

    #[test]
    fn finds_the_id_among_foreign_and_keyless_cookies() {
        let c = plain();
        let id = Id::random();
        let v = id.encode();
        let header = format!("theme=dark; lonely; id={}; other=1", v.as_str());
        assert_eq!(find(&c, &header).unwrap().id, id);
        assert_eq!(find(&c, "theme=dark; lonely; ID=x"), None);
        // A keyless pair equal to a valid id is not our cookie.
        assert_eq!(find(&c, v.as_str()), None);
        // A prefix-named cookie is another cookie.
        assert_eq!(find(&c, &format!("xid={}", v.as_str())), None);
        assert_eq!(find(&c, &format!("id ={}", v.as_str())).unwrap().id, id);
    }

    #[test]
    fn with_duplicates_the_first_valid_one_wins() {
        let c = plain();
        let (a, b) = (Id::random(), Id::random());
        let (va, vb) = (a.encode(), b.encode());
        let h = format!("id=garbage; id={}; id={}", va.as_str(), vb.as_str());
        assert_eq!(find(&c, &h).unwrap().id, a);
        let h = format!("id={}; id={}", vb.as_str(), va.as_str());
        assert_eq!(find(&c, &h).unwrap().id, b);
        // Across several Cookie headers, in order.
        let h1 = "id=bad".to_string();
        let h2 = format!("id={}", va.as_str());
        assert_eq!(c.find_id([h1.as_bytes(), h2.as_bytes()]).unwrap().id, a);
    }

    #[test]
    fn only_a_bounded_number_of_candidates_is_tried() {
        let c = plain();
        let id = Id::random();
        let mut h = "id=x; ".repeat(MAX_CANDIDATES);
        h.push_str(&format!("id={}", id.encode().as_str()));
        assert_eq!(find(&c, &h), None);
        let long = format!("id={}", "A".repeat(MAX_VALUE_LEN + 1));
        assert_eq!(find(&c, &long), None);
    }

    #[test]
    fn hostile_headers_are_no_session() {
        let c = plain();
        let big = "A".repeat(64 * 1024);
        for h in [
            "",
            ";;;;",
            "id=",
            "id",
            "=",
            "id=\"\"",
            &format!("id={big}"),
            &format!("id={}", &big[..21]),
            &format!("id={}", &big[..23]),
            "id=%00%00%00%00%00%00%00%00%00%00%00",
        ] {
            assert_eq!(find(&c, h), None, "{h:.40}");
        }
        assert_eq!(
            c.find_id([&[0xff, 0xfe, b';', b'i', b'd', b'=', 0x80][..]]),
            None
        );
    }

    #[test]
    fn absent_and_rejected_ids_are_told_apart() {
        let c = plain();
        assert_eq!(c.lookup([&b"theme=dark; lonely"[..]]), Lookup::Absent);
        assert_eq!(c.lookup(std::iter::empty()), Lookup::Absent);
        assert_eq!(c.lookup([&b"id=forged"[..]]), Lookup::Rejected);
        let id = Id::random();
        let h = format!("id=bad; id={}", id.encode().as_str());
        assert!(
            matches!(c.lookup([h.as_bytes()]), Lookup::Found(f) if f.first().unwrap().id == id)
        );
        let c = SessionConfig::builder()
            .id_header("x-session-id")
            .build()
            .unwrap();
        assert_eq!(c.lookup([&b"  "[..]]), Lookup::Absent);
        assert_eq!(c.lookup([&b"nope"[..]]), Lookup::Rejected);
    }

    #[test]
    fn header_mode_reads_only_the_header_value() {
        let c = SessionConfig::builder()
            .id_header("x-session-id")
            .build()
            .unwrap();
        let id = Id::random();
        let v = id.encode();
        assert_eq!(find(&c, v.as_str()).unwrap().id, id);
        assert_eq!(find(&c, &format!(" {} ", v.as_str())).unwrap().id, id);
        assert_eq!(find(&c, &format!("id={}", v.as_str())), None);
        assert_eq!(c.issue(&id, None), v.as_str());
        assert_eq!(c.removal(), "");
    }

    fn protected(signed: bool, key: &Key, old: Vec<Key>) -> SessionConfig {
        let b = SessionConfig::builder();
        let b = if signed {
            b.signed(key.clone())
        } else {
            b.private(key.clone())
        };
        b.old_keys(old).build().unwrap()
    }

    fn value_of(set_cookie: &str) -> String {
        Cookie::parse(set_cookie.to_owned())
            .unwrap()
            .value()
            .to_owned()
    }

    #[test]
    fn signed_and_private_cookies_reject_tampering() {
        for signed in [true, false] {
            let key = Key::generate();
            let c = protected(signed, &key, vec![]);
            let id = Id::random();
            let value = value_of(&c.issue(&id, None));
            assert_ne!(value, id.encode().as_str());
            let ok = find(&c, &format!("id={value}")).unwrap();
            assert_eq!(
                ok,
                Incoming {
                    id,
                    stale_key: false
                }
            );

            // Flip one bit of every byte position in turn.
            for i in 0..value.len() {
                let mut bytes = value.clone().into_bytes();
                bytes[i] ^= 0x01;
                let Ok(t) = String::from_utf8(bytes) else {
                    continue;
                };
                let found = find(&c, &format!("id={t}"));
                assert!(
                    found.is_none() || found.unwrap().id == id && t == value,
                    "bit flip at {i}"
                );
            }
            // Truncated.
            for cut in [1, value.len() / 2, value.len() - 1] {
                assert_eq!(find(&c, &format!("id={}", &value[..cut])), None);
            }
            // The plain id is not accepted when protection is on.
            assert_eq!(find(&c, &format!("id={}", id.encode().as_str())), None);
            // Protected with a key this server does not know.
            let other = protected(signed, &Key::generate(), vec![]);
            let foreign = value_of(&other.issue(&id, None));
            assert_eq!(find(&c, &format!("id={foreign}")), None);
        }
    }

    #[test]
    fn rotated_out_keys_are_accepted_and_flagged_for_reissue() {
        for signed in [true, false] {
            let (old, new) = (Key::generate(), Key::generate());
            let before = protected(signed, &old, vec![]);
            let after = protected(signed, &new, vec![Key::generate(), old.clone()]);
            let id = Id::random();
            let value = value_of(&before.issue(&id, None));
            let found = find(&after, &format!("id={value}")).unwrap();
            assert_eq!(
                found,
                Incoming {
                    id,
                    stale_key: true
                }
            );
            // What `after` issues verifies with the current key.
            let fresh = value_of(&after.issue(&id, None));
            assert_eq!(
                find(&after, &format!("id={fresh}")).unwrap(),
                Incoming {
                    id,
                    stale_key: false
                }
            );
        }
    }

    #[test]
    fn every_verified_id_is_a_candidate_in_order_without_repeats() {
        let c = plain();
        let (a, b, d, e) = (Id::random(), Id::random(), Id::random(), Id::random());
        let [a_, b_, d_, e_] = [a, b, d, e].map(|i| i.encode().as_str().to_owned());
        let header = format!("id=junk; id={a_}; other={d_}; id={b_}; id={a_}; id={d_}; id={e_}");
        let Lookup::Found(found) = c.lookup([header.as_bytes()]) else {
            panic!("candidates expected");
        };
        let ids: Vec<Id> = found.iter().map(|i| i.id).collect();
        assert_eq!(
            ids,
            vec![a, b, d],
            "in order, once each, at most MAX_STORE_READS"
        );

        // Signed: cookies that fail verification are no candidates (and cost no read).
        let key = Key::generate();
        let s = protected(true, &key, vec![]);
        let good = s.issue(&a, None);
        let good = good.split(';').next().unwrap();
        let junk = format!("id=forged1; id=forged2; id=forged3; id=forged4; {good}");
        let Lookup::Found(found) = s.lookup([junk.as_bytes()]) else {
            panic!("the signed id behind four forged ones is found");
        };
        assert_eq!(found.iter().map(|i| i.id).collect::<Vec<_>>(), vec![a]);
    }

    #[test]
    fn a_signed_non_id_is_not_an_id() {
        let key = Key::generate();
        let c = protected(true, &key, vec![]);
        let mut jar = CookieJar::new();
        let bound = crate::config::bind_to_name(&key, "id");
        jar.signed_mut(&bound).add(Cookie::new("id", "not-an-id"));
        let v = jar.get("id").unwrap().value().to_owned();
        assert_eq!(find(&c, &format!("id={v}")), None);
    }

    #[test]
    fn signed_and_private_ids_are_bound_to_the_cookie_name() {
        let key = Key::generate();
        let id = Id::random();
        for signed in [true, false] {
            let name = |n: &str| {
                let b = SessionConfig::builder().name(n);
                if signed {
                    b.signed(key.clone())
                } else {
                    b.private(key.clone())
                }
                .build()
                .unwrap()
            };
            let (a, b) = (name("sid"), name("other_sid"));
            let issued = a.issue(&id, None);
            let value = issued
                .split(';')
                .next()
                .unwrap()
                .strip_prefix("sid=")
                .unwrap();
            assert_eq!(
                find(&a, &format!("sid={value}")).map(|i| i.id),
                Some(id),
                "signed: {signed}"
            );
            assert_eq!(
                find(&b, &format!("other_sid={value}")),
                None,
                "signed: {signed}: an id issued under one name verified under another"
            );
        }
    }

    #[test]
    fn set_cookie_carries_the_configured_attributes() {
        let id = Id::random();
        let v = id.encode();
        let c = plain();
        let before = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        let h = c.issue(&id, Ttl::from_secs(1800));
        let after = time::OffsetDateTime::now_utc();
        let (head, expires) = h.split_once("; Expires=").unwrap();
        assert_eq!(
            head,
            format!(
                "id={}; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=1800",
                v.as_str()
            )
        );
        // Expires is now + Max-Age, rendered exactly as the cookie crate renders it.
        let parsed = Cookie::parse(h.as_str()).unwrap();
        let at = parsed.expires_datetime().unwrap();
        assert!(at >= before + time::Duration::seconds(1800), "{h}");
        assert!(at <= after + time::Duration::seconds(1800), "{h}");
        let mut rendered = Cookie::new("id", v.as_str());
        rendered.set_expires(at);
        assert_eq!(
            rendered.to_string(),
            format!("id={}; Expires={expires}", v.as_str())
        );
        assert_eq!(
            c.issue(&id, None),
            format!("id={}; HttpOnly; SameSite=Lax; Secure; Path=/", v.as_str())
        );
        let c = SessionConfig::builder()
            .name("sid")
            .path("/app")
            .domain("example.com")
            .partitioned(true)
            .same_site(cookie::SameSite::Strict)
            .build()
            .unwrap();
        let h = c.issue(&id, None);
        assert_eq!(
            h,
            format!(
                "sid={}; HttpOnly; SameSite=Strict; Partitioned; Secure; Path=/app; Domain=example.com",
                v.as_str()
            )
        );
    }

    #[test]
    fn the_removal_cookie_matches_the_one_that_set_it() {
        let c = SessionConfig::builder()
            .name("sid")
            .path("/app")
            .domain("example.com")
            .same_site(cookie::SameSite::Strict)
            .build()
            .unwrap();
        assert_eq!(
            c.removal(),
            "sid=; HttpOnly; SameSite=Strict; Secure; Path=/app; Domain=example.com; Max-Age=0; \
             Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        );
        let set = Cookie::parse(c.issue(&Id::random(), None)).unwrap();
        let gone = Cookie::parse(c.removal()).unwrap();
        assert_eq!(set.path(), gone.path());
        assert_eq!(set.domain(), gone.domain());
        assert_eq!(set.secure(), gone.secure());
        assert_eq!(set.http_only(), gone.http_only());
        assert_eq!(set.same_site(), gone.same_site());
        assert_eq!(gone.max_age(), Some(time::Duration::ZERO));
    }
}
