//! Reading and writing the id, against the cookie crate's own parsing and rendering.

use super::read::*;
use super::write::*;
use super::*;
use std::borrow::Cow;

use ::cookie::{Cookie, CookieJar};

use crate::expiry::Ttl;
use crate::id::Id;

fn plain() -> SessionConfig {
    SessionConfig::default()
}

fn find(c: &SessionConfig, header: &str) -> Option<Incoming> {
    find_id(c, [header.as_bytes()])
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
            let mut expected = cookie(&c, Cow::Owned(value), age.map(Ttl::as_duration));
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
    assert_eq!(find_id(&c, [h1.as_bytes(), h2.as_bytes()]).unwrap().id, a);
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
        find_id(&c, [&[0xff, 0xfe, b';', b'i', b'd', b'=', 0x80][..]]),
        None
    );
}

#[test]
fn absent_and_rejected_ids_are_told_apart() {
    let c = plain();
    assert_eq!(lookup(&c, [&b"theme=dark; lonely"[..]]), Lookup::Absent);
    assert_eq!(lookup(&c, std::iter::empty()), Lookup::Absent);
    assert_eq!(lookup(&c, [&b"id=forged"[..]]), Lookup::Rejected);
    let id = Id::random();
    let h = format!("id=bad; id={}", id.encode().as_str());
    assert!(matches!(lookup(&c, [h.as_bytes()]), Lookup::Found(f) if f.first().unwrap().id == id));
    let c = SessionConfig::builder()
        .id_header("x-session-id")
        .build()
        .unwrap();
    assert_eq!(lookup(&c, [&b"  "[..]]), Lookup::Absent);
    assert_eq!(lookup(&c, [&b"nope"[..]]), Lookup::Rejected);
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
    assert_eq!(removal(&c), "");
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
    let Lookup::Found(found) = lookup(&c, [header.as_bytes()]) else {
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
    let Lookup::Found(found) = lookup(&s, [junk.as_bytes()]) else {
        panic!("the signed id behind four forged ones is found");
    };
    assert_eq!(found.iter().map(|i| i.id).collect::<Vec<_>>(), vec![a]);
}

#[test]
fn a_signed_non_id_is_not_an_id() {
    let key = Key::generate();
    let c = protected(true, &key, vec![]);
    let mut jar = CookieJar::new();
    let bound = crate::cookie::bind_to_name(&key, "id");
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
        removal(&c),
        "sid=; HttpOnly; SameSite=Strict; Secure; Path=/app; Domain=example.com; Max-Age=0; \
         Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
    let set = Cookie::parse(c.issue(&Id::random(), None)).unwrap();
    let gone = Cookie::parse(removal(&c)).unwrap();
    assert_eq!(set.path(), gone.path());
    assert_eq!(set.domain(), gone.domain());
    assert_eq!(set.secure(), gone.secure());
    assert_eq!(set.http_only(), gone.http_only());
    assert_eq!(set.same_site(), gone.same_site());
    assert_eq!(gone.max_age(), Some(time::Duration::ZERO));
}

#[test]
fn the_bounds_are_the_ones_the_docs_give() {
    // `SessionConfig`'s "Which cookie is ours" states these numbers.
    assert_eq!(
        (MAX_CANDIDATES, MAX_STORE_READS, MAX_VALUE_LEN),
        (8, 3, 256)
    );
}
