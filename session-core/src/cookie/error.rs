//! [`ConfigError`]: why a configuration was refused.

/// A configuration that cannot work, found when it is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `SameSite=None` without `Secure`.
    #[error("`SameSite=None` cookies must be `Secure`: browsers reject them otherwise. Turn `secure` on or pick `SameSite::Lax`/`Strict`.")]
    SameSiteNoneWithoutSecure,
    /// `Partitioned` without `Secure`.
    #[error("`Partitioned` cookies must be `Secure`: browsers reject them otherwise. Turn `secure` on or `partitioned` off.")]
    PartitionedWithoutSecure,
    /// A `__Host-` cookie with a `Domain`.
    #[error("a cookie named `__Host-…` must not have a `Domain`: remove the domain or rename the cookie.")]
    HostPrefixWithDomain,
    /// A `__Host-` cookie with a path other than `/`.
    #[error(
        "a cookie named `__Host-…` must have `Path=/`: set the path to `/` or rename the cookie."
    )]
    HostPrefixWithPath,
    /// A `__Host-` or `__Secure-` cookie without `Secure`.
    #[error("a cookie named `{0}…` must be `Secure`: turn `secure` on or rename the cookie.")]
    PrefixWithoutSecure(&'static str),
    /// A `__Http-` or `__Host-Http-` cookie without `HttpOnly`.
    #[error("a cookie named `{0}…` must be `HttpOnly`: turn `http_only` on or rename the cookie.")]
    PrefixWithoutHttpOnly(&'static str),
    /// A maximum TTL over 400 days.
    #[error("the maximum TTL is over 400 days, the longest cookie lifetime browsers keep: lower `max_ttl`.")]
    MaxTtlOver400Days,
    /// A cookie name that is empty or has characters a cookie name cannot carry.
    #[error("the cookie name {0:?} is not valid: use letters, digits and `!#$%&'*+-.^_`|~` only.")]
    InvalidCookieName(String),
    /// A header name that is not a valid HTTP header name, or is `cookie`/`set-cookie`.
    #[error("the id header name {0:?} is not usable: give a valid HTTP header name other than `cookie` and `set-cookie`, e.g. `x-session-id`.")]
    InvalidHeaderName(String),
    /// A path that does not start with `/` or has characters a cookie attribute cannot carry.
    #[error("the cookie path {0:?} is not valid: it must start with `/` and contain no `;` or control characters.")]
    InvalidPath(String),
    /// A domain that is empty or has characters a cookie attribute cannot carry.
    #[error("the cookie domain {0:?} is not valid: give a host name without `;`, spaces or control characters.")]
    InvalidDomain(String),
    /// A single-label domain (`com`, `localhost`): a cookie for it would go to every
    /// site under it, and browsers refuse it anyway.
    #[error("the cookie domain {0:?} has a single label: a cookie for it would reach every site under it. Give the site's own domain, or none (the safest).")]
    SingleLabelDomain(String),
    /// A domain on the public suffix list (`co.uk`, `github.io`): sites under it belong
    /// to different owners, so a cookie for it would reach all of them, and browsers
    /// refuse it anyway.
    #[error("the cookie domain {0:?} is a public suffix: sites under it belong to different owners. Give the site's own domain, or none (the safest).")]
    PublicSuffixDomain(String),
    /// Old keys given while cookies are neither signed nor private.
    #[error("old keys were given but cookies are not signed or private: call `signed(key)` or `private(key)` as well, or drop the old keys.")]
    OldKeysWithoutProtection,
    /// A store TTL of less than a second or more than [`Ttl::MAX`](crate::Ttl::MAX).
    #[error("the {0} must be between 1 second and 100 years.")]
    InvalidTtl(&'static str),
    /// A session limit of zero.
    #[error("the session's {0} limit must be at least 1.")]
    ZeroLimit(&'static str),
    /// The default store TTL is longer than the maximum TTL.
    #[error("the default store TTL is longer than the maximum TTL: raise `max_ttl` or lower `default_ttl`.")]
    DefaultTtlAboveMax,
    /// An `OnInactivity` default expiry of less than one second.
    #[error("the default expiry `OnInactivity` must be at least one second long.")]
    InactivityTooShort,
    /// A throttled touch policy outside 1..=100 %.
    #[error("the throttled touch policy takes a percentage from 1 to 100.")]
    InvalidTouchPercent,
}
