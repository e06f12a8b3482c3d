//! A sender with a pre-created, long-lived token instead of a machine key (for senders that
//! cannot keep a key, such as webhook or job runners): `CLERK_M2M_TOKEN_<SERVICE>` names the
//! token to send to `<SERVICE>`, `CLERK_M2M_TOKEN` is the fallback. Create one on clerk-mock:
//!
//! ```text
//! curl -s -X POST http://localhost:8080/v1/m2m_tokens \
//!   -H 'Authorization: Bearer ak_job_applier_mock_machine_secret_key_0001' \
//!   -H 'Content-Type: application/json' -d '{"seconds_until_expiration": 2592000}'
//! CLERK_M2M_TOKEN_JOBTRACKER_API=mt_… cargo run -p m2m-examples --example static_token_sender
//! ```

use m2m_core::config::ServiceTokens;
use m2m_core::{AuthedClient, TokenSource};

/// The pre-created token for `service`, from variables such as `std::env::vars()`
/// (`CLERK_M2M_TOKEN_<SERVICE>_FILE` may name a file holding it).
pub fn tokens(
    vars: impl IntoIterator<Item = (String, String)>,
    service: &str,
) -> Result<Option<TokenSource>, m2m_core::config::ConfigError> {
    Ok(ServiceTokens::from_vars(vars)?
        .token_for(service)
        .map(TokenSource::Static))
}

/// `GET {base}/jobs` with the token. A 401 is returned as is: a static token cannot be
/// replaced, so it is not retried.
pub async fn get_jobs(
    tokens: TokenSource,
    base: &str,
) -> Result<reqwest::Response, m2m_core::AuthedRequestError> {
    let authed = AuthedClient::new(reqwest::Client::new(), tokens);
    authed.send(|http| http.get(format!("{base}/jobs"))).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tokens =
        tokens(std::env::vars(), "jobtracker-api")?.ok_or("set CLERK_M2M_TOKEN_JOBTRACKER_API")?;
    let response = get_jobs(tokens, "http://127.0.0.1:3000").await?;
    println!("{}: {}", response.status(), response.text().await?);
    Ok(())
}
