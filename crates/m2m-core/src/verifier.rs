//! What the receiving side hands out besides [`Verifier`](crate::Verifier) and
//! [`Principal`](crate::Principal): who a caller is, why a token was refused, the caches'
//! counters, and the tower service [`AuthLayer`](crate::AuthLayer) wraps.

#[cfg(feature = "tower")]
pub use crate::auth_tower::{AuthBody, AuthService};
pub use crate::verify::{
    Claims, JwtCache, JwtCacheStats, MachinePrincipal, OpaqueStats, PeerAddr, Reason, UserPrincipal,
};
