//! End-to-end: real service code against clerk-mock. Scenarios that touch the database run on
//! SQLite and, when TEST_POSTGRES_URL is set, on Postgres (else those show as ignored).

mod bots;
mod contract;
mod doors;
mod faults;
mod hygiene;
mod readme;
mod secrets;
mod smoke;
mod tokens;

/// A loopback port nothing listens on, for a service these tests start by address. Taken below
/// the kernel's ephemeral range (32768+), where no `bind(0)` and no outgoing connection of a
/// concurrent test can land on it between this call and the service's bind, and never the same
/// one twice in this process (a devstack binds seven).
pub(crate) fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::{LazyLock, Mutex};
    static HANDED_OUT: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(Default::default);
    let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let start = std::process::id() % 12_000;
    (0..12_000u32)
        .map(|i| 20_000 + ((start + i * 7) % 12_000) as u16)
        .find(|p| !handed.contains(p) && std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .inspect(|p| {
            handed.insert(*p);
        })
        .expect("a free loopback port in 20000-31999")
}
