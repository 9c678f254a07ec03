//! What the harness knows of each channel: its factory, its own headers (signature,
//! timestamp, …), its options for fuzzing, what it has besides webhooks (fetches, codes),
//! and how its platform signs a request, so that re-signed inputs pass the signature check.

use std::sync::OnceLock;

use crossdock_channel::signature::hmac_sha256_hex;
use crossdock_channel::{ChannelFactory, HeaderName, HeaderValue, InboundRequest};
use serde_json::{Value, json};

use crossdock_adapter_deliveroo as deliveroo;
use crossdock_adapter_dianping as dianping;
use crossdock_adapter_doordash as doordash;
use crossdock_adapter_eleme as eleme;
use crossdock_adapter_google as google;
use crossdock_adapter_just_eat as just_eat;
use crossdock_adapter_meituan as meituan;
use crossdock_adapter_own_app as own_app;
use crossdock_adapter_pos as pos;
use crossdock_adapter_uber_eats as uber_eats;

/// One channel, as the harness drives it.
pub struct Spec {
    /// The channel id, also the name of its directory under `fixtures/`.
    pub id: &'static str,
    pub factory: fn() -> &'static dyn ChannelFactory,
    /// The `[channels.<id>]` options the adapter is built with.
    pub options: fn() -> Value,
    /// Headers whose values are parts of their own in the input (lower case).
    pub headers: &'static [&'static str],
    /// Notify-then-fetch: `parse_fetched` is fuzzed.
    pub fetches: bool,
    /// Codes at the counter: `parse_redeemed` and `check_code` are fuzzed.
    pub codes: bool,
    /// Signs `request` as the platform would, with the development secret; `alt` picks
    /// an alternative scheme where there is one.
    pub resign: fn(&mut InboundRequest, alt: bool),
}

fn no_options() -> Value {
    Value::Null
}

fn unsigned(_request: &mut InboundRequest, _alt: bool) {}

fn set(request: &mut InboundRequest, name: &str, value: &str) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        request.headers.insert(name, value);
    }
}

/// The timestamped scheme of our own protocols: HMAC over the timestamp header's exact
/// text (the time of receipt where there is none), `.`, and the body.
fn timestamped(request: &mut InboundRequest, key: &[u8], timestamp: &str, signature: &str) {
    let stamp = match request.header(timestamp) {
        Some(text) => text.to_owned(),
        None => {
            let now = request.received_at.timestamp().to_string();
            set(request, timestamp, &now);
            now
        }
    };
    let mac = hmac_sha256_hex(key, &[stamp.as_bytes(), b".", &request.body]);
    set(request, signature, &mac);
}

pub static OWN_APP: Spec = Spec {
    id: own_app::CHANNEL_ID,
    factory: || &own_app::Factory,
    options: no_options,
    headers: &["x-crossdock-timestamp", "x-crossdock-signature"],
    fetches: false,
    codes: false,
    resign: |request, _| {
        timestamped(
            request,
            own_app::DEV_SIGNING_SECRET.as_bytes(),
            own_app::TIMESTAMP_HEADER,
            own_app::SIGNATURE_HEADER,
        );
    },
};

pub static POS: Spec = Spec {
    id: pos::CHANNEL_ID,
    factory: || &pos::Factory,
    options: no_options,
    headers: &[
        "x-crossdock-store",
        "x-crossdock-timestamp",
        "x-crossdock-signature",
    ],
    fetches: false,
    codes: false,
    resign: |request, _| {
        let store = request.header(pos::STORE_HEADER).unwrap_or_default();
        let key = pos::store_key(pos::DEV_MASTER_KEY.as_bytes(), store);
        timestamped(
            request,
            key.as_bytes(),
            pos::TIMESTAMP_HEADER,
            pos::SIGNATURE_HEADER,
        );
    },
};

pub static UBER_EATS: Spec = Spec {
    id: uber_eats::CHANNEL_ID,
    factory: || &uber_eats::Factory,
    options: no_options,
    headers: &[uber_eats::SIGNATURE_HEADER],
    fetches: true,
    codes: false,
    resign: |request, _| {
        let mac = hmac_sha256_hex(uber_eats::DEV_CLIENT_SECRET.as_bytes(), &[&request.body]);
        set(request, uber_eats::SIGNATURE_HEADER, &mac);
    },
};

pub static DOORDASH: Spec = Spec {
    id: doordash::CHANNEL_ID,
    factory: || &doordash::Factory,
    options: no_options,
    headers: &["authorization"],
    fetches: false,
    codes: false,
    resign: |request, _| {
        set(
            request,
            "authorization",
            doordash::DEV_WEBHOOK_AUTHORIZATION,
        )
    },
};

pub static DELIVEROO: Spec = Spec {
    id: deliveroo::CHANNEL_ID,
    factory: || &deliveroo::Factory,
    options: no_options,
    headers: &[
        deliveroo::GUID_HEADER,
        deliveroo::SIGNATURE_HEADER,
        deliveroo::PAYLOAD_TYPE_HEADER,
    ],
    fetches: false,
    codes: false,
    resign: |request, legacy| {
        let guid = match request.header(deliveroo::GUID_HEADER) {
            Some(guid) => guid.to_owned(),
            None => {
                set(request, deliveroo::GUID_HEADER, "fuzz-guid");
                "fuzz-guid".to_owned()
            }
        };
        let key = deliveroo::DEV_WEBHOOK_SECRET.as_bytes();
        let signature = if legacy {
            deliveroo::sign_legacy(key, &guid, &request.body)
        } else {
            deliveroo::sign(key, &guid, &request.body)
        };
        set(request, deliveroo::SIGNATURE_HEADER, &signature);
    },
};

pub static MEITUAN: Spec = Spec {
    id: meituan::CHANNEL_ID,
    factory: || &meituan::Factory,
    options: no_options,
    headers: &[],
    fetches: false,
    codes: false,
    resign: resign_meituan,
};

/// Meituan signs every parameter (query and form body, decoded) with the URL: drop any
/// `sig`, add `app_id` and `timestamp` where missing, and put the signature in the query.
fn resign_meituan(request: &mut InboundRequest, _alt: bool) {
    use meituan::sign::{APP_ID, SIG, TIMESTAMP, decode_form, sign};
    let strip = |raw: &[u8]| -> Vec<u8> {
        raw.split(|b| *b == b'&')
            .filter(|pair| !decode_form(pair).iter().any(|(k, _)| k == SIG))
            .collect::<Vec<_>>()
            .join(&b'&')
    };
    let mut query = strip(request.query.as_deref().unwrap_or_default().as_bytes());
    let body = strip(&request.body);
    let mut params = decode_form(&query);
    if !body.is_empty() {
        params.extend(decode_form(&body));
    }
    let mut add = |name: &str, value: String| {
        if !params.iter().any(|(k, _)| k == name) {
            if !query.is_empty() {
                query.push(b'&');
            }
            query.extend_from_slice(format!("{name}={value}").as_bytes());
            params.push((name.to_owned(), value));
        }
    };
    add(APP_ID, meituan::DEV_APP_ID.to_owned());
    add(TIMESTAMP, request.received_at.timestamp().to_string());
    let sig = sign(&request.url, &params, meituan::DEV_APP_SECRET);
    if !query.is_empty() {
        query.push(b'&');
    }
    query.extend_from_slice(format!("{SIG}={sig}").as_bytes());
    request.query = Some(String::from_utf8_lossy(&query).into_owned());
    request.body = body.into();
}

pub static ELEME: Spec = Spec {
    id: eleme::CHANNEL_ID,
    factory: || &eleme::Factory,
    options: no_options,
    headers: &[],
    fetches: false,
    codes: false,
    // The signature is inside the body (an MD5 over the envelope's other fields): re-signing
    // would rewrite the body. `parse` does not depend on it, so nothing is lost.
    resign: unsigned,
};

pub static GOOGLE: Spec = Spec {
    id: google::CHANNEL_ID,
    factory: || &google::Factory,
    options: no_options,
    headers: &["authorization"],
    fetches: false,
    codes: false,
    // Google's JWT does not cover the body: one token, signed at the fixtures' time with
    // the development key (RSA signing is too slow to repeat per input), serves all.
    resign: |request, _| {
        static TOKEN: OnceLock<String> = OnceLock::new();
        let token = TOKEN.get_or_init(|| {
            google::simulator::dev_authorization(crate::fixture_time())
                .expect("the development key signs")
        });
        set(request, "authorization", token);
    },
};

pub static DIANPING: Spec = Spec {
    id: dianping::CHANNEL_ID,
    factory: || &dianping::Factory,
    options: || json!({ "base_url": crate::platform::base_url() }),
    headers: &[],
    fetches: false,
    codes: true,
    // Dianping never calls the hub: its webhook refuses everything, signed or not.
    resign: unsigned,
};

pub static JUST_EAT: Spec = Spec {
    id: just_eat::CHANNEL_ID,
    factory: || &just_eat::Factory,
    options: no_options,
    headers: &[just_eat::SIGNATURE_HEADER],
    fetches: false,
    codes: false,
    resign: |request, _| {
        let t_ms = request.received_at.timestamp_millis();
        let value =
            just_eat::simulator::hash_header(just_eat::DEV_WEBHOOK_SECRET, &request.body, t_ms);
        set(request, just_eat::SIGNATURE_HEADER, &value);
    },
};
