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
