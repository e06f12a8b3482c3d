//! Who is calling.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::token_format::TokenFormat;

/// A user, from a verified session token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserPrincipal {
    /// `user_…` (`sub`).
    pub user_id: String,
    /// `sess_…` (`sid`).
    pub session_id: String,
    /// Active organisation (`o.id`), if any.
    pub org_id: Option<String>,
    /// The origin the token was minted for (`azp`).
    pub authorized_party: Option<String>,
    /// Impersonation actor (`act`), if any.
    pub actor: Option<Value>,
    /// Every claim (shared: cloning a principal does not copy them).
    pub claims: Arc<Value>,
}

/// A machine, from a verified M2M token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachinePrincipal {
    /// `mch_…`: the machine that created the token.
    pub machine_id: String,
    /// `mt_…`: the token id (not the bearer value).
    pub token_id: String,
    /// Machines the token is valid for.
    pub scopes: Vec<String>,
    /// Custom claims (shared: cloning a principal does not copy them).
    pub claims: Option<Arc<Value>>,
    /// Opaque or JWT.
    pub format: TokenFormat,
    /// Expiry, Unix ms.
    pub expires_at_ms: Option<i64>,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Principal {
    /// A person, through a Clerk session token.
    User(UserPrincipal),
    /// A service, through a Clerk M2M token.
    Machine(MachinePrincipal),
}

impl Principal {
    /// `user:user_…` or `machine:mch_…`, for audit trails.
    pub fn actor(&self) -> String {
        match self {
            Self::User(u) => format!("user:{}", u.user_id),
            Self::Machine(m) => format!("machine:{}", m.machine_id),
        }
    }

    /// The user, if this is one.
    pub fn as_user(&self) -> Option<&UserPrincipal> {
        match self {
            Self::User(u) => Some(u),
            Self::Machine(_) => None,
        }
    }

    /// The machine, if this is one.
    pub fn as_machine(&self) -> Option<&MachinePrincipal> {
        match self {
            Self::Machine(m) => Some(m),
            Self::User(_) => None,
        }
    }

    /// The machine, if it is one of `allowed` (the older package's "expected machine id" check).
    pub fn machine_in<'a>(&'a self, allowed: &[&str]) -> Option<&'a MachinePrincipal> {
        self.as_machine()
            .filter(|m| allowed.contains(&m.machine_id.as_str()))
    }
}
