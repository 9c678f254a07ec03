//! Signature helpers. Always over the exact bytes received; compared in constant time.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

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
