//! Rate limits: requests per session and per client address, new sessions
//! per address, and the requests a session's handlers send its client
//! (elicitation, sampling, roots).
//!
//! Each limit is a GCRA bucket from `governor`: `per_second` on average,
//! up to `burst` at once. A request over a limit is not run: it is answered
//! [`code::RATE_LIMITED`] with `data.limit` (which one) and
//! `data.retryAfter` (seconds until one more would pass); over HTTP the
//! answer is a 429 with `Retry-After`. All buckets live here, shared by
//! every transport, keyed by address or by the session's process id, so a
//! session holds none of its own; buckets not used for a while are dropped
//! as checks go by.
//!
//! Where each is checked: stream transports (TCP, WebSocket, stdio) in the
//! session, per request; HTTP at its door, before the request reaches a
//! session; new sessions where a session is made (a TCP or WebSocket
//! connection, an HTTP `initialize`).
//!
//! ```
//! use arbor_mcp::rate::{Limiter, Rate, RateLimits, Requester};
//!
//! let limits = RateLimits {
//!     session_requests: Some(Rate::new(1, 2).unwrap()),
//!     ..RateLimits::off()
//! };
//! let limiter = Limiter::new(&limits);
//! let me = Requester { address: None, session: Some(7) };
//! assert!(limiter.request(&me).is_ok());
//! assert!(limiter.request(&me).is_ok());
//! let limited = limiter.request(&me).unwrap_err();
//! assert_eq!(limited.limit, "session_requests");
//! ```

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use serde_json::json;

use crate::jsonrpc::{code, ErrorObject};

/// A rate: `per_second` on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// How many a second, on average.
    pub per_second: NonZeroU32,
    /// How many at once, after a quiet spell.
    pub burst: NonZeroU32,
}

impl Rate {
    /// `per_second` with bursts of `burst`; `None` if either is zero.
    pub fn new(per_second: u32, burst: u32) -> Option<Rate> {
        Some(Rate {
            per_second: NonZeroU32::new(per_second)?,
            burst: NonZeroU32::new(burst)?,
        })
    }

    fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }
}

/// The rate limits (`[server.rate_limits]` in the config file, where
/// `false` turns one off). A limit that is `None` does not apply.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Requests one session may send. Default: 1,000 a second, bursts of
    /// 2,000.
    #[serde(with = "crate::server::or_off")]
    pub session_requests: Option<Rate>,
    /// Requests one client address may send, all its sessions and
    /// connections together. Default: 10,000 a second, bursts of 20,000.
    #[serde(with = "crate::server::or_off")]
    pub address_requests: Option<Rate>,
    /// Sessions one client address may open: TCP and WebSocket
    /// connections, HTTP `initialize`s. Default: 200 a second, bursts of
    /// 2,000.
    #[serde(with = "crate::server::or_off")]
    pub address_sessions: Option<Rate>,
    /// Requests one session's handlers may send its client (elicitation,
    /// sampling, roots): a tool that loops asking for input would otherwise
    /// flood a client that pays per sampling call. Default: 20 a second,
    /// bursts of 100.
    #[serde(with = "crate::server::or_off")]
    pub server_requests: Option<Rate>,
}

impl crate::server::or_off::Expected for Rate {
    const EXPECTED: &'static str =
        "expected { per_second = N, burst = N } (both at least 1), or false for no limit";
}

impl RateLimits {
    /// No rate limit at all.
    pub fn off() -> Self {
        RateLimits {
            session_requests: None,
            address_requests: None,
            address_sessions: None,
            server_requests: None,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            session_requests: Rate::new(1_000, 2_000),
            address_requests: Rate::new(10_000, 20_000),
            address_sessions: Rate::new(200, 2_000),
            server_requests: Some(DEFAULT_SERVER_REQUESTS),
        }
    }
}

/// Who sent a request: its client's address (none on stdio) and its
/// session's process id (none for a 2026-07-28 request over HTTP, which
/// belongs to no session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requester {
    /// The client's IP address.
    pub address: Option<IpAddr>,
    /// The session's process id.
    pub session: Option<u64>,
}

/// A request, session or server request refused by a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rate limited ({limit}): retry after {retry_after:?}")]
pub struct Limited {
    /// The limit's name, as configured (`session_requests`, …).
    pub limit: &'static str,
    /// How long until one more would pass.
    pub retry_after: Duration,
}

impl Limited {
    /// `Retry-After`'s whole seconds: at least 1, as HTTP has no smaller.
    pub fn retry_after_secs(&self) -> u64 {
        whole_seconds_up(self.retry_after)
    }

    /// The JSON-RPC error: [`code::RATE_LIMITED`], with `data.limit` and
    /// `data.retryAfter` in seconds (fractional).
    pub fn error(&self) -> ErrorObject {
        let after = seconds_up(self.retry_after);
        ErrorObject::new(code::RATE_LIMITED, format!("rate limited: {}", self.limit))
            .with_data(json!({ "limit": self.limit, "retryAfter": after }))
    }
}

/// Requests to a client (sampling, elicitation, roots), unless configured
/// otherwise: the default both of what a session's handlers may send
/// ([`RateLimits::server_requests`]) and of what arbor's client takes from
/// a server, so one that floods a client paying per sampling call is
/// answered `-32029` instead.
pub const DEFAULT_SERVER_REQUESTS: Rate = Rate {
    per_second: NonZeroU32::MIN.saturating_add(19),
    burst: NonZeroU32::MIN.saturating_add(99),
};

/// `d` in whole seconds, rounded up and at least 1, as `Retry-After` says
/// it (HTTP has no smaller).
pub(crate) fn whole_seconds_up(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

/// `d` in seconds, rounded up to the millisecond, as `retryAfter` says it.
pub(crate) fn seconds_up(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).ceil() / 1000.0
}

/// One bucket, for one party: a client's limit on what its server asks.
pub struct Bucket {
    name: &'static str,
    limiter: DefaultDirectRateLimiter,
    clock: DefaultClock,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket").field("name", &self.name).finish()
    }
}

impl Bucket {
    /// A bucket of `rate`, named `name` in its errors and metrics.
    pub fn new(name: &'static str, rate: Rate) -> Self {
        Bucket {
            name,
            limiter: DefaultDirectRateLimiter::direct(rate.quota()),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one.
    ///
    /// # Errors
    /// [`Limited`] when the bucket is empty.
    pub fn check(&self) -> Result<(), Limited> {
        self.limiter.check().map_err(|not_until| {
            metrics::counter!("arbor_mcp_rate_limited_total", "limit" => self.name).increment(1);
            crate::stats::rate_limited();
            Limited {
                limit: self.name,
                retry_after: at_least_a_moment(not_until.wait_time_from(self.clock.now())),
            }
        })
    }
}

/// A wait read after the decision may have run out meanwhile: a client
/// told to retry after 0 s would not wait at all.
fn at_least_a_moment(wait: Duration) -> Duration {
    wait.max(Duration::from_millis(1))
}

/// Several requests at once (an HTTP batch) over a limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OverLimit {
    /// Not now: retry after the time it names.
    #[error("{0}")]
    Wait(Limited),
    /// More at once than the limit's burst: never as they are.
    #[error("more requests at once than {limit} allows ({burst})")]
    Never {
        /// The limit's name.
        limit: &'static str,
        /// Its burst.
        burst: u32,
    },
}

impl OverLimit {
    /// What one request over a limit is told: one always fits a burst
    /// (at least 1), so `Never` cannot come of it; were it to, a second.
    fn one(self) -> Limited {
        match self {
            OverLimit::Wait(limited) => limited,
            OverLimit::Never { limit, .. } => Limited {
                limit,
                retry_after: Duration::from_secs(1),
            },
        }
    }
}

/// The bucket an address is counted in: an IPv4 address (IPv4-mapped IPv6
/// included) on its own, an IPv6 address by its /64, which one subscriber
/// commonly holds whole (one bucket per address would let it rotate).
fn address_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// How often buckets idle long enough to be full again are dropped.
const PURGE_EVERY: Duration = Duration::from_secs(30);

/// One limit's buckets, by key.
struct Buckets<K: Hash + Eq + Clone> {
    name: &'static str,
    limiter: DefaultKeyedRateLimiter<K>,
    /// Milliseconds from [`Limiter::start`] at the last purge.
    purged: AtomicU64,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new(name: &'static str, rate: Option<Rate>) -> Option<Self> {
        rate.map(|rate| Buckets {
            name,
            limiter: DefaultKeyedRateLimiter::keyed(rate.quota()),
            purged: AtomicU64::new(0),
        })
    }

    fn check(&self, key: &K, clock: &DefaultClock, start: Instant) -> Result<(), Limited> {
        self.check_n(key, NonZeroU32::MIN, clock, start)
            .map_err(OverLimit::one)
    }

    /// Takes `n` at once, or none.
    fn check_n(
        &self,
        key: &K,
        n: NonZeroU32,
        clock: &DefaultClock,
        start: Instant,
    ) -> Result<(), OverLimit> {
        self.purge(start);
        let refused = |over: OverLimit| {
            metrics::counter!("arbor_mcp_rate_limited_total", "limit" => self.name).increment(1);
            crate::stats::rate_limited();
            over
        };
        match self.limiter.check_key_n(key, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(refused(OverLimit::Wait(Limited {
                limit: self.name,
                retry_after: at_least_a_moment(not_until.wait_time_from(clock.now())),
            }))),
            Err(governor::InsufficientCapacity(burst)) => Err(refused(OverLimit::Never {
                limit: self.name,
                burst,
            })),
        }
    }

    /// Drops the buckets of keys quiet long enough to be full again, at
    /// most every [`PURGE_EVERY`]: bounded by the keys active meanwhile.
    fn purge(&self, start: Instant) {
        let now = start.elapsed().as_millis() as u64;
        let last = self.purged.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PURGE_EVERY.as_millis() as u64 {
            return;
        }
        if self
            .purged
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
    }
}

/// Every limit's buckets, shared by all transports of one server.
pub struct Limiter {
    session_requests: Option<Buckets<u64>>,
    address_requests: Option<Buckets<IpAddr>>,
    address_sessions: Option<Buckets<IpAddr>>,
    server_requests: Option<Buckets<u64>>,
    clock: DefaultClock,
    start: Instant,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").finish_non_exhaustive()
    }
}

impl Limiter {
    /// Buckets for `limits`.
    pub fn new(limits: &RateLimits) -> Self {
        Limiter {
            session_requests: Buckets::new("session_requests", limits.session_requests),
            address_requests: Buckets::new("address_requests", limits.address_requests),
            address_sessions: Buckets::new("address_sessions", limits.address_sessions),
            server_requests: Buckets::new("server_requests", limits.server_requests),
            clock: DefaultClock::default(),
            start: Instant::now(),
        }
    }

    /// One request from `from`: its session's limit, then its address's.
    ///
    /// # Errors
    /// [`Limited`] naming the first limit it is over.
    pub fn request(&self, from: &Requester) -> Result<(), Limited> {
        self.requests(from, NonZeroU32::MIN).map_err(OverLimit::one)
    }

    /// `n` requests at once from `from` (an HTTP batch): all pass, or
    /// none. The address is checked first, so a refusal by it spends
    /// nothing of the session's.
    ///
    /// # Errors
    /// [`OverLimit`] naming the first limit they are over.
    pub fn requests(&self, from: &Requester, n: NonZeroU32) -> Result<(), OverLimit> {
        if let (Some(buckets), Some(address)) = (&self.address_requests, from.address) {
            buckets.check_n(&address_key(address), n, &self.clock, self.start)?;
        }
        if let (Some(buckets), Some(session)) = (&self.session_requests, from.session) {
            buckets.check_n(&session, n, &self.clock, self.start)?;
        }
        Ok(())
    }

    /// One new session from `address`.
    ///
    /// # Errors
    /// [`Limited`] when the address is over `address_sessions`.
    pub fn new_session(&self, address: Option<IpAddr>) -> Result<(), Limited> {
        match (&self.address_sessions, address) {
            (Some(buckets), Some(address)) => {
                buckets.check(&address_key(address), &self.clock, self.start)
            }
            _ => Ok(()),
        }
    }

    /// One request from session `session`'s handlers to its client.
    ///
    /// # Errors
    /// [`Limited`] when the session is over `server_requests`.
    pub fn server_request(&self, session: u64) -> Result<(), Limited> {
        match &self.server_requests {
            Some(buckets) => buckets.check(&session, &self.clock, self.start),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn only(limits: RateLimits) -> Limiter {
        Limiter::new(&limits)
    }

    #[test]
    fn a_session_gets_its_burst_then_waits() {
        let limiter = only(RateLimits {
            session_requests: Rate::new(1, 3),
            ..RateLimits::off()
        });
        let a = Requester {
            address: None,
            session: Some(1),
        };
        let b = Requester {
            session: Some(2),
            ..a
        };
        for _ in 0..3 {
            limiter.request(&a).unwrap();
        }
        let limited = limiter.request(&a).unwrap_err();
        assert_eq!(limited.limit, "session_requests");
        // One more passes every second.
        assert!(limited.retry_after <= Duration::from_secs(1));
        assert!(limited.retry_after > Duration::from_millis(500));
        // Another session has a bucket of its own.
        limiter.request(&b).unwrap();
    }

    #[test]
    fn an_address_is_limited_across_its_sessions() {
        let limiter = only(RateLimits {
            address_requests: Rate::new(1, 2),
            ..RateLimits::off()
        });
        let address = Some(IpAddr::from([10, 0, 0, 1]));
        for session in [1, 2] {
            limiter
                .request(&Requester {
                    address,
                    session: Some(session),
                })
                .unwrap();
        }
        let limited = limiter
            .request(&Requester {
                address,
                session: Some(3),
            })
            .unwrap_err();
        assert_eq!(limited.limit, "address_requests");
        assert_eq!(limited.retry_after_secs(), 1);
        // Another address, and stdio (no address), are not.
        limiter
            .request(&Requester {
                address: Some(IpAddr::from([10, 0, 0, 2])),
                session: None,
            })
            .unwrap();
        limiter
            .request(&Requester {
                address: None,
                session: None,
            })
            .unwrap();
    }

    #[test]
    fn the_error_names_the_limit_and_when_to_retry() {
        let limited = Limited {
            limit: "address_sessions",
            retry_after: Duration::from_micros(2_500_100),
        };
        let error = limited.error();
        assert_eq!(error.code, code::RATE_LIMITED);
        let data = error.data.unwrap();
        assert_eq!(data["limit"], "address_sessions");
        assert_eq!(data["retryAfter"], 2.501);
        assert_eq!(limited.retry_after_secs(), 3);
    }

    #[test]
    fn new_sessions_and_server_requests_have_their_own_limits() {
        let limiter = only(RateLimits {
            address_sessions: Rate::new(1, 1),
            server_requests: Rate::new(1, 1),
            ..RateLimits::off()
        });
        let address = Some(IpAddr::from([127, 0, 0, 1]));
        limiter.new_session(address).unwrap();
        assert_eq!(
            limiter.new_session(address).unwrap_err().limit,
            "address_sessions"
        );
        limiter.server_request(9).unwrap();
        assert_eq!(
            limiter.server_request(9).unwrap_err().limit,
            "server_requests"
        );
        // Requests are not limited by either.
        let me = Requester {
            address,
            session: Some(9),
        };
        limiter.request(&me).unwrap();
        limiter.request(&me).unwrap();
    }

    #[test]
    fn false_turns_a_limit_off_and_anything_else_is_refused() {
        let read: RateLimits = serde_json::from_str(
            r#"{"session_requests": false, "address_requests": {"per_second": 5, "burst": 6}}"#,
        )
        .unwrap();
        assert_eq!(read.session_requests, None);
        assert_eq!(read.address_requests, Rate::new(5, 6));
        // Left out: the default.
        assert_eq!(read.server_requests, RateLimits::default().server_requests);
        let written = serde_json::to_value(&read).unwrap();
        assert_eq!(written["session_requests"], false);
        for bad in [
            r#"{"session_requests": true}"#,
            r#"{"session_requests": {"per_second": 0, "burst": 1}}"#,
            r#"{"session_requests": 100}"#,
        ] {
            let error = serde_json::from_str::<RateLimits>(bad).unwrap_err();
            assert!(error.to_string().contains("or false"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_batch_passes_whole_or_not_at_all() {
        let limiter = only(RateLimits {
            session_requests: Rate::new(1, 5),
            address_requests: Rate::new(1, 3),
            ..RateLimits::off()
        });
        let me = Requester {
            address: Some(IpAddr::from([10, 0, 0, 9])),
            session: Some(4),
        };
        let n = |n| NonZeroU32::new(n).unwrap();
        assert!(matches!(
            limiter.requests(&me, n(6)),
            Err(OverLimit::Never {
                limit: "address_requests",
                burst: 3
            })
        ));
        limiter.requests(&me, n(2)).unwrap();
        // Two more do not fit the address's one left: neither is taken.
        assert!(matches!(
            limiter.requests(&me, n(2)),
            Err(OverLimit::Wait(_))
        ));
        limiter.requests(&me, n(1)).unwrap();
        // The address refused without spending the session's: 2 + 1 of 5
        // taken, so another address may take 2 on this session.
        let elsewhere = Requester {
            address: Some(IpAddr::from([10, 0, 0, 10])),
            ..me
        };
        limiter.requests(&elsewhere, n(2)).unwrap();
    }

    #[test]
    fn an_ipv6_subscriber_is_one_bucket_and_ipv4_mapped_is_its_ipv4() {
        let limiter = only(RateLimits {
            address_sessions: Rate::new(1, 1),
            ..RateLimits::off()
        });
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limiter.new_session(Some(a)).unwrap();
        assert!(limiter.new_session(Some(b)).is_err(), "same /64");
        limiter.new_session(Some(other)).unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        limiter.new_session(Some(v4)).unwrap();
        assert!(limiter.new_session(Some(mapped)).is_err(), "the same IPv4");
    }

    #[test]
    fn zero_is_not_a_rate() {
        assert!(Rate::new(0, 1).is_none());
        assert!(Rate::new(1, 0).is_none());
        let parsed: Result<Rate, _> = serde_json::from_str(r#"{"per_second":0,"burst":1}"#);
        assert!(parsed.is_err());
    }
}
