//! API tokens and the caller they authenticate.
//!
//! A token reads `lm-` followed by 64 hex digits. Storage keeps only the
//! SHA-256 of the whole token, so a lookup by hash is the only comparison.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{OrganizationId, TokenId};
use crate::ports::TokenRepository;
use crate::timestamp::Timestamp;
use cache::TokenCache;

mod cache;

/// Prefix of every Leanmote API token.
pub const TOKEN_PREFIX: &str = "lm-";
/// `last_used_at` is written at most once per this many seconds per token.
pub const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_CHARS: usize = 256;

/// A token as the client sends it. Its `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// Reads the token from an `Authorization` header value: `lm-...` or `Bearer lm-...`.
    ///
    /// # Errors
    /// Returns [`AuthError::Malformed`] when the value has another shape.
    pub fn from_header(value: &str) -> Result<Self, AuthError> {
        let value = value.trim();
        let token = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim_start(),
            Some(_) => return Err(AuthError::Malformed),
            None => value,
        };
        let secret = token.strip_prefix(TOKEN_PREFIX).ok_or(AuthError::Malformed)?;
        let well_formed = (MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&secret.len())
            && secret.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !well_formed {
            return Err(AuthError::Malformed);
        }
        Ok(Self(token.to_owned()))
    }

    /// Builds a new token from 32 random bytes supplied by the caller.
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        Self(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
    }

    /// Returns the SHA-256 of the token, the only form storage keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }

    /// Returns the token text, to print once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

/// Lowercase hex SHA-256 of a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

/// The organizations a caller may read and write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<OrganizationId>);

impl Scope {
    /// Builds a scope from organization ids.
    pub fn new(organizations: impl IntoIterator<Item = OrganizationId>) -> Self {
        Self(organizations.into_iter().collect())
    }

    /// Tells whether the organization is in scope.
    pub fn contains(&self, organization: OrganizationId) -> bool {
        self.0.contains(&organization)
    }

    /// Returns the organizations in scope, in id order.
    pub fn organizations(&self) -> impl Iterator<Item = OrganizationId> + '_ {
        self.0.iter().copied()
    }
}

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub token_id: TokenId,
    pub label: String,
    pub scope: Scope,
}

/// A token as stored, without the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub id: TokenId,
    pub label: String,
    pub organizations: Vec<OrganizationId>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
}

/// Failure to authenticate a request.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing Authorization header; send `Authorization: lm-<token>`")]
    Missing,
    #[error("malformed Authorization header; send `Authorization: lm-<token>` or `Authorization: Bearer lm-<token>`")]
    Malformed,
    #[error("invalid token; check it or create a new one")]
    Unknown,
    #[error("the token has expired; create a new one")]
    Expired,
    #[error("the token has been revoked; create a new one")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks tokens against storage and the clock.
#[derive(Clone)]
pub struct Authenticator {
    tokens: Arc<dyn TokenRepository>,
    clock: Arc<dyn Clock>,
    cache: Option<Arc<TokenCache>>,
}

impl Authenticator {
    /// Builds an authenticator over a token store and a clock, which reads the token on every request.
    pub fn new(tokens: Arc<dyn TokenRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { tokens, clock, cache: None }
    }

    /// Keeps each token found for `ttl` after it was read, instead of reading
    /// it on every request.
    ///
    /// Expiry is still checked on every request. A token revoked in storage
    /// keeps working for up to `ttl` on an authenticator that read it before,
    /// so `ttl` is how long a revocation takes to reach every server.
    #[must_use]
    pub fn with_cache(mut self, ttl: Duration) -> Self {
        self.cache = Some(Arc::new(TokenCache::new(ttl)));
        self
    }

    /// Authenticates the value of an `Authorization` header.
    ///
    /// Notes the token's use at most once per [`LAST_USED_RESOLUTION_SECONDS`].
    ///
    /// # Errors
    /// Returns [`AuthError`] for a missing, malformed, unknown, expired or
    /// revoked token, or when storage fails.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Caller, AuthError> {
        let secret = TokenSecret::from_header(header.ok_or(AuthError::Missing)?)?;
        let now = self.clock.now();
        let token = self.find(secret.hash(), now).await?;
        if token.revoked_at.is_some_and(|revoked| revoked <= now) {
            return Err(AuthError::Revoked);
        }
        if token.expires_at.is_some_and(|expires| expires <= now) {
            return Err(AuthError::Expired);
        }

        let stale = token
            .last_used_at
            .is_none_or(|used| (now.as_naive() - used.as_naive()).num_seconds() >= LAST_USED_RESOLUTION_SECONDS);
        if stale {
            self.tokens.touch(token.id, now).await?;
            if let Some(cache) = &self.cache {
                cache.touched(token.id, now);
            }
        }
        Ok(Caller { token_id: token.id, label: token.label, scope: Scope::new(token.organizations) })
    }

    /// Finds a token by hash, in the cache first when there is one.
    async fn find(&self, hash: TokenHash, now: Timestamp) -> Result<StoredToken, AuthError> {
        if let Some(token) = self.cache.as_ref().and_then(|cache| cache.get(&hash, now)) {
            return Ok(token);
        }
        let token = self.tokens.find_by_hash(&hash).await?.ok_or(AuthError::Unknown)?;
        if let Some(cache) = &self.cache {
            cache.insert(hash, token.clone(), now);
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests;
