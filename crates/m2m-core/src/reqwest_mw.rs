//! reqwest-middleware glue: M2M tokens in a `reqwest_middleware::ClientWithMiddleware` stack.

use http::Extensions;
use reqwest::{Request, Response, StatusCode, header};
use reqwest_middleware::{Middleware, Next};

use crate::secret::BearerToken;
use crate::token_source::TokenSource;

/// Adds `Authorization: Bearer <token>` from a [`TokenSource`] to every request of a
/// `reqwest_middleware` client:
///
/// ```no_run
/// # async fn f(tokens: m2m_core::TokenSource) -> Result<(), Box<dyn std::error::Error>> {
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(m2m_core::BearerMiddleware::new(tokens))
///     .build();
/// let response = client.get("https://api.example.com/jobs").send().await?;
/// # Ok(()) }
/// ```
///
/// On a 401 it invalidates exactly the token that was sent and, if the request can be copied
/// (`reqwest::Request::try_clone`: any body but a stream), sends it once more with a fresh token;
/// the second answer is returned whatever it is. A streamed body is not retried: its 401 is
/// returned, and the next request gets a fresh token. A token that cannot be had fails the
/// request with `reqwest_middleware::Error::Middleware` wrapping a [`TokenError`](crate::TokenError).
///
/// Add it after retry middleware (`.with(retry).with(bearer)`), so each retry asks for the
/// current token.
#[derive(Debug, Clone)]
pub struct BearerMiddleware {
    tokens: TokenSource,
}

impl BearerMiddleware {
    /// Tokens from `tokens`.
    pub fn new(tokens: TokenSource) -> Self {
        Self { tokens }
    }
}

fn authorize(request: &mut Request, token: Option<&BearerToken>) -> reqwest_middleware::Result<()> {
    let Some(token) = token else {
        return Ok(());
    };
    let mut value = header::HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| reqwest_middleware::Error::middleware(InvalidToken))?;
    value.set_sensitive(true);
    request.headers_mut().insert(header::AUTHORIZATION, value);
    Ok(())
}

/// A static token with bytes a header cannot carry.
#[derive(Debug, thiserror::Error)]
#[error("the M2M token is not a valid header value")]
struct InvalidToken;

#[async_trait::async_trait]
impl Middleware for BearerMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let token = self
            .tokens
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let replay = request.try_clone();
        authorize(&mut request, token.as_ref())?;
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(sent) = token else {
            return Ok(response);
        };
        if !self.tokens.replace(&sent) {
            return Ok(response);
        }
        let Some(mut retry) = replay else {
            tracing::info!(
                "request answered 401; its streamed body cannot be replayed, the next request gets a fresh M2M token"
            );
            return Ok(response);
        };
        tracing::info!("request answered 401; retrying once with a fresh M2M token");
        let fresh = self
            .tokens
            .token()
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        authorize(&mut retry, fresh.as_ref())?;
        next.run(retry, extensions).await
    }
}
