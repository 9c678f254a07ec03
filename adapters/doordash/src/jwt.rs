//! DoorDash's JSON Web Token (`DD-JWT-V1`), the credential of every call to the Marketplace
//! API: HS256 over `base64url(header) "." base64url(claims)`, keyed with the access key's
//! signing secret *after* base64url-decoding it.
//!
//! - header: `{"alg":"HS256","typ":"JWT","dd-ver":"DD-JWT-V1"}`;
//! - claims: `aud: "doordash"`, `iss: <developer_id>`, `kid: <key_id>`, `iat`, `exp`, with
//!   `exp` at most 30 minutes after `iat`;
//! - sent as `Authorization: Bearer <jwt>` together with `auth-version: v2`.
//!
//! <https://developer.doordash.com/en-US/docs/marketplace/how_to/JWTs>
//!
//! [`sign`] is what the adapter sends; [`verify`] is what the simulator checks (the same
//! rules DoorDash documents), so both sides of the tests share one definition.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use crossdock_channel::signature::{constant_time_eq, hmac_sha256};
use serde::{Deserialize, Serialize};

/// The `aud` claim DoorDash expects.
pub const AUDIENCE: &str = "doordash";
/// The `dd-ver` header value.
pub const DD_VERSION: &str = "DD-JWT-V1";
/// The `auth-version` header value that goes with the token.
pub const AUTH_VERSION: &str = "v2";
/// The longest lifetime DoorDash accepts: `exp − iat` ≤ 30 minutes.
pub const MAX_TTL_SECS: i64 = 1800;
/// Clock skew tolerated when checking `iat` (a token "issued" slightly in the future).
pub const CLOCK_SKEW_SECS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub alg: String,
    pub typ: String,
    #[serde(rename = "dd-ver")]
    pub dd_ver: String,
}

impl Header {
    pub fn dd_jwt_v1() -> Self {
        Self {
            alg: "HS256".to_owned(),
            typ: "JWT".to_owned(),
            dd_ver: DD_VERSION.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub aud: String,
    pub iss: String,
    pub kid: String,
    pub exp: i64,
    pub iat: i64,
}

/// Why a token is refused (the simulator's 401 message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the token is not three base64url parts")]
    Shape,
    #[error("the token header is not DoorDash's: {0}")]
    Header(String),
    #[error("the token claims cannot be read: {0}")]
    Claims(String),
    #[error("the token signature does not match")]
    Signature,
    #[error("claim `{claim}` is `{found}`, expected `{expected}`")]
    Claim {
        claim: &'static str,
        found: String,
        expected: String,
    },
    #[error("the token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    #[error("the token is issued in the future (iat {iat}, now {now})")]
    NotYetValid { iat: i64, now: i64 },
    #[error("the token lives {ttl} s; DoorDash allows at most {MAX_TTL_SECS} s")]
    TooLong { ttl: i64 },
}

/// Decodes an access key's signing secret as DoorDash hands it out (base64url, usually
/// without padding). Standard base64 is accepted too, and padding is ignored.
pub fn decode_signing_secret(secret: &str) -> Result<Vec<u8>, String> {
    let trimmed = secret.trim().trim_end_matches('=');
    let decoded = URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD_NO_PAD.decode(trimmed))
        .map_err(|e| format!("the signing secret is not base64url: {e}"))?;
    if decoded.is_empty() {
        return Err("the signing secret decodes to nothing".to_owned());
    }
    Ok(decoded)
}

/// Encodes raw key bytes the way DoorDash shows a signing secret (base64url, no padding).
pub fn encode_signing_secret(key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

fn encode_json<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail; an empty object would fail verification.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// A signed token for `developer_id` / `key_id`, issued at `iat`, valid for `ttl_secs`.
pub fn sign(
    key: &[u8],
    developer_id: &str,
    key_id: &str,
    iat: DateTime<Utc>,
    ttl_secs: i64,
) -> String {
    let claims = Claims {
        aud: AUDIENCE.to_owned(),
        iss: developer_id.to_owned(),
        kid: key_id.to_owned(),
        exp: iat.timestamp() + ttl_secs,
        iat: iat.timestamp(),
    };
    sign_parts(key, &Header::dd_jwt_v1(), &claims)
}

/// Signs any header and claims (tests use it to forge wrong tokens).
pub fn sign_parts(key: &[u8], header: &Header, claims: &Claims) -> String {
    let signing_input = format!("{}.{}", encode_json(header), encode_json(claims));
    let signature = hmac_sha256(key, &[signing_input.as_bytes()]);
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// Checks a token as DoorDash does: its header, its HS256 signature under `key`, and its
/// claims (`aud`, `iss`, `kid`, `iat`, `exp`, lifetime) at `now`.
pub fn verify(
    token: &str,
    key: &[u8],
    developer_id: &str,
    key_id: &str,
    now: DateTime<Utc>,
) -> Result<Claims, JwtError> {
    let mut parts = token.trim().split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Shape);
    };
    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| JwtError::Shape)?;
    let header: Header =
        serde_json::from_slice(&header_bytes).map_err(|e| JwtError::Header(e.to_string()))?;
    if header != Header::dd_jwt_v1() {
        return Err(JwtError::Header(format!(
            "alg `{}`, typ `{}`, dd-ver `{}`",
            header.alg, header.typ, header.dd_ver
        )));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| JwtError::Shape)?;
    let signing_input = format!("{header_b64}.{claims_b64}");
    let expected = hmac_sha256(key, &[signing_input.as_bytes()]);
    if !constant_time_eq(&expected, &signature) {
        return Err(JwtError::Signature);
    }
    let claims_bytes = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .map_err(|_| JwtError::Shape)?;
    let claims: Claims =
        serde_json::from_slice(&claims_bytes).map_err(|e| JwtError::Claims(e.to_string()))?;
    for (claim, found, expected) in [
        ("aud", &claims.aud, AUDIENCE),
        ("iss", &claims.iss, developer_id),
        ("kid", &claims.kid, key_id),
    ] {
        if found != expected {
            return Err(JwtError::Claim {
                claim,
                found: found.clone(),
                expected: expected.to_owned(),
            });
        }
    }
    let now = now.timestamp();
    if claims.exp - claims.iat > MAX_TTL_SECS {
        return Err(JwtError::TooLong {
            ttl: claims.exp - claims.iat,
        });
    }
    if claims.iat > now + CLOCK_SKEW_SECS {
        return Err(JwtError::NotYetValid {
            iat: claims.iat,
            now,
        });
    }
    if claims.exp <= now {
        return Err(JwtError::Expired {
            exp: claims.exp,
            now,
        });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).single().expect("time")
    }

    #[test]
    fn a_signed_token_verifies_and_carries_doordash_claims() {
        let key = b"0123456789abcdef";
        let token = sign(key, "dev-1", "key-1", at(1_700_000_000), 300);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(
            header,
            serde_json::json!({"alg": "HS256", "typ": "JWT", "dd-ver": "DD-JWT-V1"})
        );
        let claims = verify(&token, key, "dev-1", "key-1", at(1_700_000_100)).expect("valid");
        assert_eq!(
            claims,
            Claims {
                aud: "doordash".to_owned(),
                iss: "dev-1".to_owned(),
                kid: "key-1".to_owned(),
                exp: 1_700_000_300,
                iat: 1_700_000_000,
            }
        );
    }

    #[test]
    fn the_signature_is_hs256_over_the_first_two_parts() {
        // Recomputed independently: HMAC-SHA256(key, "h.c"), base64url without padding.
        let key = b"k";
        let token = sign(key, "d", "k", at(10), 60);
        let (input, signature) = token.rsplit_once('.').expect("dot");
        let expected = URL_SAFE_NO_PAD.encode(crossdock_channel::signature::hmac_sha256(
            key,
            &[input.as_bytes()],
        ));
        assert_eq!(signature, expected);
        assert!(!signature.contains('='));
    }

    #[test]
    fn wrong_keys_claims_and_times_are_refused() {
        let key = b"secret-bytes";
        let now = at(1_000_000);
        let good = sign(key, "dev", "kid", now, 600);
        assert_eq!(
            verify(&good, b"other", "dev", "kid", now),
            Err(JwtError::Signature)
        );
        assert!(matches!(
            verify(&good, key, "someone", "kid", now),
            Err(JwtError::Claim { claim: "iss", .. })
        ));
        assert!(matches!(
            verify(&good, key, "dev", "other-kid", now),
            Err(JwtError::Claim { claim: "kid", .. })
        ));
        assert_eq!(
            verify(&good, key, "dev", "kid", at(1_000_600)),
            Err(JwtError::Expired {
                exp: 1_000_600,
                now: 1_000_600
            })
        );
        assert!(matches!(
            verify(&good, key, "dev", "kid", at(1_000_000 - 3600)),
            Err(JwtError::NotYetValid { .. })
        ));
        let long = sign(key, "dev", "kid", now, 1801);
        assert_eq!(
            verify(&long, key, "dev", "kid", now),
            Err(JwtError::TooLong { ttl: 1801 })
        );
        let mut plain = Header::dd_jwt_v1();
        plain.dd_ver = "v0".to_owned();
        let claims = Claims {
            aud: "doordash".to_owned(),
            iss: "dev".to_owned(),
            kid: "kid".to_owned(),
            exp: 1_000_100,
            iat: 1_000_000,
        };
        assert!(matches!(
            verify(&sign_parts(key, &plain, &claims), key, "dev", "kid", now),
            Err(JwtError::Header(_))
        ));
        let wrong_aud = Claims {
            aud: "uber".to_owned(),
            ..claims
        };
        assert!(matches!(
            verify(
                &sign_parts(key, &Header::dd_jwt_v1(), &wrong_aud),
                key,
                "dev",
                "kid",
                now
            ),
            Err(JwtError::Claim { claim: "aud", .. })
        ));
        assert_eq!(verify("a.b", key, "dev", "kid", now), Err(JwtError::Shape));
        assert_eq!(
            verify("a.b.c.d", key, "dev", "kid", now),
            Err(JwtError::Shape)
        );
    }

    #[test]
    fn signing_secrets_decode_from_base64url_with_or_without_padding() {
        let key = b"\xfb\xff\x00binary?key";
        let encoded = encode_signing_secret(key);
        assert!(encoded.contains('-') || encoded.contains('_'), "{encoded}");
        assert_eq!(decode_signing_secret(&encoded).as_deref(), Ok(&key[..]));
        let padded = format!("{encoded}==");
        assert_eq!(decode_signing_secret(&padded).as_deref(), Ok(&key[..]));
        let standard = base64::engine::general_purpose::STANDARD.encode(b"plain-key");
        assert_eq!(
            decode_signing_secret(&standard).as_deref(),
            Ok(&b"plain-key"[..])
        );
        assert!(decode_signing_secret("not base64 !").is_err());
        assert!(decode_signing_secret("").is_err());
    }
}
