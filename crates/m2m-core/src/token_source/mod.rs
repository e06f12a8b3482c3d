//! Where an outgoing request's M2M token comes from: minted and cached, pre-created, or none.

mod client_config;
mod minted;

use std::sync::Arc;

pub use client_config::M2mClientConfig;
pub use minted::{MintSettings, MintedTokenSource};

use crate::clerk::ClerkError;
use crate::secret::BearerToken;

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Minting failed and no valid token was cached.
    #[error("could not obtain an M2M token from Clerk: {0}")]
    Mint(Arc<ClerkError>),
}

impl TokenError {
    /// Whether trying again later may help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Mint(e) => e.is_transient(),
        }
    }
}

/// One abstraction over the three ways a caller authenticates.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// Minted with the machine secret key, cached and refreshed.
    Minted(MintedTokenSource),
    /// A pre-created token used as is (`CLERK_M2M_TOKEN`).
    Static(BearerToken),
    /// No token is sent (`ENABLE_M2M_AUTH=false`; for testing only).
    Disabled,
}

impl TokenSource {
    /// The token to send now, or `None` when authentication is disabled.
    pub async fn token(&self) -> Result<Option<BearerToken>, TokenError> {
        match self {
            Self::Minted(m) => m.token().await.map(Some),
            Self::Static(t) => Ok(Some(t.clone())),
            Self::Disabled => Ok(None),
        }
    }

    /// Reports that the server rejected `token`. Returns whether asking again can give a
    /// different token (only a minted source can).
    pub fn invalidate(&self, token: &BearerToken) -> bool {
        match self {
            Self::Minted(m) => m.invalidate(token),
            Self::Static(_) | Self::Disabled => false,
        }
    }

    /// After a server rejected `token`: invalidates it, and says whether asking again is worth
    /// it. A minted source always is (the token was cleared, or a concurrent caller already
    /// replaced it); a static token cannot change, so a retry would only be refused again.
    pub(crate) fn replace(&self, token: &BearerToken) -> bool {
        self.invalidate(token) || matches!(self, Self::Minted(_))
    }

    /// `minted`, `static` or `disabled`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Minted(_) => "minted",
            Self::Static(_) => "static",
            Self::Disabled => "disabled",
        }
    }
}
