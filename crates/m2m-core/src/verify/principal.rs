//! Who is calling.

use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use serde::{Serialize, Serializer};
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
    /// Every claim: the token's payload, parsed the first time a claim is read (a
    /// [`Value`] through `Deref`).
    pub claims: Claims,
}

/// Every claim of a verified session token. Kept as the payload's JSON text (shared: cloning
/// a principal does not copy it) and parsed into a [`Value`] the first time it is read, through
/// `Deref` or [`value`](Self::value): most requests read none, and their verification builds
/// only what the principal's own fields need.
///
/// The parsed `Value` belongs to this copy: a principal kept in the JWT cache holds the text
/// alone, so its size does not change with what handlers read.
#[derive(Clone)]
pub struct Claims {
    json: Arc<str>,
    parsed: OnceLock<Value>,
}

impl Claims {
    /// From the payload of a token whose verification read it: a JSON object, checked with
    /// the rules a `Value` parse applies, so parsing it again cannot fail.
    pub(crate) fn from_checked_json(json: &str) -> Self {
        Self {
            json: Arc::from(json),
            parsed: OnceLock::new(),
        }
    }

    /// The claims as JSON text (the token's payload, as signed).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The claims, parsed (once per copy).
    pub fn value(&self) -> &Value {
        self.parsed.get_or_init(|| {
            // Not reached: the text was parsed with the same rules when it was verified.
            serde_json::from_str(&self.json).unwrap_or_else(|_| Value::Object(Default::default()))
        })
    }

    /// Bytes of the JSON text (for the cache's size estimate).
    pub(crate) fn json_len(&self) -> usize {
        self.json.len()
    }
}

impl From<Value> for Claims {
    fn from(value: Value) -> Self {
        Self {
            json: Arc::from(value.to_string()),
            parsed: OnceLock::from(value),
        }
    }
}

impl Deref for Claims {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.value()
    }
}

impl AsRef<Value> for Claims {
    fn as_ref(&self) -> &Value {
        self.value()
    }
}

impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.json, &other.json) || self.value() == other.value()
    }
}

impl fmt::Debug for Claims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.value(), f)
    }
}

impl Serialize for Claims {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
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
