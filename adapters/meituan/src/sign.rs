//! Meituan's request signature, the same in both directions (CHANNELS.md §4.2 and §10):
//!
//! ```text
//! sig = lowercase_hex(md5(url + "?" + join("&", sorted(k + "=" + v for every parameter but sig)) + app_secret))
//! ```
//!
//! - `url` is the URL called, without its query: our registered callback URL for a push
//!   (the hub's public URL + path), the full API URL for a call we make.
//! - Every parameter counts, from the query and from a form body alike, empty values
//!   included; values are the **decoded** strings (form-decoded once).
//! - Pairs are sorted by key, then by value (the SDKs sort `k=v` strings; for Meituan's keys,
//!   lower-case letters, digits and `_`, both orders agree).
//! - Some pushes arrive with values percent-encoded twice (the SDK URL-decodes every value
//!   after its framework's own form decoding). A push whose signature fails over the
//!   once-decoded values is checked again over values decoded a second time; the values
//!   that verified are the ones the adapter reads.
//!
//! The simulator signs and checks with these same functions, so both sides agree by
//! construction; the unit tests pin the recipe on a hand-computed example.

use crossdock_channel::signature::constant_time_eq;
use md5::{Digest, Md5};

/// Decoded request parameters, in the order received.
pub type Params = Vec<(String, String)>;

/// The signature parameter.
pub const SIG: &str = "sig";
/// The app id system parameter.
pub const APP_ID: &str = "app_id";
/// The timestamp system parameter (unix seconds).
pub const TIMESTAMP: &str = "timestamp";

/// The text that is hashed: `url?k=v&…` (sorted, without `sig`) followed by the secret.
pub fn base_string(url: &str, params: &[(String, String)], secret: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| k != SIG)
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    let mut text = String::with_capacity(url.len() + secret.len() + 16 * pairs.len());
    text.push_str(url);
    text.push('?');
    for (index, (key, value)) in pairs.iter().enumerate() {
        if index > 0 {
            text.push('&');
        }
        text.push_str(key);
        text.push('=');
        text.push_str(value);
    }
    text.push_str(secret);
    text
}

/// The lower-case hex MD5 signature of `params` for `url`.
pub fn sign(url: &str, params: &[(String, String)], secret: &str) -> String {
    hex::encode(Md5::digest(base_string(url, params, secret).as_bytes()))
}

/// Form-decodes `application/x-www-form-urlencoded` text (a query string or a body) once:
/// `+` is a space, `%XX` a byte; invalid UTF-8 is replaced, so it cannot verify.
pub fn decode_form(bytes: &[u8]) -> Params {
    form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The name of the first parameter of form-encoded `bytes` whose name or value does not
/// decode to UTF-8, if any. Meituan's pushes are UTF-8; [`decode_form`] replaces what is
/// not, so a push that is not must be refused before it is read, or it would be read
/// with replacement characters wherever its signature happens to cover them.
pub fn not_utf8(bytes: &[u8]) -> Option<String> {
    bytes
        .split(|byte| *byte == b'&')
        .find(|pair| {
            let spaced: Vec<u8> = pair
                .iter()
                .map(|byte| if *byte == b'+' { b' ' } else { *byte })
                .collect();
            let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
            std::str::from_utf8(&decoded).is_err()
        })
        .map(|pair| {
            let name = pair.split(|byte| *byte == b'=').next().unwrap_or_default();
            String::from_utf8_lossy(name).into_owned()
        })
}

/// Form-encodes `params` as Java's `URLEncoder` does (space as `+`, `%XX` upper-case).
pub fn encode_form(params: &[(String, String)]) -> String {
    let mut serializer = form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        serializer.append_pair(key, value);
    }
    serializer.finish()
}

/// Form-encodes `params` with every value percent-encoded twice, as some Meituan pushes
/// arrive.
pub fn encode_form_twice(params: &[(String, String)]) -> String {
    let once: Params = params
        .iter()
        .map(|(k, v)| {
            let encoded: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
            (k.clone(), encoded)
        })
        .collect();
    encode_form(&once)
}

/// One more round of form decoding of a value that was already form-decoded once; a value
/// that does not decode to UTF-8 stays as it was.
fn decode_again(value: &str) -> String {
    if !value.contains(['%', '+']) {
        return value.to_owned();
    }
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .unwrap_or_else(|_| value.to_owned())
}

/// Why a signed request is refused. Each carries Meituan's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A system parameter is absent (code 701, 缺少参数).
    #[error("missing parameter `{0}`")]
    Missing(&'static str),
    /// A system parameter appears more than once.
    #[error("parameter `{0}` appears more than once")]
    Repeated(&'static str),
    /// The request is for another app (code 702, app_id 不存在).
    #[error("app_id `{0}` is not this app's")]
    AppId(String),
    /// The signature does not match (code 703, 签名验证错误).
    #[error("sig does not match the parameters and the app secret")]
    Signature,
}

impl AuthError {
    /// Meituan's error code for this refusal.
    pub fn code(&self) -> u16 {
        match self {
            AuthError::Missing(_) | AuthError::Repeated(_) => 701,
            AuthError::AppId(_) => 702,
            AuthError::Signature => 703,
        }
    }
}

/// A request whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The parameters, decoded as they verified, `sig` removed.
    pub params: Params,
    /// The values verified only once decoded a second time.
    pub double_encoded: bool,
}

/// The one value of a system parameter.
fn single<'a>(params: &'a [(String, String)], name: &'static str) -> Result<&'a str, AuthError> {
    let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
    let first = values.next().ok_or(AuthError::Missing(name))?;
    if values.next().is_some() {
        return Err(AuthError::Repeated(name));
    }
    Ok(first)
}

/// Checks a signed request: `params` are everything received (query and form body), decoded
/// once. Requires `sig`, `app_id` (equal to `app_id`) and `timestamp`; the signature must be
/// the exact lower-case hex the recipe gives, compared in constant time.
///
/// No time window: Meituan documents none, and replays are harmless (deduplicated on the
/// order and push type).
pub fn verify(
    url: &str,
    params: Params,
    app_id: &str,
    secret: &str,
) -> Result<Verified, AuthError> {
    let provided = single(&params, SIG)?.to_owned();
    let sender = single(&params, APP_ID)?;
    if !constant_time_eq(sender.as_bytes(), app_id.as_bytes()) {
        return Err(AuthError::AppId(crossdock_channel::clip(sender)));
    }
    single(&params, TIMESTAMP)?;
    let params: Params = params.into_iter().filter(|(k, _)| k != SIG).collect();
    if constant_time_eq(sign(url, &params, secret).as_bytes(), provided.as_bytes()) {
        return Ok(Verified {
            params,
            double_encoded: false,
        });
    }
    let twice: Params = params
        .iter()
        .map(|(k, v)| (k.clone(), decode_again(v)))
        .collect();
    if twice != params
        && constant_time_eq(sign(url, &twice, secret).as_bytes(), provided.as_bytes())
    {
        return Ok(Verified {
            params: twice,
            double_encoded: true,
        });
    }
    Err(AuthError::Signature)
}

/// `params` with the system parameters and their signature added, for a call to `url` (or a
/// push to a callback URL) at `timestamp`.
pub fn signed(url: &str, mut params: Params, app_id: &str, secret: &str, timestamp: i64) -> Params {
    params.retain(|(k, _)| k != SIG && k != APP_ID && k != TIMESTAMP);
    params.push((APP_ID.to_owned(), app_id.to_owned()));
    params.push((TIMESTAMP.to_owned(), timestamp.to_string()));
    let sig = sign(url, &params, secret);
    params.push((SIG.to_owned(), sig));
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_base_string_sorts_keeps_empty_values_and_drops_sig() {
        let params = p(&[
            ("timestamp", "1795176000"),
            ("order_id", "27061900338318741"),
            ("sig", "ignored"),
            ("caution", ""),
            ("app_id", "6688"),
        ]);
        assert_eq!(
            base_string(
                "https://hub.example/webhooks/meituan/order",
                &params,
                "s3cret"
            ),
            "https://hub.example/webhooks/meituan/order?app_id=6688&caution=&order_id=27061900338318741&timestamp=1795176000s3cret"
        );
    }

    #[test]
    fn the_signature_is_lower_case_hex_md5_of_the_base_string() {
        // md5("http://x/y?a=1&b=2k"), computed independently with coreutils' md5sum.
        let sig = sign("http://x/y", &p(&[("b", "2"), ("a", "1")]), "k");
        assert_eq!(sig, "26d29e52bd01afd7cbea97f4fa878ba3");
        assert_eq!(
            hex::encode(Md5::digest(b"")),
            "d41d8cd98f00b204e9800998ecf8427e",
            "MD5 of the empty string (RFC 1321)"
        );
        assert_eq!(
            hex::encode(Md5::digest(b"message digest")),
            "f96b697d7cb7938d525a2f31aaf161d0",
            "RFC 1321 test suite"
        );
    }

    #[test]
    fn forms_round_trip_once_and_twice_encoded() {
        let params = p(&[("caution", "少冰 50%+去葱"), ("detail", "[{\"a\":1}]")]);
        let once = encode_form(&params);
        assert_eq!(decode_form(once.as_bytes()), params);
        let twice = encode_form_twice(&params);
        let decoded_once = decode_form(twice.as_bytes());
        assert_ne!(decoded_once, params);
        let again: Params = decoded_once
            .iter()
            .map(|(k, v)| (k.clone(), decode_again(v)))
            .collect();
        assert_eq!(again, params);
    }

    #[test]
    fn verification_accepts_once_and_twice_encoded_values() {
        let url = "https://hub.example/webhooks/meituan/order";
        let params = signed(
            url,
            p(&[("order_id", "1"), ("caution", "不要辣")]),
            "42",
            "k",
            7,
        );
        let once = decode_form(encode_form(&params).as_bytes());
        let verified = verify(url, once, "42", "k").expect("once");
        assert!(!verified.double_encoded);
        assert!(verified.params.iter().all(|(k, _)| k != SIG));
        let twice = decode_form(encode_form_twice(&params).as_bytes());
        let verified = verify(url, twice, "42", "k").expect("twice");
        assert!(verified.double_encoded);
        assert!(
            verified
                .params
                .contains(&("caution".to_owned(), "不要辣".to_owned()))
        );
    }

    #[test]
    fn refusals_carry_meituans_codes() {
        let url = "https://hub.example/webhooks/meituan/cancel";
        let params = signed(url, p(&[("order_id", "1")]), "42", "k", 7);
        let without =
            |name: &str| -> Params { params.iter().filter(|(k, _)| k != name).cloned().collect() };
        assert_eq!(
            verify(url, without(SIG), "42", "k"),
            Err(AuthError::Missing(SIG))
        );
        assert_eq!(
            verify(url, without(APP_ID), "42", "k"),
            Err(AuthError::Missing(APP_ID))
        );
        assert_eq!(
            verify(url, without(TIMESTAMP), "42", "k"),
            Err(AuthError::Missing(TIMESTAMP))
        );
        assert_eq!(
            verify(url, params.clone(), "43", "k"),
            Err(AuthError::AppId("42".into()))
        );
        assert_eq!(
            verify(url, params.clone(), "42", "K"),
            Err(AuthError::Signature)
        );
        assert_eq!(
            verify(
                "https://hub.example/webhooks/meituan/refund",
                params.clone(),
                "42",
                "k"
            ),
            Err(AuthError::Signature),
            "the URL is signed"
        );
        let mut repeated = params.clone();
        repeated.push((SIG.to_owned(), "x".to_owned()));
        assert_eq!(
            verify(url, repeated, "42", "k"),
            Err(AuthError::Repeated(SIG))
        );
        assert_eq!(AuthError::Missing(SIG).code(), 701);
        assert_eq!(AuthError::AppId(String::new()).code(), 702);
        assert_eq!(AuthError::Signature.code(), 703);
    }
}
