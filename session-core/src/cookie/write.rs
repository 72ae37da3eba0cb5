//! Writing the id into a response: the `Set-Cookie` value (or the id header) that hands
//! a session to the client, and the one that makes it forget.

use std::borrow::Cow;
use std::time::SystemTime;

use ::cookie::{Cookie, CookieJar};

use super::config::{Keys, Protection, SessionConfig};
use super::read::MAX_VALUE_LEN;
use crate::expiry::{Lifetime, Ttl};
use crate::id::Id;

/// The id as it travels: plain, signed or encrypted with the current key, appended
/// to `out`.
pub(super) fn push_protected(config: &SessionConfig, id: &Id, out: &mut String) {
    let plain = id.encode();
    match &config.protection {
        Protection::Plain => out.push_str(plain.as_str()),
        Protection::Signed(keys) | Protection::Private(keys) => {
            let mut jar = CookieJar::new();
            let c = Cookie::new(config.name.clone(), plain.as_str().to_owned());
            add_protected(config, &mut jar, keys, c);
            let protected = jar
                .get(&config.name)
                .expect("the jar holds the cookie just added");
            out.push_str(protected.value());
        }
    }
}

fn add_protected(config: &SessionConfig, jar: &mut CookieJar, keys: &Keys, c: Cookie<'static>) {
    if matches!(config.protection, Protection::Signed(_)) {
        jar.signed_mut(&keys.signing[0]).add(c);
    } else {
        jar.private_mut(&keys.current).add(c);
    }
}

/// [`SessionConfig::issue`] for a session whose lifetime the engine decided: `Expires`
/// is the instant its record ends, and no clock is read again.
pub(crate) fn issue_for(config: &SessionConfig, id: &Id, life: &Lifetime) -> String {
    issue_until(config, id, life.max_age, |_| {
        Some(SystemTime::from(life.expires_at))
    })
}

/// `issue`, with `expires` giving the `Expires` instant for a `Max-Age`.
pub(super) fn issue_until(
    config: &SessionConfig,
    id: &Id,
    max_age: Option<Ttl>,
    expires: impl FnOnce(Ttl) -> Option<SystemTime>,
) -> String {
    match config.id_source {
        crate::IdSource::Header(_) => {
            let mut out = String::with_capacity(crate::ID_LEN);
            push_protected(config, id, &mut out);
            out
        }
        crate::IdSource::Cookie => {
            // The cookie crate's own rendering, with the attributes rendered once by
            // `cookie_attributes`: Max-Age and Expires are the last it writes.
            let mut out = String::with_capacity(
                config.name.len() + 1 + MAX_VALUE_LEN / 2 + config.cookie_attrs.len() + 60,
            );
            out.push_str(&config.name);
            out.push('=');
            push_protected(config, id, &mut out);
            out.push_str(&config.cookie_attrs);
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
pub(crate) fn removal(config: &SessionConfig) -> String {
    match config.id_source {
        crate::IdSource::Header(_) => String::new(),
        crate::IdSource::Cookie => {
            let mut c = cookie(config, Cow::Borrowed(""), Some(time::Duration::ZERO));
            c.set_expires(time::OffsetDateTime::UNIX_EPOCH);
            c.to_string()
        }
    }
}

/// Every attribute of our cookie but Max-Age, as the cookie crate renders them after
/// `name=value`: computed once when the configuration is built.
pub(crate) fn attributes(config: &SessionConfig) -> String {
    let rendered = cookie(config, Cow::Borrowed(""), None).to_string();
    rendered[config.name.len() + 1..].to_owned()
}

pub(super) fn cookie<'c>(
    config: &'c SessionConfig,
    value: Cow<'c, str>,
    max_age: Option<time::Duration>,
) -> Cookie<'c> {
    let mut b = Cookie::build((config.name.as_str(), value))
        .path(config.path.as_str())
        .secure(config.secure)
        .http_only(config.http_only)
        .same_site(config.same_site);
    if config.partitioned {
        b = b.partitioned(true);
    }
    if let Some(domain) = &config.domain {
        b = b.domain(domain.as_str());
    }
    if let Some(age) = max_age {
        b = b.max_age(age);
    }
    b.build()
}
