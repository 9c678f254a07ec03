//! RS256 JWTs, both ways:
//!
//! - [`Verifier`]: Google signs every checkout and submit request with a JWT in
//!   `Authorization` (issuer Google, audience our Actions project id). We check the
//!   signature with keys configured up front (a PEM public key or a JWKS document), never
//!   fetched on the request path, and the claims against the request's `received_at`.
//! - [`ServiceAccount`]: our asynchronous order updates carry an OAuth 2.0 access token
//!   that we get from Google's token endpoint with the JWT-bearer grant (RFC 7523), the
//!   assertion signed with our service account's private key; the token is cached until
//!   shortly before it expires.
//!
//! The JWT covers neither the body nor the URL: it proves the request came from Google
//! for our project within its lifetime, not what the request says.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crossdock_channel::{ChannelError, clip, http};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::wire::TokenResponse;

/// The grant type of a JWT assertion (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Why a key text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

/// One verification key, with the `kid` a JWKS gave it.
#[derive(Clone)]
struct VerificationKey {
    kid: Option<String>,
    key: DecodingKey,
}

/// The claims Google's request token carries that we check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestClaims {
    pub iss: String,
    pub aud: Audience,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

/// `aud` is a string or a list of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, value: &str) -> bool {
        match self {
            Audience::One(one) => one == value,
            Audience::Many(many) => many.iter().any(|a| a == value),
        }
    }
}

/// Checks Google's request JWTs: RS256 signature by one of the configured keys, `aud` our
/// project id, `iss` one of the accepted issuers, `iat`/`exp` around the time the request
/// was received (with `leeway`).
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<VerificationKey>,
    audience: String,
    issuers: Vec<String>,
    leeway: i64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .field("audience", &self.audience)
            .field("issuers", &self.issuers)
            .field("leeway", &self.leeway)
            .finish()
    }
}

impl Verifier {
    /// `keys`: a PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`, several may follow each
    /// other) or a JWKS document (`{"keys": [...]}`, e.g. Google's published certs).
    pub fn new(
        keys: &str,
        audience: String,
        issuers: Vec<String>,
        leeway: Duration,
    ) -> Result<Self, KeyError> {
        let keys = read_verification_keys(keys)?;
        Ok(Self {
            keys,
            audience,
            issuers,
            leeway: i64::try_from(leeway.as_secs()).unwrap_or(i64::MAX),
        })
    }

    /// Verifies the `Authorization` header value of a request received at `at`.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<RequestClaims, ChannelError> {
        let unauthorized = |message: String| Err(ChannelError::Unauthorized(message));
        let Some(value) = authorization else {
            return unauthorized("missing Authorization header (Google's signed JWT)".into());
        };
        // Google sends `Bearer <jwt>`; the scheme is compared exactly as Google writes it.
        let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
        if token.is_empty() {
            return unauthorized("the Authorization header carries no token".into());
        }
        let header = match jsonwebtoken::decode_header(token) {
            Ok(header) => header,
            Err(error) => {
                return unauthorized(format!("the Authorization JWT is unreadable: {error}"));
            }
        };
        if header.alg != Algorithm::RS256 {
            return unauthorized(format!(
                "the Authorization JWT is signed with {:?}; Google signs with RS256",
                header.alg
            ));
        }
        let mut validation = Validation::new(Algorithm::RS256);
        // Times and audience are checked below against the request's own receipt time.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let candidates: Vec<&VerificationKey> = match header.kid.as_deref() {
            Some(kid) if self.keys.iter().any(|k| k.kid.as_deref() == Some(kid)) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            _ => self.keys.iter().collect(),
        };
        let mut last_error = None;
        let mut claims = None;
        for candidate in candidates {
            match jsonwebtoken::decode::<RequestClaims>(token, &candidate.key, &validation) {
                Ok(data) => {
                    claims = Some(data.claims);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let Some(claims) = claims else {
            let why =
                last_error.map_or_else(|| "no verification key".to_owned(), |e| e.to_string());
            return unauthorized(format!(
                "the Authorization JWT does not verify with Google's keys: {why}"
            ));
        };
        if !claims.aud.contains(&self.audience) {
            return unauthorized(format!(
                "the Authorization JWT is for audience {:?}, not this project `{}`",
                claims.aud, self.audience
            ));
        }
        if !self.issuers.contains(&claims.iss) {
            return unauthorized(format!(
                "the Authorization JWT was issued by `{}`, not by Google",
                clip(&claims.iss)
            ));
        }
        let now = at.timestamp();
        if claims.exp.saturating_add(self.leeway) <= now {
            return Err(ChannelError::Stale(format!(
                "the Authorization JWT expired at {} (request received at {})",
                claims.exp, now
            )));
        }
        if claims.iat.saturating_sub(self.leeway) > now {
            return Err(ChannelError::Stale(format!(
                "the Authorization JWT is issued at {}, after the request was received ({})",
                claims.iat, now
            )));
        }
        Ok(claims)
    }
}

fn read_verification_keys(text: &str) -> Result<Vec<VerificationKey>, KeyError> {
    let text = text.trim();
    let keys = if text.starts_with('{') {
        let set: JwkSet = serde_json::from_str(text)
            .map_err(|e| KeyError(format!("the JWKS document does not parse: {e}")))?;
        set.keys
            .iter()
            .map(|jwk| {
                DecodingKey::from_jwk(jwk)
                    .map(|key| VerificationKey {
                        kid: jwk.common.key_id.clone(),
                        key,
                    })
                    .map_err(|e| KeyError(format!("a JWKS key is not usable: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        pem_blocks(text)
            .into_iter()
            .map(|block| {
                DecodingKey::from_rsa_pem(block.as_bytes())
                    .map(|key| VerificationKey { kid: None, key })
                    .map_err(|e| KeyError(format!("a PEM public key is not an RSA key: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    if keys.is_empty() {
        return Err(KeyError(
            "no verification key: give a PEM public key or a JWKS document".into(),
        ));
    }
    Ok(keys)
}

/// The `-----BEGIN …-----` … `-----END …-----` blocks of a text.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("-----BEGIN ") {
            current = Some(format!("{line}\n"));
        } else if let Some(block) = current.as_mut() {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("-----END ") {
                blocks.extend(current.take());
            }
        }
    }
    blocks
}

/// Signs claims with an RS256 private key (PEM, PKCS#8 or PKCS#1).
pub fn sign<T: Serialize>(
    private_key_pem: &str,
    kid: Option<&str>,
    claims: &T,
) -> Result<String, KeyError> {
    Signer::from_pem(private_key_pem, kid)?.sign(claims)
}

/// An RS256 private key, read once, and the header its tokens carry: for a signer of
/// many tokens (reading the PEM key is most of the cost of one).
pub struct Signer {
    key: EncodingKey,
    header: Header,
}

impl Signer {
    /// The key of a PEM text (PKCS#8 or PKCS#1), its tokens naming `kid`.
    pub fn from_pem(private_key_pem: &str, kid: Option<&str>) -> Result<Signer, KeyError> {
        let key = EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
            .map_err(|e| KeyError(format!("the private key is not an RSA PEM key: {e}")))?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        Ok(Signer { key, header })
    }

    /// The signed token of `claims`.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        jsonwebtoken::encode(&self.header, claims, &self.key)
            .map_err(|e| KeyError(format!("signing: {e}")))
    }
}

// ---------------------------------------------------------------------------------------
// Our service account: JWT-bearer grant for an access token
// ---------------------------------------------------------------------------------------

/// The assertion we sign to get an access token (Google's service-account flow).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionClaims {
    /// The service account's email.
    pub iss: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The token endpoint.
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// The lifetime of an assertion (Google allows at most one hour).
pub const ASSERTION_LIFETIME_S: i64 = 3600;
/// Refresh this long before the token's stated expiry.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// A service account's credentials, read from a PEM private key or from the JSON key file
/// Google issues (`{"type": "service_account", "client_email", "private_key", "token_uri", …}`).
#[derive(Clone)]
pub struct ServiceAccountKey {
    pub private_key_pem: SecretString,
    /// From a JSON key file; overrides the configured email.
    pub client_email: Option<String>,
    /// From a JSON key file (not used: the token URL is configured).
    pub token_uri: Option<String>,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeyFile {
    client_email: Option<String>,
    private_key: String,
    token_uri: Option<String>,
}

impl ServiceAccountKey {
    pub fn read(text: &str) -> Result<Self, KeyError> {
        let trimmed = text.trim();
        let key = if trimmed.starts_with('{') {
            let file: KeyFile = serde_json::from_str(trimmed).map_err(|e| {
                KeyError(format!("the service account key file does not parse: {e}"))
            })?;
            ServiceAccountKey {
                private_key_pem: SecretString::from(file.private_key),
                client_email: file.client_email,
                token_uri: file.token_uri,
            }
        } else {
            ServiceAccountKey {
                private_key_pem: SecretString::from(trimmed.to_owned()),
                client_email: None,
                token_uri: None,
            }
        };
        // Fail at start-up, not at the first push.
        EncodingKey::from_rsa_pem(key.private_key_pem.expose_secret().as_bytes()).map_err(|e| {
            KeyError(format!(
                "the service account private key is not usable: {e}"
            ))
        })?;
        Ok(key)
    }
}

/// Access tokens for our service account, cached until shortly before they expire.
pub struct ServiceAccount {
    token_url: String,
    client_email: String,
    scope: String,
    key: ServiceAccountKey,
    http: reqwest::Client,
    timeout: Duration,
    cached: Mutex<Option<(SecretString, Instant)>>,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("token_url", &self.token_url)
            .field("client_email", &self.client_email)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    pub fn new(
        http: reqwest::Client,
        token_url: String,
        client_email: String,
        scope: String,
        key: ServiceAccountKey,
        timeout: Duration,
    ) -> Self {
        let client_email = key.client_email.clone().unwrap_or(client_email);
        Self {
            token_url,
            client_email,
            scope,
            key,
            http,
            timeout,
            cached: Mutex::new(None),
        }
    }

    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The assertion for a token request made at `now`.
    pub fn assertion(&self, now: DateTime<Utc>) -> Result<String, ChannelError> {
        let claims = AssertionClaims {
            iss: self.client_email.clone(),
            scope: self.scope.clone(),
            aud: self.token_url.clone(),
            iat: now.timestamp(),
            exp: now.timestamp() + ASSERTION_LIFETIME_S,
        };
        sign(self.key.private_key_pem.expose_secret(), None, &claims)
            .map_err(|e| ChannelError::Unsupported(format!("service account: {e}")))
    }

    /// A valid access token: the cached one, or a new one from the token endpoint.
    pub async fn token(&self) -> Result<SecretString, ChannelError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires_at)) = cached.as_ref()
            && Instant::now() < *expires_at
        {
            return Ok(token.clone());
        }
        let assertion = self.assertion(Utc::now())?;
        let form = [
            ("grant_type", JWT_BEARER_GRANT),
            ("assertion", assertion.as_str()),
        ];
        let request = self
            .http
            .post(&self.token_url)
            .form(&form)
            .timeout(self.timeout);
        let response = http::send(request).await.map_err(|error| match error {
            ChannelError::Platform {
                status: 400 | 401 | 403,
                body,
            } => ChannelError::Platform {
                status: 401,
                body: format!("the token endpoint refused the service account's assertion: {body}"),
            },
            other => other,
        })?;
        let body: TokenResponse = http::json(response, "token response").await?;
        let lifetime = Duration::from_secs(body.expires_in).saturating_sub(EXPIRY_MARGIN);
        let token = SecretString::from(body.access_token);
        *cached = Some((token.clone(), Instant::now() + lifetime));
        tracing::debug!(
            client_email = %self.client_email,
            lifetime_s = lifetime.as_secs(),
            "Google access token obtained."
        );
        Ok(token)
    }

    /// Drops the cached token (after Google answered 401 with it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }
}
