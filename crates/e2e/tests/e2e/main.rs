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

/// `both!(name)` runs `async fn name(backend)` as `name::sqlite` and `name::postgres` (ignored,
/// with the reason, when TEST_POSTGRES_URL is unset).
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(jobtracker_api::testing::Backend::Sqlite).await;
            }
            test_postgres::postgres_test! {
                async fn postgres() {
                    super::$name(jobtracker_api::testing::Backend::Postgres).await;
                }
            }
        }
    };
}
