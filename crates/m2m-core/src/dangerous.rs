//! Parsing tokens **without verifying them**: for fuzzing, benchmarks and diagnostics only.
//!
//! Nothing here checks a signature, an expiry or a scope: a [`DecodedJwt`] says what a token
//! claims to be, not who sent it. Authenticate requests with [`Verifier`](crate::Verifier) (or
//! [`AuthLayer`](crate::AuthLayer), or the axum extractors), never with these.

pub use crate::verify::{
    DecodedJwt, HeaderParam, JwtHeader, MAX_HEADER_LEN, TokenKind, bearer_token, classify,
    decode_jwt, is_opaque_m2m,
};
