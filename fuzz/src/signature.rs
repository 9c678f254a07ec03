//! Fuzzing of the shared signature helpers (`crossdock_channel::signature`), with their
//! promises checked: a signature made by the helpers verifies (either case of hex), one
//! that verifies is the right one, the timestamped scheme accepts exactly the timestamps
//! inside its window, and `constant_time_eq` is equality.
//!
//! Input: `flags skew key 0xFF timestamp 0xFF signature 0xFF body…`; `flags` bit 0 puts
//! the right signature in the header instead of the input's, the rest of `flags` is the
//! replay window in tens of seconds; `skew` moves the time of receipt in minutes.

use chrono::Duration;
use crossdock_channel::signature::{
    Timestamped, constant_time_eq, hmac_sha256, hmac_sha256_hex, verify_hmac_sha256_hex,
};
use crossdock_channel::{ChannelError, HeaderMap, HeaderValue};

use crate::input::SEP;

const TIMESTAMP: &str = "x-fuzz-timestamp";
const SIGNATURE: &str = "x-fuzz-signature";

/// The target's `init`: with [`crate::SEED_ENV`] set, writes the seeds and exits.
pub fn init() {
    if let Some(dir) = std::env::var_os(crate::SEED_ENV) {
        let dir = std::path::Path::new(&dir);
        let seeds = seeds();
        let written = std::fs::create_dir_all(dir).and_then(|()| {
            seeds
                .iter()
                .try_for_each(|(name, bytes)| std::fs::write(dir.join(name), bytes))
        });
        if let Err(e) = written {
            panic!("writing seeds into {}: {e}", dir.display());
        }
        eprintln!(
            "signature: wrote {} seeds into {}",
            seeds.len(),
            dir.display()
        );
        std::process::exit(0);
    }
}

/// Seeds: the own-app and POS fixtures' key, timestamp, signature and body.
pub fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let sources = [
        (
            "own_app",
            crossdock_adapter_own_app::DEV_SIGNING_SECRET.to_owned(),
        ),
        (
            "pos",
            crossdock_adapter_pos::store_key(
                crossdock_adapter_pos::DEV_MASTER_KEY.as_bytes(),
                "NYC-001",
            ),
        ),
    ];
    for (channel, key) in sources {
        let Ok(entries) = std::fs::read_dir(crate::seeds::fixtures_dir(channel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "body") {
                continue;
            }
            let (Ok(body), Ok(headers)) = (
                std::fs::read(&path),
                std::fs::read_to_string(path.with_extension("headers")),
            ) else {
                continue;
            };
            let header = |name: &str| {
                headers
                    .lines()
                    .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned()
            };
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            for flags in [30u8, 31] {
                let mut input = vec![flags, 0];
                for part in [
                    key.as_bytes(),
                    header("X-Crossdock-Timestamp").as_bytes(),
                    header("X-Crossdock-Signature").as_bytes(),
                ] {
                    input.extend_from_slice(part);
                    input.push(SEP);
                }
                input.extend_from_slice(&body);
                seeds.push((format!("seed-{channel}-{stem}-{flags}"), input));
            }
        }
    }
    seeds
}

/// Runs one input through the helpers, panicking where one breaks its promise.
pub fn run(data: &[u8]) {
    let (flags, skew, rest) = match data {
        [flags, skew, rest @ ..] => (*flags, i8::from_ne_bytes([*skew]), rest),
        _ => return,
    };
    let mut parts = rest.splitn(4, |b| *b == SEP);
    let mut next = || parts.next().unwrap_or_default();
    let (key, stamp, provided, body) = (next(), next(), next(), next());

    // Plain HMAC: parts are concatenated; the hex is the raw MAC's; it verifies.
    let mac = hmac_sha256(key, &[stamp, b".", body]);
    let hex = hmac_sha256_hex(key, &[stamp, b".", body]);
    assert_eq!(hex, to_hex(&mac), "hex is not the raw MAC's");
    assert_eq!(
        mac,
        hmac_sha256(key, &[&[stamp, b".", body].concat()]),
        "parts do not concatenate"
    );
    assert!(verify_hmac_sha256_hex(key, &[stamp, b".", body], &hex));
    assert!(verify_hmac_sha256_hex(
        key,
        &[stamp, b".", body],
        &format!(" {} ", hex.to_ascii_uppercase())
    ));
    let provided_text = String::from_utf8_lossy(provided);
    if verify_hmac_sha256_hex(key, &[stamp, b".", body], &provided_text) {
        assert!(
            provided_text.trim().eq_ignore_ascii_case(&hex),
            "a wrong signature verified: {provided_text:?}"
        );
    }
    assert_eq!(constant_time_eq(stamp, provided), stamp == provided);

    // The timestamped scheme.
    let scheme = Timestamped {
        timestamp_header: TIMESTAMP,
        signature_header: SIGNATURE,
        window_s: u64::from(flags >> 1) * 10,
    };
    let now = crate::fixture_time() + Duration::minutes(i64::from(skew));
    let right = flags & 1 != 0;
    let mut headers = HeaderMap::new();
    let stamp_value = HeaderValue::from_bytes(stamp).ok();
    if let Some(value) = &stamp_value {
        headers.insert(TIMESTAMP, value.clone());
    }
    let signature = if right {
        HeaderValue::from_str(&hex).ok()
    } else {
        HeaderValue::from_bytes(provided).ok()
    };
    if let Some(value) = signature {
        headers.insert(SIGNATURE, value);
    }
    let result = scheme.verify(key, &headers, body, now);
    if let Err(error) = &result {
        drop(error.to_string());
    }
    let stamp_text = stamp_value.as_ref().and_then(|v| v.to_str().ok());
    let parsed = stamp_text.and_then(|t| t.trim().parse::<i64>().ok());
    match (&result, parsed) {
        (Ok(at), Some(parsed)) => {
            assert_eq!(*at, parsed, "verify returned another timestamp");
            assert!(now.timestamp().abs_diff(parsed) <= scheme.window_s);
        }
        (Ok(_), None) => panic!("verified without a timestamp that parses"),
        (Err(_), _) if !right => {}
        (Err(ChannelError::Stale(_)), Some(parsed)) => {
            assert!(now.timestamp().abs_diff(parsed) > scheme.window_s);
        }
        (Err(error), Some(_)) => panic!("the right signature was refused: {error}"),
        (Err(_), None) => {}
    }
    if let Some(parsed) = parsed {
        let signed = Timestamped::sign(key, parsed, body);
        let expected = hmac_sha256_hex(key, &[parsed.to_string().as_bytes(), b".", body]);
        assert_eq!(signed, expected);
        let headers = scheme.headers(key, parsed, body);
        assert_eq!(headers.len(), 2);
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
