//! jobtracker-api tests: the real router on a real port, against clerk-mock, each test with its
//! own database. Every scenario runs on SQLite and, when TEST_POSTGRES_URL is set, on Postgres
//! (else those show as ignored).

mod attack;
mod helpers;
mod input;
mod logs;
mod pipeline;
mod quota;
mod races;
mod routes;
mod rules;
