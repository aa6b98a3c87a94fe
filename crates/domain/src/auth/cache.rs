//! A short-lived copy of recently used tokens, so that a busy client does
//! not cost a token lookup per request.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::{StoredToken, TokenHash};
use crate::ids::TokenId;
use crate::timestamp::Timestamp;

/// Most tokens kept; past this, expired entries go first and then all of them.
const MAX_ENTRIES: usize = 4096;

/// Tokens found by hash, each kept for a fixed time after it was read.
///
/// Only found tokens are kept: a token created a moment after a failed
/// lookup works at once, and random tokens cannot fill the cache.
#[derive(Debug)]
pub(super) struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<TokenHash, (StoredToken, Timestamp)>>,
}

impl TokenCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, (StoredToken, Timestamp)>> {
        // Every update leaves the map whole, so a panic elsewhere cannot break it.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Returns the token if it was read less than the cache's lifetime before `now`.
    pub(super) fn get(&self, hash: &TokenHash, now: Timestamp) -> Option<StoredToken> {
        let entries = self.entries();
        let (token, read_at) = entries.get(hash)?;
        self.fresh(*read_at, now).then(|| token.clone())
    }

    /// Keeps a token read from storage at `now`.
    pub(super) fn insert(&self, hash: TokenHash, token: StoredToken, now: Timestamp) {
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (_, read_at)| self.fresh(*read_at, now));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(hash, (token, now));
    }

    /// Records a use written to storage, so the cached copy does not ask for it again.
    pub(super) fn touched(&self, id: TokenId, at: Timestamp) {
        for (token, _) in self.entries().values_mut() {
            if token.id == id {
                token.last_used_at = Some(at);
            }
        }
    }

    fn fresh(&self, read_at: Timestamp, now: Timestamp) -> bool {
        // A clock that steps back makes the entry stale rather than immortal.
        now >= read_at && now < read_at.plus(self.ttl)
    }
}
