//! Per-token request limits, counted in fixed one-minute windows per process.
//!
//! With several instances behind a load balancer, each counts on its own, so
//! a token may send up to the limit times the number of instances.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use domain::TokenId;

/// Length of one counting window.
const WINDOW: Duration = Duration::from_secs(60);
/// Windows are pruned once the map contains this many tokens.
const PRUNE_ABOVE: usize = 10_000;

/// The state of a token's window after counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Time until the window resets.
    pub reset_after: Duration,
}

struct Window {
    started: Instant,
    used: u32,
}

/// Counts requests per token; a limit of 0 turns limiting off.
pub struct RateLimiter {
    limit_per_minute: u32,
    windows: Mutex<HashMap<TokenId, Window>>,
}

impl RateLimiter {
    /// Builds a limiter allowing `limit_per_minute` requests per token per minute (0: no limit).
    pub fn new(limit_per_minute: u32) -> Self {
        Self { limit_per_minute, windows: Mutex::new(HashMap::new()) }
    }

    /// Counts one request of `token` at `now`, unless limiting is off.
    pub fn check(&self, token: TokenId, now: Instant) -> Option<RateDecision> {
        if self.limit_per_minute == 0 {
            return None;
        }
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() > PRUNE_ABOVE {
            windows.retain(|_, window| now.duration_since(window.started) < WINDOW);
        }
        let window = windows.entry(token).or_insert(Window { started: now, used: 0 });
        if now.duration_since(window.started) >= WINDOW {
            *window = Window { started: now, used: 0 };
        }
        let allowed = window.used < self.limit_per_minute;
        if allowed {
            window.used += 1;
        }
        Some(RateDecision {
            allowed,
            limit: self.limit_per_minute,
            remaining: self.limit_per_minute - window.used,
            reset_after: WINDOW.saturating_sub(now.duration_since(window.started)),
        })
    }
}

/// Adds `X-RateLimit-*` headers to responses of requests that were counted.
pub async fn add_headers(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(request).await?;
    let decision = response.request().extensions().get::<RateDecision>().copied();
    if let Some(decision) = decision {
        let headers = response.headers_mut();
        let reset_seconds = decision.reset_after.as_secs().max(1);
        headers.insert(HeaderName::from_static("x-ratelimit-limit"), HeaderValue::from(decision.limit));
        headers.insert(HeaderName::from_static("x-ratelimit-remaining"), HeaderValue::from(decision.remaining));
        headers.insert(HeaderName::from_static("x-ratelimit-reset"), HeaderValue::from(reset_seconds));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_resets_each_window() {
        let limiter = RateLimiter::new(2);
        let start = Instant::now();
        let token = TokenId(1);
        assert_eq!(limiter.check(token, start).map(|decision| decision.remaining), Some(1));
        assert_eq!(limiter.check(token, start).map(|decision| decision.remaining), Some(0));
        let rejected = limiter.check(token, start + Duration::from_secs(10)).unwrap();
        assert!(!rejected.allowed);
        assert_eq!(rejected.reset_after, Duration::from_secs(50));
        assert!(limiter.check(token, start + WINDOW).unwrap().allowed);
    }

    #[test]
    fn tokens_counted_apart() {
        let limiter = RateLimiter::new(1);
        let now = Instant::now();
        assert!(limiter.check(TokenId(1), now).unwrap().allowed);
        assert!(limiter.check(TokenId(2), now).unwrap().allowed);
        assert!(!limiter.check(TokenId(1), now).unwrap().allowed);
    }

    #[test]
    fn zero_turns_limiting_off() {
        assert_eq!(RateLimiter::new(0).check(TokenId(1), Instant::now()), None);
    }
}
