//! Test-only helpers shared by the workspace's integration tests. Only ever a dev-dependency.

pub mod cli;
pub mod logs;
pub mod metrics;
