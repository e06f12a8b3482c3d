//! reqwest glue: send a request with the current token; on a 401, replace that token and retry
//! once.

use reqwest::{RequestBuilder, Response, StatusCode};

use crate::token_source::{TokenError, TokenSource};

/// Why an authenticated request could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthedRequestError {
    /// No token could be obtained.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The request failed at the transport level.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
}

/// A `reqwest::Client` that authenticates every request through a [`TokenSource`].
#[derive(Debug, Clone)]
pub struct AuthedClient {
    http: reqwest::Client,
    tokens: TokenSource,
}

impl AuthedClient {
    /// Wraps `http` (share one per service) with `tokens`.
    pub fn new(http: reqwest::Client, tokens: TokenSource) -> Self {
        Self { http, tokens }
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The token source.
    pub fn tokens(&self) -> &TokenSource {
        &self.tokens
    }

    /// Builds a request with `build`, adds `Authorization: Bearer <token>`, and sends it. On a
    /// 401 it invalidates exactly that token, gets a fresh one and sends a rebuilt request once
    /// more; the second answer is returned whatever it is, so a persistent 401 never loops.
    /// `build` is called once per attempt, so bodies need not be clonable.
    pub async fn send<F>(&self, build: F) -> Result<Response, AuthedRequestError>
    where
        F: Fn(&reqwest::Client) -> RequestBuilder,
    {
        let token = self.tokens.token().await?;
        let mut request = build(&self.http);
        if let Some(t) = &token {
            request = request.bearer_auth(t.expose());
        }
        let response = request.send().await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(rejected) = token else {
            return Ok(response);
        };
        if !self.tokens.replace(&rejected) {
            return Ok(response);
        }
        tracing::info!("request answered 401; retrying once with a fresh M2M token");
        let fresh = self.tokens.token().await?;
        let mut retry = build(&self.http);
        if let Some(t) = &fresh {
            retry = retry.bearer_auth(t.expose());
        }
        Ok(retry.send().await?)
    }
}
