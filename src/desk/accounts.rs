//! The accounts port: what the desk asks a chat platform about an account (is it a bot?).
//!
//! Owns the question and its answer; platform adapters implement [`AccountLookup`] and
//! register it when they connect. Must not know any platform's API.

use async_trait::async_trait;

use crate::core::types::{Platform, UserRef};

/// The platform could not answer now (rate limit, outage); worth asking again later.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the platform could not say what the account is: {0}")]
pub struct LookupError(pub String);

/// What a platform says an account is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// A human member.
    Person,
    /// A bot or app account (including this bot).
    Bot,
    /// The platform does not know the id.
    Unknown,
}

/// Answers questions about one platform's accounts that commands need (is this a bot?).
#[async_trait]
pub trait AccountLookup: Send + Sync {
    /// The platform whose accounts this knows.
    fn platform(&self) -> Platform;

    /// What account `id` is.
    async fn kind(&self, id: &str) -> Result<AccountKind, LookupError>;

    /// The name the platform shows for account `id` (its display name); `None` when the
    /// platform does not know the id or gives no name.
    async fn name(&self, id: &str) -> Result<Option<String>, LookupError>;
}

/// The account lookups of the connected platforms, shared by every clone of the desk;
/// adapters register theirs when they connect.
#[derive(Default)]
pub struct Accounts {
    lookups: std::sync::RwLock<Vec<std::sync::Arc<dyn AccountLookup>>>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let platforms: Vec<Platform> = self
            .lookups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|l| l.platform())
            .collect();
        f.debug_struct("Accounts")
            .field("platforms", &platforms)
            .finish()
    }
}

impl Accounts {
    /// Adds (or replaces) the lookup for its platform.
    pub fn register(&self, lookup: std::sync::Arc<dyn AccountLookup>) {
        let mut all = self.lookups.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|l| l.platform() != lookup.platform());
        all.push(lookup);
    }

    /// The lookup of `user`'s platform, when its adapter is connected in this process.
    fn lookup(&self, user: &UserRef) -> Option<std::sync::Arc<dyn AccountLookup>> {
        self.lookups
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|l| l.platform() == user.platform)
            .cloned()
    }

    /// The name `user`'s platform shows for them, or `None` when it gives none or no
    /// connected adapter can tell.
    pub async fn name(&self, user: &UserRef) -> Result<Option<String>, LookupError> {
        match self.lookup(user) {
            Some(l) => l.name(&user.id).await,
            None => Ok(None),
        }
    }

    /// What `user` is, or `None` when no connected adapter can tell (its platform is not
    /// connected in this process, as in the CLI).
    pub async fn kind(&self, user: &UserRef) -> Result<Option<AccountKind>, LookupError> {
        match self.lookup(user) {
            Some(l) => l.kind(&user.id).await.map(Some),
            None => Ok(None),
        }
    }
}
