//! The Postgres variants of the tests show in `cargo test`'s own summary as run or `ignored`,
//! with the reason, never as a pass that did nothing.
//!
//! libtest decides `#[ignore]` when the test is compiled, so this crate's build script reads
//! `TEST_POSTGRES_URL` (`cargo::rerun-if-env-changed`: setting, changing or unsetting it rebuilds
//! the tests that use [`postgres_test!`], and only those). With it set, the tests run, and fail if
//! Postgres cannot be reached; without it, they are `ignored, needs TEST_POSTGRES_URL …`.
//! A dedicated crate, so that toggling the variable rebuilds only the test targets depending on it.

/// `postgres_test! { async fn postgres() { … } }`: a multi-threaded `#[tokio::test]` that runs
/// when `TEST_POSTGRES_URL` was set at build time, and is `#[ignore]`d with the reason otherwise.
#[cfg(test_postgres)]
#[macro_export]
macro_rules! postgres_test {
    ($(#[$attr:meta])* async fn $name:ident() $body:block) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $name() $body
    };
}

/// `postgres_test! { async fn postgres() { … } }`: a multi-threaded `#[tokio::test]` that runs
/// when `TEST_POSTGRES_URL` was set at build time, and is `#[ignore]`d with the reason otherwise.
#[cfg(not(test_postgres))]
#[macro_export]
macro_rules! postgres_test {
    ($(#[$attr:meta])* async fn $name:ident() $body:block) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        #[ignore = "needs TEST_POSTGRES_URL, a Postgres server (e.g. postgres://postgres@127.0.0.1:5432/test)"]
        $(#[$attr])*
        async fn $name() $body
    };
}
