//! Sets `cfg(test_postgres)` when `TEST_POSTGRES_URL` is set. Cargo re-runs this (and rebuilds
//! the tests that use this crate) whenever the variable changes, so the decision is never stale.

fn main() {
    println!("cargo::rerun-if-env-changed=TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(test_postgres)");
    if std::env::var_os("TEST_POSTGRES_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=test_postgres");
    }
}
