//! Idempotency keys: a retried request gets the first response back instead
//! of running again.
//!
//! A request with a key first claims it. The claim fails while another
//! request has it (409), finds the stored response of an earlier success
//! (replayed when the body is the same, 422 otherwise), or succeeds. A
//! successful batch stores its response in the same transaction as its writes,
//! so a crash between the commit and the response still leaves the response to
//! replay. A request that fails releases its claim, so a retry runs again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::error::{DetailCode, StoreError};
use crate::ids::TokenId;
use crate::ingest::ProcessedTask;
use crate::text::TextViolation;
use crate::timestamp::Timestamp;

/// Maximum key length, in characters.
pub const MAX_KEY_CHARS: usize = 255;
/// Name of the request header that carries the key.
pub const KEY_HEADER: &str = "Idempotency-Key";

/// A client's key for one logical request: 1-255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Checks the key's length and characters.
    ///
    /// # Errors
    /// Returns the rule the key breaks.
    pub fn parse(value: &[u8]) -> Result<Self, TextViolation> {
        let invalid = |message: String| TextViolation { code: DetailCode::InvalidValue, message };
        if value.is_empty() || value.len() > MAX_KEY_CHARS {
            return Err(invalid(format!(
                "must be 1 to {MAX_KEY_CHARS} characters, got {}; send a unique id such as a UUID",
                value.len()
            )));
        }
        if !value.iter().all(|byte| (b' '..=b'~').contains(byte)) {
            return Err(invalid(
                "must contain printable ASCII characters only; send a unique id such as a UUID".into(),
            ));
        }
        Ok(Self(String::from_utf8_lossy(value).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of everything that makes two requests the same: route, query and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Hashes the parts, each prefixed by its length so that no two splits collide.
    pub fn of(parts: &[&[u8]]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Self(hex::encode(hasher.finalize()))
    }

    /// Wraps a fingerprint read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The response stored for a key, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub fingerprint: Fingerprint,
    pub status: u16,
    pub body: String,
}

/// Result of a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is now held by this request.
    Claimed,
    /// Another request has claimed the key and has not completed yet.
    InProgress,
    /// An earlier request completed under this key.
    Completed(StoredResponse),
}

/// Storage of keys and their responses.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for `token` until `lease_until`, unless another request
    /// has claimed it or a response stored under it is still valid at `now`.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn claim(
        &self,
        token: TokenId,
        key: &IdempotencyKey,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Claim, StoreError>;

    /// Releases a claim that will store no response.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn release(&self, token: TokenId, key: &IdempotencyKey) -> Result<(), StoreError>;

    /// Deletes the responses and claims that expired before `now`, and returns how many.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    async fn prune(&self, now: Timestamp) -> Result<u64, StoreError>;
}

/// Function that renders a batch's response, so storage can keep it with the writes.
pub type ResponseEncoder = Arc<dyn Fn(&[ProcessedTask]) -> String + Send + Sync>;

/// Data storage needs to keep a batch's response under its key, in the batch's transaction.
#[derive(Clone)]
pub struct Receipt {
    pub token: TokenId,
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
    pub created_at: Timestamp,
    /// Time after which the stored response may be deleted.
    pub expires_at: Timestamp,
    pub encode: ResponseEncoder,
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt").field("token", &self.token).field("key", &self.key).finish_non_exhaustive()
    }
}

/// Outcome of checking a retried request against the stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// Same request: send this response again.
    Same(StoredResponse),
    /// The key was used for a different request.
    Reused,
}

/// The idempotency rules, over a store and a clock.
#[derive(Clone)]
pub struct Idempotency {
    pub store: Arc<dyn IdempotencyStore>,
    pub clock: Arc<dyn Clock>,
    /// Time a response is kept.
    pub response_ttl: Duration,
    /// Time a claim lasts without a response, in case its server dies.
    pub claim_lease: Duration,
}

impl Idempotency {
    /// Claims `key` for the caller's token.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    pub async fn claim(&self, token: TokenId, key: &IdempotencyKey) -> Result<Claim, StoreError> {
        let now = self.clock.now();
        self.store.claim(token, key, now, now.plus(self.claim_lease)).await
    }

    /// Compares a retried request with the one whose response is stored.
    pub fn replay(response: StoredResponse, fingerprint: &Fingerprint) -> Replay {
        if response.fingerprint == *fingerprint { Replay::Same(response) } else { Replay::Reused }
    }

    /// Builds the receipt a claimed batch hands to storage.
    pub fn receipt(
        &self,
        token: TokenId,
        key: IdempotencyKey,
        fingerprint: Fingerprint,
        encode: ResponseEncoder,
    ) -> Receipt {
        let now = self.clock.now();
        Receipt { token, key, fingerprint, created_at: now, expires_at: now.plus(self.response_ttl), encode }
    }

    /// Gives up a claim after a failed request. A failure to release is only
    /// logged by the caller: the claim lapses at the end of its lease anyway.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    pub async fn release(&self, token: TokenId, key: &IdempotencyKey) -> Result<(), StoreError> {
        self.store.release(token, key).await
    }

    /// Forgets what expired.
    ///
    /// # Errors
    /// Returns [`StoreError`] when storage fails.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        self.store.prune(self.clock.now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        assert_eq!(IdempotencyKey::parse(b"sync-2024-01-20/42 ~").unwrap().as_str(), "sync-2024-01-20/42 ~");
        assert!(IdempotencyKey::parse(&[b'k'; MAX_KEY_CHARS]).is_ok());
        for bad in [&b""[..], &[b'k'; MAX_KEY_CHARS + 1], "clé".as_bytes(), b"tab\there", b"nl\n"] {
            assert_eq!(IdempotencyKey::parse(bad).unwrap_err().code, DetailCode::InvalidValue);
        }
    }

    #[test]
    fn fingerprint_separates_parts() {
        assert_ne!(Fingerprint::of(&[b"ab", b"c"]), Fingerprint::of(&[b"a", b"bc"]));
        assert_eq!(Fingerprint::of(&[b"x", b"y"]), Fingerprint::of(&[b"x", b"y"]));
    }

    #[test]
    fn replay_needs_the_same_request() {
        let stored = StoredResponse { fingerprint: Fingerprint::of(&[b"a"]), status: 200, body: "{}".into() };
        assert_eq!(Idempotency::replay(stored.clone(), &Fingerprint::of(&[b"a"])), Replay::Same(stored.clone()));
        assert_eq!(Idempotency::replay(stored, &Fingerprint::of(&[b"b"])), Replay::Reused);
    }
}
