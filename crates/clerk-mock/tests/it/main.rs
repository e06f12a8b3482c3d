//! clerk-mock's own tests: behaviour over raw HTTP, and contract tests against Clerk's official
//! OpenAPI schemas.

mod behaviour;
mod contract;
mod respond;
mod support;
