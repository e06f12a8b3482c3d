//! Clerk Backend API: the M2M token endpoints and JWKS.

mod client;
mod error;
mod models;

pub use client::{
    CLERK_API_VERSION, CallObserver, ClerkClient, ClerkClientBuilder, DEFAULT_API_BASE_URL,
    Operation, RetryPolicy,
};
pub use error::{ClerkError, ClerkErrorBody, ClerkErrorItem};
pub use models::{
    CreateM2mTokenRequest, CreatedM2mToken, ListM2mTokensQuery, M2mToken, M2mTokenList,
};
