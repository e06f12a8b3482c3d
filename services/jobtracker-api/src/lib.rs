//! The JobTracker API: users (Clerk session JWTs) and bots (Clerk M2M tokens) on one API.

pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod startup;
pub mod store;

pub use config::Config;
pub use startup::Server;
