//! Signature helpers. Always over the exact bytes received; compared in constant time.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{ChannelError, HeaderMap, clip};

type HmacSha256 = Hmac<Sha256>;

/// Lower-case hex HMAC-SHA256 of the concatenated `parts`, keyed with `key`.
pub fn hmac_sha256_hex(key: &[u8], parts: &[&[u8]]) -> String {
    hex::encode(hmac_sha256(key, parts))
}

/// Raw HMAC-SHA256 of the concatenated `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    #[allow(clippy::expect_used)]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Whether `provided_hex` (any case, surrounding whitespace ignored) is the HMAC-SHA256 of
/// the concatenated `parts` under `key`. Constant time in the signature bytes.
pub fn verify_hmac_sha256_hex(key: &[u8], parts: &[&[u8]], provided_hex: &str) -> bool {
    let Ok(provided) = hex::decode(provided_hex.trim().to_ascii_lowercase()) else {
        return false;
    };
    let expected = hmac_sha256(key, parts);
    provided.len() == expected.len() && bool::from(expected.ct_eq(&provided))
}

/// A request signed as hex HMAC-SHA256(key, timestamp + "." + body), the timestamp in unix
/// seconds in its own header, and accepted only within a window around the time of receipt
/// (replay-proof). The scheme of our own protocols (the chain's app, store POS systems).
#[derive(Debug, Clone, Copy)]
pub struct Timestamped {
    pub timestamp_header: &'static str,
    pub signature_header: &'static str,
    /// How far, in seconds, the timestamp may be from the time of receipt, either way.
    pub window_s: u64,
}

impl Timestamped {
    /// The signature of `body` sent at `timestamp`.
    pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
        hmac_sha256_hex(key, &[timestamp.to_string().as_bytes(), b".", body])
    }

    /// The two headers that sign `body` at `timestamp`.
    pub fn headers(&self, key: &[u8], timestamp: i64, body: &[u8]) -> Vec<(String, String)> {
        vec![
            (self.timestamp_header.to_owned(), timestamp.to_string()),
            (
                self.signature_header.to_owned(),
                Self::sign(key, timestamp, body),
            ),
        ]
    }

    /// Checks a request received at `now` and returns its timestamp. The signature covers
    /// the timestamp header's exact text.
    ///
    /// Errors: [`ChannelError::Unauthorized`] naming the missing or bad header, or saying
    /// the signature does not match; [`ChannelError::Stale`] outside the window, saying by
    /// how much.
    pub fn verify(
        &self,
        key: &[u8],
        headers: &HeaderMap,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<i64, ChannelError> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .ok_or_else(|| ChannelError::Unauthorized(format!("missing header {name}")))
        };
        let (timestamp_header, signature_header) = (self.timestamp_header, self.signature_header);
        let timestamp_text = header(timestamp_header)?;
        let signature = header(signature_header)?;
        let timestamp: i64 = timestamp_text.trim().parse().map_err(|_| {
            ChannelError::Unauthorized(format!(
                "header {timestamp_header} `{}` is not unix seconds",
                clip(timestamp_text)
            ))
        })?;
        if !verify_hmac_sha256_hex(key, &[timestamp_text.as_bytes(), b".", body], signature) {
            return Err(ChannelError::Unauthorized(format!(
                "header {signature_header} does not match the timestamp and body"
            )));
        }
        let skew = now.timestamp().abs_diff(timestamp);
        if skew > self.window_s {
            let side = if timestamp < now.timestamp() {
                "before"
            } else {
                "after"
            };
            return Err(ChannelError::Stale(format!(
                "header {timestamp_header} {timestamp} is {skew} s {side} the time of receipt; \
                 the replay window is {} s",
                self.window_s
            )));
        }
        Ok(timestamp)
    }
}

/// Constant-time equality of two byte strings (e.g. a static auth header).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256_hex(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            mac,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn verification_is_case_insensitive_and_rejects_any_change() {
        let mac = hmac_sha256_hex(b"k", &[b"body"]);
        assert!(verify_hmac_sha256_hex(b"k", &[b"body"], &mac));
        assert!(verify_hmac_sha256_hex(
            b"k",
            &[b"body"],
            &mac.to_ascii_uppercase()
        ));
        assert!(!verify_hmac_sha256_hex(b"k", &[b"bodY"], &mac));
        assert!(!verify_hmac_sha256_hex(b"K", &[b"body"], &mac));
        assert!(!verify_hmac_sha256_hex(b"k", &[b"body"], "zz"));
        assert!(!verify_hmac_sha256_hex(b"k", &[b"body"], &mac[..10]));
    }
}
