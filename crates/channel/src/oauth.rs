//! OAuth 2.0 client-credentials tokens, cached until shortly before they expire.
//!
//! Platforms rate-limit the token endpoint (Uber: 100 tokens an hour, and the 101st
//! invalidates the oldest), so one token is shared by every call and refreshed only on
//! expiry or after the platform answered 401.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::{ChannelError, http};

/// Refresh this long before the platform's stated expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct ClientCredentials {
    token_url: String,
    client_id: String,
    client_secret: SecretString,
    scope: String,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    token: SecretString,
    expires_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl ClientCredentials {
    pub fn new(
        http: reqwest::Client,
        token_url: String,
        client_id: String,
        client_secret: SecretString,
        scope: String,
    ) -> Self {
        Self {
            token_url,
            client_id,
            client_secret,
            scope,
            http,
            cached: Mutex::new(None),
        }
    }

    /// A valid bearer token: the cached one, or a new one from the token endpoint.
    pub async fn token(&self) -> Result<SecretString, ChannelError> {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref()
            && Instant::now() < current.expires_at
        {
            return Ok(current.token.clone());
        }
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.expose_secret()),
            ("grant_type", "client_credentials"),
            ("scope", self.scope.as_str()),
        ];
        let request = self
            .http
            .post(&self.token_url)
            .form(&form)
            .timeout(http::DEFAULT_TIMEOUT);
        let response = http::send(request).await.map_err(|e| match e {
            ChannelError::Platform {
                status: 400 | 401 | 403,
                body,
            } => ChannelError::Platform {
                status: 401,
                body: format!("token endpoint refused the client credentials: {body}"),
            },
            other => other,
        })?;
        let body: TokenResponse = http::json(response, "token response").await?;
        let lifetime = Duration::from_secs(body.expires_in).saturating_sub(EXPIRY_MARGIN);
        let token = SecretString::from(body.access_token);
        *cached = Some(Cached {
            token: token.clone(),
            expires_at: Instant::now() + lifetime,
        });
        tracing::debug!(client_id = %self.client_id, lifetime_s = lifetime.as_secs(), "OAuth token obtained.");
        Ok(token)
    }

    /// Drops the cached token (after the platform answered 401 with it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
