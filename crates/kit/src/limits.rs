//! Abuse limits per client address: failed authentication on every API route, and every
//! request to the pages a link opens (booking, preferences, unsubscribe).
//!
//! A request that authenticates never counts against the first limit, so a clinic tool with a
//! valid token is never slowed; the second is generous, so patients behind one address (a
//! clinic's wifi) claiming at once are not either. Over a limit the answer is 429
//! problem+json with `Retry-After`, and an address over the failure limit gets 429 on every
//! API route until it is back under.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    num::NonZeroU32,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

use crate::Problem;

/// The limits, from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `RATE_LIMIT_FAILED_AUTH`: failed authentications an address may make a minute (0: no
    /// limit); also the burst.
    pub failed_auth_per_minute: u32,
    /// `RATE_LIMIT_LINKS`: requests an address may make a minute to the pages of links (0: no
    /// limit); also the burst.
    pub links_per_minute: u32,
    /// `TRUST_X_FORWARDED_FOR`: the client is the last address of `X-Forwarded-For` (as the
    /// proxy in front appended it), not the peer; only behind such a proxy.
    pub trust_forwarded_for: bool,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            failed_auth_per_minute: 30,
            links_per_minute: 600,
            trust_forwarded_for: false,
        }
    }
}

/// The limiters of one process, shared by its routes.
#[derive(Clone)]
pub struct Limits(Arc<Inner>);

struct Inner {
    failures: Option<DefaultKeyedRateLimiter<IpAddr>>,
    links: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Route templates whose every request counts against `links`.
    link_routes: Vec<&'static str>,
    /// Addresses over the failure limit, and until when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
    trust_forwarded_for: bool,
    clock: DefaultClock,
    /// Requests counted, to sweep the limiters' idle addresses now and then.
    checks: AtomicU64,
}

/// Blocked addresses kept before the expired ones are swept out.
const SWEEP_AT: usize = 4_096;
/// Requests counted between sweeps of the addresses the limiters have not seen for a while,
/// so that months of patients' addresses do not pile up in memory.
const SWEEP_EVERY: u64 = 8_192;

impl Limits {
    /// `link_routes` are the route templates (as in the router) of the pages links open.
    pub fn new(config: LimitsConfig, link_routes: &[&'static str]) -> Self {
        let keyed = |per_minute: u32| {
            NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
        };
        Self(Arc::new(Inner {
            failures: keyed(config.failed_auth_per_minute),
            links: keyed(config.links_per_minute),
            link_routes: link_routes.to_vec(),
            blocked: Mutex::new(HashMap::new()),
            trust_forwarded_for: config.trust_forwarded_for,
            clock: DefaultClock::default(),
            checks: AtomicU64::new(0),
        }))
    }

    /// The address a request is counted against: the peer, or the proxy's `X-Forwarded-For`
    /// entry when trusted; an IPv6 address by its /64, which one subscriber usually holds whole.
    fn client(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
        let forwarded = self
            .0
            .trust_forwarded_for
            .then(|| last_forwarded(headers))
            .flatten();
        let ip = forwarded
            .or(peer.map(|p| p.ip()))
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }
    }

    /// How long `client` is still blocked, if it is.
    fn blocked_for(&self, client: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let blocked = self.0.blocked.lock().unwrap_or_else(|e| e.into_inner());
        blocked
            .get(&client)
            .and_then(|until| until.checked_duration_since(now))
    }

    /// Counts a failed authentication; over the limit, blocks `client` and says for how long.
    fn failed(&self, client: IpAddr) -> Option<Duration> {
        let wait = self.over(self.0.failures.as_ref(), client)?;
        let mut blocked = self.0.blocked.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if blocked.len() >= SWEEP_AT {
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(client, now + wait);
        Some(wait)
    }

    /// Takes one request of `client` from `limiter`; over it, how long until the next is allowed.
    fn over(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<IpAddr>>,
        client: IpAddr,
    ) -> Option<Duration> {
        let limiter = limiter?;
        if self.0.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        limiter
            .check_key(&client)
            .err()
            .map(|not_until| not_until.wait_time_from(self.0.clock.now()))
    }
}

impl Limits {
    /// Forgets the addresses that are back to a full allowance (their state says nothing).
    fn sweep(&self) {
        for limiter in [&self.0.failures, &self.0.links].into_iter().flatten() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// The last well-formed address of the last `X-Forwarded-For` header.
fn last_forwarded(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// `router` (API routes, not `/healthz` and the like) with the limits enforced; added as its
/// layer, so that each request's route template is known.
pub fn guard(router: axum::Router, limits: Limits) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(limits, enforce))
}

async fn enforce(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let client = limits.client(peer, request.headers());
    if let Some(wait) = limits.blocked_for(client) {
        return too_many("failed_auth", wait);
    }
    let is_link = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| limits.0.link_routes.contains(&p.as_str()));
    if is_link && let Some(wait) = limits.over(limits.0.links.as_ref(), client) {
        return too_many("links", wait);
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED
        && let Some(wait) = limits.failed(client)
    {
        return too_many("failed_auth", wait);
    }
    response
}

/// 429 with `Retry-After` in whole seconds, rounded up.
fn too_many(limit: &'static str, wait: Duration) -> Response {
    metrics::counter!("slotcast_http_rate_limited_total", "limit" => limit).increment(1);
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests from this address; retry in {seconds} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(config: LimitsConfig) -> Limits {
        Limits::new(config, &["/v1/offers/{token}"])
    }

    fn headers(forwarded: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for f in forwarded {
            h.append("x-forwarded-for", HeaderValue::from_str(f).unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_the_peer_unless_the_proxy_is_trusted() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let h = headers(&["203.0.113.9, 198.51.100.7"]);
        let untrusting = limits(LimitsConfig::default());
        assert_eq!(untrusting.client(Some(peer), &h), peer.ip());
        let trusting = limits(LimitsConfig {
            trust_forwarded_for: true,
            ..LimitsConfig::default()
        });
        // The last entry is the one the proxy appended; earlier ones are the client's to forge.
        assert_eq!(
            trusting.client(Some(peer), &h),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            trusting.client(Some(peer), &headers(&["junk"])),
            peer.ip(),
            "a malformed header falls back to the peer"
        );
    }

    #[test]
    fn an_ipv6_client_is_counted_by_its_64_prefix() {
        let l = limits(LimitsConfig::default());
        let a: SocketAddr = "[2001:db8:1:2:aaaa::1]:1".parse().unwrap();
        let b: SocketAddr = "[2001:db8:1:2:bbbb::2]:1".parse().unwrap();
        let c: SocketAddr = "[2001:db8:1:3::1]:1".parse().unwrap();
        let none = HeaderMap::new();
        assert_eq!(l.client(Some(a), &none), l.client(Some(b), &none));
        assert_ne!(l.client(Some(a), &none), l.client(Some(c), &none));
        let mapped: SocketAddr = "[::ffff:192.0.2.1]:1".parse().unwrap();
        assert_eq!(
            l.client(Some(mapped), &none),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn failures_over_the_limit_block_the_address_and_others_are_untouched() {
        let l = limits(LimitsConfig {
            failed_auth_per_minute: 3,
            ..LimitsConfig::default()
        });
        let (one, two): (IpAddr, IpAddr) =
            ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(l.failed(one), None);
        }
        let wait = l.failed(one).expect("the fourth failure is over the limit");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20));
        assert!(l.blocked_for(one).is_some());
        assert_eq!(l.blocked_for(two), None);
        assert_eq!(l.failed(two), None);
    }

    #[test]
    fn a_sweep_forgets_only_addresses_back_to_a_full_allowance() {
        let l = limits(LimitsConfig {
            links_per_minute: 2,
            ..LimitsConfig::default()
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(l.over(l.0.links.as_ref(), ip), None);
        assert_eq!(l.over(l.0.links.as_ref(), ip), None);
        l.sweep();
        assert!(
            l.over(l.0.links.as_ref(), ip).is_some(),
            "still over the limit after a sweep"
        );
        assert_eq!(l.0.links.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn zero_switches_a_limit_off() {
        let l = limits(LimitsConfig {
            failed_auth_per_minute: 0,
            links_per_minute: 0,
            trust_forwarded_for: false,
        });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..1_000 {
            assert_eq!(l.failed(ip), None);
            assert_eq!(l.over(l.0.links.as_ref(), ip), None);
        }
    }
}
