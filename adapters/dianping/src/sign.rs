//! The open platform's request signature, as the official Java demo computes it
//! (`com.dianping.dzopen.utils.SignUtil.signTopRequest`, sign method `MD5`):
//!
//! 1. take every parameter of the call except `sign` (common and business parameters);
//! 2. drop those whose name or value is empty;
//! 3. sort them by name;
//! 4. concatenate `secret + name1 + value1 + name2 + value2 + … + secret` (no separators);
//! 5. MD5 over its UTF-8 bytes, as lower-case hex (the demo's `byte2hex` lower-cases; the
//!    Taobao-style original upper-cases, so the simulator accepts either case).
//!
//! The demo's own test vector: parameters `app_id=test001`, `timestamp=2017-11-13 14:44:00`
//! and an empty secret sign to `277094cded19065755c9021dd36b0554`.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// The format of the `timestamp` parameter, in Beijing time.
pub const TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Beijing time (UTC+8, no daylight saving). Checked when compiling.
pub const BEIJING: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// Beijing time (UTC+8).
pub fn beijing() -> FixedOffset {
    BEIJING
}

/// `at` as the `timestamp` parameter: `yyyy-MM-dd HH:mm:ss` in Beijing time.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.with_timezone(&beijing())
        .format(TIMESTAMP_FORMAT)
        .to_string()
}

/// Reads a `timestamp` parameter (Beijing time) back as an instant.
pub fn parse_timestamp(value: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(value.trim(), TIMESTAMP_FORMAT).ok()?;
    beijing()
        .from_local_datetime(&naive)
        .single()
        .map(|at| at.with_timezone(&Utc))
}

/// The `sign` of a call's parameters (`sign` itself, if present, is left out).
pub fn sign<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>, secret: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(name, value)| *name != "sign" && !name.is_empty() && !value.is_empty())
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Md5::new();
    hasher.update(secret.as_bytes());
    for (name, value) in pairs {
        hasher.update(name.as_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether `provided` (hex, any case) is the sign of `params`. Constant time in the
/// signature bytes.
pub fn verify<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    secret: &str,
    provided: &str,
) -> bool {
    let expected = sign(params, secret);
    let provided = provided.trim().to_ascii_lowercase();
    expected.len() == provided.len() && bool::from(expected.as_bytes().ct_eq(provided.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_official_demos_test_vector() {
        let params = [("app_id", "test001"), ("timestamp", "2017-11-13 14:44:00")];
        assert_eq!(sign(params, ""), "277094cded19065755c9021dd36b0554");
    }

    #[test]
    fn the_secret_wraps_sorted_names_and_values() {
        // md5("xyz" + "a1" + "ab3" + "b2" + "xyz"), the documentation's worked example.
        let params = [("b", "2"), ("a", "1"), ("ab", "3")];
        let expected = hex::encode(Md5::digest(b"xyza1ab3b2xyz"));
        assert_eq!(sign(params, "xyz"), expected);
    }

    #[test]
    fn empty_values_and_the_sign_itself_are_left_out() {
        let with = [("a", "1"), ("empty", ""), ("sign", "whatever")];
        assert_eq!(sign(with, "s"), sign([("a", "1")], "s"));
    }

    #[test]
    fn verification_accepts_any_case_and_refuses_changes() {
        let params = [("receipt_code", "0123456789"), ("count", "1")];
        let signed = sign(params, "secret");
        assert!(verify(params, "secret", &signed));
        assert!(verify(params, "secret", &signed.to_ascii_uppercase()));
        assert!(!verify(params, "other", &signed));
        assert!(!verify(
            [("receipt_code", "0123456788"), ("count", "1")],
            "secret",
            &signed
        ));
        assert!(!verify(params, "secret", &signed[..31]));
        assert!(!verify(params, "secret", ""));
    }

    #[test]
    fn timestamps_are_beijing_time_both_ways() {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
            .single()
            .expect("time");
        assert_eq!(timestamp(at), "2026-11-20 20:00:00");
        assert_eq!(parse_timestamp("2026-11-20 20:00:00"), Some(at));
        assert_eq!(parse_timestamp("2026-11-20T20:00:00"), None);
    }
}
