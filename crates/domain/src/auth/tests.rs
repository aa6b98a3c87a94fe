//! Token parsing and authentication with mocked ports.

use super::*;
use crate::clock::MockClock;
use crate::ports::MockTokenRepository;

const SECRET: &str = "lm-0123456789abcdef0123456789abcdef";

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn stored() -> StoredToken {
    StoredToken {
        id: TokenId(7),
        label: "jira sync".into(),
        organizations: vec![OrganizationId(1), OrganizationId(3)],
        expires_at: None,
        revoked_at: None,
        last_used_at: Some(at("2026-01-01 11:59:30")),
    }
}

fn authenticator(token: Option<StoredToken>, expect_touch: bool) -> Authenticator {
    let mut tokens = MockTokenRepository::new();
    let expected_hash = TokenSecret::from_header(SECRET).unwrap().hash();
    tokens.expect_find_by_hash().withf(move |hash| *hash == expected_hash).returning(move |_| Ok(token.clone()));
    tokens.expect_touch().times(usize::from(expect_touch)).returning(|_, _| Ok(()));
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| at("2026-01-01 12:00:00"));
    Authenticator::new(Arc::new(tokens), Arc::new(clock))
}

fn authenticate(authenticator: &Authenticator, header: Option<&str>) -> Result<Caller, AuthError> {
    futures::executor::block_on(authenticator.authenticate(header))
}

#[test]
fn header_forms_accepted() {
    for header in [SECRET.to_owned(), format!("Bearer {SECRET}"), format!("bearer  {SECRET}")] {
        assert_eq!(TokenSecret::from_header(&header).unwrap().expose(), SECRET, "{header}");
    }
}

#[test]
fn malformed_headers_rejected() {
    for header in [
        "",
        "Basic abc",
        "lm-",
        "lm-short",
        "0123456789abcdef0123",
        "Bearer",
        "lm-0123456789abcdef!!",
        "Token lm-0123456789abcdef0123",
    ] {
        assert!(matches!(TokenSecret::from_header(header), Err(AuthError::Malformed)), "{header:?}");
    }
}

#[test]
fn debug_output_hides_token() {
    let secret = TokenSecret::from_header(SECRET).unwrap();
    assert!(!format!("{secret:?}").contains("0123456789"));
}

#[test]
fn hash_is_sha256_hex() {
    let hash = TokenSecret::from_header(SECRET).unwrap().hash();
    assert_eq!(hash.0.len(), 64);
    assert_ne!(hash.0, SECRET);
}

#[test]
fn generated_tokens_parse_back() {
    let secret = TokenSecret::from_random_bytes([7; 32]);
    assert!(secret.expose().starts_with(TOKEN_PREFIX));
    assert_eq!(TokenSecret::from_header(secret.expose()).unwrap(), secret);
}

#[test]
fn valid_token_gives_caller() {
    let caller = authenticate(&authenticator(Some(stored()), false), Some(SECRET)).unwrap();
    assert_eq!(caller.token_id, TokenId(7));
    assert!(caller.scope.contains(OrganizationId(3)));
    assert!(!caller.scope.contains(OrganizationId(2)));
}

#[test]
fn missing_header_rejected() {
    assert!(matches!(authenticate(&authenticator(None, false), None), Err(AuthError::Missing)));
}

#[test]
fn unknown_token_rejected() {
    assert!(matches!(authenticate(&authenticator(None, false), Some(SECRET)), Err(AuthError::Unknown)));
}

#[test]
fn expired_token_rejected() {
    let token = StoredToken { expires_at: Some(at("2026-01-01 12:00:00")), ..stored() };
    assert!(matches!(authenticate(&authenticator(Some(token), false), Some(SECRET)), Err(AuthError::Expired)));
}

#[test]
fn revoked_token_rejected() {
    let token = StoredToken { revoked_at: Some(at("2026-01-01 11:00:00")), ..stored() };
    assert!(matches!(authenticate(&authenticator(Some(token), false), Some(SECRET)), Err(AuthError::Revoked)));
}

#[test]
fn last_use_noted_once_a_minute() {
    let token = StoredToken { last_used_at: Some(at("2026-01-01 11:58:59")), ..stored() };
    assert!(authenticate(&authenticator(Some(token), true), Some(SECRET)).is_ok());
    let never_used = StoredToken { last_used_at: None, ..stored() };
    assert!(authenticate(&authenticator(Some(never_used), true), Some(SECRET)).is_ok());
}

/// A clock the test moves by hand.
struct HandClock(std::sync::Mutex<Timestamp>);

impl HandClock {
    fn advance(&self, seconds: u64) {
        let mut now = self.0.lock().unwrap();
        *now = now.plus(std::time::Duration::from_secs(seconds));
    }
}

impl Clock for HandClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// An authenticator with a 5 s cache over a store whose token the test changes,
/// with counters of lookups and touches.
struct CachedFixture {
    authenticator: Authenticator,
    clock: Arc<HandClock>,
    token: Arc<std::sync::Mutex<Option<StoredToken>>>,
    lookups: Arc<std::sync::atomic::AtomicUsize>,
    touches: Arc<std::sync::atomic::AtomicUsize>,
}

fn cached(token: Option<StoredToken>) -> CachedFixture {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let token = Arc::new(std::sync::Mutex::new(token));
    let (lookups, touches) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut tokens = MockTokenRepository::new();
    let (stored_token, counted) = (Arc::clone(&token), Arc::clone(&lookups));
    tokens.expect_find_by_hash().returning(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(stored_token.lock().unwrap().clone())
    });
    let counted = Arc::clone(&touches);
    tokens.expect_touch().returning(move |_, _| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    let clock = Arc::new(HandClock(std::sync::Mutex::new(at("2026-01-01 12:00:00"))));
    let authenticator =
        Authenticator::new(Arc::new(tokens), clock.clone()).with_cache(std::time::Duration::from_secs(5));
    CachedFixture { authenticator, clock, token, lookups, touches }
}

impl CachedFixture {
    fn lookups(&self) -> usize {
        self.lookups.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[test]
fn cache_reads_a_token_once_per_lifetime() {
    let fixture = cached(Some(stored()));
    for _ in 0..3 {
        assert_eq!(authenticate(&fixture.authenticator, Some(SECRET)).unwrap().token_id, TokenId(7));
        fixture.clock.advance(1);
    }
    assert_eq!(fixture.lookups(), 1, "requests within 5 s share one lookup");
    fixture.clock.advance(2);
    authenticate(&fixture.authenticator, Some(SECRET)).unwrap();
    assert_eq!(fixture.lookups(), 2, "the copy lapses 5 s after it was read");
}

#[test]
fn cached_revocation_takes_effect_within_lifetime() {
    let fixture = cached(Some(stored()));
    authenticate(&fixture.authenticator, Some(SECRET)).unwrap();
    *fixture.token.lock().unwrap() = Some(StoredToken { revoked_at: Some(at("2026-01-01 12:00:01")), ..stored() });
    fixture.clock.advance(2);
    assert!(authenticate(&fixture.authenticator, Some(SECRET)).is_ok(), "the cached copy predates the revocation");
    fixture.clock.advance(3);
    assert!(matches!(authenticate(&fixture.authenticator, Some(SECRET)), Err(AuthError::Revoked)));
}

#[test]
fn cached_token_still_expires_on_time() {
    let fixture = cached(Some(StoredToken { expires_at: Some(at("2026-01-01 12:00:02")), ..stored() }));
    authenticate(&fixture.authenticator, Some(SECRET)).unwrap();
    fixture.clock.advance(2);
    assert!(matches!(authenticate(&fixture.authenticator, Some(SECRET)), Err(AuthError::Expired)));
    assert_eq!(fixture.lookups(), 1);
}

#[test]
fn unknown_tokens_are_not_cached() {
    let fixture = cached(None);
    assert!(matches!(authenticate(&fixture.authenticator, Some(SECRET)), Err(AuthError::Unknown)));
    *fixture.token.lock().unwrap() = Some(stored());
    assert!(authenticate(&fixture.authenticator, Some(SECRET)).is_ok(), "a token created just now works at once");
    assert_eq!(fixture.lookups(), 2);
}

#[test]
fn cached_token_notes_its_use_once() {
    let fixture = cached(Some(StoredToken { last_used_at: None, ..stored() }));
    for _ in 0..3 {
        authenticate(&fixture.authenticator, Some(SECRET)).unwrap();
    }
    assert_eq!(fixture.touches.load(std::sync::atomic::Ordering::SeqCst), 1, "the cached copy learns of its use");
}
