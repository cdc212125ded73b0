//! Sign-in links to the web view, asked for in chat (`/ticket web`, the "Open in browser"
//! link of `/ticket show`).
//!
//! Owns the link's token: 32 random bytes, shown once in the chat answer, stored only as its
//! SHA-256, good for ten minutes and one sign-in. Must not serve pages or set cookies (that
//! is `web`'s).

use sha2::Digest;

use crate::config::WebSettings;
use crate::core::directory::Actor;
use crate::store::{StoreError, WebGrant};

use super::{Desk, DeskError};

/// A new random token: 32 bytes from the operating system, URL-safe base64 (43 characters).
pub fn random_token() -> Result<String, StoreError> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Unsupported(format!("the system gave no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the database keeps of a token: its SHA-256, in hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl Desk {
    /// A personal, single-use link that signs `actor` in to the web view (with the groups or
    /// roles chat sees them hold) and opens `next`, a page under `/ui/` such as
    /// `tickets/42`; a user error when the web view is off.
    pub async fn web_link(&self, actor: &Actor, next: Option<&str>) -> Result<String, DeskError> {
        let Some(web) = &self.config.web else {
            return Err(DeskError::User(
                "The web view is not switched on here. An admin turns it on with `[web] \
                 enabled = true` and `public_url` in the config (see the README)."
                    .into(),
            ));
        };
        let token = random_token()?;
        let grant = WebGrant {
            user: actor.user.clone(),
            roles: actor.roles.clone(),
        };
        let now = self.now();
        self.store
            .add_web_link(
                &token_hash(&token),
                &grant,
                next,
                now,
                now + WebSettings::LINK_LIFETIME,
            )
            .await?;
        Ok(web.page(&format!("signin/{token}")))
    }
}
